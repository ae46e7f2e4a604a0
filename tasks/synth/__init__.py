"""Built-in synthetic micro-expression data: long videos with exact ground truth in real dataset layouts."""

from tasks.synth.dataset import dataset_name, ground_truth, make_dataset
from tasks.synth.ground_truth import SynthResult
from tasks.synth.presets import PRESETS, SynthConfig, preset
from tasks.synth.writer import generate

__all__ = ["PRESETS", "SynthConfig", "SynthResult", "dataset_name", "generate", "ground_truth", "make_dataset",
           "preset"]
