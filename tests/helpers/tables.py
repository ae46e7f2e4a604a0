"""Rows to write and tables compared row by row."""

from __future__ import annotations

import pyarrow as pa


def table_rows(t: pa.Table, drop: tuple[str, ...] = ()) -> list[tuple]:
    """Every row of a table (minus `drop` columns) as a sorted list of tuples."""
    cols = [c for c in t.column_names if c not in drop]
    data = [t.column(c).to_pylist() for c in cols]
    return sorted(zip(*data), key=repr)


def sample_video(dataset: str, video: str, n: int = 10) -> dict:
    """A `videos` row of a made-up frame folder (nothing is read from it)."""
    return dict(dataset=dataset, subject="s1", video=video, fps=30.0, n_frames=n, width=64, height=48,
                source_kind="frames", path="/data/" + video, first_frame=1, labelled=True)
