"""Spotter registry: every module of this package that defines `SPOTTER` (a models.spotters.base.Spotter) is a
spotter kind, looked up by name.

A spotter turns one video into per-frame scores (micro, optionally macro / onset / offset, class probabilities)
that post-processing decodes into intervals. Two input kinds exist: `features` (MEAN's per-frame 3x42x42 flow
images, scored shard by shard) and `roi_series` (per-region flow over time, scored a whole video at a time).
A `roi_series` kind's module holds its settings dataclass, `fit(train, params, post, classes)` and
`score(weights, video, params, classes, device)` (inputs: models/spotters/series.py). Modules import torch
inside functions, so listing the kinds stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil

from models.spotters.base import INPUT_TABLES, Spotter
from storage.errors import InputError

def spotters() -> dict[str, Spotter]:
    """Every registered spotter kind by name."""
    out: dict[str, Spotter] = {}
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        entry = getattr(importlib.import_module(f"models.spotters.{m.name}"), "SPOTTER", None)
        if isinstance(entry, Spotter):
            if entry.input_table not in INPUT_TABLES:
                raise ValueError(f"spotter {entry.kind!r} reads {entry.input_table!r}; known: {INPUT_TABLES}")
            out[entry.kind] = entry
    return out


def get_spotter(kind: str) -> Spotter:
    """The registered spotter `kind`, else InputError naming the known kinds."""
    known = spotters()
    if kind not in known:
        raise InputError(f"unknown spotter kind {kind!r}; known: {sorted(known)}")
    return known[kind]
