"""4DME adapter (2D texture frames of the 4D micro-expression database).

On-disk layout (PATH is the dataset root given to `megc ingest fourdme PATH`):

    PATH/4DME_Labelling_Micro_release.xlsx   label sheet (any .xlsx/.xls/.csv in PATH or PATH/annotation
                                             whose header has the columns below)
    PATH/<sub_ID>/<fold_name>/*.jpg          frames (any numbered names), 60 fps unless --fps

Columns (as a recognition toolbox reads them): sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs.
Onset/Apex/Offset are the numbers in the frame file names. Emotion is fine or coarse (e.g. "happiness",
"negative"); a compound label such as "Negative+Surprise" takes its first part. Every row is a micro
interval. Video id: fold_name when it starts with sub_ID (S01_0101), else <sub_ID>_<fold_name>.
"""

from __future__ import annotations

import re
from pathlib import Path

from storage.adapters.base import (Adapter, IngestResult, RowErrors, cell, emotion_labels, row_video,
                                   is_blank, locate_sheet, parse_aus, read_events, to_frame)

FPS = 60.0
_NEEDED = {"subject": ["sub_ID", "Subject"], "fold": ["fold_name", "Filename"], "emotion": ["Emotion"],
           "onset": ["Onset"], "apex": ["Apex"], "offset": ["Offset"]}
_OPTIONAL = {"aus": ["AUs", "AU", "Action Units"]}


def _text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v if v is not None else "").strip()


class FourDmeAdapter(Adapter):
    """4DME: label sheet (sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs) + <sub>/<fold>/ frames."""

    name = "fourdme"

    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        root = Path(path)
        errors = RowErrors(dataset, skip_bad_rows)
        sheet, rows, h, ix = locate_sheet(root, _NEEDED, "4DME label sheet", _OPTIONAL)
        result = IngestResult()
        videos: dict[str, dict | None] = {}
        for i, r in enumerate(rows[h + 1:], start=h + 2):
            if is_blank(r):
                continue
            subject, fold = _text(cell(r, ix, "subject")), _text(cell(r, ix, "fold"))
            if not subject or not fold:
                errors.bad("sub_ID or fold_name is empty", sheet, i, r)
                continue
            vid = fold if fold.startswith(subject) else f"{subject}_{fold}"
            video = row_video(videos, result, errors, (sheet, i, r), dataset, subject, vid, [root / subject / fold],
                              fps or FPS)
            if video is None:
                continue
            try:
                onset, offset = to_frame(cell(r, ix, "onset"), "Onset"), to_frame(cell(r, ix, "offset"), "Offset")
                apex_v = cell(r, ix, "apex")
                apex = to_frame(apex_v, "Apex") if apex_v is not None else None
                label = re.split(r"[+/,&]", _text(cell(r, ix, "emotion")))[0]
                emotion, fine = emotion_labels(label)
            except ValueError as exc:
                errors.bad(str(exc), sheet, i, r)
                continue
            aus, side = parse_aus(cell(r, ix, "aus"))
            base = video["first_frame"]
            result.intervals.append({
                "dataset": dataset, "subject": subject, "video": vid, "interval_id": f"{vid}_{i}",
                "onset": onset - base, "apex": None if apex is None or apex < 0 else apex - base,
                "offset": offset - base, "kind": "micro", "emotion": emotion, "emotion_fine": fine,
                "aus": aus, "side": side, "source_file": str(sheet), "source_row": i})
        by_code = {(v["subject"], v["video"]): v for v in result.videos}
        result.events = read_events(root, dataset, by_code, errors)
        result.rejects = errors.rejects
        return result


ADAPTER = FourDmeAdapter()
