"""SMIC-E-long adapter (high-speed camera, 100 fps, micro-expressions only, no apex).

On-disk layout (PATH is the dataset root given to `megc ingest smic_e_long PATH`):

    PATH/SMIC-E_long_annotation.xlsx           annotation sheet (any .xlsx/.xls/.csv in PATH or
                                               PATH/annotation whose header has the columns below)
    PATH/s01/s01_ne_01/image0012345.jpg ...    frames named by ABSOLUTE frame number (PATH/<Filename>/
                                               also accepted)

Sheet columns: Subject, Filename, FirstF, OnsetF, OffsetF, Emotion (positive/negative/surprise).
OnsetF/OffsetF are absolute frame numbers like the image names; FirstF is the number of the video's
first image, so megc frame = OnsetF - FirstF. A FirstF that disagrees with the first image number is a
bad row. No apex (null). Video id: the Filename; subject: the Subject cell (1 -> s01).
"""

from __future__ import annotations

from pathlib import Path

from storage.adapters.base import (Adapter, IngestResult, RowErrors, cell, emotion_labels, row_video,
                                   is_blank, locate_sheet, read_events, to_frame)

FPS = 100.0
_NEEDED = {"subject": ["Subject"], "filename": ["Filename"], "first": ["FirstF"], "onset": ["OnsetF"],
           "offset": ["OffsetF"], "emotion": ["Emotion"]}


def _subject(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return f"s{v:02d}" if isinstance(v, int) else str(v).strip()


class SmicELongAdapter(Adapter):
    """SMIC-E-long: one sheet (FirstF/OnsetF/OffsetF) + <subject>/<Filename>/image<N>.jpg frames."""

    name = "smic_e_long"

    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        root = Path(path)
        errors = RowErrors(dataset, skip_bad_rows)
        sheet, rows, h, ix = locate_sheet(root, _NEEDED, "SMIC-E-long annotation sheet")
        result = IngestResult()
        videos: dict[str, dict | None] = {}
        for i, r in enumerate(rows[h + 1:], start=h + 2):
            if is_blank(r):
                continue
            subject, name = _subject(cell(r, ix, "subject")), str(cell(r, ix, "filename") or "").strip()
            if not name:
                errors.bad("Filename is empty", sheet, i, r)
                continue
            video = row_video(videos, result, errors, (sheet, i, r), dataset, subject, name,
                              [root / subject / name, root / name], fps or FPS)
            if video is None:
                continue
            try:
                first = to_frame(cell(r, ix, "first"), "FirstF")
                onset, offset = to_frame(cell(r, ix, "onset"), "OnsetF"), to_frame(cell(r, ix, "offset"), "OffsetF")
                emotion = emotion_labels(cell(r, ix, "emotion"))[0]  # SMIC labels are coarse only
                if first != video["first_frame"]:
                    raise ValueError(f"FirstF {first} differs from the first image number {video['first_frame']}")
            except ValueError as exc:
                errors.bad(str(exc), sheet, i, r)
                continue
            result.intervals.append({
                "dataset": dataset, "subject": subject, "video": name, "interval_id": f"{name}_{i}",
                "onset": onset - first, "apex": None, "offset": offset - first, "kind": "micro",
                "emotion": emotion, "emotion_fine": None, "aus": [], "side": None,
                "source_file": str(sheet), "source_row": i})
        by_code = {(v["subject"], v["video"]): v for v in result.videos}
        result.events = read_events(root, dataset, by_code, errors)
        result.rejects = errors.rejects
        return result


ADAPTER = SmicELongAdapter()
