"""CLI: `megc train KIND DATASET`, `megc spot DATASET --model NAME`, `megc compare DATASET --models a,b`,
`megc spotters` (heavy imports inside the commands)."""

from __future__ import annotations

import json

import typer

from flows.app import app
from flows.common import print_table, reports_errors, with_config


def _print_result(out: dict) -> None:
    print(json.dumps(out, indent=2, default=str))


@app.command("train")
@reports_errors
@with_config("tasks.stage_config:TrainConfig", base=("kind",),
             renames={"epochs_spot": "params.epochs_spot", "epochs_rec": "params.epochs_rec"})
def train_cmd(
    kind: str = typer.Argument(..., help="spotter kind (see `megc spotters`): mean, roi-tcn, flow-peaks"),
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    split: str | None = typer.Option(None, "--split", help="loso or holdout"),
    epochs_spot: int | None = typer.Option(None, "--epochs-spot", help="MEAN: spotting epochs (10)"),
    epochs_rec: int | None = typer.Option(None, "--epochs-rec", help="MEAN: recognition epochs (100)"),
    name: str | None = typer.Option(None, "--name", help="registry name (default KIND-DATASET)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="existing Ray cluster"),
    cfg=None,
) -> None:
    """Train a spotter (LOSO or holdout) on Ray and register it; then spot cross-validated and score."""
    from flows.train import train

    _print_result(train(dataset, _home(), cfg))


@app.command("spot")
@reports_errors
@with_config("tasks.stage_config:SpotConfig")
def spot_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    model: str = typer.Option(..., "--model", help="registered model name (any spotter kind)"),
    run_id: str | None = typer.Option(None, "--run-id", help="run id (resumes a run with this id)"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="existing Ray cluster"),
    cfg=None,
) -> None:
    """Spot MEs, then recognize them, on every video of a dataset; store and score the predictions."""
    from flows.spot import spot
    from storage.runs import new_run_id

    _print_result(spot(dataset, model, _home(), run_id or new_run_id("spot"), cfg))


@app.command("compare")
@reports_errors
@with_config("tasks.stage_config:CompareConfig")
def compare_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    models: str | None = typer.Option(None, "--models", help="spotter kinds, comma-separated "
                                                              "(default: every registered kind)"),
    split: str | None = typer.Option(None, "--split", help="loso (default) or holdout"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="existing Ray cluster"),
    cfg=None,
) -> None:
    """Train and cross-validate several spotters on the same folds; one table of their STR figures."""
    from flows.compare import compare

    out = compare(dataset, _home(), cfg)
    print_table(out["columns"], out["rows"], title=f"compare {dataset} ({out['run_id']})")
    print(f"report: {out['report']}")


@app.command("spotters")
@reports_errors
def spotters_cmd(fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """List the registered spotter kinds."""
    from models.spotters import spotters

    print_table(["kind", "input", "description"],
                [(s.kind, s.input_table, s.description) for s in spotters().values()], fmt)


def _home() -> str:
    from flows.common import workspace

    return workspace().home
