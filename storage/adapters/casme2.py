"""CAS(ME)^2 adapter (long videos, 30 fps).

On-disk layout (PATH is the dataset root given to `megc ingest casme2 PATH`):

    PATH/CAS(ME)^2code_final.xlsx                    annotation workbook (any *code_final*.xls[x])
    PATH/rawpic/s15/15_0101disgustingteeth/img001.jpg frames (img_1.jpg etc. also accepted);
                                                     PATH/s15/... works as well

Workbook sheet 0 has no header; its columns are: subject index (1..22), expression name (anger1_1:
video "anger1", instance 1), onset, apex, offset (0 = missing: use the apex), AUs, coarse emotion
(negative/positive/surprise/others), type (macro-expression/micro-expression), self-report.
Sheet 1 maps subject index -> subject number (rows: ..., number or "s15", index; the last two cells
used); sheet 2 maps video code -> video name (rows: "0101", "disgust1"). A video's frame folder is
rawpic/s<number>/<number>_<code>* . Video id: <number>_<code> (e.g. 15_0101), subject s<number>.
Frame numbers are those in the image names; megc frame 0 is the first image.
"""

from __future__ import annotations

import re
from pathlib import Path

from storage.adapters.base import (Adapter, IngestResult, RowErrors, emotion_labels, folder_video, is_blank,
                                   parse_aus, read_events, read_sheet, sheet_names, to_frame)
from storage.errors import InputError

FPS = 30.0


def _code_text(v: object) -> str:
    """A video code cell (text "0101" or the number 101) as four digits."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s.zfill(4) if s.isdigit() else s


def _subject_number(v: object) -> int | None:
    m = re.search(r"\d+", str(v if not isinstance(v, float) else int(v)))
    return int(m.group()) if m else None


class Casme2Adapter(Adapter):
    """CAS(ME)^2: headerless code_final workbook with naming sheets + rawpic/sNN/NN_code*/img*.jpg frames."""

    name = "casme2"

    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        root = Path(path)
        errors = RowErrors(dataset, skip_bad_rows)
        books = sorted(p for p in root.glob("*code_final*.xls*") if not p.name.startswith("~$"))
        if not books:
            raise InputError("annotation file CAS(ME)^2code_final.xlsx not found", file=root)
        book = books[0]
        if len(sheet_names(book)) < 3:
            raise InputError("workbook needs 3 sheets (codes, subject naming, video naming); found "
                             f"{sheet_names(book)}", file=book)
        subjects = self._subjects(read_sheet(book, 1))
        codes = {str(r[1]).strip(): _code_text(r[0]) for r in read_sheet(book, 2)
                 if len(r) >= 2 and r[0] is not None and r[1] is not None}
        frames_root = root / "rawpic" if (root / "rawpic").is_dir() else root
        result = IngestResult()
        videos: dict[str, dict | None] = {}
        for d in sorted(frames_root.glob("s*/*")):
            m = re.match(r"^(\d+)_(\d{4})", d.name)
            if d.is_dir() and m:
                vid = f"{int(m.group(1))}_{m.group(2)}"
                got = folder_video(dataset, f"s{int(m.group(1))}", vid, d, fps or FPS, True, errors)
                videos[vid] = got[0] if got else None
                if got:
                    result.add_video(*got)
        for i, r in enumerate(read_sheet(book, 0), start=1):
            if is_blank(r):
                continue
            row = self._interval(r, i, book, dataset, subjects, codes, videos, errors, frames_root)
            if row:
                result.intervals.append(row)
        by_code = {(v["subject"], v["video"]): v for v in result.videos}
        result.events = read_events(root, dataset, by_code, errors)
        result.rejects = errors.rejects
        return result

    @staticmethod
    def _subjects(rows: list[list]) -> dict[int, int]:
        out = {}
        for r in rows:
            vals = [v for v in r if v is not None and str(v).strip()]
            if len(vals) >= 2:
                num, idx = _subject_number(vals[-2]), vals[-1]
                if isinstance(idx, float) and idx.is_integer():
                    idx = int(idx)
                if num is not None and str(idx).strip().isdigit():  # skips a header row, if any
                    out[int(idx)] = num
        return out

    @staticmethod
    def _interval(r: list, i: int, book: Path, dataset: str, subjects: dict, codes: dict, videos: dict,
                  errors: RowErrors, frames_root: Path) -> dict | None:
        if len(r) < 8:
            errors.bad(f"expected 9 columns (subject, name, onset, apex, offset, AUs, emotion, type, "
                       f"self-report), found {len(r)}", book, i, r)
            return None
        idx, name = _subject_number(r[0]), str(r[1] or "").strip()
        if idx is None or idx not in subjects:
            errors.bad(f"subject index {r[0]!r} is not in the subject naming sheet", book, i, r)
            return None
        vname = name.split("_")[0]
        if vname not in codes:
            errors.bad(f"expression name {name!r}: video {vname!r} is not in the video naming sheet", book, i, r)
            return None
        vid = f"{subjects[idx]}_{codes[vname]}"
        if vid not in videos:
            errors.bad(f"frame folder {frames_root}/s{subjects[idx]}/{vid}* not found", book, i, r)
            return None
        video = videos[vid]
        if video is None:
            errors.bad(f"frame folder of video {vid} is unusable", book, i, r)
            return None
        t = str(r[7] or "").strip().lower()
        kind = "macro" if t.startswith("macro") else "micro" if t.startswith("micro") else None
        try:
            if kind is None:
                raise ValueError(f"type {r[7]!r} is neither macro-expression nor micro-expression")
            onset, apex, offset = to_frame(r[2], "onset"), to_frame(r[3], "apex"), to_frame(r[4], "offset")
            emotion = emotion_labels(r[6])[0]  # the column holds coarse classes only
        except ValueError as exc:
            errors.bad(str(exc), book, i, r)
            return None
        apex_v = apex if apex > 0 else None
        if offset == 0:
            if apex_v is None:
                errors.bad("offset 0 (missing) and no apex to use instead", book, i, r)
                return None
            offset = apex_v
        aus, side = parse_aus(r[5])
        base = video["first_frame"]
        return {"dataset": dataset, "subject": video["subject"], "video": vid,
                "interval_id": f"s{subjects[idx]}_{name}",
                "onset": onset - base, "apex": None if apex_v is None else apex_v - base, "offset": offset - base,
                "kind": kind, "emotion": emotion, "emotion_fine": None, "aus": aus, "side": side,
                "source_file": str(book), "source_row": i}


ADAPTER = Casme2Adapter()
