"""Fingerprints of a dataset's labelled content (videos + intervals), used to decide when to retrain."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import sql
from storage.workspace import Workspace


def dataset_manifest(ws: Workspace, dataset: str) -> dict:
    """{'manifest_hash', 'n_videos', 'n_intervals'} of a dataset, computed in DuckDB over the catalog."""
    cols, rows = ws.sql(sql.load("dataset_manifest"), {"dataset": dataset})
    return dict(zip(cols, rows[0]))


def featured_videos(ws: Workspace, dataset: str) -> list[str]:
    """Videos of a dataset that have feature rows stored."""
    return sorted(p["video"] for p in ws.partitions("features", dataset=dataset) if ws.files("features", **p))


def write_json(path: Path, data: dict) -> None:
    """Write a small JSON sidecar atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    """A JSON sidecar, or None when it is missing or unreadable (treated as 'never recorded')."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
