"""The adapter interface plus helpers every dataset adapter shares (sheets, headers, AUs, emotions).

An adapter reads one dataset folder in its native layout and returns canonical rows for the
`videos`, `frames`, `intervals`, `rejects` and `events` tables (schemas in storage/schemas.py).
Frame indices in the rows are 0-based megc frames: dataset frame number minus the video's first_frame.
"""

from __future__ import annotations

import csv
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import pyarrow as pa

from storage.errors import InputError
from storage.vocabulary import COARSE_WORDS, FINE_LABELS

EVENTS_FILE = "megc_events.csv"


@dataclass
class IngestResult:
    """Canonical rows read from one dataset: dicts keyed by the table's columns; frames as FRAMES tables."""

    videos: list[dict] = field(default_factory=list)
    frames: list[pa.Table] = field(default_factory=list)  # one FRAMES table per frame-folder video
    intervals: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


    def add_video(self, row: dict, frames: pa.Table | None) -> None:
        """Add a video row and its frames table (None for video files, which have no frame files)."""
        self.videos.append(row)
        if frames is not None:
            self.frames.append(frames)


class Adapter(ABC):
    """Reads one dataset layout into canonical rows."""

    name: str = ""
    labelled: bool = True

    @abstractmethod
    def read(self, path: Path, dataset: str, skip_bad_rows: bool = False,
             fps: float | None = None) -> IngestResult:
        """Read the dataset under `path`; bad rows raise InputError unless `skip_bad_rows`."""


# ---- emotions and AUs -------------------------------------------------------------------------
def emotion_labels(text: Any) -> tuple[str, str | None]:
    """(coarse, fine) from a dataset's emotion cell; a bare coarse word gives fine None."""
    word = str(text if text is not None else "").strip().lower()
    if word in FINE_LABELS:
        return FINE_LABELS[word][1], FINE_LABELS[word][0]
    if word in COARSE_WORDS:
        return COARSE_WORDS[word], None
    if not word:
        return "others", None
    raise ValueError(f"unknown emotion {text!r}")


_AU_TOKEN = re.compile(r"^(?P<s1>[LRB])?\s*(?:AU)?\s*(?P<s2>[LRB])?\s*(?P<num>\d+)(?:\.0)?\s*[A-E]?\b", re.I)


def parse_aus(text: Any) -> tuple[list[str], str | None]:
    """AU cell -> (["AU12", ...], side): "R12" -> (["AU12"], "right"), "4+7" / "AU4+AU7" -> no side."""
    if text is None:
        return [], None
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    aus: list[str] = []
    sides: set[str] = set()
    for tok in re.split(r"[+,;/&\s]+", str(text).strip()):
        m = _AU_TOKEN.match(tok)
        if not m:
            continue  # e.g. "?" or movement codes (M57); not action units
        name = f"AU{int(m.group('num'))}"
        if name not in aus:
            aus.append(name)
        s = (m.group("s1") or m.group("s2") or "").upper()
        if s in ("L", "R"):
            sides.add("left" if s == "L" else "right")
    return aus, (sides.pop() if len(sides) == 1 else None)


# ---- spreadsheets and CSV ---------------------------------------------------------------------
def sheet_names(path: Path) -> list[str]:
    """Sheet names of an .xlsx/.xls workbook."""
    if path.suffix.lower() == ".xls":
        import xlrd

        return xlrd.open_workbook(str(path), on_demand=True).sheet_names()
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(wb.sheetnames)
    finally:
        wb.close()


def read_sheet(path: Path, sheet: int | str = 0) -> list[list[Any]]:
    """Every row of one sheet of an .xlsx/.xls/.csv file as a list of raw cell values."""
    if not path.is_file():
        raise InputError("annotation file not found", file=path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as fh:
                return [list(r) for r in csv.reader(fh)]
        if suffix == ".xls":
            import xlrd

            book = xlrd.open_workbook(str(path))
            sh = book.sheet_by_index(sheet) if isinstance(sheet, int) else book.sheet_by_name(sheet)
            return [sh.row_values(i) for i in range(sh.nrows)]
        import openpyxl

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb.worksheets[sheet] if isinstance(sheet, int) else wb[sheet]
            return [list(r) for r in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise InputError(f"line {line}: byte 0x{exc.object[exc.start]:02x} is not UTF-8 text; save the file as "
                         "UTF-8 (in Excel: 'CSV UTF-8')", file=path) from None
    except Exception as exc:  # corrupt workbook, wrong format, missing sheet
        raise InputError(f"cannot read spreadsheet ({type(exc).__name__}: {exc})", file=path) from None


def norm_header(text: Any) -> str:
    """Header cell -> comparable key: lower case, no spaces or punctuation ("Onset Frame" -> onsetframe)."""
    return re.sub(r"[^a-z0-9]", "", str(text or "").lower())


def find_header(rows: list[list[Any]], columns: dict[str, Sequence[str]], file: Path,
                optional: dict[str, Sequence[str]] | None = None, scan: int = 40) -> tuple[int, dict[str, int]]:
    """Find the header row (0-based) holding every required column; returns it and column -> index.

    `columns` maps a canonical name to its accepted spellings. The row that matches the most names
    among the first `scan` rows is the header; a missing column is an InputError naming it and the
    columns that were found.
    """
    wanted = {k: {norm_header(a) for a in v} for k, v in {**columns, **(optional or {})}.items()}
    best, best_hits = 0, -1
    for i, row in enumerate(rows[:scan]):
        keys = {norm_header(c) for c in row}
        hits = sum(1 for names in wanted.values() if names & keys)
        if hits > best_hits:
            best, best_hits = i, hits
    if not rows:
        raise InputError("the sheet is empty; expected a header row with columns "
                         f"{list(columns)}", file=file)
    header = rows[best]
    index: dict[str, int] = {}
    for name, spellings in wanted.items():
        for j, cell in enumerate(header):
            if norm_header(cell) in spellings:
                index[name] = j
                break
    missing = [c for c in columns if c not in index]
    if missing:
        found = [str(c) for c in header if c not in (None, "")]
        raise InputError(f"missing column(s) {missing}; found columns {found}", file=file, row=best + 1)
    return best, index


def cell(row: Sequence[Any], index: dict[str, int], name: str) -> Any:
    """A row's value for a named column; None when the column is absent or the row is short."""
    j = index.get(name)
    if j is None or j >= len(row):
        return None
    v = row[j]
    return None if isinstance(v, str) and not v.strip() else v


def is_blank(row: Sequence[Any]) -> bool:
    """True for a row with no values."""
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


def to_number(v: Any, what: str) -> float:
    """A numeric cell (int, float or numeric text) as float; ValueError names the column."""
    if v is None or isinstance(v, bool):
        raise ValueError(f"{what} is empty")
    try:
        return float(str(v).strip()) if isinstance(v, str) else float(v)
    except ValueError:
        raise ValueError(f"{what} {v!r} is not a number") from None


def to_frame(v: Any, what: str) -> int:
    """A frame-number cell as int; fractional numbers (SAMM-LV onsets) round half up."""
    x = to_number(v, what)
    return int(x + 0.5) if x >= 0 else int(x)


def raw_json(row: Sequence[Any]) -> str:
    """A row's values as JSON for the rejects table."""
    return json.dumps([v if isinstance(v, (int, float, str, type(None))) else str(v) for v in row])


class RowErrors:
    """Raise on the first bad row, or (skip_bad_rows) collect it as a rejects row."""

    def __init__(self, dataset: str, skip: bool):
        self.dataset, self.skip, self.rejects = dataset, skip, []

    def bad(self, problem: str, file: Path, row: int | None, raw: Sequence[Any] | None = None) -> None:
        """Report a bad row (1-based spreadsheet row)."""
        if not self.skip:
            raise InputError(problem, file=file, row=row)
        self.rejects.append({"dataset": self.dataset, "source_file": str(file), "source_row": row,
                             "reason": problem, "raw": raw_json(raw or [])})

    def reject(self, exc: InputError, raw: Sequence[Any]) -> None:
        """Raise a bad source's InputError again, or record it as a rejects row when skipping bad rows."""
        if not self.skip:
            raise exc
        self.bad(exc.problem, exc.file, None, raw)


def read_events(root: Path, dataset: str, video_of: dict[tuple[str, str], dict], errors: RowErrors) -> list[dict]:
    """Rows of <root>/megc_events.csv (subject, video_code, kind, onset, offset; 0-based) if present.

    `video_of` maps (subject, video_code) to the video row; events must lie inside their video.
    """
    p = root / EVENTS_FILE
    if not p.is_file():
        return []
    rows = read_sheet(p)
    h, ix = find_header(rows, {"subject": ["subject"], "video_code": ["video_code", "video"],
                               "kind": ["kind"], "onset": ["onset"], "offset": ["offset"]}, p)
    out = []
    for i, r in enumerate(rows[h + 1:], start=h + 2):
        if is_blank(r):
            continue
        key = (str(cell(r, ix, "subject")).strip(), str(cell(r, ix, "video_code")).strip())
        try:
            onset, offset = to_frame(cell(r, ix, "onset"), "onset"), to_frame(cell(r, ix, "offset"), "offset")
        except ValueError as exc:
            errors.bad(str(exc), p, i, r)
            continue
        if key not in video_of:
            errors.bad(f"no video {key[1]!r} of subject {key[0]!r} in this dataset", p, i, r)
            continue
        n = video_of[key]["n_frames"]
        if not 0 <= onset <= offset < n:
            errors.bad(f"event {onset}..{offset} is not a valid interval of video {key[1]} ({n} frames)", p, i, r)
            continue
        out.append({"dataset": dataset, "video": video_of[key]["video"], "kind": str(cell(r, ix, "kind")).strip(),
                    "onset": onset, "offset": offset})
    return out


def folder_video(dataset: str, subject: str, video: str, folder: Path, fps: float, labelled: bool,
                 errors: RowErrors) -> tuple[dict, pa.Table] | None:
    """Video row + frames table for a frame folder; None (and a rejects row) when skipping a bad folder."""
    from storage.frames import scan_frames

    try:
        ff = scan_frames(folder)
    except InputError as exc:
        errors.reject(exc, [subject, video])
        return None
    row = {"dataset": dataset, "subject": subject, "video": video, "fps": float(fps),
           "n_frames": ff.n_frames, "width": ff.width, "height": ff.height, "source_kind": "frames",
           "path": str(folder.resolve()), "first_frame": ff.first, "labelled": labelled}
    return row, ff.table(dataset, video)


def row_video(cache: dict, result: IngestResult, errors: RowErrors, where: tuple, dataset: str, subject: str,
              video: str, folders: Sequence[Path], fps: float) -> dict | None:
    """The video an annotation row points at, its frame folder scanned on first use; None when unusable."""
    if video not in cache:
        folder = next((d for d in folders if d.is_dir()), None)
        if folder is None:
            errors.bad(f"frame folder {folders[0]} not found", *where)
            return None
        got = folder_video(dataset, subject, video, folder, fps, True, errors)
        cache[video] = got[0] if got else None
        if got:
            result.add_video(*got)
    if cache[video] is None:
        errors.bad(f"frame folder of video {video} is unusable", *where)
    return cache[video]


def locate_sheet(root: Path, columns: dict[str, Sequence[str]], what: str,
                 optional: dict[str, Sequence[str]] | None = None) -> tuple[Path, list[list[Any]], int, dict[str, int]]:
    """Find the annotation file (.xlsx/.xls/.csv in root or root/annotation) whose header has `columns`.

    Returns (file, rows, header row, column index). With several candidates the first complete one wins;
    when none is complete, the error of the closest one (naming its missing columns) is raised.
    """
    cands = sorted(p for d in (root, root / "annotation", root / "annotations") if d.is_dir()
                   for p in d.iterdir()
                   if p.is_file() and p.suffix.lower() in (".xlsx", ".xls", ".csv") and not p.name.startswith("~$")
                   and p.name != EVENTS_FILE)
    if not cands:
        raise InputError(f"annotation file not found: no .xlsx, .xls or .csv {what} with columns "
                         f"{list(columns)}", file=root)
    closest: tuple[int, InputError] | None = None
    for p in cands:
        rows = read_sheet(p)
        try:
            h, ix = find_header(rows, columns, p, optional)
            return p, rows, h, ix
        except InputError as exc:
            found = sum(1 for r in rows[:40] for c in r if norm_header(c) in
                        {norm_header(a) for v in columns.values() for a in v})
            if closest is None or found > closest[0]:
                closest = (found, exc)
    assert closest is not None
    raise closest[1]
