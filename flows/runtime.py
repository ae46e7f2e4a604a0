"""Connections to the execution services: Prefect (temporary local server by default), Dask and Ray."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from collections.abc import Iterator


def prefect_defaults() -> None:
    """Environment defaults for Prefect runs on one machine; explicit user settings win."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")  # the console filter below hides Prefect's own
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # Prefect's log handlers must exist before the filter below attaches to them

    for handler in logging.getLogger().handlers:  # Prefect's console handler sits on the root logger
        if isinstance(handler, logging.StreamHandler) and not any(
                isinstance(f, _ConsoleFilter) for f in handler.filters):
            handler.addFilter(_ConsoleFilter())


class _ConsoleFilter(logging.Filter):
    """The console shows megc's own INFO lines and every warning, but not Prefect's run chatter or failure
    tracebacks (megc prints one line); under MEGC_DEBUG it shows everything. The API log keeps all of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if debug_enabled():
            return True
        if record.levelno >= logging.ERROR and (record.exc_info or str(record.msg).startswith("Finished in state")):
            return False
        return record.levelno >= logging.WARNING or _is_megc(record.pathname)


_SOURCE_ROOT = str(Path(__file__).resolve().parents[1])


def _is_megc(path: str) -> bool:
    return path.startswith(_SOURCE_ROOT) and "site-packages" not in path


def debug_enabled() -> bool:
    """True under --debug or MEGC_DEBUG=1: errors then show their traceback, logs show Prefect's own lines."""
    return os.environ.get("MEGC_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def dask_client(address: str | None = None, workers: int = 2, threads_per_worker: int = 1,
                memory_limit: str = "auto") -> Iterator["distributed.Client"]:  # noqa: F821
    """A Dask client: to the scheduler at `address` (else $MEGC_DASK_ADDRESS), else to a LocalCluster here."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # inherited by worker processes
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    address = address or os.environ.get("MEGC_DASK_ADDRESS") or None
    if address:
        with Client(address) as client:
            yield client
        return
    import dask

    # Dask's statistical profiler samples every worker thread each 10 ms; on the per-frame Python loop of
    # preprocessing that costs about a fifth of the throughput, so local workers run without it.
    with dask.config.set({"distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                         dashboard_address=":0", memory_limit=memory_limit) as cluster, Client(cluster) as client:
        yield client


def ray_init(address: str | None = None, num_cpus: int | None = None, temp_dir: str | Path | None = None) -> None:
    """Connect to the Ray cluster at `address` (else $MEGC_RAY_ADDRESS), else start a local Ray; idempotent."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    address = address or os.environ.get("MEGC_RAY_ADDRESS") or None
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    tmp = str(temp_dir or Path(os.environ.get("MEGC_RAY_TMP", "/tmp/megc-ray")))
    ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=tmp, log_to_driver=False,
             configure_logging=False)
