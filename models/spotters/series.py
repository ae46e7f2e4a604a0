"""One video's ROI flow series in memory (dense per frame) and its labels: the input every spotter takes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from storage.errors import InputError
from storage.schemas import ROI_REGIONS

REGIONS = tuple(ROI_REGIONS)
COMPONENTS = ("u", "v", "mag")
VALUE_COLUMNS = tuple(f"{r}_{c}" for r in REGIONS for c in COMPONENTS)


@dataclass
class VideoSeries:
    """Per-frame ROI flow of one video: row i = flow from frame i to i + k, (u, v, mag) per ROI_REGIONS region."""

    series: np.ndarray  # (n_frames, R, 3) float32, dense 0..n-1
    fps: float
    k: int
    valid: np.ndarray | None = None  # (n,) bool, False where the face was lost or no flow exists

    @property
    def n(self) -> int:
        """Number of frames."""
        return int(self.series.shape[0])

    def mask(self) -> np.ndarray:
        """(n,) bool: True where the frame has a usable flow sample."""
        return np.ones(self.n, bool) if self.valid is None else np.asarray(self.valid, bool)


@dataclass
class Labelled:
    """A video with its ground truth: intervals (onset, offset inclusive, micro|macro, coarse emotion), events."""

    video: VideoSeries
    intervals: list[tuple[int, int, str, str]]
    events: list[tuple[int, int, str]] = field(default_factory=list)  # blinks, head jerks (onset, offset, kind)

    def micro(self) -> list[tuple[int, int]]:
        """The micro-expression intervals (onset, offset)."""
        return [(int(a), int(b)) for a, b, kind, _ in self.intervals if kind == "micro"]


def fill_missing(series: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rows where valid is False replaced by zero flow (no motion), so filters see no spurious step."""
    out = np.array(series, dtype=np.float32, copy=True)
    out[~np.asarray(valid, bool)] = 0.0
    return out


def from_table(table: pa.Table, n_frames: int, fps: float) -> VideoSeries:
    """A VideoSeries from one video's roi_series rows (columns frame, k and the ROI value columns)."""
    names = set(table.column_names)
    missing = [c for c in ("frame", "k", *VALUE_COLUMNS) if c not in names]
    if missing:
        raise InputError(f"roi_series table lacks columns {missing[:4]}{'...' if len(missing) > 4 else ''}",
                         file="roi_series")
    if n_frames < 1 or not fps > 0:
        raise InputError(f"n_frames ({n_frames}) must be >= 1 and fps ({fps}) > 0", file="roi_series")
    frames = np.asarray(table.column("frame").to_numpy(zero_copy_only=False), np.int64)
    ks = np.unique(np.asarray(table.column("k").to_numpy(zero_copy_only=False), np.int64))
    if len(ks) > 1:
        raise InputError(f"roi_series rows of one video have several flow steps k {ks.tolist()}", file="roi_series")
    k = int(ks[0]) if len(ks) else max(1, int(round(0.1 * fps)))
    bad = (frames < 0) | (frames >= n_frames)
    if bad.any():
        raise InputError(f"roi_series frame {int(frames[bad][0])} outside 0..{n_frames - 1}", file="roi_series")
    vals = np.column_stack([np.asarray(table.column(c).to_numpy(zero_copy_only=False), np.float32)
                            for c in VALUE_COLUMNS]) if len(frames) else np.zeros((0, len(VALUE_COLUMNS)), np.float32)
    finite = np.isfinite(vals).all(axis=1)
    series = np.zeros((n_frames, len(REGIONS), len(COMPONENTS)), np.float32)
    valid = np.zeros(n_frames, bool)
    series[frames[finite]] = vals[finite].reshape(-1, len(REGIONS), len(COMPONENTS))
    valid[frames[finite]] = True
    return VideoSeries(series=series, fps=float(fps), k=k, valid=valid)


EYES = ("eye_l", "eye_r")


def residual_flow(video: VideoSeries, head: str = "median") -> tuple[np.ndarray, np.ndarray]:
    """((n, R, 2) region flow minus the head's, (n, 2) the head's flow); zero where the frame is not valid.

    head = median: the head's flow is the per-frame median over the non-eye regions. It removes translation
    whether or not preprocessing already subtracted the nose bridge (then it removes what the bridge missed).
    head = none: the flow as stored.
    """
    uv = np.array(video.series[:, :, :2], dtype=np.float64)
    uv[~video.mask()] = 0.0
    if head == "median":
        ref = [i for i, r in enumerate(REGIONS) if r not in EYES]
        common = np.median(uv[:, ref], axis=1)
    elif head == "none":
        common = np.zeros((len(uv), 2))
    else:
        raise ValueError(f"head must be median or none, got {head!r}")
    return uv - common[:, None, :], common
