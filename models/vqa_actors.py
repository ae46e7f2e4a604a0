"""Ray actors that hold a Qwen2.5-VL model for batch answering and LoRA training (GPU when present)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from models.lora import LoraSettings, save_adapter, train_lora
from models.qwen_vl import generate, load_qwen


class QwenWorker:
    """One loaded model; answers conversation batches or trains a LoRA adapter."""

    def __init__(self, vlm_path: str, adapter: str | None = None, device: str | None = None):
        self.model, self.processor = load_qwen(vlm_path, device=device, adapter=adapter)

    def answer(self, conversations: list[list[dict]], max_new_tokens: int = 48, batch_size: int = 4) -> list[str]:
        """Greedy answers for the conversations, in order."""
        return generate(self.model, self.processor, conversations, max_new_tokens, batch_size)

    def train(self, conversations: list[list[dict]], answers: list[str], settings: dict, out: str) -> dict:
        """Train LoRA adapters and save them under `out`; returns the per-epoch losses and the folder."""
        peft_model, losses = train_lora(self.model, self.processor, conversations, answers,
                                        LoraSettings(**settings))
        folder = save_adapter(peft_model, out)
        return {"losses": losses, "adapter": str(folder)}


def actor_options(gpu_fraction: float | None = None) -> dict:
    """Resources for one worker: the configured GPU fraction, else one GPU when the driver sees CUDA, else CPU."""
    import torch

    if gpu_fraction is not None:
        return {"num_gpus": gpu_fraction, "num_cpus": 1}
    return {"num_gpus": 1 if torch.cuda.is_available() else 0, "num_cpus": 1}


def _actor(vlm_path: str, adapter: str | None, gpu_fraction: float | None) -> Any:
    import ray

    opts = actor_options(gpu_fraction)
    device = "cuda" if opts["num_gpus"] else "cpu"
    return ray.remote(QwenWorker).options(**opts).remote(str(vlm_path), adapter and str(adapter), device)


def answer_on_ray(vlm_path: str | Path, conversations: Sequence[list[dict]], adapter: str | Path | None = None,
                  max_new_tokens: int = 48, batch_size: int = 4, actors: int = 1,
                  gpu_fraction: float | None = None, on_done: Callable[[int], None] | None = None) -> list[str]:
    """Answer conversations with `actors` Ray actors, a batch at a time (results in input order);
    `on_done(n)` is called as each batch of n answers arrives."""
    import ray
    from ray.util import ActorPool

    conversations = list(conversations)
    if not conversations:
        return []
    n = max(1, min(actors, len(conversations)))
    workers = [_actor(str(vlm_path), adapter, gpu_fraction) for _ in range(n)]
    chunks = [conversations[i:i + batch_size] for i in range(0, len(conversations), batch_size)]
    out: list[str] = []
    try:
        for part in ActorPool(workers).map(lambda w, c: w.answer.remote(c, max_new_tokens, batch_size), chunks):
            out.extend(part)
            if on_done:
                on_done(len(part))
        return out
    finally:
        for w in workers:
            ray.kill(w)


def train_on_ray(vlm_path: str | Path, conversations: Sequence[list[dict]], answers: Sequence[str],
                 settings: LoraSettings, out: str | Path, gpu_fraction: float | None = None) -> dict:
    """Train a LoRA adapter inside one Ray actor; returns {'losses', 'adapter'}."""
    import ray

    worker = _actor(str(vlm_path), None, gpu_fraction)
    try:
        return ray.get(worker.train.remote(list(conversations), list(answers), dataclasses.asdict(settings),
                                           str(out)))
    finally:
        ray.kill(worker)
