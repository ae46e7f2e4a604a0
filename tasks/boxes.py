"""Pixel boxes from landmarks: the one clipper every region, ROI and nose box goes through."""

from __future__ import annotations

import numpy as np


def clip_boxes(raw: np.ndarray, h: int, w: int) -> np.ndarray:
    """Float boxes (n, 4) x0, y0, x1, y1 -> int pixel boxes inside the image, end exclusive, at least 1 px."""
    raw = np.asarray(raw, np.float64).reshape(-1, 4)
    out = np.empty((len(raw), 4), np.int64)
    out[:, 0] = np.clip(np.floor(raw[:, 0]), 0, w - 1)
    out[:, 1] = np.clip(np.floor(raw[:, 1]), 0, h - 1)
    out[:, 2] = np.clip(np.ceil(raw[:, 2]) + 1, out[:, 0] + 1, w)
    out[:, 3] = np.clip(np.ceil(raw[:, 3]) + 1, out[:, 1] + 1, h)
    return out
