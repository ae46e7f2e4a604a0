"""Ray work for MEAN training (one remote task per fold) and MEAN's shard scorer (used by models/spot_actors.py).

Data access is passed in (`load` / `read` callables from tasks.mean_data) so that this module depends on
models and storage only; Ray ships those functions to the workers by reference.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from collections.abc import Callable, Iterable

import numpy as np

from models.ray_tasks import map_tasks
from models.mean import MEAN, MeanTrainParams, predict, state_arrays, train_recognition, \
    train_spotting

# (path, frames, targets) per shard, as built by tasks.mean_data
Plan = list[tuple[str, np.ndarray, np.ndarray]]
Loader = Callable[[Plan], tuple[np.ndarray, np.ndarray]]
Reader = Callable[[str], Iterable[tuple[np.ndarray, np.ndarray]]]


@dataclasses.dataclass
class FoldJob:
    """What one fold trainer needs: its sample plans (rows to read), class count and optimiser settings."""

    fold: str
    heldout_subjects: list[str]
    spot: Plan
    rec: Plan
    val_spot: Plan
    val_rec: Plan
    n_classes: int
    params: MeanTrainParams


def _threads(num_cpus: float) -> None:
    import torch

    torch.set_num_threads(max(1, int(num_cpus)))


def run_fold(job: FoldJob, load: Loader, num_cpus: float = 1.0) -> dict[str, Any]:
    """Train one fold (spotting, then recognition with the rest frozen) and validate on its held-out plans."""
    import time

    import torch

    t0, c0 = time.perf_counter(), time.process_time()
    _threads(num_cpus)
    torch.manual_seed(job.params.seed)
    model = MEAN(job.n_classes)
    xs, ys = load(job.spot)
    spot_losses = train_spotting(model, xs, ys, job.params)
    n_spot, n_pos = len(ys), int((ys > 0).sum())
    del xs, ys
    xr, yr = load(job.rec)
    rec_losses = train_recognition(model, xr, yr, job.params)
    n_rec = len(yr)
    del xr, yr
    stats: dict[str, Any] = {"fold": job.fold, "heldout_subjects": job.heldout_subjects, "n_spot": n_spot,
                             "n_spot_pos": n_pos, "n_rec": n_rec,
                             "spot_loss": spot_losses[-1] if spot_losses else None,
                             "rec_loss": rec_losses[-1] if rec_losses else None}
    if job.val_spot:
        xv, yv = load(job.val_spot)
        s, _ = predict(model, xv)
        stats.update(val_spot_mse=float(np.mean((s - yv) ** 2)), val_spot_acc=float(np.mean((s > 0.5) == (yv > 0))),
                     val_n_spot=len(yv))
    if job.val_rec:
        xv, yv = load(job.val_rec)
        _, p = predict(model, xv)
        stats.update(val_rec_acc=float(np.mean(p.argmax(1) == yv)), val_n_rec=len(yv))
    # CPU seconds show the work independently of other load on a shared machine
    stats.update(wall_s=round(time.perf_counter() - t0, 2), cpu_s=round(time.process_time() - c0, 2))
    return {"fold": job.fold, "weights": state_arrays(model.cpu()), "stats": stats}


def train_folds(jobs: list[FoldJob], load: Loader, num_cpus: float = 1.0, num_gpus: float | None = None,
                on_done: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Every MEAN fold as a Ray task; results in job order (see models.ray_tasks.map_tasks)."""
    return map_tasks(run_fold, [(job, load, num_cpus) for job in jobs], num_cpus, num_gpus, on_done)


def score_shard(model: MEAN, path: str, read: Reader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frames, spotting scores, class probabilities) of one feature shard, streamed batch by batch."""
    frames, scores, probs = [], [], []
    for fr, x in read(path):
        s, p = predict(model, x)
        frames.append(fr)
        scores.append(s)
        probs.append(p)
    if not frames:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, model.n_classes), np.float32)
    return np.concatenate(frames), np.concatenate(scores), np.concatenate(probs)
