"""Typed configuration of the synthetic data generator and its named presets (tiny, demo, samm, bench, bench200)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from storage.config import apply_overrides
from storage.errors import InputError

FORMATS = ("casme3", "samm_lv", "video")


@dataclass
class ExpressionConfig:
    """Rate, duration and peak displacement of one kind of expression (micro or macro)."""

    rate_min: float = 2.0  # events per minute
    rate_max: float = 8.0
    min_count: int = 1  # at least this many per video (when the video is long enough)
    duration_min_s: float = 0.2
    duration_max_s: float = 0.5
    amplitude_min_px: float = 0.5  # peak displacement on a face 128 px wide (x dlib box width / 128)
    amplitude_max_px: float = 2.5
    apex_min: float = 0.3  # apex position as a fraction of the duration
    apex_max: float = 0.6
    hold_max: float = 0.0  # apex plateau as a fraction of the duration (macro-expressions hold a while)


@dataclass
class BlinkConfig:
    """Blinks (AU45): eyelid closure of the upper lids."""

    rate_min: float = 10.0  # per minute
    rate_max: float = 20.0
    duration_min_s: float = 0.1
    duration_max_s: float = 0.4
    closure: float = 0.9  # fraction of the eye opening closed at the apex
    min_count: int = 1  # at least this many per video


@dataclass
class EmotionMix:
    """Relative frequency of the coarse classes among planted expressions."""

    negative: float = 0.4
    positive: float = 0.2
    surprise: float = 0.2
    others: float = 0.2


@dataclass
class HeadConfig:
    """Head motion: slow drift plus occasional fast jerks."""

    drift_px: float = 2.0  # drift amplitude on a face 128 px wide
    drift_deg: float = 0.6
    drift_period_min_s: float = 6.0
    drift_period_max_s: float = 20.0
    jerk_rate_min: float = 1.0  # per minute
    jerk_rate_max: float = 3.0
    jerk_duration_min_s: float = 0.1
    jerk_duration_max_s: float = 0.3
    jerk_px_min: float = 2.0  # translation of one jerk on a face 128 px wide
    jerk_px_max: float = 5.0
    jerk_deg_max: float = 1.0
    jerk_min_count: int = 0  # at least this many jerks per video


@dataclass
class CameraConfig:
    """Illumination drift and flicker, sensor noise and JPEG compression."""

    light_drift: float = 0.06  # relative gain amplitude of the slow illumination drift
    light_period_min_s: float = 10.0
    light_period_max_s: float = 30.0
    flicker: float = 0.008  # relative gain amplitude of the flicker
    flicker_hz_min: float = 0.5
    flicker_hz_max: float = 3.0
    noise_sigma: float = 2.0  # grey levels
    noise_bank: int = 24  # pre-drawn noise frames picked at random per frame
    jpeg_min: int = 85
    jpeg_max: int = 95


@dataclass
class IdentityConfig:
    """How subjects are derived from the face photographs shipped with installed packages."""

    face_scale_jitter: float = 0.08  # relative face-size variation between subjects
    position_jitter: float = 0.05  # of the frame size
    rotation_deg: float = 6.0
    colour_gain: float = 0.15  # per-channel gain variation
    brightness: float = 18.0
    contrast: float = 0.18
    shape_warp: float = 0.05  # amplitude of the smooth face-shape warp, fraction of face width


@dataclass
class SynthConfig:
    """Everything the generator needs; every field can be set from the CLI with --set key=value."""

    preset: str = "tiny"
    format: str = "casme3"  # casme3 | samm_lv | video
    subjects: int = 3
    videos_per_subject: int = 1
    duration_s: float = 7.0
    fps: float = 30.0
    width: int = 320
    height: int = 240
    grey: bool = False
    face_width: int = 128  # width of dlib's face box in the neutral frame, pixels
    lead_in_s: float = 0.5  # neutral time at the start and end of every video
    gap_s: float = 0.3  # minimum neutral time between two expressions
    workers: int = 0  # process pool size; 0 = every core
    video_codec: str = "MJPG"  # --format video: FourCC for cv2.VideoWriter
    video_ext: str = ".avi"
    micro: ExpressionConfig = field(default_factory=ExpressionConfig)
    macro: ExpressionConfig = field(default_factory=lambda: ExpressionConfig(
        rate_min=2.0, rate_max=6.0, duration_min_s=0.5, duration_max_s=4.0, amplitude_min_px=4.0,
        amplitude_max_px=12.0, apex_min=0.25, apex_max=0.45, hold_max=0.3))
    emotions: EmotionMix = field(default_factory=EmotionMix)
    blink: BlinkConfig = field(default_factory=BlinkConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)


PRESETS: dict[str, dict] = {
    # tests: 3 small subjects, one 7 s video each; still holds MEs, macro-expressions and blinks
    "tiny": {"micro.min_count": 2, "head.jerk_min_count": 1, "workers": 1},
    # the demo: CAS(ME)^3-like, 8 subjects x 2 videos x 40 s at 30 fps, 640x480 colour
    "demo": {"subjects": 8, "videos_per_subject": 2, "duration_s": 40.0, "width": 640, "height": 480,
             "face_width": 200},
    # SAMM-LV-like: 200 fps, grey, 1024x544
    "samm": {"format": "samm_lv", "subjects": 4, "videos_per_subject": 1, "duration_s": 20.0, "fps": 200.0,
             "width": 1024, "height": 544, "grey": True, "face_width": 260},
    # throughput and memory: one 1-minute 640x480 video (set duration_s=600 for the 10-minute one)
    "bench": {"subjects": 1, "videos_per_subject": 1, "duration_s": 60.0, "width": 640, "height": 480,
              "face_width": 200},
    # throughput at SAMM's size: one 10 s video at 200 fps, grey, 2040x1088, face about 400 px
    "bench200": {"subjects": 1, "videos_per_subject": 1, "duration_s": 10.0, "fps": 200.0, "width": 2040,
                 "height": 1088, "grey": True, "face_width": 400},
}


def preset(name: str) -> SynthConfig:
    """The named preset's config."""
    if name not in PRESETS:
        raise InputError(f"unknown synth preset {name!r}; known: {sorted(PRESETS)}")
    return apply_overrides(dataclasses.replace(SynthConfig(), preset=name), PRESETS[name], f"preset {name}")


def validate(cfg: SynthConfig) -> SynthConfig:
    """Reject settings the generator cannot honour, naming the setting."""
    if cfg.format not in FORMATS:
        raise InputError(f"format {cfg.format!r} is not one of {FORMATS}", file="synth config")
    checks = [
        (cfg.subjects >= 1, "subjects must be >= 1"),
        (cfg.videos_per_subject >= 1, "videos_per_subject must be >= 1"),
        (cfg.fps > 0, "fps must be > 0"),
        (cfg.duration_s > 2 * cfg.lead_in_s, "duration_s must exceed twice lead_in_s"),
        (cfg.face_width >= 80, "face_width must be >= 80 px (dlib's HOG detector misses smaller faces)"),
        (cfg.width >= 1.6 * cfg.face_width and cfg.height >= 1.6 * cfg.face_width,
         "the frame must be at least 1.6 face widths in each direction"),
        (0 < cfg.camera.jpeg_min <= cfg.camera.jpeg_max <= 100, "camera.jpeg_min/jpeg_max must be in 1..100"),
    ]
    for sub in (cfg.micro, cfg.macro):
        checks.append((0 < sub.duration_min_s <= sub.duration_max_s, "expression durations must be ordered"))
        checks.append((0 <= sub.amplitude_min_px <= sub.amplitude_max_px, "amplitudes must be ordered"))
        checks.append((0 < sub.apex_min <= sub.apex_max < 1, "apex fractions must be in (0, 1)"))
    for ok, problem in checks:
        if not ok:
            raise InputError(problem, file="synth config")
    return cfg
