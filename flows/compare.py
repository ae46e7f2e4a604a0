"""Prefect flow `compare`: trains each spotter kind cross-validated on the same folds, spots and scores its
held-out subjects, and writes one table (`comparisons` joined with `metrics` by sql/compare.sql) and a report."""

from __future__ import annotations

import time
from typing import Any

from flows.runtime import prefect_defaults

prefect_defaults()

from prefect import flow, get_run_logger  # noqa: E402

import sql  # noqa: E402
from storage.config import load_config, to_dict  # noqa: E402
from storage.runs import new_run_id, record_run  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks.stage_config import CompareConfig  # noqa: E402


@flow(name="compare", validate_parameters=False)
def compare(dataset: str, home: str, cfg: CompareConfig) -> dict:
    """Train + cross-validated spot + score every kind of cfg; returns the comparison table and report path."""
    from flows.train import train
    from tasks.report import compare_section, write_report

    log = get_run_logger()
    ws = Workspace(home).ensure()
    run_id = new_run_id("compare")
    record_run(ws, run_id, "compare", {"dataset": dataset, **to_dict(cfg)})
    rows = []
    for kind in cfg.kinds():
        tcfg = cfg.train_config(kind)
        tcfg.name = f"{kind}-{dataset}-cv"
        t0 = time.perf_counter()
        out = train(dataset, ws.home, tcfg)
        rows.append({"compare_id": run_id, "dataset": dataset, "kind": kind, "model": out["model"],
                     "train_run_id": out["run_id"], "spot_run_id": out["spot"]["run_id"],
                     "train_s": float(out["train_wall_s"]),
                     "spot_s": round(time.perf_counter() - t0 - float(out["train_wall_s"]), 2)})
        log.info("compare %s: %s trained in %.1f s", dataset, kind, out["train_wall_s"])
    ws.replace("comparisons", rows, compare_id=run_id)
    columns, table = comparison_table(ws, run_id)
    out = ws.root / "reports" / run_id
    out.mkdir(parents=True, exist_ok=True)
    report = write_report(ws, run_id, [compare_section(ws, run_id, columns, table, out)])
    return {"run_id": run_id, "columns": columns, "rows": table, "report": str(report["html"])}


def comparison_table(ws: Workspace, compare_id: str) -> tuple[list[str], list[tuple]]:
    """The comparison's table (one row per kind and protocol)."""
    return ws.sql(sql.load("compare"), {"compare_id": compare_id})


def compare_flow(dataset: str, home: str | None = None, cfg: CompareConfig | None = None, **settings: Any) -> dict:
    """Run the compare flow with `cfg` and/or CompareConfig `settings` (e.g. models=['mean', 'flow-peaks'])."""
    return compare(dataset, Workspace(home).ensure().home, load_config(cfg or CompareConfig, None, settings))
