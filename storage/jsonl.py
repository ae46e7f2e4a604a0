"""MEGC JSONL files: reading with row-numbered errors, writing atomically."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from storage.errors import InputError


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSONL file; bad JSON, non-object lines and empty files are InputErrors (row = line number)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", file=p)
    rows = []
    with p.open(encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"malformed JSON ({exc.msg} at column {exc.colno})", file=p, row=n) from None
            if not isinstance(obj, dict):
                raise InputError(f"expected a JSON object, got {type(obj).__name__}", file=p, row=n)
            obj["_row"], obj["_file"] = n, str(p)
            rows.append(obj)
    if not rows:
        raise InputError("empty file: no JSON rows", file=p)
    return rows


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write rows as JSONL (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)
    return path
