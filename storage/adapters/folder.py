"""Folder adapter for unlabelled data: every frame folder or video file found under PATH.

    PATH/clipA.mp4                  a video file (fps, frame count and size read with OpenCV)
    PATH/alice/clipB.avi            subject "alice" (the first folder level under PATH)
    PATH/bob/take1/0001.jpg ...     a frame folder (any numbered image names): needs --fps

Video id: the path relative to PATH without suffix, "/" -> "_" (alice_clipB, bob_take1); subject: the
first folder level, or the video id for items directly under PATH. labelled=False, no intervals.
"""

from __future__ import annotations

import os
from pathlib import Path

from storage.adapters.base import Adapter, IngestResult, RowErrors
from storage.adapters.generic import video_source
from storage.errors import InputError
from storage.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES, frame_number


class FolderAdapter(Adapter):
    """Unlabelled frame folders and video files under a root."""

    name = "folder"
    labelled = False

    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        root = Path(path)
        if not root.is_dir():
            raise InputError("folder not found", file=root)
        errors = RowErrors(dataset, skip_bad_rows)
        items: list[Path] = []
        for d, dirs, files in os.walk(root):
            dirs.sort()
            here = Path(d)
            if any(Path(f).suffix.lower() in IMAGE_SUFFIXES and frame_number(f) is not None for f in files):
                items.append(here)
            items.extend(here / f for f in sorted(files) if Path(f).suffix.lower() in VIDEO_SUFFIXES)
        if not items:
            raise InputError("no frame folders or video files found", file=root)
        result = IngestResult()
        seen: set[str] = set()
        for p in items:
            rel = p.relative_to(root)
            parts = rel.with_suffix("").parts if p.is_file() else rel.parts
            vid = "_".join(parts) or root.name
            subject = parts[0] if len(parts) > 1 else vid
            if vid in seen:
                errors.bad(f"two items map to video id {vid!r}", p, None)
                continue
            seen.add(vid)
            got = video_source(dataset, subject, vid, p, fps, False, errors)
            if got:
                result.add_video(*got)
        result.rejects = errors.rejects
        return result


ADAPTER = FolderAdapter()
