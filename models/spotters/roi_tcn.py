"""roi-tcn: a small dilated temporal convolution network over the ROI flow series.

Input per time step (every video resampled by time to `fps` internal steps per second): each region's flow
minus the head's (u, v, magnitude) in units of the region's typical magnitude in that video, the same
magnitudes in aligned-face pixels (what separates a macro-expression from a micro one), and the head's flow.
Heads per step: micro apex (Gaussian around the interval centre), onset and offset boundaries, macro (macro
expressions, blinks and head jerks: everything a micro-expression is not) and the emotion class (trained on
steps inside micro intervals only). Outputs are resampled back to the video's frames.
The threshold is chosen on scores of training videos that the scoring model did not see (inner folds by
video group), never on the scored videos.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import gaussian_filter1d

from models.spotters.base import Spotter
from models.spotters.series import REGIONS, Labelled, VideoSeries, residual_flow
from models.spotters.decode import PeakPostConfig, choose_threshold

if TYPE_CHECKING:
    import torch

_MIRROR = [REGIONS.index(r.replace("_l", "_x").replace("_r", "_l").replace("_x", "_r"))
           if r.endswith(("_l", "_r")) else i for i, r in enumerate(REGIONS)]
HEADS = ("micro", "onset", "offset", "macro")


@dataclass
class RoiTcnParams:
    """Architecture, input rate, targets and training schedule of roi-tcn (times in seconds)."""

    fps: float = 30.0            # internal rate: every series is resampled to this by time
    head: str = "median"         # head motion removal (see series.residual_flow)
    px_scale: float = 0.5        # pixel magnitudes are divided by this
    stored_mag: bool = False     # also the stored mean magnitude per region (robust z over the video)
    channels: int = 32
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    kernel: int = 3
    dropout: float = 0.0
    apex_sigma_s: float = 0.07   # micro target: Gaussian around the interval centre
    boundary_sigma_s: float = 0.04
    window_s: float = 8.0        # training windows
    batch: int = 16
    steps: int = 1500            # optimiser steps
    lr: float = 3e-3
    weight_decay: float = 1e-4
    pos_weight: float = 5.0      # BCE weight of micro / boundary positives
    mirror: bool = True          # augment with left-right mirrored faces
    gain: float = 0.2            # augment: random input gain 1 +- gain
    inner_folds: int = 0         # threshold from out-of-fold scores of this many inner models (0: in-sample)
    seed: int = 0
    threads: int = 1             # torch CPU threads while fitting / scoring (0: leave as is)


def n_inputs(params: RoiTcnParams) -> int:
    """Input channels: (u, v, mag) z-scores and pixel magnitude per region, the head's (u, v), and optionally
    the stored mean magnitude per region."""
    return len(REGIONS) * (5 if params.stored_mag else 4) + 2


def features(video: VideoSeries, params: RoiTcnParams) -> np.ndarray:
    """(T, n_inputs) float32 at the internal rate; step j is time j / params.fps."""
    res, common = residual_flow(video, params.head)
    ok = video.mask()
    mag = np.hypot(res[..., 0], res[..., 1])
    scale = np.median(mag[ok], axis=0) if ok.any() else np.ones(mag.shape[1])
    scale = np.maximum(scale, 1e-3)[None, :, None]
    z = np.concatenate([res / scale, (mag / scale[..., 0])[..., None]], axis=2)  # (n, R, 3)
    parts = [z.reshape(len(z), -1), mag / params.px_scale, common / params.px_scale]
    if params.stored_mag:
        m = np.asarray(video.series[:, :, 2], np.float64)
        med = np.median(m[ok], axis=0) if ok.any() else np.zeros(m.shape[1])
        mad = 1.4826 * np.median(np.abs(m[ok] - med), axis=0) if ok.any() else np.ones(m.shape[1])
        parts.append(np.clip((m - med) / np.maximum(mad, 1e-6), -10.0, 30.0) / 4.0)
    x = np.concatenate(parts, axis=1)
    x[~ok] = 0.0
    return _resample(x, video.fps, params.fps, video.k).astype(np.float32)


def _times(n: int, fps: float, rate: float) -> np.ndarray:
    """Internal-step times (seconds) covering a video of n frames."""
    return np.arange(int(np.floor((n - 1) / fps * rate)) + 1) / rate


def _resample(x: np.ndarray, fps: float, rate: float, k: int) -> np.ndarray:
    """Rows at frame times (shifted by k/2: a flow row describes the motion over [i, i + k]) to internal steps."""
    if fps > rate * 1.2:
        x = gaussian_filter1d(x, 0.5 * fps / rate, axis=0, mode="nearest")  # anti-alias
    src = (np.arange(len(x)) + k / 2.0) / fps
    t = _times(len(x), fps, rate)
    return np.stack([np.interp(t, src, x[:, c]) for c in range(x.shape[1])], axis=1)


def to_frames(y: np.ndarray, n: int, fps: float, rate: float) -> np.ndarray:
    """Internal-step outputs (T, ...) back to n frames by linear interpolation in time."""
    t = np.arange(len(y)) / rate
    f = np.arange(n) / fps
    flat = y.reshape(len(y), -1)
    out = np.stack([np.interp(f, t, flat[:, c]) for c in range(flat.shape[1])], axis=1)
    return out.reshape(n, *y.shape[1:])


def targets(item: Labelled, params: RoiTcnParams, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """((T, 4) float targets for HEADS, (T,) int class index, -1 outside micro intervals) at the internal rate."""
    fps, rate = item.video.fps, params.fps
    t = _times(item.video.n, fps, rate)
    y = np.zeros((len(t), len(HEADS)), np.float32)
    cls = np.full(len(t), -1, np.int64)
    gauss = lambda c, s: np.exp(-0.5 * ((t - c) / s) ** 2)  # noqa: E731
    for on, off, kind, emo in item.intervals:
        a, b = on / fps, (off + 1) / fps
        if kind == "micro":
            y[:, 0] = np.maximum(y[:, 0], gauss((a + b) / 2, params.apex_sigma_s))
            y[:, 1] = np.maximum(y[:, 1], gauss(a, params.boundary_sigma_s))
            y[:, 2] = np.maximum(y[:, 2], gauss(b - 1 / fps, params.boundary_sigma_s))
            if emo in classes:
                cls[(t >= a) & (t < b)] = classes.index(emo)
        else:
            y[(t >= a) & (t < b), 3] = 1.0
    for on, off, _ in item.events:
        y[(t >= on / fps) & (t < (off + 1) / fps), 3] = 1.0
    return y, cls


def _net(params: RoiTcnParams, n_classes: int) -> torch.nn.Module:
    """The network: 1x1 input projection, residual dilated conv blocks, 1x1 heads."""
    import torch

    c, kk = params.channels, params.kernel

    class Block(torch.nn.Module):
        def __init__(self, d: int):
            super().__init__()
            self.conv = torch.nn.Conv1d(c, c, kk, dilation=d, padding=d * (kk - 1) // 2)
            self.norm = torch.nn.GroupNorm(1, c)
            self.drop = torch.nn.Dropout(params.dropout)

        def forward(self, x):
            return x + self.drop(torch.relu(self.norm(self.conv(x))))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = torch.nn.Conv1d(n_inputs(params), c, 1)
            self.blocks = torch.nn.Sequential(*[Block(d) for d in params.dilations])
            self.out = torch.nn.Conv1d(c, len(HEADS) + n_classes, 1)

        def forward(self, x):  # (B, C_in, T) -> (B, heads + classes, T)
            return self.out(self.blocks(torch.relu(self.inp(x))))

    return Net()


def _mirror(x: np.ndarray) -> np.ndarray:
    """Features of the left-right mirrored face: sides swapped and horizontal flow negated."""
    r = len(REGIONS)
    z = x[:, :3 * r].reshape(len(x), r, 3)[:, _MIRROR].copy()
    z[:, :, 0] *= -1
    px = x[:, 3 * r:4 * r][:, _MIRROR]
    head = x[:, 4 * r:4 * r + 2].copy()
    head[:, 0] *= -1
    rest = x[:, 4 * r + 2:][:, _MIRROR] if x.shape[1] > 4 * r + 2 else x[:, 4 * r + 2:]
    return np.concatenate([z.reshape(len(x), -1), px, head, rest], axis=1)


def _train(data: list[tuple[np.ndarray, np.ndarray, np.ndarray]], params: RoiTcnParams, n_classes: int,
           seed: int, device: str) -> torch.nn.Module:
    """Train one network on (features, targets, classes) per video with random windows."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = _net(params, n_classes).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=params.lr, total_steps=max(1, params.steps))
    w = max(8, int(round(params.window_s * params.fps)))
    lengths = np.array([len(x) for x, _, _ in data], np.float64)
    pick = lengths / lengths.sum()
    mirrored = [_mirror(x) for x, _, _ in data] if params.mirror else None
    pw = torch.tensor([params.pos_weight] * 3 + [1.0], device=device)[None, :, None]
    net.train()
    for _ in range(params.steps):
        xb, yb, cb = [], [], []
        for i in rng.choice(len(data), size=params.batch, p=pick):
            x, y, c = data[i]
            if mirrored is not None and rng.random() < 0.5:
                x = mirrored[i]
            s = int(rng.integers(0, max(1, len(x) - w + 1)))
            xs, ys, cs = x[s:s + w], y[s:s + w], c[s:s + w]
            if len(xs) < w:  # a short video: pad with zeros, no targets
                pad = w - len(xs)
                xs = np.pad(xs, ((0, pad), (0, 0)))
                ys = np.pad(ys, ((0, pad), (0, 0)))
                cs = np.pad(cs, (0, pad), constant_values=-1)
            xb.append(xs * (1 + params.gain * (2 * rng.random() - 1)))
            yb.append(ys)
            cb.append(cs)
        xt = torch.tensor(np.stack(xb), dtype=torch.float32, device=device).transpose(1, 2)
        yt = torch.tensor(np.stack(yb), dtype=torch.float32, device=device).transpose(1, 2)
        ct = torch.tensor(np.stack(cb), dtype=torch.int64, device=device)
        out = net(xt)
        logits = out[:, :len(HEADS)]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, reduction="none")
        loss = (bce * (1 + (pw - 1) * yt)).mean()
        if (ct >= 0).any():
            loss = loss + torch.nn.functional.cross_entropy(out[:, len(HEADS):], ct, ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    return net


def _predict(net: torch.nn.Module, x: np.ndarray, device: str) -> np.ndarray:
    """(T, heads + classes) sigmoid / softmax outputs of one video's features."""
    import torch

    with torch.no_grad():
        out = net(torch.tensor(x.T[None], dtype=torch.float32, device=device))[0].T.cpu().numpy()
    heads = 1.0 / (1.0 + np.exp(-out[:, :len(HEADS)]))
    logits = out[:, len(HEADS):]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return np.concatenate([heads, probs], axis=1)


def _scores(y: np.ndarray, video: VideoSeries, params: RoiTcnParams) -> dict:
    """The scores dict of one video from its internal-rate outputs."""
    f = to_frames(y, video.n, video.fps, params.fps).astype(np.float32)
    micro = f[:, 0].copy()
    micro[~video.mask()] = 0.0
    probs = f[:, len(HEADS):]
    probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-6)
    return {"micro": micro, "onset": f[:, 1], "offset": f[:, 2], "macro": f[:, 3], "probs": probs}


def _threads(params: RoiTcnParams) -> None:
    import torch

    if params.threads > 0:
        torch.set_num_threads(params.threads)


def fit(train: list[Labelled], params: RoiTcnParams, post: PeakPostConfig, classes: list[str],
        device: str = "cpu") -> tuple[dict[str, np.ndarray], dict]:
    """(weights, state): the network trained on `train`, and {threshold, ...} chosen on `train` only."""
    if not train:
        raise ValueError("roi-tcn needs at least one training video")
    _threads(params)
    data = [(features(t.video, params), *targets(t, params, classes)) for t in train]
    net = _train(data, params, len(classes), params.seed, device)
    folds = min(params.inner_folds, len(train))
    per_video = []
    if folds >= 2:
        order = np.random.default_rng(params.seed + 1).permutation(len(train))
        for f in range(folds):
            held = set(order[f::folds].tolist())
            inner = _train([d for i, d in enumerate(data) if i not in held], params, len(classes),
                           params.seed + 100 + f, device)
            for i in sorted(held):
                y = _predict(inner, data[i][0], device)
                per_video.append((_scores(y, train[i].video, params), train[i].video.fps, train[i].micro()))
    else:
        for d, t in zip(data, train):
            per_video.append((_scores(_predict(net, d[0], device), t.video, params), t.video.fps, t.micro()))
    threshold = choose_threshold(per_video, post, classes)
    weights = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
    p = asdict(params)
    p["dilations"] = list(params.dilations)
    state = {"threshold": float(threshold), "params": p, "post": asdict(post), "classes": list(classes),
             "n_params": int(sum(v.size for v in weights.values()))}
    return weights, state


def score(weights: dict[str, np.ndarray], video: VideoSeries, params: RoiTcnParams, classes: list[str],
          device: str = "cpu") -> dict:
    """Per-frame scores {micro, onset, offset, macro, probs} of one video."""
    import torch

    _threads(params)
    net = _net(params, len(classes)).to(device)
    net.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
    net.eval()
    return _scores(_predict(net, features(video, params), device), video, params)


SPOTTER = Spotter(kind="roi-tcn", params=RoiTcnParams, input_table="roi_series",
                  description="dilated temporal CNN over ROI flow series: micro apex, onset/offset, macro and "
                              "emotion heads; threshold from inner folds of the training subjects",
                  module="models.spotters.roi_tcn")
