"""CLI: `megc deploy` applies the operational deployments (nightly preprocess, retrain, batch-infer) to the Prefect
server named by PREFECT_API_URL."""

from __future__ import annotations

import typer

from flows.cli import app
from flows.common import STATE, build_config, print_table, reports_errors


@app.command("deploy")
@reports_errors
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
    config: str | None = typer.Option(None, "--config", help="YAML file of DeployConfig settings"),
    sets: list[str] | None = typer.Option(None, "--set", help="key=value setting, e.g. timezone=Europe/Paris "
                                          "(train/spot/preprocess overrides go in --config)"),
) -> None:
    """Create the work pool and the scheduled deployments on the Prefect server at PREFECT_API_URL."""
    from deployment.deploy import DeployConfig, apply_deployments

    cfg = build_config(DeployConfig, config, sets, pool=pool, home=home or STATE["home"], dataset=dataset,
                       model=model, dask_address=dask_address, ray_address=ray_address,
                       preprocess_cron=preprocess_cron, retrain_cron=retrain_cron, infer_cron=infer_cron,
                       paused=True if paused else None)
    ids = apply_deployments(cfg)
    print_table(["deployment", "id"], sorted(ids.items()), title=f"pool {cfg.pool}")
    print(f"start a worker: prefect worker start --pool {cfg.pool}")
