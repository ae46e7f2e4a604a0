"""Cluster mode: preprocess on an existing Dask scheduler (2 `dask worker` processes) and inference on an
existing Ray cluster (`ray start --head`) give the same Parquet rows as local mode."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers.tables import table_rows
from helpers.services import VENV_BIN, free_port, make_small_dataset, spawn, stop, wait_for

CLASSES = ["negative", "positive", "surprise"]


@pytest.fixture
def clusters(tmp_path):
    """A Dask scheduler with 2 workers and a one-node Ray cluster, all separate processes; stopped afterwards."""
    procs = []
    ray_tmp = tempfile.mkdtemp(prefix="megc-rayc-", dir="/tmp")  # short: Ray's socket paths have a length limit
    try:
        dport, rport = free_port(), free_port()
        dlog, rlog = tmp_path / "dask.log", tmp_path / "ray.log"
        procs.append(spawn([str(VENV_BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(dport),
                            "--dashboard-address", ":0", "--no-show"], dlog))
        address = f"tcp://127.0.0.1:{dport}"
        for _ in range(2):
            procs.append(spawn([str(VENV_BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                                "--host", "127.0.0.1", "--dashboard-address", ":0"], dlog))
        procs.append(spawn([str(VENV_BIN / "ray"), "start", "--head", "--block", "--port", str(rport),
                            "--node-ip-address", "127.0.0.1", "--num-cpus", "2", "--include-dashboard=false",
                            "--temp-dir", ray_tmp, "--disable-usage-stats"], rlog,
                           {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}))
        from distributed import Client

        def two_workers() -> bool:
            with Client(address, timeout=5) as c:
                return len(c.scheduler_info()["workers"]) == 2

        wait_for(two_workers, "dask scheduler with 2 workers", 120, procs[0], dlog)
        wait_for(lambda: list(Path(ray_tmp).glob("session_latest/logs/raylet.out")), "ray head", 120, procs[-1],
                 rlog)
        yield {"dask": address, "ray": f"127.0.0.1:{rport}"}
    finally:
        import ray

        ray.shutdown()
        stop(*procs)
        import psutil

        left = [p for p in psutil.process_iter(["cmdline"]) if ray_tmp in " ".join(p.info["cmdline"] or [])]
        for p in left:  # only processes of this test's own Ray (its unique temp dir is on their command line)
            p.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        assert not left, f"Ray processes outlived their process group: {left}"


@pytest.mark.slow
def test_cluster_mode_matches_local_mode(clusters, tmp_path, monkeypatch):
    import ray
    import torch
    from distributed import Client

    from flows.preprocess import preprocess_flow
    from flows.spot import spot_flow
    from models.mean import MEAN, state_arrays
    from models.registry import save_model
    from storage.workspace import Workspace

    local, remote = Workspace(tmp_path / "local").ensure(), Workspace(tmp_path / "remote").ensure()
    synth = tmp_path / "synth"
    ds = make_small_dataset(local, synth)
    assert make_small_dataset(remote, synth) == ds

    on_cluster = preprocess_flow(ds, str(remote.root), dask_address=clusters["dask"])
    with Client(clusters["dask"]) as c:  # the shards ran on the external scheduler
        prefixes = c.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert any(p.startswith("shard") for p in prefixes) and any(p.startswith("probe") for p in prefixes)
    on_local = preprocess_flow(ds, str(local.root), workers=2)
    assert on_cluster["feature_rows"] == on_local["feature_rows"] > 0
    for table in ("features", "landmarks", "roi_series", "qc"):
        assert table_rows(remote.read(table, dataset=ds)) == table_rows(local.read(table, dataset=ds)), table

    torch.manual_seed(0)
    weights = state_arrays(MEAN(3))
    k = int(local.read("features", columns=["k"], dataset=ds).column("k")[0].as_py())
    card = {"classes": CLASSES, "k": k, "k_prime": 5, "kind": "mean", "folds": []}
    for w in (local, remote):
        save_model(w, "rand", weights, card)
    spot = {"n_actors": 2, "post": {"p": 0.0}, "score": False}

    ray.shutdown()  # another test may have left a local Ray up in this process
    monkeypatch.setenv("MEGC_RAY_ADDRESS", clusters["ray"])  # cluster chosen by environment, not by argument
    out_c = spot_flow(ds, "rand", str(remote.root), run_id="spot-c", **spot)
    assert ray.get_runtime_context().gcs_address.endswith(":" + clusters["ray"].split(":")[1])
    ray.shutdown()
    monkeypatch.delenv("MEGC_RAY_ADDRESS")
    out_l = spot_flow(ds, "rand", str(local.root), run_id="spot-l", **spot)
    assert out_c["n_videos"] == out_l["n_videos"] == 2 and out_c["n_predictions"] == out_l["n_predictions"] > 0
    fs_c, fs_l = remote.read("frame_scores", run_id="spot-c"), local.read("frame_scores", run_id="spot-l")
    assert fs_c.num_rows == fs_l.num_rows > 0
    key = lambda t: np.lexsort((t.column("frame").to_numpy(), np.array(t.column("video").to_pylist())))
    a, b = fs_c.take(key(fs_c)), fs_l.take(key(fs_l))
    assert a.column("video").to_pylist() == b.column("video").to_pylist()
    assert a.column("frame").to_pylist() == b.column("frame").to_pylist()
    np.testing.assert_allclose(a.column("score").to_numpy(), b.column("score").to_numpy(), rtol=1e-5, atol=1e-6)
    assert table_rows(remote.read("predictions", run_id="spot-c"), ("run_id", "score")) == \
        table_rows(local.read("predictions", run_id="spot-l"), ("run_id", "score"))
