"""Typed settings of the train and spot stages, shared by the flows, the CLI and the deployments.

They live below flows/ so that deployment/ can type-check a schedule's settings at `megc deploy` without
importing the flows. Build them with storage.config.load_config (defaults < YAML < --set < flags).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from models.spotters import get_spotter
from storage.errors import InputError
from storage.vocabulary import STR_CLASSES
from models.spotters.decode import PeakPostConfig
from tasks.spot_post import PostConfig

SPLITS = ("loso", "holdout")


@dataclasses.dataclass
class TrainConfig:
    """Settings of one spotter training (`params` holds the kind's own settings, e.g. params.epochs_spot)."""

    kind: str = "mean"              # a registered spotter kind (models.spotters)
    name: str = ""                  # registry name; default <kind>-<dataset>
    split: str = "loso"             # loso | holdout
    holdout_subjects: list[str] = dataclasses.field(default_factory=list)  # holdout: default last 25% sorted
    holdout_fraction: float = 0.25
    classes: list[str] = dataclasses.field(default_factory=lambda: list(STR_CLASSES))
    train_final: bool = True        # LOSO: also train one model on every subject
    validate: bool = True           # per-fold figures on the held-out subjects
    evaluate: bool = True           # then spot the dataset cross-validated and score it
    ray_address: str = ""
    num_cpus: float = 1.0
    num_gpus: float = -1.0          # -1: one GPU per fold when the cluster has GPUs, else none
    params: Any = None              # the kind's settings dataclass (None: its defaults)
    post: PeakPostConfig = dataclasses.field(default_factory=PeakPostConfig)  # ROI-series kinds' decoding

    def __post_init__(self) -> None:
        cls = get_spotter(self.kind).params
        if isinstance(self.params, dict):
            from storage.config import apply_overrides

            self.params = apply_overrides(cls(), self.params, f"params of {self.kind}")
        elif not isinstance(self.params, cls):
            self.params = cls()  # none given, or another kind's settings after `kind` changed

    def check(self) -> TrainConfig:
        """Raise InputError on impossible settings."""
        if self.split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS}, not {self.split!r}", file="config")
        if not self.classes:
            raise InputError("classes must name at least one class", file="config")
        if not 0 < self.holdout_fraction < 1:
            raise InputError(f"holdout_fraction must be between 0 and 1, got {self.holdout_fraction}", file="config")
        return self


@dataclasses.dataclass
class SpotConfig:
    """Settings of one spotting run."""

    ray_address: str = ""
    n_actors: int = 2
    num_cpus: float = 1.0
    num_gpus: float = -1.0          # -1: one GPU shared by the actors when the cluster has one
    cross_validated: bool = True    # LOSO models: each video by the fold that held out its subject
    only_labelled: bool = False     # the paper scored only videos with at least one ME
    subjects: list[str] = dataclasses.field(default_factory=list)  # only these subjects' videos ([] = all)
    scores_from: str = ""           # reuse the frame_scores of this earlier run (post-processing only)
    recognizer: str = ""            # a registered model whose class probabilities give the emotions (e.g. a MEAN
                                    # for flow-peaks, which has no recognition of its own)
    score: bool = True              # score the predictions against the dataset's intervals
    post: PostConfig = dataclasses.field(default_factory=PostConfig)  # MEAN's post-processing

    def check(self) -> SpotConfig:
        """Raise InputError on impossible settings."""
        if self.n_actors < 1:
            raise InputError(f"n_actors must be >= 1, got {self.n_actors}", file="config")
        return self


def split_folds(subjects: list[str], cfg: TrainConfig) -> list[tuple[str, list[str]]]:
    """(fold name, held-out subjects) per fold: one per subject (loso), or one holdout fold."""
    if cfg.split == "loso":
        if len(subjects) < 2:
            raise InputError(f"LOSO needs at least 2 subjects with features; found {subjects}")
        return [(f"fold{i:02d}", [s]) for i, s in enumerate(subjects)]
    if cfg.split != "holdout":
        raise InputError(f"split must be one of {SPLITS}, not {cfg.split!r}")
    held = list(cfg.holdout_subjects) or subjects[len(subjects) - max(1, math.ceil(cfg.holdout_fraction
                                                                                  * len(subjects))):]
    unknown = sorted(set(held) - set(subjects))
    if unknown:
        raise InputError(f"holdout subjects {unknown} have no features; subjects: {subjects}")
    if len(held) >= len(subjects):
        raise InputError("holdout leaves no training subject")
    return [("holdout", held)]


@dataclasses.dataclass
class CompareConfig:
    """Settings of one spotter comparison: every kind trained and scored cross-validated on the same folds."""

    models: list[str] = dataclasses.field(default_factory=list)  # spotter kinds ([] = every registered kind)
    split: str = "loso"
    holdout_subjects: list[str] = dataclasses.field(default_factory=list)
    classes: list[str] = dataclasses.field(default_factory=lambda: list(STR_CLASSES))
    params: dict[str, dict] = dataclasses.field(default_factory=dict)  # per kind, e.g. {"mean": {"epochs_spot": 2}}
    ray_address: str = ""
    num_cpus: float = 1.0
    num_gpus: float = -1.0

    def check(self) -> CompareConfig:
        """Raise InputError on unknown kinds or settings (before any training starts)."""
        for kind in self.kinds():
            self.train_config(kind)
        unknown = sorted(set(self.params) - set(self.kinds()))
        if unknown:
            raise InputError(f"params given for kinds {unknown} that are not compared ({self.kinds()})",
                             file="config")
        return self

    def kinds(self) -> list[str]:
        """The kinds compared, in order."""
        from models.spotters import spotters

        return list(self.models) or sorted(spotters())

    def train_config(self, kind: str) -> TrainConfig:
        """The training settings of one compared kind (same split for all; no final model)."""
        return TrainConfig(kind=kind, split=self.split, holdout_subjects=list(self.holdout_subjects),
                           classes=list(self.classes), train_final=False, evaluate=True,
                           ray_address=self.ray_address, num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                           params=dict(self.params.get(kind, {}))).check()
