"""DuckDB SQL files used by megc: `load(name)` returns sql/<name>.sql; `scratch()` lends an in-memory connection."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from collections.abc import Iterator

_DIR = Path(__file__).resolve().parent
_CON: Any = None
_LOCK = threading.Lock()


@cache
def load(name: str) -> str:
    """Text of sql/<name>.sql (names are plain file stems, never paths)."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad SQL file name {name!r}")
    path = _DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text()


@contextmanager
def scratch(**relations: Any) -> Iterator[Any]:
    """The process's in-memory DuckDB connection, locked, with `relations` (Arrow tables) registered by name.

    One connection is reused by every caller so repeated small scorings pay no connection start-up; the
    relations are unregistered on exit.
    """
    global _CON
    with _LOCK:
        if _CON is None:
            import duckdb

            _CON = duckdb.connect()
            # inputs are small: one thread avoids most of the per-query scheduling overhead
            _CON.execute("SET threads = 1")
        for name, rel in relations.items():
            _CON.register(name, rel)
        try:
            yield _CON
        finally:
            for name in relations:
                try:
                    _CON.unregister(name)
                except Exception:  # noqa: BLE001 - already gone
                    pass
