"""CLI: `megc train mean`, `megc spot`, `megc models`, `megc export str` (heavy imports inside the commands)."""

from __future__ import annotations

import json

import typer

from flows.cli import app, export_app, train_app
from flows.common import STATE, build_config, print_table, reports_errors, workspace


def _print_result(out: dict) -> None:
    print(json.dumps(out, indent=2, default=str))


@train_app.command("mean")
@reports_errors
def train_mean_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    split: str | None = typer.Option(None, "--split", help="loso or holdout"),
    epochs_spot: int | None = typer.Option(None, "--epochs-spot", help="spotting epochs (10)"),
    epochs_rec: int | None = typer.Option(None, "--epochs-rec", help="recognition epochs (100)"),
    name: str | None = typer.Option(None, "--name", help="registry name (default mean-DATASET)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="existing Ray cluster"),
    config: str | None = typer.Option(None, "--config", help="YAML config file"),
    sets: list[str] | None = typer.Option(None, "--set", help="key=value setting (repeatable)"),
) -> None:
    """Train MEAN (LOSO or holdout) on Ray and register it; then spot cross-validated and score."""
    from flows.train_mean import TrainMeanConfig, train_mean_flow
    from storage.config import to_dict

    cfg = build_config(TrainMeanConfig, config, sets, split=split, epochs_spot=epochs_spot, epochs_rec=epochs_rec,
                       name=name, ray_address=ray_address)
    _print_result(train_mean_flow(dataset, STATE["home"], **to_dict(cfg)))


@app.command("spot")
@reports_errors
def spot_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    model: str = typer.Option(..., "--model", help="registered model name"),
    run_id: str | None = typer.Option(None, "--run-id", help="run id (resumes a run with this id)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="existing Ray cluster"),
    config: str | None = typer.Option(None, "--config", help="YAML config file"),
    sets: list[str] | None = typer.Option(None, "--set", help="key=value setting, e.g. post.method=megc"),
) -> None:
    """Spot MEs, then recognize them, on every video of a dataset; store and score the predictions."""
    from flows.spot import SpotConfig, spot_flow
    from storage.config import to_dict

    cfg = build_config(SpotConfig, config, sets, ray_address=ray_address)
    _print_result(spot_flow(dataset, model, STATE["home"], run_id, **to_dict(cfg)))


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
