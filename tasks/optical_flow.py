"""Dense optical flow between aligned faces (DIS, Farneback, TV-L1), optical strain, head-motion removal."""

from __future__ import annotations

import functools

import cv2
import numpy as np

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


def strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude sqrt(u_x^2 + v_y^2 + 0.5 (u_y + v_x)^2) by central differences."""
    u, v = flow[..., 0], flow[..., 1]
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    return np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def nose_box(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixel box around the nose-bridge landmarks, clipped to the image."""
    p = landmarks[NOSE_BRIDGE]
    h, w = shape
    x0 = min(max(int(np.floor(p[:, 0].min())) - NOSE_MARGIN, 0), w - 1)
    x1 = min(max(int(np.ceil(p[:, 0].max())) + NOSE_MARGIN + 1, x0 + 1), w)
    y0 = min(max(int(np.floor(p[:, 1].min())) - NOSE_MARGIN, 0), h - 1)
    y1 = min(max(int(np.ceil(p[:, 1].max())) + 1, y0 + 1), h)
    return x0, y0, x1, y1


def remove_head_motion(flow: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Flow minus the mean flow of the nose-bridge region (landmarks (68, 2) in the flow's pixel frame)."""
    x0, y0, x1, y1 = nose_box(np.asarray(landmarks, np.float64).reshape(68, 2), flow.shape[:2])
    return flow - flow[y0:y1, x0:x1].reshape(-1, 2).mean(0)
