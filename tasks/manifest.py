"""Fingerprints of a dataset's labelled content (videos + intervals), used to decide when to retrain."""

from __future__ import annotations

import json

import sql
from storage.errors import MegcError
from storage.workspace import Workspace


def dataset_manifest(ws: Workspace, dataset: str) -> dict:
    """{'manifest_hash', 'n_videos', 'n_intervals'} of a dataset, computed in DuckDB over the catalog."""
    cols, rows = ws.sql(sql.load("dataset_manifest"), {"dataset": dataset})
    return dict(zip(cols, rows[0]))


def featured_videos(ws: Workspace, dataset: str) -> list[str]:
    """Videos of a dataset that have feature rows stored."""
    return sorted(p["video"] for p in ws.partitions("features", dataset=dataset) if ws.files("features", **p))


def write_json(ws: Workspace, parts: tuple[str, ...], data: dict) -> None:
    """Store a small JSON sidecar in the workspace (written whole: readers never see half of it)."""
    ws.write_bytes(json.dumps(data, indent=2, sort_keys=True, default=str).encode(), *parts)


def read_json(ws: Workspace, *parts: str) -> dict | None:
    """A stored JSON sidecar, or None when it is missing or unreadable (treated as 'never recorded')."""
    try:
        data = ws.read_bytes(*parts)
        return json.loads(data) if data is not None else None
    except (MegcError, json.JSONDecodeError):
        return None
