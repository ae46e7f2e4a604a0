"""The main job end to end on the tiny preset: every stage runs, the report and its figures are written."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_demo_tiny_end_to_end_and_rerun_reuses(ws):
    from flows.demo import demo_flow

    out = demo_flow(str(ws.root), preset="tiny", epochs_spot=2, epochs_rec=5)
    assert set(out["sub_runs"]) >= {"preprocess", "train", "spot", "spot_mean", "train_spotter", "vqa"}
    stages = ["synthesize + ingest", "preprocess", "train MEAN", "spot + recognize + score STR (MEAN)",
              "train roi-tcn", "spot + recognize + score STR (roi-tcn)", "VQA build", "VQA train",
              "VQA answer + score", "report"]
    assert list(out["timings"]) == stages
    assert out["timings"]["train MEAN"] > 0

    # STR under both protocols and VQA figures are stored under the sub-runs
    _, rows = ws.sql("SELECT protocol, name, value FROM metrics WHERE run_id IN (?, ?) AND dataset = 'overall' "
                     "AND name IN ('strs', 'spot_f1', 'average')", [out["sub_runs"]["spot"], out["sub_runs"]["vqa"]])
    got = {(p, n): v for p, n, v in rows}
    for proto in ("megc2025", "strict"):
        assert 0.0 <= got[(proto, "strs")] <= 1.0 and 0.0 <= got[(proto, "spot_f1")] <= 1.0
    assert 0.0 < got[("vqa", "average")] <= 1.0

    # the report: tables for both protocols and VQA, one score curve per spotted video, the stage timings
    html = (ws.root / "reports" / out["run_id"] / "report.html").read_text()
    md = (ws.root / "reports" / out["run_id"] / "report.md").read_text()
    for text in ("protocol: megc2025", "protocol: strict", "protocol: vqa", "VQA per question type",
                 "stage wall time"):
        assert text in html and text in md
    _, vids = ws.sql("SELECT DISTINCT video FROM frame_scores WHERE run_id = ?", [out["sub_runs"]["spot"]])
    pngs = sorted(p.name for p in (ws.root / "reports" / out["run_id"]).glob("curve_*.png"))
    assert len(pngs) == len(vids) > 0
    assert all((ws.root / "reports" / out["run_id"] / p).stat().st_size > 5000 for p in pngs)
    run = json.loads((ws.root / "runs" / out["run_id"] / "run.json").read_text())
    assert run["kind"] == "demo" and run["config"]["preset"] == "tiny"

    # a re-run reuses the data, the features and the trained model
    _, before = ws.sql("SELECT count(*) FROM features")
    again = demo_flow(str(ws.root), preset="tiny", epochs_spot=2, epochs_rec=5)
    assert again["timings"]["train MEAN"] == 0.0 and "train" not in again["sub_runs"]
    assert again["timings"]["train roi-tcn"] == 0.0 and "train_spotter" not in again["sub_runs"]
    assert ws.sql("SELECT count(*) FROM features")[1] == before
    assert again["dataset"] == out["dataset"] and again["run_id"] != out["run_id"]
