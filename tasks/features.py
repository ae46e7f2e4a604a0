"""Per-frame features from a flow field: MEAN's 3x42x42 input and landmark-region flow means (ROI series)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from storage.schemas import ROI_REGIONS

ROI_MARGIN = 12       # MEAN's margin around its two landmark ROIs (pixels of the 128x128 face)
ROI_W, ROI_H = 42, 21


def _clip_box(x0: float, y0: float, x1: float, y1: float, h: int, w: int) -> tuple[int, int, int, int]:
    a = min(max(math.floor(x0), 0), w - 1)
    b = min(max(math.floor(y0), 0), h - 1)
    c = min(max(math.ceil(x1) + 1, a + 1), w)
    d = min(max(math.ceil(y1) + 1, b + 1), h)
    return a, b, c, d


def mean_boxes(landmarks: np.ndarray, h: int = 128, w: int = 128) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """MEAN's two ROIs (x0, y0, x1, y1): eyes-and-brows band (x p17..p26, y min(p19, p24)..max(p41, p46))
    and mouth (x p60..p64, y p50..p57), 12 px margins, clipped."""
    p, m = landmarks, ROI_MARGIN
    eyes = _clip_box(p[17, 0] - m, min(p[19, 1], p[24, 1]) - m, p[26, 0] + m, max(p[41, 1], p[46, 1]) + m, h, w)
    mouth = _clip_box(p[60, 0] - m, p[50, 1] - m, p[64, 0] + m, p[57, 1] + m, h, w)
    return eyes, mouth


def minmax(plane: np.ndarray) -> np.ndarray:
    """Scale a plane to [0, 1] over its own range (all zeros when it is constant)."""
    lo, hi = float(plane.min()), float(plane.max())
    if hi - lo < 1e-12:
        return np.zeros_like(plane, dtype=np.float32)
    return ((plane - lo) / (hi - lo)).astype(np.float32)


def mean_input(flow: np.ndarray, strain: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """MEAN's input (3, 42, 42) float32: u, v, strain, each min-max scaled over the face, eyes band over mouth."""
    h, w = flow.shape[:2]
    eyes, mouth = mean_boxes(landmarks, h, w)
    out = np.empty((3, 2 * ROI_H, ROI_W), np.float32)
    for c, plane in enumerate((flow[..., 0], flow[..., 1], strain)):
        s = minmax(plane)
        for r, (x0, y0, x1, y1) in enumerate((eyes, mouth)):
            out[c, r * ROI_H:(r + 1) * ROI_H] = cv2.resize(s[y0:y1, x0:x1], (ROI_W, ROI_H),
                                                           interpolation=cv2.INTER_LINEAR)
    return out


# Regions that are a box around some landmarks (margin in pixels); the cheeks and chin are built below.
_POINT_REGIONS = {
    "brow_l": ([22, 23, 24, 25, 26], 3), "brow_r": ([17, 18, 19, 20, 21], 3),
    "eye_l": ([42, 43, 44, 45, 46, 47], 3), "eye_r": ([36, 37, 38, 39, 40, 41], 3),
    "nose": ([30, 31, 32, 33, 34, 35], 2),
    "mouth_corner_l": ([53, 54, 55, 64], 3), "mouth_corner_r": ([48, 49, 59, 60], 3),
    "upper_lip": ([50, 51, 52, 61, 62, 63], 2), "lower_lip": ([56, 57, 58, 65, 66, 67], 2),
}
_IDX = np.array([(idx * 6)[:6] for idx, _ in _POINT_REGIONS.values()])  # padded by repetition
_MARGIN = np.array([m for _, m in _POINT_REGIONS.values()], dtype=np.float64)[:, None]


def region_boxes(landmarks: np.ndarray, h: int = 128, w: int = 128) -> dict[str, tuple[int, int, int, int]]:
    """Pixel boxes (x0, y0, x1, y1) of the ROI_REGIONS from 68 aligned landmarks (see storage.schemas)."""
    p = np.asarray(landmarks, dtype=np.float64)
    q = p[_IDX]
    lo, hi = (q.min(1) - _MARGIN).tolist(), (q.max(1) + _MARGIN).tolist()
    raw = {name: (a[0], a[1], b[0], b[1]) for name, a, b in zip(_POINT_REGIONS, lo, hi)}
    t = p.tolist()
    raw["cheek_l"] = (t[35][0] + 2, max(t[46][1], t[47][1]) + 3, t[45][0], t[54][1])
    raw["cheek_r"] = (t[36][0], max(t[40][1], t[41][1]) + 3, t[31][0] - 2, t[48][1])
    raw["chin"] = (t[7][0], t[57][1] + 3, t[9][0], t[8][1])
    return {name: _clip_box(*raw[name], h, w) for name in ROI_REGIONS}


def roi_means(flow: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Mean u, v and magnitude per region: {'brow_l_u': ..., 'brow_l_v': ..., 'brow_l_mag': ..., ...}."""
    u, v = np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1])
    # Summed-area tables make every box mean O(1).
    sats = [cv2.integral(p, sdepth=cv2.CV_64F) for p in (u, v, cv2.magnitude(u, v))]
    out = {}
    for name, (x0, y0, x1, y1) in region_boxes(landmarks, *flow.shape[:2]).items():
        area = (x1 - x0) * (y1 - y0)
        for c, sat in zip(("u", "v", "mag"), sats):
            out[f"{name}_{c}"] = float(sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]) / area
    return out
