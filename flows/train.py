"""Prefect flow `train`: trains a spotter of any registered kind, then (evaluate) spots its dataset
cross-validated with it and scores the predictions. MEAN trains from feature shards (flows/train_mean.py),
the ROI-series kinds from whole videos' roi_series (flows/train_series.py)."""

from __future__ import annotations

from typing import Any

from flows.runtime import prefect_defaults

prefect_defaults()

from prefect import flow  # noqa: E402

from models.spotters import get_spotter  # noqa: E402
from storage.config import load_config  # noqa: E402
from storage.runs import new_run_id  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks.stage_config import SpotConfig, TrainConfig  # noqa: E402


@flow(name="train", validate_parameters=False)
def train(dataset: str, home: str, cfg: TrainConfig) -> dict:
    """Train and register a spotter; with cfg.evaluate, spot the held-out subjects with it and score them."""
    from flows.spot import spot

    if get_spotter(cfg.kind).input_table == "features":
        from flows.train_mean import train_mean as trainer
    else:
        from flows.train_series import train_series as trainer
    out = trainer(dataset, home, cfg)
    if cfg.evaluate:
        held = out["heldout_subjects"] if cfg.split == "holdout" else []
        spot_cfg = SpotConfig(ray_address=cfg.ray_address, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
                              subjects=held)
        out["spot"] = spot(dataset, out["model"], home, new_run_id("spot"), spot_cfg)
    return out


def train_flow(dataset: str, home: str | None = None, cfg: TrainConfig | None = None, **settings: Any) -> dict:
    """Run the train flow with `cfg` and/or TrainConfig `settings` (e.g. kind='roi-tcn', params={...})."""
    start = cfg or TrainConfig(kind=settings.pop("kind", "mean"))
    return train(dataset, Workspace(home).ensure().home, load_config(start, None, settings))
