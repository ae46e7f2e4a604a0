"""Generic adapter: any labelled dataset described by two CSV files.

On-disk layout (PATH is the dataset root given to `megc ingest generic PATH`):

    PATH/manifest.csv        one row per video
    PATH/annotations.csv     one row per interval (may be absent or empty: the videos are then unlabelled)
    PATH/videos/<video>.avi  video files, or frame folders (e.g. PATH/frames/<video>/000000.jpg)
    PATH/megc_events.csv     optional blink / head-jerk ground truth (see storage.ingest)

manifest.csv columns:
    subject  subject id
    video    video id, unique within the dataset
    path     a video file or a frame folder; relative paths are taken from PATH
    fps      frames per second (optional for video files: read from the file when empty)

annotations.csv columns (frames are 0-based: 0 is the first decoded frame, or the first file of the
frame folder in numeric order; offset is inclusive):
    subject, video, onset, apex (empty when unknown), offset,
    kind (micro | macro), emotion (negative | positive | surprise | others),
    emotion_fine (happiness, disgust, ...; may be empty), aus ("AU4+AU7", "4+7", "R12"; may be empty),
    side (left | right | empty)
"""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa

from storage.adapters.base import (Adapter, IngestResult, RowErrors, cell, emotion_labels,
                                   find_header, folder_video, is_blank, parse_aus, read_events,
                                   read_sheet, to_frame, to_number)
from storage.errors import InputError
from storage.frames import VIDEO_SUFFIXES, probe_video
from storage.vocabulary import COARSE_WORDS

MANIFEST = "manifest.csv"
ANNOTATIONS = "annotations.csv"
MANIFEST_COLUMNS = ["subject", "video", "path", "fps"]


def video_source(dataset: str, subject: str, video: str, path: Path, fps: float | None, labelled: bool,
                 errors: RowErrors) -> tuple[dict, pa.Table | None] | None:
    """Video row + frames table (None for a video file) of a video file or frame folder; fps None: from the file."""
    if path.is_dir():
        if not fps:
            errors.bad("no frame rate for this frame folder: give one with --fps (or in the manifest's fps column)",
                       path, None)
            return None
        return folder_video(dataset, subject, video, path, fps, labelled, errors)
    try:
        info = probe_video(path)
    except InputError as exc:
        errors.reject(exc, [subject, video])
        return None
    rate = fps or info.fps
    if not rate or rate <= 0:
        errors.bad("the video file stores no frame rate; give one with --fps", path, None)
        return None
    row = {"dataset": dataset, "subject": subject, "video": video, "fps": float(rate), "n_frames": info.n_frames,
           "width": info.width, "height": info.height, "source_kind": "video_file", "path": str(path.resolve()),
           "first_frame": 0, "labelled": labelled}
    return row, None


class GenericAdapter(Adapter):
    """Manifest CSV + annotation CSV (0-based frames) over video files or frame folders."""

    name = "generic"

    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        root = Path(path)
        errors = RowErrors(dataset, skip_bad_rows)
        man = root / MANIFEST
        if not man.is_file():
            raise InputError(f"manifest {MANIFEST} not found (columns {MANIFEST_COLUMNS})", file=man)
        ann = root / ANNOTATIONS
        labelled = ann.is_file()
        rows = read_sheet(man)
        h, ix = find_header(rows, {"subject": ["subject"], "video": ["video"], "path": ["path"]}, man,
                            {"fps": ["fps"]})
        result = IngestResult()
        videos: dict[tuple[str, str], dict | None] = {}
        names: set[str] = set()
        for i, r in enumerate(rows[h + 1:], start=h + 2):
            if is_blank(r):
                continue
            subject, video = str(cell(r, ix, "subject") or "").strip(), str(cell(r, ix, "video") or "").strip()
            p = Path(str(cell(r, ix, "path") or "").strip())
            if not subject or not video or not str(p) or str(p) == ".":
                errors.bad("subject, video and path must not be empty", man, i, r)
                continue
            if video in names:
                errors.bad(f"video {video!r} is listed twice", man, i, r)
                continue
            names.add(video)
            p = p if p.is_absolute() else root / p
            rate = fps
            if cell(r, ix, "fps") is not None:
                try:
                    rate = to_number(cell(r, ix, "fps"), "fps")
                except ValueError as exc:
                    errors.bad(str(exc), man, i, r)
                    continue
                if not (math.isfinite(rate) and rate > 0):
                    errors.bad(f"fps must be a positive number of frames per second, got {cell(r, ix, 'fps')!r}",
                               man, i, r)
                    continue
            if not p.exists():
                errors.bad(f"{p} not found", man, i, r)
                videos[(subject, video)] = None
                continue
            if p.is_file() and p.suffix.lower() not in VIDEO_SUFFIXES:
                errors.bad(f"{p} is neither a frame folder nor a video file ({sorted(VIDEO_SUFFIXES)})", man, i, r)
                videos[(subject, video)] = None
                continue
            got = video_source(dataset, subject, video, p, rate, labelled, errors)
            videos[(subject, video)] = got[0] if got else None
            if got:
                result.add_video(*got)
        if labelled:
            result.intervals = self._intervals(ann, dataset, videos, errors)
        by_code = {k: v for k, v in videos.items() if v}
        result.events = read_events(root, dataset, by_code, errors)
        result.rejects = errors.rejects
        return result

    @staticmethod
    def _intervals(ann: Path, dataset: str, videos: dict, errors: RowErrors) -> list[dict]:
        rows = read_sheet(ann)
        if not rows:
            return []
        need = {c: [c] for c in ("subject", "video", "onset", "offset", "kind", "emotion")}
        h, ix = find_header(rows, need, ann, {c: [c] for c in ("apex", "emotion_fine", "aus", "side")})
        out = []
        for i, r in enumerate(rows[h + 1:], start=h + 2):
            if is_blank(r):
                continue
            key = (str(cell(r, ix, "subject") or "").strip(), str(cell(r, ix, "video") or "").strip())
            if key not in videos:
                errors.bad(f"video {key[1]!r} of subject {key[0]!r} is not in {MANIFEST}", ann, i, r)
                continue
            if videos[key] is None:
                errors.bad(f"video {key[1]!r} could not be read (see its manifest row)", ann, i, r)
                continue
            kind = str(cell(r, ix, "kind") or "").strip().lower()
            coarse = str(cell(r, ix, "emotion") or "").strip().lower()
            side = str(cell(r, ix, "side") or "").strip().lower() or None
            try:
                onset, offset = to_frame(cell(r, ix, "onset"), "onset"), to_frame(cell(r, ix, "offset"), "offset")
                apex = to_frame(cell(r, ix, "apex"), "apex") if cell(r, ix, "apex") is not None else None
                if kind not in ("micro", "macro"):
                    raise ValueError(f"kind {kind!r} is not micro or macro")
                if coarse not in COARSE_WORDS:
                    raise ValueError(f"emotion {coarse!r} is not negative, positive, surprise or others")
                fine = emotion_labels(cell(r, ix, "emotion_fine"))[1] if cell(r, ix, "emotion_fine") else None
                if side not in (None, "left", "right"):
                    raise ValueError(f"side {side!r} is not left, right or empty")
            except ValueError as exc:
                errors.bad(str(exc), ann, i, r)
                continue
            aus, au_side = parse_aus(cell(r, ix, "aus"))
            out.append({"dataset": dataset, "subject": key[0], "video": videos[key]["video"],
                        "interval_id": f"{key[1]}_{i}", "onset": onset, "apex": apex, "offset": offset,
                        "kind": kind, "emotion": COARSE_WORDS[coarse], "emotion_fine": fine, "aus": aus,
                        "side": side or au_side, "source_file": str(ann), "source_row": i})
        return out


ADAPTER = GenericAdapter()

__all__ = ["ADAPTER"]
