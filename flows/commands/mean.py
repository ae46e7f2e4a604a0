"""CLI: `megc models` and `megc export str` (heavy imports inside the commands)."""

from __future__ import annotations

import typer

from flows.app import app, export_app
from flows.common import print_table, reports_errors, workspace


@app.command("models")
@reports_errors
def models_cmd(fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """List registered models."""
    from models.registry import list_models

    rows = []
    for c in list_models(workspace()):
        td = c.get("training_data", {})
        v = c.get("validation", {})
        rows.append((c.get("name"), c.get("kind"), td.get("dataset"), c.get("split"), len(c.get("folds", [])),
                     c.get("k"), c.get("k_prime"), ",".join(c.get("classes", [])), v.get("val_spot_acc"),
                     c.get("created_at")))
    print_table(["name", "kind", "dataset", "split", "folds", "k", "k_prime", "classes", "val_spot_acc",
                 "created_at"], rows, fmt)


@export_app.command("str")
@reports_errors
def export_str_cmd(
    run: str = typer.Option(..., "--run", help="spot run id"),
    out: str | None = typer.Option(None, "--out", help="CSV path (default <home>/exports/RUN_str.csv)"),
    frame_numbering: str = typer.Option("megc", "--frame-numbering", help="megc (0-based) or dataset"),
) -> None:
    """Write the MEGC STR submission CSV (subject, video, onset, offset, emotion) of a run."""
    from flows.spot import export_str

    print(export_str(workspace(), run, out, frame_numbering))
