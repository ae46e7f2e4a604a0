"""Shard planning: a video is cut into chunks of S frames; a shard owns [start, end) and reads up to end+k-1."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Shard:
    """One unit of preprocessing work (what a Dask worker runs)."""

    dataset: str
    subject: str
    video: str
    source_kind: str
    path: str
    fps: float
    n_frames: int
    k: int
    start: int
    end: int
    files: dict[int, str] = field(default_factory=dict)  # frames kind: frame -> file name, needed frames only

    @property
    def part(self) -> str:
        """Part-file name of this shard's outputs."""
        return shard_part(self.start)


def shard_part(start: int) -> str:
    """Part-file name of the shard starting at `start`."""
    return f"shard-{start:08d}"


def resolve_frames(value: str | int, fps: float, seconds: float, name: str, minimum: int = 1) -> int:
    """A frame count: an explicit integer, or 'auto' = round(seconds x fps), at least `minimum`."""
    if str(value).strip().lower() == "auto":
        return max(minimum, int(seconds * fps + 0.5))
    n = int(value)
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return n


def resolve_k(k: str | int, fps: float) -> int:
    """Flow step: an explicit integer, or 'auto' = round(0.1 s x fps), at least 1 (3 at 30 fps, 20 at 200)."""
    return resolve_frames(k, fps, 0.1, "k")


def plan_ranges(n_frames: int, shard_size: int) -> list[tuple[int, int]]:
    """Owned frame ranges [start, end) covering 0..n_frames-1."""
    if shard_size < 1:
        raise ValueError(f"shard size must be >= 1, got {shard_size}")
    return [(s, min(s + shard_size, n_frames)) for s in range(0, n_frames, shard_size)]


def window(start: int, end: int, n_frames: int, k: int) -> tuple[int, int]:
    """Frames [start, hi] a shard must align: its own frames plus the k-1 after it (flow targets)."""
    return start, min(n_frames - 1, end + k - 1)


def _down(x: int, m: int) -> int:
    return (x // m) * m


def needed_frames(start: int, end: int, n_frames: int, k: int, face_mode: str, detect_every: int,
                  smooth: int, landmark_every: int = 1) -> list[int]:
    """Every frame a shard decodes: its window, plus (track mode) `smooth` frames each side widened to
    multiples of landmark_every, and the key frames (multiples of detect_every) enclosing that, so results
    do not depend on the shard cut."""
    lo, hi = window(start, end, n_frames, k)
    if face_mode != "track":
        return list(range(lo, hi + 1))
    lo2 = _down(max(0, lo - smooth), landmark_every)
    hi2 = min(n_frames - 1, -_down(-(hi + smooth), landmark_every))
    k0 = _down(lo2, detect_every)
    k1 = min(-_down(-hi2, detect_every), _down(n_frames - 1, detect_every))
    keys = set(range(k0, k1 + 1, detect_every))
    return sorted(keys | set(range(lo2, hi2 + 1)))
