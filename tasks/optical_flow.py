"""Dense optical flow between aligned faces (DIS, Farneback, TV-L1), optical strain, head-motion removal."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from tasks.boxes import clip_boxes

METHODS = ("dis", "farneback", "tvl1")
NOSE_BRIDGE = [27, 28, 29, 30]  # dlib points on the nose bridge: they move with the head, not with expressions
NOSE_MARGIN = 4


@functools.cache
def _engine(method: str):
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if method == "tvl1":
        return cv2.optflow.DualTVL1OpticalFlow_create()
    raise ValueError(method)


def compute_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow (H, W, 2) float32 from grayscale image a to b; method is dis, farneback or tvl1."""
    if method not in METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {METHODS}")
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return _engine(method).calc(a, b, None)


_CENTRAL = (np.array([[-0.5], [0.0], [0.5]], np.float32), np.array([[-0.5, 0.0, 0.5]], np.float32))


def _diff(a: np.ndarray, axis: int) -> np.ndarray:
    """Central differences along x (axis 1) or y (axis 0), one-sided at the edges (as numpy.gradient)."""
    g = cv2.filter2D(a, cv2.CV_32F, _CENTRAL[axis], borderType=cv2.BORDER_REPLICATE)
    if axis:
        g[:, 0], g[:, -1] = a[:, 1] - a[:, 0], a[:, -1] - a[:, -2]
    else:
        g[0], g[-1] = a[1] - a[0], a[-1] - a[-2]
    return g


def strain(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Optical strain magnitude sqrt(u_x^2 + v_y^2 + 0.5 (u_y + v_x)^2) of flow planes u, v (float32)."""
    u_x, v_y = _diff(u, 1), _diff(v, 0)
    shear = _diff(u, 0) + _diff(v, 1)
    return cv2.sqrt(u_x * u_x + v_y * v_y + 0.5 * shear * shear)


def nose_box(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixel box around the nose-bridge landmarks (the head-motion reference), clipped."""
    p = np.asarray(landmarks, np.float64)[NOSE_BRIDGE]
    raw = [p[:, 0].min() - NOSE_MARGIN, p[:, 1].min() - NOSE_MARGIN, p[:, 0].max() + NOSE_MARGIN, p[:, 1].max()]
    x0, y0, x1, y1 = (int(v) for v in clip_boxes(np.array(raw), *shape)[0])
    return x0, y0, x1, y1


def remove_head_motion(flow: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Flow minus the mean flow of the nose-bridge region (landmarks (68, 2) in the flow's pixel frame)."""
    x0, y0, x1, y1 = nose_box(np.asarray(landmarks, np.float64).reshape(68, 2), flow.shape[:2])
    # Accumulate in float64: a float32 sum down the strided axis drifts by ~1e-5 over a few hundred pixels.
    shift = flow[y0:y1, x0:x1].reshape(-1, 2).mean(0, dtype=np.float64)
    return flow - shift.astype(flow.dtype)
