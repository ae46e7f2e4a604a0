"""Generate a synthetic dataset (if not already there) and ingest it into a workspace."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from storage.workspace import Workspace
from tasks.synth.ground_truth import GROUND_TRUTH_FILE, ADAPTER_OF_FORMAT, SynthResult
from tasks.synth.presets import SynthConfig, preset as preset_config
from tasks.synth.writer import generate


def dataset_name(preset: str, fmt: str, seed: int) -> str:
    """Workspace dataset name of a synthetic dataset (e.g. synth_tiny_casme3_s0)."""
    return f"synth_{preset}_{fmt}_s{seed}"


def make_dataset(ws: Workspace, preset: str | SynthConfig = "tiny", out: Path | None = None, seed: int = 0,
                 fmt: str = "casme3") -> str:
    """Generate (unless finished already) and ingest (unless stored already); returns the dataset name.

    Data goes to `out`, default <workspace>/synth/<dataset name>.
    """
    from storage.ingest import ingest

    cfg = preset_config(preset) if isinstance(preset, str) else preset
    cfg = dataclasses.replace(cfg, format=fmt)
    name = dataset_name(cfg.preset, fmt, seed)
    root = Path(out) if out is not None else ws.path("synth", name)
    res = SynthResult.load(root) if (root / GROUND_TRUTH_FILE).exists() else generate(cfg, root, seed)
    if not ws.files("videos", dataset=name) or not (root / GROUND_TRUTH_FILE).exists():
        ingest(ws, ADAPTER_OF_FORMAT[res.format], root, dataset=name, fps=res.fps)
    return name


def ground_truth(ws: Workspace, preset: str = "tiny", seed: int = 0, fmt: str = "casme3",
                 out: Path | None = None) -> SynthResult:
    """The ground truth of a dataset made by `make_dataset` with the same arguments."""
    root = Path(out) if out is not None else ws.path("synth", dataset_name(preset, fmt, seed))
    return SynthResult.load(root)
