"""Prefect deployments of the operational flows (flows/ops.py) on a process work pool.

The deployments use module-path entrypoints (flows.ops.<flow>), so any worker whose Python environment has megc
installed can run them: `prefect worker start --pool megc-process`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from storage.config import to_dict
from storage.errors import MegcError
from storage.workspace import resolve_home
from tasks.preprocess_shard import PreprocessConfig
from tasks.stage_config import SpotConfig, TrainConfig

DEFAULT_POOL = "megc-process"


@dataclasses.dataclass
class DeployConfig:
    """What `megc deploy` applies: pool, workspace, dataset/model, cluster addresses and schedules."""

    pool: str = DEFAULT_POOL
    home: str = ""                          # workspace folder (stored absolute) or URL; default $MEGC_HOME
    dataset: str = ""                       # retrain + batch-infer need one; nightly preprocess covers every dataset
    model: str = ""                         # default mean-<dataset> (train mean's default name)
    dask_address: str = ""                  # tcp://HOST:PORT of a Dask scheduler; empty = LocalCluster per run
    ray_address: str = ""                   # HOST:PORT of a Ray cluster; empty = local Ray per run
    preprocess_cron: str = "0 2 * * *"      # nightly at 02:00
    retrain_cron: str = "0 * * * *"         # hourly check; trains only when labelled content changed
    infer_cron: str = "0 4 * * *"           # nightly at 04:00, after preprocessing
    timezone: str = "UTC"
    paused: bool = False                    # create the schedules paused
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)   # retrain's settings (kind, params...)
    spot: SpotConfig = dataclasses.field(default_factory=SpotConfig)      # batch-infer's settings
    preprocess: PreprocessConfig = dataclasses.field(default_factory=PreprocessConfig)  # nightly's settings

    def check(self) -> DeployConfig:
        """Raise MegcError on settings that could only fail later, on a worker."""
        if self.model and not self.dataset:
            raise MegcError("--model needs --dataset (retrain and batch-infer are per dataset)")
        return self


def api_url() -> str:
    """The Prefect server the deployments go to (PREFECT_API_URL), else a clear error."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise MegcError("no Prefect server configured: set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api) to a "
                        "running `prefect server start`, or `prefect config set PREFECT_API_URL=...`")
    return str(url)


def ensure_pool(name: str) -> bool:
    """Create the process work pool `name` unless it exists; True when it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(
                name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template(),
                description="megc batch flows (nightly preprocess, retrain, batch inference)"))
            return True
    if pool.type != "process":
        raise MegcError(f"work pool {name!r} exists with type {pool.type!r}; megc deployments need a process pool")
    return False


def build_deployments(cfg: DeployConfig, flows: dict[str, Any]) -> list:
    """The RunnerDeployments for `cfg` (nightly preprocess always; retrain and batch-infer with a dataset) of the
    ops flows given as {"nightly": flow, "retrain": flow, "batch_infer": flow} (flows.ops)."""
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType

    home = resolve_home(cfg.home or None)
    sched = lambda cron: [CronSchedule(cron=cron, timezone=cfg.timezone)]
    common: dict[str, Any] = {"entrypoint_type": EntrypointType.MODULE_PATH, "paused": cfg.paused,
                              "work_pool_name": cfg.pool, "tags": ["megc"],
                              "concurrency_limit": 1}  # a slow run and its next scheduled one never overlap
    out = [flows["nightly"].to_deployment(
        "nightly", schedules=sched(cfg.preprocess_cron),
        parameters={"home": home, "dask_address": cfg.dask_address, "preprocess": to_dict(cfg.preprocess)},
        description="Incremental preprocessing of every ingested dataset", **common)]
    if cfg.dataset:
        model = cfg.model or cfg.train.name or f"{cfg.train.kind}-{cfg.dataset}"
        out.append(flows["retrain"].to_deployment(
            cfg.dataset, schedules=sched(cfg.retrain_cron),
            parameters={"dataset": cfg.dataset, "model_name": model, "home": home, "ray_address": cfg.ray_address,
                        "dask_address": cfg.dask_address, "train": to_dict(cfg.train),
                        "preprocess": to_dict(cfg.preprocess)},
            description=f"Retrain {model} when the labelled content of {cfg.dataset} changes", **common))
        out.append(flows["batch_infer"].to_deployment(
            cfg.dataset, schedules=sched(cfg.infer_cron),
            parameters={"dataset": cfg.dataset, "model_name": model, "home": home, "ray_address": cfg.ray_address,
                        "spot": to_dict(cfg.spot)},
            description=f"Spot + recognize new videos of {cfg.dataset} with {model}", **common))
    return out


def apply_deployments(cfg: DeployConfig, flows: dict[str, Any]) -> dict[str, str]:
    """Create/update the pool and the deployments on the server at PREFECT_API_URL; {'flow/name': id}."""
    api_url()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    ensure_pool(cfg.pool)
    out = {}
    for d in build_deployments(cfg, flows):
        out[f"{d.flow_name}/{d.name}"] = str(d.apply(work_pool_name=cfg.pool))
    return out
