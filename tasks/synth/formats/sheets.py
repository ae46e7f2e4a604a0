"""What every format writer shares: AU cells, .xlsx workbooks and the events file."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from storage.adapters.base import EVENTS_FILE


def format_aus(aus: Sequence[str] | None, side: str | None) -> str:
    """Canonical AUs + side -> the "L4+L7" / "4+7" spelling the spreadsheets use (storage.adapters.base.parse_aus
    reads it back)."""
    prefix = {"left": "L", "right": "R"}.get(side or "", "")
    return "+".join(prefix + str(a).upper().removeprefix("AU") for a in (aus or []))


def write_xlsx(path: Path, rows: Iterable[Sequence[Any]], title: str = "Sheet1") -> Path:
    """Write rows to a one-sheet .xlsx workbook."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r in rows:
        ws.append(list(r))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def write_events(root: Path, events: list[dict]) -> Path:
    """Write <root>/megc_events.csv from rows with subject, video_code, kind, onset, offset."""
    p = Path(root) / EVENTS_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "video_code", "kind", "onset", "offset"])
        for e in events:
            w.writerow([e["subject"], e["video_code"], e["kind"], e["onset"], e["offset"]])
    return p
