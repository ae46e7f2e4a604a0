"""ME-STR scoring (spot-then-recognize, STRS) in DuckDB SQL, under two protocols.

- megc2025: the official STRS scorer's figures, quirks included.
- strict: one-to-one greedy matching, every GT video counts, UAR = mean recall, no NULLs.
Matching for both protocols is sql/str_match.sql; the strict protocol's sequential greedy walk is a
recursive CTE inside DuckDB (no Python loop). All aggregation is sql/str_metrics.sql. Python only
validates input, registers the inputs as Arrow relations and shapes the result. Several inputs
("scopes": datasets, the pooled "overall", or many test cases) are scored in one query pair, because
DuckDB's per-query planning (tens of ms) dominates on small inputs.
Frame numbers are integers, offsets inclusive. "row N" in errors is the 1-based data row: for CSV
files the header is not counted (data row N is on line N + 1); for tables it is the row position.
Analysis tp/fp/fn are the sums of the per-class one-vs-rest tp_c/fp_c/fn_c.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

import sql
from storage.errors import InputError, MegcError
from storage.runs import record_metrics, record_run
from storage.vocabulary import COARSE_EMOTIONS, STR_CLASSES
from storage.workspace import Workspace

PROTOCOLS = ("megc2025", "strict")
COLUMNS = ("subject", "video", "onset", "offset", "emotion")
SPOT_KEYS = ("tp", "fp", "fn", "precision", "recall", "f1")
ANALYSIS_KEYS = ("tp", "fp", "fn", "precision", "recall", "f1", "uf1", "uar")
OVERALL = "overall"
_INT = re.compile(r"^[+-]?\d+$")


# ---- input ------------------------------------------------------------------------------------
def read_str_csv(path: str | Path) -> pa.Table:
    """Read and validate an STR CSV (subject, video, onset, offset, emotion; extra columns ignored)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", file=p)
    with p.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise InputError("empty file: expected a header with columns " + ", ".join(COLUMNS), file=p)
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise InputError(f"missing columns {missing} (header has {names})", file=p)
        idx = {c: names.index(c) for c in COLUMNS}
        cols: dict[str, list] = {c: [] for c in COLUMNS}
        for n, rec in enumerate(reader, start=1):
            if not any(v.strip() for v in rec):
                continue
            if len(rec) < len(names):
                raise InputError(f"has {len(rec)} fields, the header has {len(names)}", file=p, row=n)
            for c in ("subject", "video", "emotion"):
                v = rec[idx[c]].strip()
                if not v:
                    raise InputError(f"empty {c}", file=p, row=n)
                cols[c].append(v)
            for c in ("onset", "offset"):
                v = rec[idx[c]].strip()
                if not _INT.match(v):
                    raise InputError(f"{c} {v!r} is not an integer frame number", file=p, row=n)
                cols[c].append(int(v))
    if not cols["subject"]:
        raise InputError("empty file: no data rows", file=p)
    table = pa.table({"subject": pa.array(cols["subject"], pa.string()),
                      "video": pa.array(cols["video"], pa.string()),
                      "onset": pa.array(cols["onset"], pa.int64()),
                      "offset": pa.array(cols["offset"], pa.int64()),
                      "emotion": pa.array(cols["emotion"], pa.string())})
    return check_intervals(table, str(p))


def check_intervals(data: Any, name: str = "input", extra: Iterable[str] = ()) -> pa.Table:
    """Validate an STR table (pyarrow or pandas) and return it with typed canonical columns."""
    if not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data, preserve_index=False)
    missing = [c for c in COLUMNS if c not in data.column_names]
    if missing:
        raise InputError(f"missing columns {missing} (has {data.column_names})", file=name)
    cols = {}
    for c in COLUMNS:
        col = data.column(c)
        nulls = col.null_count
        if nulls:
            first = col.to_pylist().index(None) + 1
            raise InputError(f"{c} is empty", file=name, row=first)
        if c in ("onset", "offset"):
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
                raise InputError(f"{c} must hold integer frame numbers, not {col.type}", file=name)
            values = col.to_pylist()
            for i, v in enumerate(values, start=1):
                if isinstance(v, float) and not float(v).is_integer():
                    raise InputError(f"{c} {v!r} is not an integer frame number", file=name, row=i)
            col = pa.array([int(v) for v in values], pa.int64())
        else:
            col = pa.array([str(v) for v in col.to_pylist()], pa.string())
        cols[c] = col
    onsets, offsets = cols["onset"].to_pylist(), cols["offset"].to_pylist()
    for i, (a, b) in enumerate(zip(onsets, offsets), start=1):
        if a > b:
            raise InputError(f"onset {a} is after offset {b}", file=name, row=i)
    for i, e in enumerate(cols["emotion"].to_pylist(), start=1):
        if e not in COARSE_EMOTIONS:
            raise InputError(f"unknown emotion {e!r}; expected one of {list(COARSE_EMOTIONS)}", file=name, row=i)
    for c in extra:
        if c in data.column_names:
            cols[c] = data.column(c)
    return pa.table(cols)


def resolve_classes(classes: list[str] | str | None, gt: pa.Table) -> list[str]:
    """The analysis class set: None = the STR classes, 'all' = every emotion in GT, else the list given."""
    if classes is None:
        return list(STR_CLASSES)
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if classes == ["all"]:
        return sorted(set(gt.column("emotion").to_pylist()))
    bad = [c for c in classes if c not in COARSE_EMOTIONS]
    if bad:
        raise InputError(f"unknown classes {bad}; expected 'all' or some of {list(COARSE_EMOTIONS)}",
                         file="--classes")
    return list(dict.fromkeys(classes))


# ---- scoring ----------------------------------------------------------------------------------
def _num(v: Any, strict: bool) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return 0.0 if strict else None
    return v


def _stack(tables: dict[str, pa.Table], with_ids: bool) -> pa.Table:
    """Stack scope tables into one relation with scope and a global file-order row number rn."""
    parts, start = [], 1
    for scope, t in tables.items():
        n = t.num_rows
        part = t.select(list(COLUMNS))
        part = part.add_column(0, "scope", pa.array([scope] * n, pa.string()))
        part = part.append_column("rn", pa.array(range(start, start + n), pa.int64()))
        if with_ids:
            ids = (t.column("interval_id").cast(pa.string()) if "interval_id" in t.column_names
                   else pa.array([str(i) for i in range(1, n + 1)], pa.string()))
            part = part.append_column("gt_id", ids)
        parts.append(part)
        start += n
    return pa.concat_tables(parts)


def _shape(row: dict, protocol: str, cls: list[str]) -> dict:
    """One str_metrics.sql row as the result dict."""
    strict = protocol == "strict"
    notes: list[str] = []
    spotting = {k: _num(row[f"spot_{k}"], True) for k in SPOT_KEYS}
    analysis = {k: _num(row[f"analysis_{k}"], strict) for k in ANALYSIS_KEYS}
    strs = _num(row["strs"], strict)
    per_class = {d["class"]: {k: d[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1")}
                 for d in (row["per_class"] or [])}
    if not strict and spotting["tp"] == 0:
        notes.append("no spotted true positive: the official scorer crashes here; "
                     "analysis figures and STRS are reported as 0")
        analysis = {k: 0.0 for k in ANALYSIS_KEYS}
        strs = 0.0
        per_class = {c: {"tp": 0, "fp": 0, "fn": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0} for c in cls}
    for k in ("tp", "fp", "fn"):
        spotting[k] = int(spotting[k])
        analysis[k] = int(analysis[k])
    return {"protocol": protocol, "classes": cls, "spotting": spotting, "analysis": analysis,
            "strs": strs, "per_class": per_class, "notes": notes}


def score_jobs(inputs: dict[str, tuple[Any, Any]], jobs: list[tuple[str, str, list[str] | str | None]]
               ) -> tuple[list[dict], pa.Table]:
    """Score several (scope, protocol, classes) jobs over {scope: (pred, gt)} in two DuckDB queries.

    Returns one result per job and the match table of every (scope, protocol) scored.
    """
    preds, gts = {}, {}
    for scope, (pred, gt) in inputs.items():
        preds[scope] = check_intervals(pred, "predictions" if len(inputs) == 1 else f"predictions ({scope})")
        gts[scope] = check_intervals(gt, "ground truth" if len(inputs) == 1 else f"ground truth ({scope})",
                                     extra=("interval_id",))
    job_rows = []
    for i, (scope, protocol, classes) in enumerate(jobs):
        if protocol not in PROTOCOLS:
            raise InputError(f"unknown protocol {protocol!r}; expected one of {list(PROTOCOLS)}",
                             file="--protocol")
        if scope not in inputs:
            raise MegcError(f"job {i} names scope {scope!r}, which has no input")
        job_rows.append({"job": i, "scope": scope, "protocol": protocol,
                         "classes": resolve_classes(classes, gts[scope])})
    jobs_t = pa.Table.from_pylist(job_rows, schema=pa.schema([
        ("job", pa.int64()), ("scope", pa.string()), ("protocol", pa.string()), ("classes", pa.list_(pa.string()))]))
    with sql.scratch(pred_in=_stack(preds, False), gt_in=_stack(gts, True), jobs_in=jobs_t) as con:
        matches = con.sql(sql.load("str_match")).to_arrow_table()
        con.register("str_m", matches)
        try:
            cur = con.execute(sql.load("str_metrics"))
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()]
        finally:
            con.unregister("str_m")
    results = [_shape(r, job_rows[r["job"]]["protocol"], job_rows[r["job"]]["classes"]) for r in rows]
    return results, matches


def score_detailed(pred: Any, gt: Any, protocol: str = "megc2025",
                   classes: list[str] | str | None = None) -> tuple[dict, pa.Table]:
    """Score one prediction table and also return its match table (TP pairs, FP and FN rows)."""
    results, matches = score_jobs({"input": (pred, gt)}, [("input", protocol, classes)])
    return results[0], matches


def score_str(pred: Any, gt: Any, protocol: str = "megc2025", classes: list[str] | None = None) -> dict:
    """STR figures for prediction and GT tables (subject, video, onset, offset, emotion; row order = file order).

    Returns {"protocol", "classes", "spotting": {tp, fp, fn, precision, recall, f1},
    "analysis": {tp, fp, fn, precision, recall, f1, uf1, uar}, "strs", "per_class", "notes"};
    None where the official scorer prints nan (megc2025 only).
    """
    return score_detailed(pred, gt, protocol, classes)[0]


def result_json(result: dict) -> str:
    """The result as the CLI's single JSON object (NaN as null; per_class and notes left out)."""
    keep = {k: result[k] for k in ("protocol", "classes", "spotting", "analysis", "strs")}
    return json.dumps(keep)


def metric_rows(result: dict, dataset: str) -> list[dict]:
    """Metric rows {dataset, protocol, name, value} for the metrics table."""
    proto = result["protocol"]
    rows = [{"dataset": dataset, "protocol": proto, "name": f"spot_{k}", "value": result["spotting"][k]}
            for k in SPOT_KEYS]
    for k in ANALYSIS_KEYS:
        name = k if k in ("uf1", "uar") else f"analysis_{k}"
        rows.append({"dataset": dataset, "protocol": proto, "name": name, "value": result["analysis"][k]})
    rows.append({"dataset": dataset, "protocol": proto, "name": "strs", "value": result["strs"]})
    for c, d in result["per_class"].items():
        for k in ("precision", "recall", "f1"):
            rows.append({"dataset": dataset, "protocol": proto, "name": f"{c}_{k}", "value": d[k]})
    for r in rows:
        r["value"] = None if r["value"] is None else float(r["value"])
    return rows


def match_rows(matches: pa.Table, run_id: str, dataset: str, protocol: str) -> pa.Table:
    """A match table from score_detailed shaped as the workspace `str_matches` table."""
    from storage.schemas import STR_MATCHES

    n = matches.num_rows
    t = pa.table({
        "run_id": pa.array([run_id] * n, pa.string()),
        "dataset": pa.array([dataset] * n, pa.string()),
        "protocol": pa.array([protocol] * n, pa.string()),
        "subject": matches.column("subject"),
        "video": matches.column("video"),
        "pred_row": matches.column("pred_rn"),
        "pred_onset": matches.column("pred_onset"),
        "pred_offset": matches.column("pred_offset"),
        "pred_emotion": matches.column("pred_emotion"),
        "gt_interval": matches.column("gt_id"),
        "gt_onset": matches.column("gt_onset"),
        "gt_offset": matches.column("gt_offset"),
        "gt_emotion": matches.column("gt_emotion"),
        "iou": matches.column("iou"),
        "outcome": matches.column("outcome"),
    })
    return t.cast(STR_MATCHES)


def store_scoring(ws: Workspace, run_id: str, scored: dict[str, tuple[dict, pa.Table | None]],
                  part: str = "score_str") -> None:
    """Write metrics and matches of {"<dataset>/<protocol>": (result, matches or None)} under `run_id`.

    Files are named <part>_<protocol>, so scoring a protocol again replaces exactly its earlier figures.
    """
    rows: dict[str, list[dict]] = {}
    tables: dict[tuple[str, str], list[pa.Table]] = {}
    for key, (result, matches) in scored.items():
        dataset, proto = key.split("/", 1)[0], result["protocol"]
        rows.setdefault(proto, []).extend(metric_rows(result, dataset))
        if matches is not None:
            tables.setdefault((dataset, proto), []).append(match_rows(matches, run_id, dataset, proto))
    for (dataset, proto), ts in tables.items():
        ws.write("str_matches", pa.concat_tables(ts), part=f"{part}_{proto}", run_id=run_id, dataset=dataset)
    for proto, rs in rows.items():
        record_metrics(ws, run_id, rs, part=f"{part}_{proto}")


# ---- workspace runs ---------------------------------------------------------------------------
def _run_tables(ws: Workspace, run_id: str, dataset: str | None) -> dict[str, tuple[pa.Table, pa.Table]]:
    """{dataset: (predictions, micro GT)} for a run; GT limited to the videos the run spotted."""
    pred_all = ws.read("predictions", run_id=run_id)
    if pred_all.num_rows == 0 and dataset is None:
        raise MegcError(f"run {run_id!r} has no rows in the predictions table")
    datasets = [dataset] if dataset else sorted(set(pred_all.column("dataset").to_pylist()))
    out = {}
    for d in datasets:
        pred = pred_all.filter(pc.equal(pred_all.column("dataset"), d))
        gt = ws.read("intervals", dataset=d)
        gt = gt.filter(pc.equal(gt.column("kind"), "micro"))
        # the videos the run spotted (its frame_scores partitions), else every video of the dataset: a run
        # over held-out subjects only must not count the other subjects' micro-expressions as misses
        videos = [p["video"] for p in ws.partitions("frame_scores", run_id=run_id, dataset=d)]
        videos = videos or ws.read("videos", columns=["video"], dataset=d).column("video").to_pylist()
        if videos:
            gt = gt.filter(pc.is_in(gt.column("video"), pa.array(videos, pa.string())))
        out[d] = (pred.select(list(COLUMNS)), gt.select(list(COLUMNS) + ["interval_id"]))
    return out


def _prefixed(table: pa.Table, dataset: str) -> pa.Table:
    """Subjects and videos prefixed with the dataset, so pooled datasets never collide."""
    t = table
    for c in ("subject", "video"):
        col = pa.array([f"{dataset}/{v}" for v in t.column(c).to_pylist()], pa.string())
        t = t.set_column(t.column_names.index(c), c, col)
    return t


def score_str_run(ws: Workspace, run_id: str, dataset: str | None = None,
                  protocols: Iterable[str] = PROTOCOLS, classes: list[str] | None = None) -> dict[str, dict]:
    """Score a run's `predictions` against the micro `intervals`, per dataset and pooled ("overall").

    Stores metric rows and per-prediction matches under `run_id` and returns {"<dataset>/<protocol>": result}.
    With `dataset`, only that dataset is scored ("overall" too when the run holds no other dataset).
    """

    protocols = tuple(protocols)
    tables = _run_tables(ws, run_id, dataset)
    inputs: dict[str, tuple[pa.Table, pa.Table]] = dict(tables)
    if len(tables) > 1:
        inputs[OVERALL] = (pa.concat_tables([_prefixed(p, d) for d, (p, _) in tables.items()]),
                           pa.concat_tables([_prefixed(g, d) for d, (_, g) in tables.items()]))
    jobs = [(scope, proto, classes) for scope in inputs for proto in protocols]
    results, matches = score_jobs(inputs, jobs)
    scored: dict[str, tuple[dict, pa.Table | None]] = {}
    for (scope, proto, _), res in zip(jobs, results):
        m = None
        if scope != OVERALL:
            keep = pc.and_(pc.equal(matches.column("scope"), scope), pc.equal(matches.column("protocol"), proto))
            m = matches.filter(keep)
        scored[f"{scope}/{proto}"] = (res, m)
    stored = ws.read("predictions", columns=["dataset"], run_id=run_id).column("dataset").to_pylist()
    only = set(stored) <= set(tables)
    if len(tables) == 1 and only:
        # the run holds one dataset: its pooled figures are that dataset's
        d = next(iter(tables))
        for proto in protocols:
            scored[f"{OVERALL}/{proto}"] = (scored[f"{d}/{proto}"][0], None)
    config = {"task": "score_str", "run_id": run_id, "dataset": dataset, "protocols": list(protocols),
              "classes": classes}
    if not ws.files("runs", run_id=run_id):
        record_run(ws, run_id, "score", config)
    ws.write_bytes(json.dumps(config, indent=2).encode(), "runs", run_id, "score_str.json")
    store_scoring(ws, run_id, scored, part="score_str" if dataset is None else f"score_str_{safe_name(dataset)}")
    return {k: v[0] for k, v in scored.items()}


def safe_name(name: str) -> str:
    """A name made safe for a part file name."""
    return re.sub(r"[^A-Za-z0-9.-]+", "-", name)
