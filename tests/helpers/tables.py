"""Comparing tables row by row."""

from __future__ import annotations

import pyarrow as pa


def table_rows(t: pa.Table, drop: tuple[str, ...] = ()) -> list[tuple]:
    """Every row of a table (minus `drop` columns) as a sorted list of tuples."""
    cols = [c for c in t.column_names if c not in drop]
    data = [t.column(c).to_pylist() for c in cols]
    return sorted(zip(*data), key=repr)
