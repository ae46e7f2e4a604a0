"""Deployments end to end: a real Prefect server on loopback, `megc deploy`, a process worker, and each operational
flow (nightly preprocess, retrain, batch-infer) run from its deployment on a tiny synthetic dataset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request

import pytest

from helpers.services import VENV_BIN, free_port, make_small_dataset, spawn, stop, wait_for

@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """A real Prefect server on a free loopback port with its own PREFECT_HOME; yields its env."""
    root = tmp_path_factory.mktemp("prefect")
    port = free_port()
    env = {"PREFECT_HOME": str(root / "home"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_WORKER_QUERY_SECONDS": "1",
           "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
    log = root / "server.log"
    proc = spawn([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                 log, env)
    try:
        wait_for(lambda: urllib.request.urlopen(env["PREFECT_API_URL"] + "/health", timeout=2).status == 200,
                 "prefect server", 180, proc, log)
        yield env
    finally:
        stop(proc)


@pytest.mark.slow
def test_megc_deploy_needs_a_server():
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    res = subprocess.run([str(VENV_BIN / "megc"), "deploy"], env={**env, "PREFECT_PROFILES_PATH": os.devnull},
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no Prefect server configured" in res.stderr


def test_megc_deploy_rejects_a_typo_in_nested_settings(tmp_path):
    """A misspelt train / spot / preprocess setting fails at `megc deploy`, not at 02:00 in the worker."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    for bad, key in (({"train": {"params": {"epochz_spot": 1}}}, "epochz_spot"),
                     ({"spot": {"post": {"pp": 0.5}}}, "pp"), ({"preprocess": {"flow": "optical"}}, "optical"),
                     ({"train": {"kind": "no-such-spotter"}}, "no-such-spotter")):
        cfg = tmp_path / "deploy.yaml"
        cfg.write_text(json.dumps(bad))
        res = subprocess.run([str(VENV_BIN / "megc"), "deploy", "--dataset", "d", "--config", str(cfg)],
                             env={**env, "PREFECT_PROFILES_PATH": os.devnull}, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 2 and key in res.stderr and "no Prefect server" not in res.stderr, res.stderr


@pytest.mark.slow
def test_deployments_run_on_a_process_worker(prefect_server, ws, tmp_path):
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.ops import batch_infer, ops_parts, recorded_manifest, retrain
    from models.registry import load_card
    from tasks.manifest import dataset_manifest

    ds = make_small_dataset(ws)
    model = f"mean-{ds}"
    cfg = tmp_path / "deploy.yaml"
    cfg.write_text(json.dumps({
        "preprocess": {"workers": 1},
        "train": {"split": "holdout", "params": {"epochs_spot": 1, "epochs_rec": 1}, "validate": False,
                  "evaluate": False},
        "spot": {"n_actors": 1, "post": {"p": 0.0}},
    }))  # JSON is YAML
    ray_tmp = tempfile.mkdtemp(prefix="megc-ray-", dir="/tmp")
    env = {**prefect_server, "MEGC_RAY_TMP": ray_tmp, "RAY_AUTH_MODE": "disabled"}
    res = subprocess.run([str(VENV_BIN / "megc"), "--home", str(ws.root), "deploy", "--dataset", ds, "--pool",
                          "megc-process", "--config", str(cfg), "--paused"], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ("nightly-preprocess/nightly", f"retrain/{ds}", f"batch-infer/{ds}"):
        assert name in res.stdout

    log = tmp_path / "worker.log"
    worker = spawn([str(VENV_BIN / "prefect"), "worker", "start", "--pool", "megc-process", "--type", "process",
                    "--limit", "1"], log, env)
    try:
        with temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}):
            def run(name: str):
                fr = run_deployment(name, timeout=600, poll_interval=1)
                assert fr.state.type == StateType.COMPLETED, (name, fr.state, log.read_text()[-3000:])
                return fr

            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:  # schedules exist (paused, so no cron run interferes)
                crons = {n: [s.schedule.cron for s in client.read_deployment_by_name(n).schedules]
                         for n in ("nightly-preprocess/nightly", f"retrain/{ds}", f"batch-infer/{ds}")}
                pool = client.read_work_pool("megc-process")
            assert crons == {"nightly-preprocess/nightly": ["0 2 * * *"], f"retrain/{ds}": ["0 * * * *"],
                             f"batch-infer/{ds}": ["0 4 * * *"]} and pool.type == "process"
            run("nightly-preprocess/nightly")
            (n_feat,), = ws.sql("SELECT count(*) FROM features WHERE dataset = ?", [ds])[1]
            videos = ws.read("videos", dataset=ds).num_rows
            assert n_feat > 0 and {p["video"] for p in ws.partitions("features", dataset=ds)} == \
                {v["video"] for v in ws.read("videos", dataset=ds).to_pylist()} and videos == 2

            run(f"retrain/{ds}")
            card = load_card(ws, model)
            manifest = dataset_manifest(ws, ds)
            assert card["split"] == "holdout" and card["config"]["params"]["epochs_rec"] == 1
            assert recorded_manifest(ws, model) == manifest["manifest_hash"]
            assert manifest["n_videos"] == 2 and manifest["n_intervals"] > 0

            run(f"batch-infer/{ds}")
            state = json.loads(next(ws.location(*ops_parts(model, "batch_infer")).glob("*.json")).read_text())
            preds = ws.read("predictions", run_id=state["run_id"], dataset=ds).to_pylist()
            assert preds and all(p["model"] == model for p in preds) and state["n_predictions"] == len(preds)
            assert sorted(state["videos"]) == sorted(p["video"] for p in ws.partitions("features", dataset=ds))

            # run again (in process, same server): nothing changed, so neither flow does any work
            again = retrain(ds, model, str(ws.root))
            assert again["status"] == "unchanged" and load_card(ws, model)["run_id"] == card["run_id"]
            inf = batch_infer(ds, model, str(ws.root))
            assert inf["status"] == "up-to-date" and inf["run_id"] == state["run_id"] and inf["new_videos"] == []
    finally:
        stop(worker)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    # a changed label changes the manifest, so the next hourly check retrains
    rows = ws.read("intervals", dataset=ds).to_pylist()
    rows[0]["emotion"] = "surprise" if rows[0]["emotion"] != "surprise" else "negative"
    ws.replace("intervals", rows, dataset=ds)
    assert dataset_manifest(ws, ds)["manifest_hash"] != recorded_manifest(ws, model)


def test_manifest_hash_follows_labelled_content_only(ws):
    from flows.ops import ingested_datasets
    from tasks.manifest import dataset_manifest

    video = {"dataset": "d", "subject": "s1", "video": "v1", "fps": 30.0, "n_frames": 90, "width": 320,
             "height": 240, "source_kind": "frames", "path": "/data/a/v1", "first_frame": 1, "labelled": True}
    iv = {"dataset": "d", "subject": "s1", "video": "v1", "interval_id": "v1_1", "onset": 10, "apex": 12,
          "offset": 20, "kind": "micro", "emotion": "negative", "emotion_fine": None, "aus": ["AU4"], "side": None,
          "source_file": "a.xlsx", "source_row": 2}
    ws.replace("videos", [video], dataset="d")
    ws.replace("intervals", [iv, {**iv, "interval_id": "v1_2", "onset": 40, "apex": None, "offset": 50}],
               dataset="d")
    ws.replace("videos", [{**video, "dataset": "other"}], dataset="other")
    first = dataset_manifest(ws, "d")
    assert (first["n_videos"], first["n_intervals"]) == (1, 2) and len(first["manifest_hash"]) == 64
    assert ingested_datasets(ws) == ["d", "other"]
    # moved files, re-exported annotation rows, another dataset's rows: same labelled content
    ws.replace("videos", [{**video, "path": "/mnt/b/v1"}], dataset="d")
    ws.replace("intervals", [{**iv, "interval_id": "v1_2", "onset": 40, "apex": None, "offset": 50},
                             {**iv, "source_file": "b.csv", "source_row": 9}], dataset="d")
    ws.replace("videos", [{**video, "dataset": "other", "n_frames": 5}], dataset="other")
    assert dataset_manifest(ws, "d") == first
    ws.replace("intervals", [iv, {**iv, "interval_id": "v1_2", "onset": 41, "apex": None, "offset": 50}],
               dataset="d")
    assert dataset_manifest(ws, "d")["manifest_hash"] != first["manifest_hash"]
    assert dataset_manifest(ws, "missing") == {**dataset_manifest(ws, "missing"), "n_videos": 0, "n_intervals": 0}
