"""Shared test fixtures: isolated workspaces and one Prefect home, Ray and Dask per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# One Prefect database for the whole run (migrations are slow the first time), outside any workspace.
os.environ.setdefault("PREFECT_HOME", str(Path(tempfile.gettempdir()) / "megc-test-prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MEGC_RAY_TMP", str(Path(tempfile.gettempdir()) / "megc-test-ray"))


@pytest.fixture
def ws(tmp_path):
    """A fresh, empty workspace."""
    from storage.workspace import Workspace

    return Workspace(tmp_path / "home").ensure()


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray shared by every test that needs it."""
    import ray

    from flows.runtime import ray_init

    ray_init(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def dask_local():
    """A real Dask LocalCluster (2 worker processes) shared by the session."""
    from flows.runtime import dask_client

    with dask_client(workers=2) as client:
        yield client
