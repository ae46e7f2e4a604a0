"""Ray work for MEAN: one remote task per training fold, and a pool of scoring actors over feature shards.

Data access is passed in (`load` / `read` callables from tasks.mean_data) so that this module depends on
models and storage only; Ray ships those functions to the workers by reference.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from models.mean import MEAN, MeanTrainParams, from_state_arrays, predict, state_arrays, train_recognition, \
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


def gpu_request(num_gpus: float | None) -> float:
    """GPUs to ask Ray for: the given fraction, or (None / negative) 1 when the cluster has a GPU, else 0."""
    import ray

    if num_gpus is not None and num_gpus >= 0:
        return float(num_gpus)
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


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
    """Run every fold as a Ray task (GPU requested only where the cluster has one); results in job order.
    `on_done` is called as each fold finishes."""
    import ray

    remote = ray.remote(run_fold).options(num_cpus=num_cpus, num_gpus=gpu_request(num_gpus), max_retries=0)
    refs = [remote.remote(job, load, num_cpus) for job in jobs]
    waiting = list(refs)
    while waiting:
        finished, waiting = ray.wait(waiting, num_returns=1)
        ray.get(finished)  # a failed fold raises here, as soon as it fails
        if on_done:
            on_done()
    return ray.get(refs)


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


class Scorer:
    """Holds a registered model's weights (final and per-fold), loaded once, and scores shards."""

    def __init__(self, home: str, name: str, folds: list[str], read: Reader, num_cpus: float = 1.0,
                 device: str | None = None):
        from models.registry import load_card, load_weights
        from storage.workspace import Workspace

        _threads(num_cpus)
        ws = Workspace(home)
        card = load_card(ws, name)
        n = len(card["classes"])
        self.read = read
        self.models = {"": from_state_arrays(load_weights(ws, name), n, device)}
        for f in folds:
            self.models[f] = from_state_arrays(load_weights(ws, name, f), n, device)

    def score(self, item: dict) -> dict:
        """item {dataset, video, fold ('' = final model), path} -> item + frames, scores, probs."""
        fr, s, p = score_shard(self.models[item.get("fold") or ""], item["path"], self.read)
        return {**item, "frames": fr, "scores": s, "probs": p}


def score_items(items: list[dict], home: str, name: str, read: Reader, n_actors: int = 2, num_cpus: float = 1.0,
                num_gpus: float | None = None) -> Iterator[dict]:
    """Score work items on a pool of Scorer actors; yields results as they finish (any order)."""
    import ray
    from ray.util import ActorPool

    if not items:
        return
    folds = sorted({it["fold"] for it in items if it.get("fold")})
    gpus = gpu_request(num_gpus)
    per_actor_gpu = gpus / max(1, n_actors) if gpus else 0.0
    cls = ray.remote(Scorer).options(num_cpus=num_cpus, num_gpus=per_actor_gpu, max_restarts=0)
    actors = [cls.remote(home, name, folds, read, num_cpus) for _ in range(max(1, min(n_actors, len(items))))]
    try:
        yield from ActorPool(actors).map_unordered(lambda a, it: a.score.remote(it), items)
    finally:
        for a in actors:
            ray.kill(a)
