"""MEAN pseudo-labels: k', per-frame spotting targets, balanced sampling, recognition frames."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def k_prime(intervals: Sequence[tuple[int, int]]) -> int:
    """k' = int((N + 1) / 2), N = mean of (offset - onset) over the given ME intervals (the reference's N)."""
    if not intervals:
        raise ValueError("k' needs at least one ME interval")
    n = float(np.mean([off - on for on, off in intervals]))
    return max(1, int((n + 1) / 2))


def frame_labels(frames: np.ndarray, intervals: Sequence[tuple[int, int]], kp: int) -> np.ndarray:
    """1.0 where window [i, i+k'-1] overlaps any interval [onset, offset] (inclusive), else 0.0."""
    frames = np.asarray(frames, dtype=np.int64)
    out = np.zeros(len(frames), dtype=np.float32)
    for on, off in intervals:
        out[(frames <= off) & (frames + kp - 1 >= on)] = 1.0
    return out


def balanced_sample(labels: np.ndarray, neg_ratio: float = 5.0, seed: int = 0) -> np.ndarray:
    """Indices of all positives plus neg_ratio times as many random negatives (seeded), sorted."""
    labels = np.asarray(labels)
    pos = np.flatnonzero(labels > 0)
    neg = np.flatnonzero(labels <= 0)
    n_neg = min(len(neg), int(round(neg_ratio * len(pos))))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(neg, size=n_neg, replace=False) if n_neg else np.zeros(0, np.int64)
    return np.sort(np.concatenate([pos, chosen]).astype(np.int64))


def recognition_frames(onset: int, apex: int | None, offset: int) -> list[int]:
    """Frames whose flow sample stands for the ME's onset-to-apex motion: [onset, apex), or onset alone.

    With apex missing, the midpoint of [onset, offset] stands in for it.
    """
    if apex is None or apex < onset:
        apex = onset + (offset - onset) // 2
    return list(range(onset, apex)) if apex > onset else [onset]
