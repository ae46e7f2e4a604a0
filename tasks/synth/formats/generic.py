"""Generic writer: manifest.csv + annotations.csv over video files or frame folders (see storage.adapters.generic)."""

from __future__ import annotations

import csv
from pathlib import Path

from storage.adapters.generic import ANNOTATIONS, MANIFEST, MANIFEST_COLUMNS
from tasks.synth.formats.sheets import write_events

ADAPTER = "generic"
ANNOTATION_COLUMNS = ["subject", "video", "onset", "apex", "offset", "kind", "emotion", "emotion_fine", "aus",
                      "side"]


def video_id(subject: str, video_code: str) -> str:
    """Canonical megc video id: the manifest's video column (the video code)."""
    return video_code


def video_path(root: Path, subject: str, video_code: str) -> Path:
    """Where a video file lives: root/videos/<video_code>.avi."""
    return Path(root) / "videos" / f"{video_code}.avi"


def frame_path(root: Path, subject: str, video_code: str, number: int) -> Path:
    """Image of frame `number` when a generic video is stored as a frame folder: root/frames/<video>/NNNNNN.jpg."""
    return Path(root) / "frames" / video_code / f"{number:06d}.jpg"


def write_annotations(root: Path, videos: list[dict], intervals: list[dict]) -> list[Path]:
    """Write manifest.csv and annotations.csv.

    A video's path is its "path" key when given, else its frame folder when that exists, else
    `video_path`. Interval frames are written 0-based as given.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    man, ann = root / MANIFEST, root / ANNOTATIONS
    with man.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(MANIFEST_COLUMNS)
        for v in videos:
            p = v.get("path")
            if p is None:
                folder = frame_path(root, v["subject"], v["video_code"], 0).parent
                p = folder if folder.is_dir() else video_path(root, v["subject"], v["video_code"])
            p = Path(p)
            rel = p.relative_to(root) if p.is_absolute() and p.is_relative_to(root) else p
            w.writerow([v["subject"], video_id(v["subject"], v["video_code"]), rel.as_posix(), v.get("fps", "")])
    with ann.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(ANNOTATION_COLUMNS)
        for it in intervals:
            w.writerow([it["subject"], video_id(it["subject"], it["video_code"]), it["onset"],
                        "" if it.get("apex") is None else it["apex"], it["offset"], it["kind"], it["emotion"],
                        it.get("emotion_fine") or "", "+".join(it.get("aus") or []), it.get("side") or ""])
    return [man, ann]


__all__ = ["ADAPTER", "frame_path", "video_id", "video_path", "write_annotations", "write_events"]
