"""SAMM Long Videos (SAMM-LV) adapter.

On-disk layout (PATH is the dataset root given to `megc ingest samm_lv PATH`):

    PATH/SAMM_LongVideos_V3_Release.xlsx        interval sheet (any SAMM_LongVideos_V*_Release.xlsx)
    PATH/SAMM_20181215_Micro_FACS_Codes_v2.xlsx emotion sheet (any *Micro_FACS_Codes*.xls[x])
    PATH/006_1/006_1_0001.jpg ...               frames of video 006_1, numbered from 1, 200 fps
                                                (frame folders may also sit under PATH/SAMM_longvideos/;
                                                the sheets may also sit under PATH/annotation/)

Interval sheet: preamble rows (title, notes), then a header row found by its column names:
Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type, Action Units, Notes.
Filename 006_1_2 is instance 2 of video 006_1 (subject 006). Onset/Apex/Offset are dataset frame
numbers (the numbers in the frame file names); onsets may be fractional (rounded half up); Apex -1
means not annotated (null); Offset 0 means "use the apex". Type "Macro" -> macro, "Micro - 1/2" ->
micro. Action Units like "R12", "4+7", "12B" -> ["AU12"] (+ side right), ["AU4", "AU7"].

Emotion sheet: preamble rows, then Subject, Filename, Inducement Code, Onset Frame, Apex Frame,
Offset Frame, Duration, Type, Action Units, Estimated Emotion, Objective Classes, Notes; joined to the
interval sheet on (Filename, Type). The fine label is kept (anger, contempt, disgust, fear, sadness ->
negative; happiness -> positive; surprise; other -> others); intervals without an emotion row get
emotion "others" and no fine label. The real release lists micro rows only; the synthetic
generator's writer also lists macro rows (Type "Macro") so its macro labels survive a round trip.
"""

from __future__ import annotations

from pathlib import Path

from storage.adapters.base import (Adapter, IngestResult, RowErrors, cell, emotion_labels, find_header,
                                   folder_video, is_blank, parse_aus, read_events, read_sheet, to_frame)
from storage.errors import InputError

FPS = 200.0
_NEEDED = {"filename": ["Filename"], "onset": ["Onset", "Onset Frame"], "apex": ["Apex", "Apex Frame"],
           "offset": ["Offset", "Offset Frame"], "type": ["Type"]}
_OPTIONAL = {"aus": ["Action Units", "AUs", "AU"], "subject": ["Subject"]}


def _find(root: Path, pattern: str) -> Path | None:
    # not root/*/: that would list every frame folder
    dirs = [d for d in (root, root / "annotation", root / "annotations") if d.is_dir()]
    hits = sorted(p for d in dirs for p in d.glob(pattern) if not p.name.startswith("~$"))
    return hits[-1] if hits else None  # the highest version (V3 over V2)


def _frame_root(root: Path) -> Path:
    for cand in (root / "SAMM_longvideos", root / "SAMM_LongVideos"):
        if cand.is_dir():
            return cand
    return root


class SammLvAdapter(Adapter):
    """SAMM-LV: interval sheet with preamble + micro FACS-codes emotion sheet + 006_1/006_1_NNNN.jpg frames."""

    name = "samm_lv"

    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        root = Path(path)
        errors = RowErrors(dataset, skip_bad_rows)
        sheet = _find(root, "SAMM_LongVideos_V*_Release.xls*")
        if sheet is None:
            raise InputError("annotation file SAMM_LongVideos_V*_Release.xlsx not found", file=root)
        emo_sheet = _find(root, "*Micro_FACS_Codes*.xls*")
        if emo_sheet is None:
            raise InputError("emotion sheet *Micro_FACS_Codes*.xlsx (SAMM micro FACS codes) not found", file=root)
        emotions = self._emotions(emo_sheet, errors)
        rows = read_sheet(sheet)
        h, ix = find_header(rows, _NEEDED, sheet, _OPTIONAL)
        result = IngestResult()
        frames_root = _frame_root(root)
        videos: dict[str, dict | None] = {}
        for d in sorted(p for p in frames_root.iterdir() if p.is_dir()):
            parts = d.name.split("_")
            if len(parts) == 2 and all(x.isdigit() for x in parts):
                got = folder_video(dataset, parts[0], d.name, d, fps or FPS, True, errors)
                videos[d.name] = got[0] if got else None
                if got:
                    result.add_video(*got)
        for i, r in enumerate(rows[h + 1:], start=h + 2):
            if is_blank(r) or (cell(r, ix, "filename") is None and cell(r, ix, "onset") is None):
                continue  # blank or a trailing note row
            row = self._interval(r, ix, i, sheet, dataset, videos, emotions, errors, frames_root)
            if row:
                result.intervals.append(row)
        by_code = {(v["subject"], v["video"]): v for v in result.videos}
        result.events = read_events(root, dataset, by_code, errors)
        result.rejects = errors.rejects
        return result

    @staticmethod
    def _emotions(sheet: Path, errors: RowErrors) -> dict[tuple[str, str], tuple[str, str | None]]:
        rows = read_sheet(sheet)
        h, ix = find_header(rows, {"filename": ["Filename"], "type": ["Type"],
                                   "emotion": ["Estimated Emotion", "Emotion"]}, sheet)
        out = {}
        for i, r in enumerate(rows[h + 1:], start=h + 2):
            if is_blank(r) or cell(r, ix, "filename") is None:
                continue
            try:
                labels = emotion_labels(cell(r, ix, "emotion"))
            except ValueError as exc:
                errors.bad(str(exc), sheet, i, r)
                continue
            kind = _kind(cell(r, ix, "type")) or "micro"
            out[(str(cell(r, ix, "filename")).strip(), kind)] = labels
        return out

    @staticmethod
    def _interval(r: list, ix: dict, i: int, sheet: Path, dataset: str, videos: dict,
                  emotions: dict, errors: RowErrors, frames_root: Path) -> dict | None:
        name = str(cell(r, ix, "filename") or "").strip()
        parts = name.split("_")
        if len(parts) < 3:
            errors.bad(f"Filename {name!r} is not <subject>_<video>_<instance> (e.g. 006_1_2)", sheet, i, r)
            return None
        code = "_".join(parts[:-1])
        kind = _kind(cell(r, ix, "type"))
        if kind is None:
            errors.bad(f"Type {cell(r, ix, 'type')!r} is neither Macro nor Micro", sheet, i, r)
            return None
        if code not in videos:
            errors.bad(f"video {code}: frame folder {frames_root / code} not found", sheet, i, r)
            return None
        video = videos[code]
        if video is None:  # its frame folder was rejected already
            errors.bad(f"video {code}: frame folder {frames_root / code} is unusable", sheet, i, r)
            return None
        try:
            onset = to_frame(cell(r, ix, "onset"), "Onset")
            apex_raw = to_frame(cell(r, ix, "apex"), "Apex") if cell(r, ix, "apex") is not None else -1
            offset = to_frame(cell(r, ix, "offset"), "Offset") if cell(r, ix, "offset") is not None else 0
        except ValueError as exc:
            errors.bad(str(exc), sheet, i, r)
            return None
        apex = None if apex_raw < 0 else apex_raw
        if offset == 0:
            if apex is None:
                errors.bad("Offset is 0 (use apex) but Apex is -1 (not annotated)", sheet, i, r)
                return None
            offset = apex
        aus, side = parse_aus(cell(r, ix, "aus"))
        emotion, fine = emotions.get((name, kind), ("others", None))
        base = video["first_frame"]
        return {"dataset": dataset, "subject": video["subject"], "video": code, "interval_id": name,
                "onset": onset - base, "apex": None if apex is None else apex - base, "offset": offset - base,
                "kind": kind, "emotion": emotion, "emotion_fine": fine, "aus": aus, "side": side,
                "source_file": str(sheet), "source_row": i}


def _kind(text: object) -> str | None:
    t = str(text or "").strip().lower()
    if t.startswith("macro"):
        return "macro"
    if t.startswith("micro"):
        return "micro"
    return None


ADAPTER = SammLvAdapter()

__all__ = ["ADAPTER"]
