"""Run records: every run stores its full config and git revision beside its outputs."""

from __future__ import annotations

import dataclasses
import json
import secrets
from datetime import datetime, UTC
from typing import Any

from storage.config import git_revision, to_dict
from storage.workspace import Workspace


def new_run_id(kind: str) -> str:
    """A sortable, unique run id such as spot-20261125-193012-a1b2."""
    return f"{kind}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def record_run(ws: Workspace, run_id: str, kind: str, config: Any) -> dict:
    """Write the run's row to `runs` and its config to <home>/runs/<run_id>/run.json (stored with the tables)."""
    cfg = to_dict(config) if dataclasses.is_dataclass(config) else dict(config)
    row = {"run_id": run_id, "kind": kind, "created_at": datetime.now(UTC),
           "config": json.dumps(cfg, sort_keys=True, default=str), "git_revision": git_revision()}
    ws.write("runs", [row], run_id=run_id)
    record = {**row, "created_at": row["created_at"].isoformat(), "config": cfg}
    ws.write_bytes(json.dumps(record, indent=2, default=str).encode(), "runs", run_id, "run.json")
    return row


def record_metrics(ws: Workspace, run_id: str, rows: list[dict], part: str = "part-0") -> None:
    """Write metric rows (dataset, protocol, name, value) for a run; `part` separates scorings."""
    full = [{"run_id": run_id, **r} for r in rows]
    ws.write("metrics", full, part=part, run_id=run_id)
