"""MEAN (PROTOCOL section 4) as a spotter kind: per-frame flow images, scored shard by shard on Ray actors.

The network and its training live in models/mean.py, the Ray work in models/mean_actors.py; this module holds
the settings and the registry entry (no torch import, so listing kinds stays cheap).
"""

from __future__ import annotations

import dataclasses

from models.spotters.base import Spotter


@dataclasses.dataclass
class MeanTrainParams:
    """Optimisation and sampling settings of one MEAN training (reference values by default)."""

    epochs_spot: int = 10
    epochs_rec: int = 100
    batch_size: int = 32
    lr: float = 5e-4
    neg_ratio: float = 5.0          # random negatives per positive spotting sample, per fold
    seed: int = 0
    device: str = ""                # '' = cuda when available, else cpu


SPOTTER = Spotter(kind="mean", params=MeanTrainParams, input_table="features",
                  description="MEAN: three-stream CNN over frame i -> i+k flow images (MEGC 2025 STR baseline)",
                  module="models.mean_actors")
