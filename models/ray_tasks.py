"""Running work on Ray: how many GPUs to ask for, and one remote task per job with progress as each ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def gpu_request(num_gpus: float | None) -> float:
    """GPUs to ask Ray for: the given fraction, or (None / negative) 1 when the cluster has a GPU, else 0."""
    import ray

    if num_gpus is not None and num_gpus >= 0:
        return float(num_gpus)
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


def map_tasks(fn: Callable, jobs: Sequence[tuple], num_cpus: float = 1.0, num_gpus: float | None = None,
              on_done: Callable[[], None] | None = None) -> list[Any]:
    """fn(*job) for every job as a Ray task (GPU requested only where the cluster has one); results in job
    order. A failed task raises as soon as it fails; `on_done` is called as each one finishes."""
    import ray

    remote = ray.remote(fn).options(num_cpus=num_cpus, num_gpus=gpu_request(num_gpus), max_retries=0)
    refs = [remote.remote(*job) for job in jobs]
    waiting = list(refs)
    while waiting:
        finished, waiting = ray.wait(waiting, num_returns=1)
        ray.get(finished)
        if on_done:
            on_done()
    return ray.get(refs)
