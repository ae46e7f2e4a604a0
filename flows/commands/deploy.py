"""CLI: `megc deploy` applies the operational deployments (nightly preprocess, retrain, batch-infer) to the Prefect
server named by PREFECT_API_URL."""

from __future__ import annotations

import typer

from flows.app import app
from flows.common import STATE, print_table, reports_errors, with_config


@app.command("deploy")
@reports_errors
@with_config("deployment.deploy:DeployConfig")
def deploy_cmd(
    pool: str | None = typer.Option(None, "--pool", help="process work pool (megc-process; created if missing)"),
    home: str | None = typer.Option(None, "--home", help="workspace the flows use (default: megc --home)"),
    dataset: str | None = typer.Option(None, "--dataset", help="dataset for the retrain and batch-infer flows"),
    model: str | None = typer.Option(None, "--model", help="model name (default mean-DATASET)"),
    dask_address: str | None = typer.Option(None, "--dask-address", help="tcp://HOST:PORT of a Dask scheduler"),
    ray_address: str | None = typer.Option(None, "--ray-address", help="HOST:PORT of a Ray cluster"),
    preprocess_cron: str | None = typer.Option(None, "--preprocess-cron", help="nightly preprocess ('0 2 * * *')"),
    retrain_cron: str | None = typer.Option(None, "--retrain-cron", help="retrain check ('0 * * * *')"),
    infer_cron: str | None = typer.Option(None, "--infer-cron", help="batch inference ('0 4 * * *')"),
    paused: bool = typer.Option(False, "--paused", help="create the schedules paused"),
    cfg=None,
) -> None:
    """Create the work pool and the scheduled deployments on the Prefect server at PREFECT_API_URL."""
    from deployment.deploy import apply_deployments
    from flows.ops import batch_infer, nightly_preprocess, retrain

    if not cfg.home and STATE["home"]:
        cfg.home = STATE["home"]
    ids = apply_deployments(cfg, {"nightly": nightly_preprocess, "retrain": retrain, "batch_infer": batch_infer})
    print_table(["deployment", "id"], sorted(ids.items()), title=f"pool {cfg.pool}")
    print(f"start a worker: prefect worker start --pool {cfg.pool}")
