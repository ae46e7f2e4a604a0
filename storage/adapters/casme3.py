"""CAS(ME)^3 part A adapter.

On-disk layout (PATH is the dataset root given to `megc ingest casme3 PATH`):

    PATH/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   label sheet(s): any *label*.xls or *label*.xlsx in
                                                     PATH or PATH/annotation
    PATH/spNO.1/a/color/0.jpg, 1.jpg, ...            frames of video "a" of subject spNO.1, 30 fps;
                                                     numbering may have gaps (filled by repetition)

Label sheet: first sheet, header row with Subject (spNO.1), Filename (the video letter a..m), Onset,
Apex, Offset (frame numbers as in the jpg names), AU, Expression type (optional: "Micro-expression" /
"Macro-expression"; without it a file whose name holds "MaE" is macro, otherwise micro), Objective
class, emotion (disgust, surprise, others, fear, anger, sad, happy; happy -> positive, disgust/fear/
anger/sad -> negative, surprise -> surprise, others -> others; the fine label is kept as happiness,
sadness, disgust, ...). AU cells like "L4+L7" or "4+7". Video id: <subject>_<letter> (spNO.1_a).
"""

from __future__ import annotations

from pathlib import Path

from storage.adapters.base import (Adapter, IngestResult, RowErrors, cell, emotion_labels, find_header,
                                   folder_video, is_blank, parse_aus, read_events, read_sheet, to_frame)
from storage.errors import InputError

FPS = 30.0
_NEEDED = {"subject": ["Subject"], "filename": ["Filename"], "onset": ["Onset"], "apex": ["Apex"],
           "offset": ["Offset"], "emotion": ["emotion", "Emotion"]}
_OPTIONAL = {"aus": ["AU", "AUs", "Action Units"], "type": ["Expression type", "Type", "Expression"]}


def video_id(subject: str, video_code: str) -> str:
    """Canonical megc video id: <subject>_<letter> (e.g. spNO.1_a)."""
    return f"{subject}_{video_code}"


def _kind(type_cell: object, sheet: Path) -> str | None:
    t = str(type_cell or "").strip().lower()
    if not t:
        return "macro" if "mae" in sheet.name.lower() else "micro"
    if t.startswith("mac") or t == "mae":
        return "macro"
    if t.startswith("mic") or t == "me":
        return "micro"
    return None


class Casme3Adapter(Adapter):
    """CAS(ME)^3 part A: label sheet(s) + spNO.X/<letter>/color/<N>.jpg frames."""

    name = "casme3"

    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        root = Path(path)
        errors = RowErrors(dataset, skip_bad_rows)
        sheets = sorted({p for d in (root, root / "annotation") if d.is_dir()
                         for p in d.glob("*.xls*") if "label" in p.name.lower() and not p.name.startswith("~$")})
        if not sheets:
            raise InputError("no label sheet (*label*.xlsx or *label*.xls) found in the folder or its "
                             "annotation/ subfolder", file=root)
        result = IngestResult()
        videos: dict[tuple[str, str], dict | None] = {}
        for color in sorted(root.glob("*/*/color")):
            subject, letter = color.parent.parent.name, color.parent.name
            got = folder_video(dataset, subject, video_id(subject, letter), color, fps or FPS, True, errors)
            videos[(subject, letter)] = got[0] if got else None
            if got:
                result.add_video(*got)
        for sheet in sheets:
            rows = read_sheet(sheet)
            h, ix = find_header(rows, _NEEDED, sheet, _OPTIONAL)
            for i, r in enumerate(rows[h + 1:], start=h + 2):
                if is_blank(r):
                    continue
                row = self._interval(r, ix, i, sheet, dataset, videos, errors, root)
                if row:
                    result.intervals.append(row)
        by_code = {k: v for k, v in videos.items() if v}
        result.events = read_events(root, dataset, by_code, errors)
        result.rejects = errors.rejects
        return result

    @staticmethod
    def _interval(r: list, ix: dict, i: int, sheet: Path, dataset: str, videos: dict, errors: RowErrors,
                  root: Path) -> dict | None:
        subject = str(cell(r, ix, "subject") or "").strip()
        letter = str(cell(r, ix, "filename") or "").strip()
        if not subject or not letter:
            errors.bad("Subject or Filename is empty", sheet, i, r)
            return None
        folder = root / subject / letter / "color"
        if (subject, letter) not in videos:
            errors.bad(f"frame folder {folder} not found", sheet, i, r)
            return None
        video = videos[(subject, letter)]
        if video is None:
            errors.bad(f"frame folder {folder} is unusable", sheet, i, r)
            return None
        kind = _kind(cell(r, ix, "type"), sheet)
        if kind is None:
            errors.bad(f"Expression type {cell(r, ix, 'type')!r} is neither micro nor macro", sheet, i, r)
            return None
        try:
            onset = to_frame(cell(r, ix, "onset"), "Onset")
            offset = to_frame(cell(r, ix, "offset"), "Offset")
            apex_v = cell(r, ix, "apex")
            apex = to_frame(apex_v, "Apex") if apex_v is not None else None
            emotion, fine = emotion_labels(cell(r, ix, "emotion"))
        except ValueError as exc:
            errors.bad(str(exc), sheet, i, r)
            return None
        if apex is not None and apex < 0:
            apex = None
        aus, side = parse_aus(cell(r, ix, "aus"))
        base = video["first_frame"]
        return {"dataset": dataset, "subject": subject, "video": video["video"],
                "interval_id": f"{video['video']}_{onset}_{offset}_{kind}",
                "onset": onset - base, "apex": None if apex is None else apex - base, "offset": offset - base,
                "kind": kind, "emotion": emotion, "emotion_fine": fine, "aus": aus, "side": side,
                "source_file": str(sheet), "source_row": i}


ADAPTER = Casme3Adapter()

__all__ = ["ADAPTER", "video_id"]
