"""Decoding the ROI-series spotters' per-frame scores into intervals, and choosing their threshold.

Every constant is in seconds (PeakPostConfig), so a video's frame rate does not change the result: candidates
are peaks of the smoothed micro score above the threshold; onset and offset come from the boundary heads when
the spotter has them, else from the half-height edges; peaks where the macro score is high are rejected; the
length is held to the micro prior; overlapping intervals are suppressed (NMS). The threshold is the one that
maximises micro spot F1 (IoU >= 0.5, one-to-one) over the training videos it is given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy.signal import find_peaks


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """IoU of two inclusive frame intervals (onset, offset)."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / ((a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter)


@dataclasses.dataclass
class PeakPostConfig:
    """Every constant that turns per-frame spotter scores into micro intervals (times in seconds)."""

    smooth_s: float = 0.0           # Gaussian sigma applied to the micro score before peak finding (0 = none)
    peak_distance_s: float = 0.3    # minimum time between two peaks
    micro_min_s: float = 0.2        # length prior: an interval is widened to at least this ...
    micro_max_s: float = 0.5        # ... and cut to at most this (synthetic micros last 0.2-0.5 s)
    edge_frac: float = 0.5          # without boundary heads: the interval spans where micro >= edge_frac * peak
    boundary_search_s: float = 0.4  # with boundary heads: onset / offset searched this far before / after the peak
    boundary_min: float = 0.05      # ... a boundary head maximum below this falls back to the edge rule
    pad_s: float = 0.0              # added to both ends after the edge / boundary rule (negative shrinks)
    macro_reject: float = 0.5       # a peak where the macro score reaches this is dropped
    nms_iou: float = 0.3            # drop an interval overlapping a higher-scored one by this IoU or more
    grid: int = 60                  # choose_threshold: number of candidate thresholds (quantiles of peak heights)
    min_threshold: float = 0.02     # choose_threshold: thresholds below this are never chosen


def _frames(seconds: float, fps: float) -> int:
    return int(round(seconds * fps))


def _gauss(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    if sigma_frames <= 0.3:
        return x
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma_frames, mode="nearest")


def _edge(score: np.ndarray, peak: int, level: float, step: int, limit: int) -> int:
    """Last frame from `peak` in direction `step` (at most `limit` frames away) whose score stays >= level."""
    i, n = peak, len(score)
    while 0 <= i + step < n and abs(i + step - peak) <= limit and score[i + step] >= level:
        i += step
    return i


def _fit_length(on: int, off: int, peak: int, lo: int, hi: int, n: int) -> tuple[int, int]:
    """Widen (around the interval's centre) or cut (around its centre, keeping the peak) to lo..hi frames."""
    length = off - on + 1
    if length < lo:
        on -= (lo - length) // 2
        off = on + lo - 1
    elif length > hi:
        on = min(max((on + off) // 2 - hi // 2, peak - hi + 1), peak)
        off = on + hi - 1
    if on < 0:
        on, off = 0, min(n - 1, off - on)
    if off > n - 1:
        on, off = max(0, on - (off - n + 1)), n - 1
    return int(on), int(off)


def decode_intervals(scores: dict, fps: float, threshold: float, cfg: PeakPostConfig,
                     classes: Sequence[str]) -> list[dict]:
    """Micro intervals [{onset, offset, peak, score, emotion}] (frames, offset inclusive) from a spotter's scores.

    Peaks of the (smoothed) micro score above `threshold`, at least peak_distance_s apart; a peak where the
    macro score reaches macro_reject is dropped; onset / offset from the boundary heads when the scores have
    them (argmax within boundary_search_s), else where the micro score falls below edge_frac of the peak;
    the length prior micro_min_s..micro_max_s; NMS; emotion = majority argmax of probs over the interval.
    """
    micro = np.asarray(scores["micro"], dtype=np.float64)
    n = len(micro)
    if n == 0:
        return []
    s = _gauss(micro, cfg.smooth_s * fps)
    macro = np.asarray(scores.get("macro", np.zeros(n)), dtype=np.float64)
    onset_h, offset_h = scores.get("onset"), scores.get("offset")
    probs = scores.get("probs")
    peaks, props = find_peaks(s, height=threshold, distance=max(1, _frames(cfg.peak_distance_s, fps)))
    lo, hi = max(1, _frames(cfg.micro_min_s, fps)), max(1, _frames(cfg.micro_max_s, fps))
    search, pad = max(1, _frames(cfg.boundary_search_s, fps)), _frames(cfg.pad_s, fps)
    found = []
    for pk, height in zip(peaks.tolist(), props["peak_heights"].tolist()):
        on = _edge(s, pk, cfg.edge_frac * height, -1, search)
        off = _edge(s, pk, cfg.edge_frac * height, 1, search)
        if onset_h is not None and offset_h is not None:
            a, b = max(0, pk - search), min(n, pk + search + 1)
            left, right = np.asarray(onset_h[a:pk + 1]), np.asarray(offset_h[pk:b])
            if left.size and left.max() >= cfg.boundary_min:
                on = a + int(left.argmax())
            if right.size and right.max() >= cfg.boundary_min:
                off = pk + int(right.argmax())
        if macro[pk] >= cfg.macro_reject:
            continue
        on, off = _fit_length(on - pad, off + pad, pk, lo, hi, n)
        found.append({"onset": on, "offset": off, "peak": int(pk), "score": float(height)})
    kept: list[dict] = []
    for iv in sorted(found, key=lambda d: -d["score"]):
        if all(iou((iv["onset"], iv["offset"]), (k["onset"], k["offset"])) < cfg.nms_iou for k in kept):
            kept.append(iv)
    kept.sort(key=lambda d: d["onset"])
    for iv in kept:
        iv["emotion"] = _emotion(probs, iv["onset"], iv["offset"], classes)
    return kept


def _emotion(probs: np.ndarray | None, on: int, off: int, classes: Sequence[str]) -> str:
    """Majority per-frame argmax of probs over [on, off] (ties: lowest class index)."""
    if probs is None or len(classes) == 0:
        return classes[0] if classes else "others"
    window = np.asarray(probs)[on:off + 1]
    if len(window) == 0:
        return classes[0]
    return classes[int(np.bincount(window.argmax(axis=1), minlength=len(classes)).argmax())]


def match_counts(pred: Sequence[tuple[int, int]], gt: Sequence[tuple[int, int]], min_iou: float = 0.5
                 ) -> tuple[int, int, int]:
    """(TP, FP, FN) of one video, strict protocol: predictions in onset order each take the free GT with the
    highest IoU >= min_iou (ties: earliest GT)."""
    taken = [False] * len(gt)
    tp = 0
    for p in sorted(pred):
        best, best_iou = -1, min_iou
        for j, g in enumerate(gt):
            if not taken[j]:
                v = iou(p, g)
                if v >= best_iou and (best < 0 or v > best_iou):
                    best, best_iou = j, v
        if best >= 0:
            taken[best] = True
            tp += 1
    return tp, len(pred) - tp, len(gt) - tp


def f1_score(tp: int, fp: int, fn: int) -> float:
    """Spot F1 (0 when there is no TP)."""
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def choose_threshold(per_video: Sequence[tuple[dict, float, Sequence[tuple[int, int]]]], cfg: PeakPostConfig,
                     classes: Sequence[str]) -> float:
    """The threshold (from a grid of peak-height quantiles) that maximises strict micro spot F1 over these videos.

    per_video: (scores dict, fps, GT micro intervals) of training videos only. Ties go to the higher threshold
    (fewer false positives). Each video is decoded once at the lowest threshold: raising the threshold only drops
    the intervals scored below it (peak spacing and NMS always keep the higher-scored of two).
    """
    decoded = []
    for scores, fps, gt in per_video:
        ivs = decode_intervals(scores, fps, cfg.min_threshold, cfg, classes)
        gt = [tuple(g) for g in gt]
        # per interval in onset order: its score and its candidate GT rows (IoU >= 0.5), best first
        cands = []
        for d in ivs:
            c = [(iou((d["onset"], d["offset"]), g), j) for j, g in enumerate(gt)]
            cands.append((d["score"], [j for v, j in sorted(c, key=lambda x: (-x[0], x[1])) if v >= 0.5]))
        decoded.append((cands, len(gt)))
    h = np.array([sc for cands, _ in decoded for sc, _ in cands])
    if len(h) == 0:
        return float(max(cfg.min_threshold, 0.5))
    grid = np.unique(np.quantile(h, np.linspace(0.0, 1.0, max(2, cfg.grid))))
    best_t, best_f1 = float(grid[-1]), -1.0
    for t in grid[::-1]:
        tp = fp = fn = 0
        for cands, n_gt in decoded:
            taken: set[int] = set()
            kept = 0
            for sc, js in cands:
                if sc < t:
                    continue
                kept += 1
                j = next((j for j in js if j not in taken), None)
                if j is not None:
                    taken.add(j)
            tp, fp, fn = tp + len(taken), fp + kept - len(taken), fn + n_gt - len(taken)
        f1 = f1_score(tp, fp, fn)
        if f1 > best_f1 + 1e-12:
            best_t, best_f1 = float(t), f1
    return best_t
