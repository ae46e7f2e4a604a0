"""Post-processing of per-frame MEAN outputs into ME intervals: smoothing, threshold, peaks, emotion.
(The ROI-series spotters' decoding, with its threshold chosen on training videos, is models/spotters/decode.py.)

Two methods share the steps: "reference" (PROTOCOL section 4: T = mean + p (max - mean), interval
[peak - k', peak + k']) and "megc" (robust per-video threshold median + z * MAD with an optional absolute
floor, an optional shift of the interval centre, and non-maximum suppression of overlapping intervals).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.signal import find_peaks

from models.spotters.decode import iou


@dataclasses.dataclass
class PostConfig:
    """Every constant of spotting post-processing."""

    method: str = "reference"       # reference | megc
    p: float = 0.55                 # reference threshold: mean + p (max - mean)
    smooth_factor: float = 2.0      # box filter width = smooth_factor * k'
    distance_factor: float = 1.0    # find_peaks distance = distance_factor * k'
    half_width_factor: float = 1.0  # interval = [peak - h, peak + h], h = half_width_factor * k'
    robust_z: float = 4.0           # megc threshold: median + robust_z * 1.4826 * MAD ...
    min_score: float = float("-inf")  # ... and at least this absolute score (off by default)
    shift_factor: float = 0.0       # megc: interval centre = peak + shift_factor * k' (0.5 scored lower, bench)
    nms_iou: float = 0.3            # megc: drop an interval overlapping a higher one by this IoU or more


def smooth(scores: np.ndarray, width: int) -> np.ndarray:
    """Reference box filter: s[x] = mean(scores[x - w//2 : x - w//2 + w]) where the window fits; edges kept raw."""
    scores = np.asarray(scores, dtype=np.float64)
    n, w = len(scores), max(1, int(width))
    out = scores.copy()
    h = w // 2
    if n < w:
        return out
    c = np.concatenate([[0.0], np.cumsum(scores)])
    starts = np.arange(0, n - w)  # the reference stops one window short of the end
    out[starts + h] = (c[starts + w] - c[starts]) / w
    return out


def threshold(smoothed: np.ndarray, cfg: PostConfig) -> float:
    """The peak height threshold of one video."""
    s = np.asarray(smoothed, dtype=np.float64)
    if cfg.method == "reference":
        m = float(s.mean())
        return m + cfg.p * (float(s.max()) - m)
    if cfg.method == "megc":
        med = float(np.median(s))
        mad = float(np.median(np.abs(s - med)))
        return max(med + cfg.robust_z * 1.4826 * mad, cfg.min_score)
    raise ValueError(f"unknown post-processing method {cfg.method!r} (reference or megc)")


def spot_intervals(scores: np.ndarray, kp: int, cfg: PostConfig, n_frames: int | None = None) -> list[dict]:
    """Intervals {onset, offset, peak, score} from a per-frame score vector (frame i = index i)."""
    scores = np.asarray(scores, dtype=np.float64)
    n = int(n_frames if n_frames is not None else len(scores))
    if len(scores) == 0 or n <= 0:
        return []
    s = smooth(scores, int(round(cfg.smooth_factor * kp)))
    t = threshold(s, cfg)
    peaks, props = find_peaks(s, height=t, distance=max(1, int(round(cfg.distance_factor * kp))))
    h = int(round(cfg.half_width_factor * kp))
    shift = int(round(cfg.shift_factor * kp)) if cfg.method == "megc" else 0
    found = []
    for pk, ht in zip(peaks.tolist(), props["peak_heights"].tolist()):
        c = pk + shift
        found.append({"onset": max(0, c - h), "offset": min(n - 1, c + h), "peak": int(pk), "score": float(ht)})
    if cfg.method == "megc" and cfg.nms_iou < 1.0:
        kept: list[dict] = []
        for iv in sorted(found, key=lambda d: -d["score"]):
            if all(iou((iv["onset"], iv["offset"]), (k["onset"], k["offset"])) < cfg.nms_iou for k in kept):
                kept.append(iv)
        found = sorted(kept, key=lambda d: d["peak"])
    return [iv for iv in found if iv["onset"] <= iv["offset"]]


def majority_class(probs: np.ndarray, peak: int, kp: int) -> int:
    """Most frequent per-frame argmax over [peak - k', peak) (ties: lowest class index); the peak alone if empty."""
    probs = np.asarray(probs)
    lo, hi = max(0, peak - kp), min(len(probs), peak)
    window = probs[lo:hi] if hi > lo else probs[min(peak, len(probs) - 1):][:1]
    votes = np.bincount(window.argmax(axis=1), minlength=probs.shape[1])
    return int(votes.argmax())


def dense(frames: np.ndarray, values: np.ndarray, n: int, fill: float = 0.0) -> np.ndarray:
    """Scatter per-frame values onto 0..n-1 (frames without a value get `fill`)."""
    values = np.asarray(values)
    out = np.full((n, *values.shape[1:]), fill, dtype=np.float64)
    frames = np.asarray(frames, dtype=np.int64)
    ok = (frames >= 0) & (frames < n)
    out[frames[ok]] = values[ok]
    return out


def postprocess_video(frames: np.ndarray, scores: np.ndarray, probs: np.ndarray, n_frames: int, kp: int,
                      classes: Sequence[str], cfg: PostConfig) -> list[dict]:
    """Predicted intervals {onset, offset, emotion, score} of one video from its per-frame outputs."""
    if len(frames) == 0:
        return []
    s = dense(frames, scores, n_frames)
    pr = dense(frames, probs, n_frames, fill=1.0 / len(classes))
    out = []
    for iv in spot_intervals(s, kp, cfg, n_frames):
        cls = majority_class(pr, iv["peak"], kp)
        out.append({"onset": iv["onset"], "offset": iv["offset"], "emotion": classes[cls], "score": iv["score"]})
    return out
