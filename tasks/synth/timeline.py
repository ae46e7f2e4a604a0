"""The event schedule of one video: expressions, blinks, head motion and illumination, by frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from storage.vocabulary import COARSE_EMOTIONS, FINE_TO_COARSE
from tasks.synth.presets import ExpressionConfig, SynthConfig

# coarse -> [(fine, AUs, unilateral?)]; a fine label's class is FINE_TO_COARSE[fine] ("repression" is "others")
CATALOGUE: dict[str, list[tuple[str, tuple[str, ...], bool]]] = {
    "positive": [("happiness", ("AU6", "AU12"), False), ("happiness", ("AU12",), False)],
    "negative": [("anger", ("AU4",), False), ("anger", ("AU4", "AU7"), False), ("disgust", ("AU9",), False),
                 ("disgust", ("AU10",), False), ("contempt", ("AU14",), True), ("contempt", ("AU12",), True),
                 ("sadness", ("AU15",), False), ("sadness", ("AU15", "AU17"), False),
                 ("fear", ("AU1", "AU2", "AU4", "AU5"), False)],
    "surprise": [("surprise", ("AU1", "AU2"), False), ("surprise", ("AU1", "AU2", "AU5"), False),
                 ("surprise", ("AU1", "AU2", "AU25"), False), ("surprise", ("AU1", "AU2", "AU26"), False)],
    "others": [("others", ("AU1",), False), ("others", ("AU2",), False), ("others", ("AU5",), False),
               ("others", ("AU7",), False), ("others", ("AU25",), False), ("others", ("AU26",), False),
               ("repression", ("AU17",), False), ("repression", ("AU14",), False)],
}


@dataclass(frozen=True)
class Expression:
    """One planted expression; frames are 0-based and offset is inclusive."""

    kind: str  # micro | macro
    onset: int
    apex: int
    hold_end: int  # last frame of the apex plateau (== apex without a plateau)
    offset: int
    emotion: str
    emotion_fine: str
    aus: tuple[str, ...]
    side: str | None
    amplitude: float  # peak displacement, pixels on the 128-px reference face
    weights: tuple[float, ...]  # relative weight of each AU

    def weight(self, frame: int) -> float:
        """Temporal profile at `frame`: 0 at onset and offset, 1 at the apex (smooth rise and decay)."""
        return profile(frame, self.onset, self.apex, self.hold_end, self.offset)


@dataclass(frozen=True)
class Blink:
    """Eyelid closure (AU45)."""

    onset: int
    apex: int
    offset: int
    closure: float

    def weight(self, frame: int) -> float:
        """Closure profile at `frame` (fast closing, slower opening)."""
        return profile(frame, self.onset, self.apex, self.apex, self.offset)


@dataclass(frozen=True)
class Jerk:
    """A fast head movement to a new resting position."""

    onset: int
    offset: int
    dx: float  # reference-face pixels
    dy: float
    ddeg: float


@dataclass
class Timeline:
    """Everything that changes over one video's frames."""

    n_frames: int
    fps: float
    expressions: list[Expression]
    blinks: list[Blink]
    jerks: list[Jerk]
    drift: np.ndarray  # (3, 2, 3): axis (x, y, deg) x sinusoid x (amplitude, period_frames, phase)
    light: np.ndarray  # per-frame illumination gain
    jpeg_quality: int

    def active_expression(self, frame: int) -> Expression | None:
        """The expression whose interval holds `frame` (they never overlap)."""
        for e in self.expressions:
            if e.onset <= frame <= e.offset:
                return e
        return None

    def blink_weight(self, frame: int) -> float:
        """Eyelid closure at `frame` as a fraction of the eye opening."""
        for b in self.blinks:
            if b.onset <= frame <= b.offset:
                return b.closure * b.weight(frame)
        return 0.0

    def head(self, frame: int) -> tuple[float, float, float]:
        """Head pose (dx, dy in reference pixels, rotation in degrees) at `frame`."""
        out = [0.0, 0.0, 0.0]
        for axis in range(3):
            for amp, period, phase in self.drift[axis]:
                out[axis] += amp * math.sin(2 * math.pi * frame / period + phase)
        for j in self.jerks:
            if frame <= j.onset:
                break
            s = 1.0 if frame >= j.offset else smoothstep((frame - j.onset) / (j.offset - j.onset))
            out[0] += s * j.dx
            out[1] += s * j.dy
            out[2] += s * j.ddeg
        return out[0], out[1], out[2]


def smoothstep(x: float) -> float:
    """0 -> 1 with zero slope at both ends."""
    x = min(max(x, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * x)


def profile(frame: int, onset: int, apex: int, hold_end: int, offset: int) -> float:
    """Raised-cosine rise onset -> apex, plateau to hold_end, raised-cosine decay to offset."""
    if frame < onset or frame > offset:
        return 0.0
    if frame <= apex:
        return smoothstep((frame - onset) / max(apex - onset, 1)) if apex > onset else 1.0
    if frame <= hold_end:
        return 1.0
    return 1.0 - smoothstep((frame - hold_end) / max(offset - hold_end, 1))


def _count(rng: np.random.Generator, lo: float, hi: float, minutes: float, minimum: int) -> int:
    return max(minimum, int(round(rng.uniform(lo, hi) * minutes)))


def _pick_emotion(rng: np.random.Generator, cfg: SynthConfig) -> tuple[str, str, tuple[str, ...], str | None]:
    mix = cfg.emotions
    p = np.array([mix.negative, mix.positive, mix.surprise, mix.others], float)
    coarse = COARSE_EMOTIONS[int(rng.choice(4, p=p / p.sum()))]
    fine, aus, unilateral = CATALOGUE[coarse][int(rng.integers(len(CATALOGUE[coarse])))]
    side = ("left", "right")[int(rng.integers(2))] if unilateral else None
    return FINE_TO_COARSE[fine], fine, aus, side


def _expression(rng: np.random.Generator, cfg: SynthConfig, ec: ExpressionConfig, kind: str, onset: int,
                length: int) -> Expression:
    offset = onset + length - 1
    apex = onset + max(1, int(round(rng.uniform(ec.apex_min, ec.apex_max) * (length - 1))))
    hold = int(round(rng.uniform(0.0, ec.hold_max) * (length - 1))) if ec.hold_max > 0 else 0
    hold_end = min(apex + hold, offset - 1)
    emotion, fine, aus, side = _pick_emotion(rng, cfg)
    weights = tuple(float(w) for w in rng.uniform(0.6, 1.0, len(aus)))
    amp = float(rng.uniform(ec.amplitude_min_px, ec.amplitude_max_px))
    return Expression(kind, onset, apex, hold_end, offset, emotion, fine, aus, side, amp, weights)


def _free(intervals: list[tuple[int, int]], a: int, b: int, margin: int) -> bool:
    return all(b + margin < s or a - margin > e for s, e in intervals)


def plan(cfg: SynthConfig, rng: np.random.Generator) -> Timeline:
    """Draw one video's schedule; expressions never overlap and keep `gap_s` apart."""
    fps = cfg.fps
    n = int(round(cfg.duration_s * fps))
    minutes = cfg.duration_s / 60.0
    lead = int(round(cfg.lead_in_s * fps))
    gap = max(1, int(round(cfg.gap_s * fps)))

    def length(ec: ExpressionConfig) -> int:
        return max(3, int(round(rng.uniform(ec.duration_min_s, ec.duration_max_s) * fps)))

    kinds = (["micro"] * _count(rng, cfg.micro.rate_min, cfg.micro.rate_max, minutes, cfg.micro.min_count)
             + ["macro"] * _count(rng, cfg.macro.rate_min, cfg.macro.rate_max, minutes, cfg.macro.min_count))
    rng.shuffle(kinds)
    lengths = [length(cfg.micro if k == "micro" else cfg.macro) for k in kinds]
    usable = n - 2 * lead
    # drop the longest events until everything fits with its gaps
    while kinds and sum(lengths) + gap * (len(kinds) - 1) > usable:
        i = int(np.argmax(lengths))
        del kinds[i], lengths[i]
    slack = usable - sum(lengths) - gap * max(len(kinds) - 1, 0)
    cuts = np.sort(rng.integers(0, slack + 1, size=len(kinds))) if kinds else []
    expressions, pos = [], lead
    for k, ln, cut in zip(kinds, lengths, np.diff(np.concatenate([[0], cuts])) if kinds else []):
        pos += int(cut)
        expressions.append(_expression(rng, cfg, cfg.micro if k == "micro" else cfg.macro, k, pos, ln))
        pos += ln + gap
    micro_spans = [(e.onset, e.offset) for e in expressions if e.kind == "micro"]

    margin = max(1, int(round(0.1 * fps)))
    bc = cfg.blink
    blinks: list[Blink] = []
    taken = list(micro_spans)
    for _ in range(_count(rng, bc.rate_min, bc.rate_max, minutes, bc.min_count)):
        ln = max(3, int(round(rng.uniform(bc.duration_min_s, bc.duration_max_s) * fps)))
        for _try in range(60):
            a = int(rng.integers(lead, max(lead + 1, n - lead - ln)))
            if _free(taken, a, a + ln - 1, margin):
                apex = a + max(1, int(round(0.4 * (ln - 1))))
                blinks.append(Blink(a, apex, a + ln - 1, bc.closure))
                taken.append((a, a + ln - 1))
                break
    blinks.sort(key=lambda b: b.onset)

    hc = cfg.head
    jerks: list[Jerk] = []
    cum = np.zeros(2)
    starts = []
    for _ in range(_count(rng, hc.jerk_rate_min, hc.jerk_rate_max, minutes, hc.jerk_min_count)):
        ln = max(2, int(round(rng.uniform(hc.jerk_duration_min_s, hc.jerk_duration_max_s) * fps)))
        for _try in range(60):
            a = int(rng.integers(lead, max(lead + 1, n - lead - ln)))
            if _free(taken, a, a + ln - 1, margin):
                starts.append((a, ln))
                taken.append((a, a + ln - 1))
                break
    for a, ln in sorted(starts):
        ang = rng.uniform(0, 2 * np.pi)
        step = rng.uniform(hc.jerk_px_min, hc.jerk_px_max) * np.array([np.cos(ang), np.sin(ang)])
        if np.dot(step, cum) > 0 and np.linalg.norm(cum) > hc.jerk_px_max:
            step = -step  # keep the head near its start
        cum += step
        jerks.append(Jerk(a, a + ln - 1, float(step[0]), float(step[1]),
                          float(rng.uniform(-hc.jerk_deg_max, hc.jerk_deg_max))))

    drift = np.zeros((3, 2, 3))
    for axis, amp in enumerate((hc.drift_px, hc.drift_px, hc.drift_deg)):
        for s in range(2):
            drift[axis, s] = (amp / 2.0, rng.uniform(hc.drift_period_min_s, hc.drift_period_max_s) * fps,
                              rng.uniform(0, 2 * np.pi))

    cc = cfg.camera
    t = np.arange(n) / fps
    light = (1.0 + cc.light_drift * np.sin(2 * np.pi * t / rng.uniform(cc.light_period_min_s, cc.light_period_max_s)
                                           + rng.uniform(0, 2 * np.pi))
             + cc.flicker * np.sin(2 * np.pi * t * rng.uniform(cc.flicker_hz_min, cc.flicker_hz_max)
                                   + rng.uniform(0, 2 * np.pi))
             + 0.5 * cc.flicker * rng.standard_normal(n))
    quality = int(rng.integers(cc.jpeg_min, cc.jpeg_max + 1))
    return Timeline(n, fps, expressions, blinks, jerks, drift, light.astype(np.float32), quality)
