"""CLI: `megc ingest NAME PATH` (read a dataset into the workspace) and `megc datasets` (what is stored)."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.app import app
from storage.vocabulary import COARSE_EMOTIONS
from flows.common import print_table, reports_errors, workspace


@app.command("ingest")
@reports_errors
def ingest_cmd(
    name: str = typer.Argument(..., help="adapter: samm_lv, casme2, casme3, smic_e_long, fourdme, generic, folder"),
    path: Path = typer.Argument(..., help="dataset root folder"),
    dataset: str | None = typer.Option(None, "--dataset", help="dataset name to store under (default NAME)"),
    skip_bad_rows: bool = typer.Option(False, "--skip-bad-rows",
                                       help="skip bad annotation rows (kept in the rejects table) instead of failing"),
    fps: float | None = typer.Option(None, "--fps", help="frame rate (overrides the dataset's; needed for "
                                                            "unlabelled frame folders)"),
) -> None:
    """Read a dataset in its native layout and replace its rows in videos, frames, intervals, rejects, events."""
    from storage.ingest import ingest

    s = ingest(workspace(), name, path, dataset=dataset, skip_bad_rows=skip_bad_rows, fps=fps)
    print(f"ingested {s['dataset']} ({s['adapter']}): {s['videos']} videos, {s['frames']} frames, "
          f"{s['intervals']} intervals ({s['micro']} micro, {s['macro']} macro), {s['events']} events, "
          f"{s['rejects']} rejected rows; run {s['run_id']}")


@app.command("datasets")
@reports_errors
def datasets_cmd(fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """Per ingested dataset: videos, frames, micro/macro counts per coarse class, rejected rows."""
    from storage.ingest import dataset_summary

    rows = dataset_summary(workspace())
    if fmt != "table":
        cols = list(rows[0]) if rows else ["dataset", "videos", "frames", "micro", "macro"]
        print_table(cols, [tuple(r.values()) for r in rows], fmt)
        return
    split = "neg/pos/sur/oth"
    cols = ["dataset", "videos", "frames", "labelled", "micro", f"micro {split}", "macro", f"macro {split}",
            "rejects"]
    print_table(cols, [(r["dataset"], r["videos"], r["frames"], r["labelled"], r["micro"],
                        "/".join(str(r[f"micro_{c}"]) for c in COARSE_EMOTIONS), r["macro"],
                        "/".join(str(r[f"macro_{c}"]) for c in COARSE_EMOTIONS),
                        r["rejects"]) for r in rows], fmt)


@app.command()
@reports_errors
def sql(query: str = typer.Argument(..., help="SQL over the catalog views"),
        fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """Run SQL against the workspace catalog (DuckDB views over every table)."""
    cols, rows = workspace().sql(query)
    print_table(cols, rows, fmt)


@app.command()
@reports_errors
def runs(fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """List recorded runs."""
    cols, rows = workspace().sql("SELECT run_id, kind, created_at, git_revision FROM runs ORDER BY created_at")
    print_table(cols, rows, fmt)
