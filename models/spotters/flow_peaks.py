"""flow-peaks: a training-free micro-expression spotter over the ROI flow series.

Per frame: each region's mean flow minus the head's (the median flow of the reference regions, which removes
translation whether or not preprocessing subtracted the nose bridge), smoothed in time, as a magnitude divided
by that region's typical (median) magnitude in the video; the micro activation is the mean of the few most
active non-eye regions. The macro score flags what a micro-expression is not: motion that is large in pixels,
that lasts longer than a micro-expression, or that sits in the eyes (a blink). Every constant is in seconds or
pixels of the 128-px aligned face, so frame rate does not change the result. The only fitted value is the
threshold, chosen on training videos.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from models.spotters.base import Spotter
from models.spotters.series import EYES, REGIONS, Labelled, VideoSeries, residual_flow
from models.spotters.decode import PeakPostConfig, choose_threshold


@dataclass
class FlowPeaksParams:
    """Every constant of flow-peaks (seconds, Hz or aligned-face pixels)."""

    head: str = "median"           # median: subtract the median flow of the non-eye regions | none
    signal: str = "residual"       # residual: |region flow - head flow| | mag: the stored mean magnitude | both
    domain: str = "flow"           # flow: the flow itself | disp: displacement (flow summed over time, high-passed)
    highpass_s: float = 1.0        # disp: minus a running median over this window (drift and held expressions)
    smooth_s: float = 0.03         # Gaussian sigma on the residual flow before the magnitude
    act_smooth_s: float = 0.08     # Gaussian sigma on the activation (joins the rise and the fall of one expression)
    top: int = 2                   # micro activation = mean of the `top` largest region z-scores
    eye_weight: float = 0.0        # weight of the eye regions in the micro activation (blinks dominate them)
    z_half: float = 4.0            # micro score = a / (a + z_half), a = activation above its median (z units)
    macro_z: float = 15.0          # macro: activation above this (z) ...
    macro_z_width: float = 4.0     # ... scored by a ramp of this width
    long_s: float = 0.6            # macro: activation (above long_z) above half its maximum for longer than this
    long_z: float = 1.5
    long_pad_s: float = 0.1        # ... and the macro flag extends this far past such a stretch
    blink_ratio: float = 1.5       # macro: eye activation above blink_ratio x the activation is a blink
    blink_z: float = 4.0           # ... when the eye activation is at least this


def _robust_z(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per column: (x - median) / (1.4826 MAD) over the valid rows."""
    if not ok.any():
        return np.zeros_like(x)
    med = np.median(x[ok], axis=0)
    mad = 1.4826 * np.median(np.abs(x[ok] - med), axis=0)
    return (x - med) / np.maximum(mad, 1e-6)


def features(video: VideoSeries, params: FlowPeaksParams) -> tuple[np.ndarray, np.ndarray]:
    """(z, px): (n, R) per-region motion as robust z-scores, and the head-free flow magnitude in pixels."""
    uv = residual_flow(video, params.head)[0]
    if params.domain == "disp":
        from scipy.ndimage import median_filter

        uv = np.cumsum(uv, axis=0) / max(1, video.k)
        w = max(3, int(round(params.highpass_s * video.fps)) | 1)
        uv = uv - median_filter(uv, size=(w, 1, 1), mode="nearest")
    elif params.domain != "flow":
        raise ValueError(f"domain must be disp or flow, got {params.domain!r}")
    sigma = params.smooth_s * video.fps
    if sigma > 0.3:
        uv = gaussian_filter1d(uv, sigma, axis=0, mode="nearest")
    px = np.hypot(uv[..., 0], uv[..., 1])
    ok = video.mask()
    z = _robust_z(px, ok)
    if params.signal in ("mag", "both"):
        m = np.array(video.series[:, :, 2], dtype=np.float64)
        if sigma > 0.3:
            m = gaussian_filter1d(m, sigma, axis=0, mode="nearest")
        zm = _robust_z(m, ok)
        z = zm if params.signal == "mag" else 0.5 * (z + zm)
    z[~ok] = 0.0
    px[~ok] = 0.0
    return z, px


def _shift(x: np.ndarray, frames: int) -> np.ndarray:
    """x delayed by `frames` (edge values repeated): row i of the flow describes motion over [i, i + k]."""
    if frames <= 0:
        return x
    return np.concatenate([np.repeat(x[:1], frames, axis=0), x[:-frames]])


def _long_runs(act: np.ndarray, floor: float, min_len: int, pad: int) -> np.ndarray:
    """1.0 over every run of act >= floor whose part above half the run's maximum lasts min_len frames or more
    (a duration independent of the noise scale), widened by pad frames each side."""
    from scipy.ndimage import find_objects, label

    out = np.zeros(len(act))
    runs, _ = label(act >= floor)
    for (sl,) in find_objects(runs):
        seg = act[sl]
        sub, m = label(seg >= 0.5 * seg.max())
        longest = int(np.bincount(sub)[1:].max()) if m else 0
        if longest >= max(1, min_len):
            out[max(0, sl.start - pad):sl.stop + pad] = 1.0
    return out


def score(weights: dict[str, np.ndarray], video: VideoSeries, params: FlowPeaksParams, classes: list[str],
          device: str = "cpu") -> dict:
    """Per-frame scores {micro, macro, probs} of one video (no weights, no boundary heads: the decoder uses
    edges; `weights` and `device` keep the spotter interface)."""
    n, fps = video.n, video.fps
    z, px = features(video, params)
    w = np.array([params.eye_weight if r in EYES else 1.0 for r in REGIONS])
    zw = z * w
    top = max(1, min(params.top, len(REGIONS)))
    act = np.sort(zw, axis=1)[:, -top:].mean(axis=1)
    if params.act_smooth_s * fps > 0.3:
        act = gaussian_filter1d(act, params.act_smooth_s * fps, mode="nearest")
    act = np.maximum(act - np.median(act), 0.0)
    micro = act / (act + params.z_half)
    # macro: large motion in pixels, long activity, or a blink
    big = np.clip((act - params.macro_z) / max(params.macro_z_width, 1e-6) + 0.5, 0, 1)
    long_ = _long_runs(act, params.long_z, int(round(params.long_s * fps)), int(round(params.long_pad_s * fps)))
    eyes = [i for i, r in enumerate(REGIONS) if r in EYES]
    eye = z[:, eyes].max(axis=1)
    blink = ((eye >= params.blink_z) & (eye >= params.blink_ratio * (act + 1.0))).astype(np.float64)
    macro = np.maximum.reduce([big, long_, blink])
    half = video.k // 2
    micro, macro = _shift(micro, half), _shift(macro, half)
    micro[~video.mask()] = 0.0
    return {"micro": micro.astype(np.float32), "macro": macro.astype(np.float32),
            "probs": others_probs(n, classes)}


def others_probs(n: int, classes: list[str]) -> np.ndarray:
    """(n, C) probabilities with all mass on 'others' when it is a class, else uniform."""
    c = max(1, len(classes))
    if "others" in classes:
        p = np.zeros((n, c), np.float32)
        p[:, classes.index("others")] = 1.0
        return p
    return np.full((n, c), 1.0 / c, np.float32)


def fit(train: list[Labelled], params: FlowPeaksParams, post: PeakPostConfig, classes: list[str],
        device: str = "cpu") -> tuple[dict[str, np.ndarray], dict]:
    """(no weights, state {threshold, params, post}): the threshold maximising micro spot F1 on `train` only."""
    per_video = [(score({}, t.video, params, classes), t.video.fps, t.micro()) for t in train]
    t = choose_threshold(per_video, post, classes)
    return {}, {"threshold": float(t), "params": asdict(params), "post": asdict(post)}


SPOTTER = Spotter(kind="flow-peaks", params=FlowPeaksParams, input_table="roi_series",
                  description="training-free: head-motion-free ROI flow peaks with micro length and macro / blink "
                              "rules; threshold from the training folds",
                  module="models.spotters.flow_peaks")
