"""Per-frame features from a flow field: MEAN's 3x42x42 input and landmark-region flow means (ROI series)."""

from __future__ import annotations

import cv2
import numpy as np

from storage.schemas import ROI_REGIONS
from tasks.boxes import clip_boxes
from tasks.optical_flow import remove_head_motion, strain

ROI_MARGIN = 12       # MEAN's margin around its two landmark ROIs (pixels of the 128x128 face)
ROI_W, ROI_H = 42, 21
# Column order of a ROI vector (the roi_series table's value columns).
ROI_COLUMNS = tuple(f"{r}_{c}" for r in ROI_REGIONS for c in ("u", "v", "mag"))


def mean_boxes(landmarks: np.ndarray, h: int = 128, w: int = 128) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """MEAN's two ROIs (x0, y0, x1, y1): eyes-and-brows band (x p17..p26, y min(p19, p24)..max(p41, p46))
    and mouth (x p60..p64, y p50..p57), 12 px margins, clipped."""
    p, m = landmarks, ROI_MARGIN
    raw = np.array([[p[17, 0] - m, min(p[19, 1], p[24, 1]) - m, p[26, 0] + m, max(p[41, 1], p[46, 1]) + m],
                    [p[60, 0] - m, p[50, 1] - m, p[64, 0] + m, p[57, 1] + m]], np.float64)
    eyes, mouth = (tuple(int(v) for v in b) for b in clip_boxes(raw, h, w))
    return eyes, mouth


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
_ORDER = list(_POINT_REGIONS) + ["cheek_l", "cheek_r", "chin"]
_ROW = np.array([_ORDER.index(r) for r in ROI_REGIONS])  # ROI_REGIONS order -> row of the raw box array


def region_box_array(landmarks: np.ndarray, h: int = 128, w: int = 128) -> np.ndarray:
    """(len(ROI_REGIONS), 4) int pixel boxes x0, y0, x1, y1 (end exclusive) from 68 aligned landmarks."""
    p = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)
    q = p[_IDX]
    raw = np.empty((len(_ORDER), 4))
    raw[:9, :2] = q.min(1) - _MARGIN
    raw[:9, 2:] = q.max(1) + _MARGIN
    raw[9] = (p[35, 0] + 2, max(p[46, 1], p[47, 1]) + 3, p[45, 0], p[54, 1])
    raw[10] = (p[36, 0], max(p[40, 1], p[41, 1]) + 3, p[31, 0] - 2, p[48, 1])
    raw[11] = (p[7, 0], p[57, 1] + 3, p[9, 0], p[8, 1])
    return clip_boxes(raw[_ROW], h, w)


def region_boxes(landmarks: np.ndarray, h: int = 128, w: int = 128) -> dict[str, tuple[int, int, int, int]]:
    """Pixel boxes (x0, y0, x1, y1) of the ROI_REGIONS by name (see storage.schemas)."""
    return {name: tuple(int(v) for v in b) for name, b in zip(ROI_REGIONS, region_box_array(landmarks, h, w))}


def frame_features(flow: np.ndarray, landmarks: np.ndarray, head_motion: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """MEAN's input (3, 42, 42) float32 and the ROI vector (ROI_COLUMNS order) of one flow field.

    MEAN's input: u, v and strain, each min-max scaled over the face, eyes band stacked over the mouth.
    ROI vector: mean u, v and magnitude per region. head_motion=True first subtracts the nose-bridge mean
    flow (MEAN's input is unchanged by it: min-max scaling cancels a constant shift).
    """
    h, w = flow.shape[:2]
    lm = np.asarray(landmarks, np.float64).reshape(68, 2)
    if head_motion:
        flow = remove_head_motion(flow, lm)
    u, v = cv2.split(np.asarray(flow, np.float32))
    e = strain(u, v)
    mi = np.empty((3, 2 * ROI_H, ROI_W), np.float32)
    boxes = mean_boxes(lm, h, w)
    for c, plane in enumerate((u, v, e)):
        lo, hi = cv2.minMaxLoc(plane)[:2]
        for r, (x0, y0, x1, y1) in enumerate(boxes):
            mi[c, r * ROI_H:(r + 1) * ROI_H] = cv2.resize(plane[y0:y1, x0:x1], (ROI_W, ROI_H),
                                                          interpolation=cv2.INTER_LINEAR)
        # Scaling after the resize equals scaling before it (the resize is linear) and touches fewer pixels.
        if hi - lo < 1e-12:
            mi[c] = 0.0
        else:
            mi[c] -= lo
            mi[c] *= 1.0 / (hi - lo)
    np.clip(mi, 0.0, 1.0, out=mi)  # rounding may step just past 1
    b = region_box_array(lm, h, w)
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x1 - x0) * (y1 - y0)
    roi = np.empty((len(b), 3))
    for c, plane in enumerate((u, v, cv2.magnitude(u, v))):
        sat = cv2.integral(plane, sdepth=cv2.CV_64F)  # summed-area table: each box sum is O(1)
        roi[:, c] = (sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0]) / area
    return mi, roi.ravel()
