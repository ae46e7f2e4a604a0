"""Workspace: atomic partitioned Parquet, catalog views, config loading and run records."""

from __future__ import annotations

import dataclasses
import json

import pyarrow as pa
import pytest

from helpers.tables import sample_video as _video
from storage.config import apply_overrides, config_hash, load_config
from storage.errors import InputError, MegcError
from storage.runs import new_run_id, record_metrics, record_run


def test_replace_is_per_dataset_and_catalog_sees_it(ws):
    ws.replace("videos", [_video("a", "v1"), _video("a", "v2")], dataset="a")
    ws.replace("videos", [_video("b", "w1", 99)], dataset="b")
    cols, rows = ws.sql("SELECT dataset, count(*), sum(n_frames) FROM videos GROUP BY 1 ORDER BY 1")
    assert rows == [("a", 2, 20), ("b", 1, 99)]
    ws.replace("videos", [_video("a", "v3", 5)], dataset="a")
    _, rows = ws.sql("SELECT dataset, video FROM videos ORDER BY 1, 2")
    assert rows == [("a", "v3"), ("b", "w1")]
    assert ws.catalog_path.exists()


def test_failed_replace_keeps_previous_rows(ws):
    ws.replace("videos", [_video("a", "v1")], dataset="a")
    bad = [_video("a", "v2"), {**_video("a", "v3"), "fps": "not a number"}]
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError)):
        ws.replace("videos", bad, dataset="a")
    with pytest.raises(MegcError, match="rows outside partition"):
        ws.replace("videos", [_video("b", "x")], dataset="a")
    assert ws.read("videos", dataset="a").column("video").to_pylist() == ["v1"]
    assert not list(ws.tmp_dir.iterdir())


def test_empty_tables_have_typed_views(ws):
    cols, rows = ws.sql("SELECT * FROM intervals")
    assert rows == [] and cols[:3] == ["dataset", "subject", "video"]
    _, rows = ws.sql("SELECT typeof(aus), typeof(apex) FROM (SELECT * FROM intervals UNION ALL "
                     "SELECT 'd','s','v','i',0,NULL,1,'micro','positive',NULL,['AU12'],NULL,'f',1)")
    assert rows == [("VARCHAR[]", "BIGINT")]


def test_shard_parts_and_partitions(ws):
    rows = [dict(dataset="d", video="v/1", frame=i, stage="decode", reason="ok") for i in range(3)]
    ws.write("qc", rows, part="shard-00000000", dataset="d", video="v/1")
    ws.write("qc", rows[:1], part="shard-00000100", dataset="d", video="v/1")
    assert ws.has_part("qc", "shard-00000000", dataset="d", video="v/1")
    assert not ws.has_part("qc", "shard-00000200", dataset="d", video="v/1")
    assert ws.partitions("qc") == [{"dataset": "d", "video": "v/1"}]
    assert ws.read("qc", dataset="d").num_rows == 4
    _, r = ws.sql("SELECT count(*) FROM qc WHERE video = ?", ["v/1"])
    assert r == [(4,)]
    ws.delete("qc", dataset="d")
    assert ws.read("qc").num_rows == 0


def test_sql_params_are_bound_not_pasted(ws):
    ws.replace("videos", [_video("a", "v1")], dataset="a")
    _, rows = ws.sql("SELECT count(*) FROM videos WHERE video = $v", {"v": "v1' OR '1'='1"})
    assert rows == [(0,)]


@dataclasses.dataclass
class _Inner:
    method: str = "dis"
    k: int = 3


@dataclasses.dataclass
class _Cfg:
    workers: int = 2
    force: bool = False
    flow: _Inner = dataclasses.field(default_factory=_Inner)


def test_config_layers_and_errors(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("workers: 4\nflow:\n  method: tvl1\n")
    cfg = load_config(_Cfg, y, {"flow.k": "20", "force": "true"})
    assert cfg == _Cfg(workers=4, force=True, flow=_Inner("tvl1", 20))
    assert config_hash(cfg) != config_hash(_Cfg())
    with pytest.raises(InputError, match="unknown setting 'flw'"):
        apply_overrides(_Cfg(), {"flw": 1})
    with pytest.raises(InputError, match="'x' is not a valid int"):
        apply_overrides(_Cfg(), {"workers": "x"})
    with pytest.raises(InputError, match="config file not found"):
        load_config(_Cfg, tmp_path / "missing.yaml")


def test_run_record_and_metrics(ws):
    run_id = new_run_id("score")
    record_run(ws, run_id, "score", _Cfg())
    record_metrics(ws, run_id, [dict(dataset="d", protocol="strict", name="strs", value=0.25),
                                dict(dataset="d", protocol="megc2025", name="analysis_f1", value=None)])
    _, rows = ws.sql("SELECT r.kind, m.name, m.value FROM runs r JOIN metrics m USING (run_id) ORDER BY 2")
    assert rows == [("score", "analysis_f1", None), ("score", "strs", 0.25)]
    saved = json.loads((ws.root / "runs" / run_id / "run.json").read_text())
    assert saved["config"]["flow"]["method"] == "dis"
