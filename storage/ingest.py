"""Ingest a dataset: run its adapter, validate every row, then replace the dataset's rows in the workspace.

Tables written (each replaced for the dataset only, after ALL rows validated, so a failed ingest
leaves the previous rows intact): videos, frames, intervals, rejects, events. `frames` holds one row
per megc frame of frame-folder videos (video files are decoded directly and get no frame rows).

Events: when the dataset root holds `megc_events.csv` (columns subject, video_code, kind, onset,
offset; 0-based frames, offset inclusive; kind e.g. blink or head_jerk), its rows go to `events`
(the synthetic generator writes it; real datasets have none).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa

from storage.adapters import get_adapter
from storage.adapters.base import IngestResult, RowErrors
from storage.errors import InputError
from storage.locks import dataset_lock
from storage.runs import new_run_id, record_run
from storage.schemas import INTERVAL_KINDS, TABLES
from storage.vocabulary import COARSE_EMOTIONS
from storage.workspace import Workspace, to_table

INGESTED_TABLES = ("videos", "frames", "intervals", "rejects", "events")


def validate(result: IngestResult, dataset: str, skip_bad_rows: bool = False) -> IngestResult:
    """Check intervals and events against their videos; bad rows raise or (skip) move to rejects."""
    errors = RowErrors(dataset, skip_bad_rows)
    videos: dict[str, dict] = {}
    for v in result.videos:
        if v["video"] in videos:
            raise InputError(f"video id {v['video']!r} occurs twice (second at {v['path']})", file=v["path"])
        videos[v["video"]] = v
        if not (math.isfinite(v["fps"]) and v["fps"] > 0):
            raise InputError(f"video {v['video']!r}: frame rate must be a positive number, got {v['fps']}",
                             file=v["path"])
    kept: list[dict] = []
    seen: dict[Any, int | None] = {}
    for it in result.intervals:
        file, row = it["source_file"], it["source_row"]
        raw = [it["video"], it["onset"], it["apex"], it["offset"], it["kind"], it["emotion"]]
        v = videos.get(it["video"])
        n = v["n_frames"] if v else 0
        key = (it["video"], it["onset"], it["offset"], it["kind"])
        problem = None
        if v is None:
            problem = f"video {it['video']!r} has no frames in this dataset"
        elif it["onset"] > it["offset"]:
            problem = f"onset {it['onset']} > offset {it['offset']} (0-based frames)"
        elif it["onset"] < 0:
            problem = f"onset {it['onset']} is before the video's first frame (0-based)"
        elif it["offset"] >= n:
            problem = (f"interval {it['onset']}..{it['offset']} lies outside video {it['video']} "
                       f"({n} frames: offset must be < {n}, 0-based)")
        elif it["apex"] is not None and not 0 <= it["apex"] < n:
            problem = f"apex {it['apex']} lies outside video {it['video']} ({n} frames)"
        elif it["kind"] not in INTERVAL_KINDS or it["emotion"] not in COARSE_EMOTIONS:
            problem = f"kind {it['kind']!r} / emotion {it['emotion']!r} not canonical"
        elif key in seen or it["interval_id"] in seen:
            first = seen.get(key, seen.get(it["interval_id"]))
            problem = f"duplicate of row {first} (same video, onset, offset and kind, or same instance id)"
        if problem:
            errors.bad(problem, Path(file), row, raw)
            continue
        seen[key] = row
        seen[it["interval_id"]] = row
        kept.append(it)
    for e in result.events:  # adapters check events against their video; this guards the invariant
        if e["video"] not in videos:
            raise InputError(f"event {e['kind']} refers to unknown video {e['video']!r}")
    return IngestResult(result.videos, result.frames, kept, result.rejects + errors.rejects, result.events)


def ingest(ws: Workspace, adapter: str, path: Path, dataset: str | None = None, skip_bad_rows: bool = False,
           fps: float | None = None) -> dict:
    """Read, validate and store one dataset; returns a summary (counts per table, run_id)."""
    ad = get_adapter(adapter)
    dataset = dataset or ad.name
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise InputError("dataset folder not found", file=path)
    if not path.is_dir():
        raise InputError("is a file; give the dataset's folder (the one holding its videos and labels)", file=path)
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise InputError(f"--fps must be a positive number of frames per second, got {fps}")
    result = validate(ad.read(path, dataset, skip_bad_rows=skip_bad_rows, fps=fps), dataset, skip_bad_rows)
    if not result.videos:
        raise InputError("no videos found", file=path)
    tables = {name: to_table(getattr(result, name), TABLES[name][0]) for name in INGESTED_TABLES if name != "frames"}
    frames_schema = TABLES["frames"][0]
    tables["frames"] = (pa.concat_tables([to_table(t, frames_schema) for t in result.frames])
                        if result.frames else frames_schema.empty_table())
    run_id = new_run_id("ingest")
    with dataset_lock(ws, dataset, "ingest"):
        for name in INGESTED_TABLES:
            ws.replace(name, tables[name], dataset=dataset)
    summary = {"dataset": dataset, "adapter": ad.name, "path": str(path), "videos": len(result.videos),
               "frames": sum(v["n_frames"] for v in result.videos), "intervals": len(result.intervals),
               "micro": sum(1 for i in result.intervals if i["kind"] == "micro"),
               "macro": sum(1 for i in result.intervals if i["kind"] == "macro"),
               "events": len(result.events), "rejects": len(result.rejects), "run_id": run_id}
    record_run(ws, run_id, "ingest", {"adapter": ad.name, "path": str(path), "dataset": dataset,
                                      "skip_bad_rows": skip_bad_rows, "fps": fps, "counts": summary})
    return summary


SUMMARY_SQL = """
WITH v AS (
    SELECT dataset, count(*) AS videos, sum(n_frames) AS frames, bool_or(labelled) AS labelled
    FROM videos WHERE $dataset IS NULL OR dataset = $dataset GROUP BY dataset),
i AS (
    SELECT dataset,
           count(*) FILTER (WHERE kind = 'micro') AS micro,
           count(*) FILTER (WHERE kind = 'micro' AND emotion = 'negative') AS micro_negative,
           count(*) FILTER (WHERE kind = 'micro' AND emotion = 'positive') AS micro_positive,
           count(*) FILTER (WHERE kind = 'micro' AND emotion = 'surprise') AS micro_surprise,
           count(*) FILTER (WHERE kind = 'micro' AND emotion = 'others') AS micro_others,
           count(*) FILTER (WHERE kind = 'macro') AS macro,
           count(*) FILTER (WHERE kind = 'macro' AND emotion = 'negative') AS macro_negative,
           count(*) FILTER (WHERE kind = 'macro' AND emotion = 'positive') AS macro_positive,
           count(*) FILTER (WHERE kind = 'macro' AND emotion = 'surprise') AS macro_surprise,
           count(*) FILTER (WHERE kind = 'macro' AND emotion = 'others') AS macro_others
    FROM intervals WHERE $dataset IS NULL OR dataset = $dataset GROUP BY dataset),
r AS (SELECT dataset, count(*) AS rejects FROM rejects GROUP BY dataset)
SELECT v.dataset, v.videos, v.frames, v.labelled,
       coalesce(i.micro, 0) AS micro, coalesce(i.micro_negative, 0) AS micro_negative,
       coalesce(i.micro_positive, 0) AS micro_positive, coalesce(i.micro_surprise, 0) AS micro_surprise,
       coalesce(i.micro_others, 0) AS micro_others, coalesce(i.macro, 0) AS macro,
       coalesce(i.macro_negative, 0) AS macro_negative, coalesce(i.macro_positive, 0) AS macro_positive,
       coalesce(i.macro_surprise, 0) AS macro_surprise, coalesce(i.macro_others, 0) AS macro_others,
       coalesce(r.rejects, 0) AS rejects
FROM v LEFT JOIN i USING (dataset) LEFT JOIN r USING (dataset)
ORDER BY v.dataset
"""


def dataset_summary(ws: Workspace, dataset: str | None = None) -> list[dict]:
    """Per dataset: videos, frames, labelled, micro/macro counts in total and per coarse class, rejects."""
    cols, rows = ws.sql(SUMMARY_SQL, {"dataset": dataset})
    return [dict(zip(cols, r)) for r in rows]
