"""The workspace at a URL: an S3-compatible bucket (moto's server on loopback) and a file:// URL.

Tables, run records and models go to the bucket through pyarrow's S3 filesystem; the catalog, reports and
caches stay in the local folder. The preprocess flow on a Dask LocalCluster writes the same rows to the
bucket as to a local folder, resumes from it, and `megc sql` reads it back.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid

import numpy as np
import pyarrow as pa
import pytest
from helpers.tables import sample_video as _video, table_rows
from helpers.services import VENV_BIN, free_port, make_small_dataset

from storage.errors import InputError, MegcError
from storage.workspace import Url, Workspace

AWS_ENV = {"AWS_ACCESS_KEY_ID": "megc-test", "AWS_SECRET_ACCESS_KEY": "megc-test-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3-compatible server on a free loopback port: (host:port, boto3 client)."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    try:
        yield f"127.0.0.1:{port}", client
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch, tmp_path):
    """A fresh bucket; yields (workspace URL, bucket name, boto3 client) with AWS_* and MEGC_CACHE_DIR set."""
    endpoint, client = s3_endpoint
    for k, v in AWS_ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("MEGC_CACHE_DIR", str(tmp_path / "cache"))
    name = f"megc-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    return f"s3://{name}/ws?endpoint_override={endpoint}&scheme=http", name, client


def _keys(client, bucket: str, prefix: str = "") -> list[str]:
    """Object keys in the bucket, listed by boto3 (independently of pyarrow), without the empty folder
    markers ('.../') that pyarrow leaves behind deletes."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []) if not o["Key"].endswith("/"))


def test_s3_tables_write_read_replace_delete(bucket):
    url, name, client = bucket
    ws = Workspace(url).ensure()
    assert ws.home == url and not ws.is_local
    assert str(ws.tables_dir) == f"s3://{name}/ws/tables" and isinstance(ws.tables_dir, Url)
    assert ws.root.parent.name == "cache" and ws.catalog_path.parent == ws.root  # local things: the cache

    _, rows = ws.sql("SELECT * FROM videos")
    assert rows == []
    ws.replace("videos", [_video("a", "v1"), _video("a", "v2")], dataset="a")
    ws.replace("videos", [_video("b", "w1", 99)], dataset="b")
    assert _keys(client, name, "ws/tables/videos/") == ["ws/tables/videos/dataset=a/part-0.parquet",
                                                        "ws/tables/videos/dataset=b/part-0.parquet"]
    _, rows = ws.sql("SELECT dataset, count(*), sum(n_frames) FROM videos GROUP BY 1 ORDER BY 1")
    assert rows == [("a", 2, 20), ("b", 1, 99)]
    ws.replace("videos", [_video("a", "v3", 5)], dataset="a")
    assert ws.read("videos", dataset="a").column("video").to_pylist() == ["v3"]

    # a replace that fails validation writes nothing: the previous rows stay
    bad = [_video("a", "v4"), {**_video("a", "v5"), "fps": "not a number"}]
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError)):
        ws.replace("videos", bad, dataset="a")
    with pytest.raises(MegcError, match="rows outside partition"):
        ws.replace("videos", [_video("b", "x")], dataset="a")
    assert ws.read("videos", dataset="a").column("video").to_pylist() == ["v3"]

    # a partition split by its other keys: stale leaf partitions are deleted after the new files are written
    qc = lambda v, n: [dict(dataset="d", video=v, frame=i, stage="decode", reason="ok") for i in range(n)]
    ws.replace("qc", qc("v/1", 3) + qc("v2", 2), dataset="d")
    assert ws.partitions("qc") == [{"dataset": "d", "video": "v/1"}, {"dataset": "d", "video": "v2"}]
    ws.replace("qc", qc("v3", 4), dataset="d")
    assert ws.partitions("qc", dataset="d") == [{"dataset": "d", "video": "v3"}]
    assert _keys(client, name, "ws/tables/qc/") == ["ws/tables/qc/dataset=d/video=v3/part-0.parquet"]

    # shard parts: written straight to their key, found by has_part, read in key order
    ws.write("qc", qc("v/1", 3), part="shard-00000000", dataset="d", video="v/1")
    dest = ws.write("qc", qc("v/1", 1), part="shard-00000100", dataset="d", video="v/1")
    assert dest == f"s3://{name}/ws/tables/qc/dataset=d/video=v%2F1/shard-00000100.parquet"
    assert ws.has_part("qc", "shard-00000000", dataset="d", video="v/1")
    assert not ws.has_part("qc", "shard-00000200", dataset="d", video="v/1")
    assert [f.name for f in ws.files("qc", dataset="d", video="v/1")] == ["shard-00000000.parquet",
                                                                           "shard-00000100.parquet"]
    assert ws.read("qc", dataset="d").num_rows == 8
    batches = list(ws.iter_batches("qc", columns=["frame"], batch_size=2, dataset="d", video="v/1"))
    assert [b.num_rows for b in batches] == [2, 1, 1]
    _, r = ws.sql("SELECT count(*) FROM qc WHERE video = ?", ["v/1"])
    assert r == [(4,)]
    _, r = ws.sql("SELECT count(*) FROM videos WHERE video = $v", {"v": "v3' OR '1'='1"})
    assert r == [(0,)]
    ws.delete("qc", dataset="d", video="v3")
    assert ws.partitions("qc") == [{"dataset": "d", "video": "v/1"}]
    ws.delete("qc", dataset="d")
    assert ws.read("qc").num_rows == 0 and ws.partitions("qc") == []
    assert _keys(client, name, "ws/tables/qc/dataset=d/video=") == []

    # typed empty tables, as in a local workspace
    cols, rows = ws.sql("SELECT * FROM intervals")
    assert rows == [] and cols[:3] == ["dataset", "subject", "video"]
    _, rows = ws.sql("SELECT typeof(aus), typeof(apex) FROM (SELECT * FROM intervals UNION ALL "
                     "SELECT 'd','s','v','i',0,NULL,1,'micro','positive',NULL,['AU12'],NULL,'f',1)")
    assert rows == [("VARCHAR[]", "BIGINT")]
    _, rows = ws.sql("SELECT typeof(mean_input) FROM (SELECT mean_input FROM features UNION ALL SELECT NULL)")
    assert rows == [("FLOAT[5292]",)]
    assert not list((ws.root / "tmp").iterdir())


def test_s3_runs_and_models_are_shared_through_the_bucket(bucket, tmp_path, monkeypatch):
    from models.registry import list_models, load_card, load_weights, save_model
    from storage.runs import new_run_id, record_run
    from tasks.report import _run_info

    url, name, client = bucket
    ws = Workspace(url).ensure()
    run_id = new_run_id("score")
    record_run(ws, run_id, "score", {"dataset": "d", "k": 3})
    w = {"a": np.arange(6, dtype=np.float32).reshape(2, 3)}
    save_model(ws, "m1", w, {"classes": ["x", "y"]}, folds={"f1": {"a": w["a"] + 1}, "f2": {"a": w["a"] + 2}})
    assert _keys(client, name, "ws/models/") == ["ws/models/m1/card.json", "ws/models/m1/folds/f1.safetensors",
                                                 "ws/models/m1/folds/f2.safetensors",
                                                 "ws/models/m1/model.safetensors"]

    # a second machine: same URL, its own local folder
    monkeypatch.setenv("MEGC_CACHE_DIR", str(tmp_path / "other-machine"))
    other = Workspace(url).ensure()
    assert other.root != ws.root and other.root.is_relative_to(tmp_path / "other-machine")
    assert _run_info(other, run_id)["config"] == {"dataset": "d", "k": 3}
    _, rows = other.sql("SELECT kind FROM runs WHERE run_id = ?", [run_id])
    assert rows == [("score",)]
    assert load_card(other, "m1")["classes"] == ["x", "y"] and [c["name"] for c in list_models(other)] == ["m1"]
    np.testing.assert_array_equal(load_weights(other, "m1", "f2")["a"], w["a"] + 2)

    # re-registering replaces the model: the fold it no longer has is gone
    save_model(other, "m1", {"a": w["a"] * 10}, {"classes": ["x"]}, folds={"f1": {"a": w["a"]}})
    np.testing.assert_array_equal(load_weights(ws, "m1")["a"], w["a"] * 10)
    with pytest.raises(MegcError, match="no weights file f2.safetensors for fold 'f2'"):
        load_weights(ws, "m1", "f2")
    with pytest.raises(MegcError, match=f"no model named 'nope' in s3://{name}/ws/models"):
        load_card(ws, "nope")

    # folders (e.g. LoRA adapters) go up from and come back to the local folder
    src = tmp_path / "adapter"
    (src / "sub").mkdir(parents=True)
    (src / "adapter_config.json").write_text('{"r": 8}')
    (src / "sub" / "w.bin").write_bytes(b"\x00\x01weights")
    ws.put_dir(src, "adapters", "lora1")
    got = other.fetch_dir("adapters", "lora1")
    assert got.is_relative_to(other.root)
    assert sorted(p.relative_to(got).as_posix() for p in got.rglob("*") if p.is_file()) == [
        "adapter_config.json", "sub/w.bin"]
    assert (got / "sub" / "w.bin").read_bytes() == b"\x00\x01weights"
    with pytest.raises(InputError, match=f"s3://{name}/ws/adapters/missing"):
        other.fetch_dir("adapters", "missing")


def test_bad_urls_are_named_in_errors(bucket, s3_endpoint):
    url, name, _ = bucket
    endpoint, _ = s3_endpoint
    with pytest.raises(InputError, match=r"s3://b/ws: cannot open the workspace URL .*bogus"):
        Workspace("s3://b/ws?bogus=1")
    with pytest.raises(InputError, match="needs an absolute path"):
        Workspace("file://relative/path")
    gone = Workspace(f"s3://no-such-bucket-{name}/ws?endpoint_override={endpoint}&scheme=http")
    with pytest.raises(MegcError, match=f"cannot write s3://no-such-bucket-{name}/ws/tables/videos/"):
        gone.replace("videos", [_video("a", "v1")], dataset="a")


def test_file_url_is_a_local_workspace(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    folder = tmp_path / "home"
    ws = Workspace(f"file://{folder}").ensure()
    assert ws.is_local and ws.root == folder and ws.tables_dir == folder / "tables"
    ws.replace("videos", [_video("a", "v1"), _video("a", "v2")], dataset="a")
    assert (folder / "tables" / "videos" / "dataset=a" / "part-0.parquet").is_file()
    assert Workspace(folder).read("videos").num_rows == 2
    res = CliRunner().invoke(app, ["--home", f"file://{folder}", "sql", "SELECT count(*) AS n FROM videos",
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"n": 2}]
    assert (folder / "catalog.duckdb").is_file()


@pytest.mark.slow
def test_preprocess_on_dask_into_a_bucket_matches_local(bucket, tmp_path):
    from flows.preprocess import preprocess_flow
    from flows.runtime import dask_client

    url, name, client = bucket
    remote, local = Workspace(url).ensure(), Workspace(tmp_path / "local").ensure()
    synth = tmp_path / "synth"
    ds = make_small_dataset(remote, synth)
    assert make_small_dataset(local, synth) == ds
    assert remote.read("videos", dataset=ds).num_rows == local.read("videos", dataset=ds).num_rows == 2

    # one LocalCluster for both runs, started here so its workers inherit the AWS_* variables
    with dask_client(workers=2) as dask:
        addr = dask.scheduler.address
        on_s3 = preprocess_flow(ds, url, shard_size=40, dask_address=addr)
        on_disk = preprocess_flow(ds, str(local.root), shard_size=40, dask_address=addr)
        assert on_s3["shards_run"] == on_disk["shards_run"] == 4 and not on_s3["failed"]
        assert on_s3["feature_rows"] == on_disk["feature_rows"] > 0
        for table in ("features", "roi_series", "landmarks", "qc"):
            assert table_rows(remote.read(table, dataset=ds)) == table_rows(local.read(table, dataset=ds)), table
        again = preprocess_flow(ds, url, shard_size=40, dask_address=addr)
        assert again["shards_run"] == 0 and again["shards_skipped"] == 4

    keys = _keys(client, name, "ws/")
    feats = [k for k in keys if k.startswith(f"ws/tables/features/dataset={ds}/")]
    assert len(feats) == 4 and all(k.endswith((".parquet",)) for k in feats)
    assert f"ws/runs/{on_s3['run_id']}/summary.json" in keys and f"ws/runs/{again['run_id']}/run.json" in keys
    assert not (remote.root / "tables").exists()  # nothing of the tables in the local folder

    env = {**os.environ, "MEGC_HOME": url}
    query = "SELECT count(*) AS n, count(DISTINCT video) AS videos FROM features WHERE dataset = '" + ds + "'"
    res = subprocess.run([str(VENV_BIN / "megc"), "sql", query, "--format", "json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [{"n": on_s3["feature_rows"], "videos": 2}]
