"""A pool of Ray actors that score videos with a registered spotter of any kind.

Each actor loads the model's weights (final and the folds it needs) once. A work item names a feature shard
(`features` kinds, scored batch by batch) or a whole video (`roi_series` kinds); reading it is the `read`
callable passed in (tasks.spot_inputs.read_item), so this module depends on models and storage only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from models.ray_tasks import gpu_request

Reader = Callable[[dict], Any]


class Scorer:
    """Holds one registered spotter (final and per-fold weights) and scores work items with it."""

    def __init__(self, home: str, name: str, folds: list[str], read: Reader, num_cpus: float = 1.0,
                 device: str | None = None):
        from models.registry import load_card, load_weights
        from models.spotters import get_spotter
        from storage.config import load_config
        from storage.workspace import Workspace

        import torch

        torch.set_num_threads(max(1, int(num_cpus)))
        ws = Workspace(home)
        card = load_card(ws, name)
        self.spotter = get_spotter(card.get("kind", "mean"))
        self.classes = list(card["classes"])
        self.read = read
        self.device = device or ""
        self.params = load_config(self.spotter.params, None, card.get("config", {}).get("params", {}))
        weights = {"": load_weights(ws, name)} | {f: load_weights(ws, name, f) for f in folds}
        if self.spotter.input_table == "features":
            from models.mean import from_state_arrays

            self.models = {f: from_state_arrays(w, len(self.classes), device) for f, w in weights.items()}
        else:
            self.models = weights

    def score(self, item: dict) -> dict:
        """item {dataset, video, fold ('' = final model), ...} -> item + frames, scores (micro), probs and,
        for the kinds that have them, macro / onset / offset."""
        model = self.models[item.get("fold") or ""]
        if self.spotter.input_table == "features":
            from models.mean_actors import score_shard

            fr, s, p = score_shard(model, item["path"], lambda path: self.read(item))
            return {**item, "frames": fr, "scores": s, "probs": p}
        video = self.read(item)
        out = self.spotter.impl().score(model, video, self.params, self.classes, self.device or "cpu")
        n = len(out["micro"])
        return {**item, "frames": np.arange(n, dtype=np.int64), "scores": out["micro"], "probs": out["probs"],
                **{k: out[k] for k in ("macro", "onset", "offset") if out.get(k) is not None}}


def score_items(items: list[dict], home: str, name: str, read: Reader, n_actors: int = 2, num_cpus: float = 1.0,
                num_gpus: float | None = None) -> Iterator[dict]:
    """Score work items on a pool of Scorer actors; yields results as they finish (any order). A GPU request is
    split evenly between the actors."""
    import ray
    from ray.util import ActorPool

    if not items:
        return
    folds = sorted({it["fold"] for it in items if it.get("fold")})
    gpus = gpu_request(num_gpus)
    n = max(1, min(n_actors, len(items)))
    cls = ray.remote(Scorer).options(num_cpus=num_cpus, num_gpus=gpus / n if gpus else 0.0, max_restarts=0)
    actors = [cls.remote(home, name, folds, read, num_cpus) for _ in range(n)]
    try:
        yield from ActorPool(actors).map_unordered(lambda a, it: a.score.remote(it), items)
    finally:
        for a in actors:
            ray.kill(a)
