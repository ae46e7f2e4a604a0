"""Spotters of every kind through the same flows: train (Ray, LOSO), spot (Ray actors, frame_scores,
post-processing, predictions, scoring), compare (one table from `metrics`), on a real preprocessed dataset."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, dask_local):
    """The tiny synthetic preset (3 subjects, 7 s at 30 fps), ingested and preprocessed once for the module."""
    from flows.preprocess import preprocess_flow
    from storage.workspace import Workspace
    from tasks.synth import make_dataset

    ws = Workspace(tmp_path_factory.mktemp("spotters") / "home").ensure()
    name = make_dataset(ws, "tiny")
    preprocess_flow(name, ws.home, dask_address=dask_local.scheduler.address)
    return ws, name


@pytest.fixture(scope="module")
def flow_peaks_run(tiny, ray_local):
    """flow-peaks trained LOSO on the tiny dataset (model 'fp'), then spotted cross-validated."""
    from flows.train import train_flow

    ws, ds = tiny
    return train_flow(ds, ws.home, kind="flow-peaks", name="fp")


def test_registry_lists_every_kind():
    from models.spotters import get_spotter, spotters
    from storage.errors import InputError

    kinds = spotters()
    assert {"mean", "flow-peaks", "roi-tcn"} <= set(kinds)
    assert kinds["mean"].input_table == "features" and kinds["flow-peaks"].input_table == "roi_series"
    with pytest.raises(InputError, match="unknown spotter kind 'nope'"):
        get_spotter("nope")


def test_flow_peaks_trains_spots_and_scores_through_the_flows(tiny, flow_peaks_run):
    from flows.spot import spot_flow
    from models.registry import load_card

    ws, ds = tiny
    out = flow_peaks_run
    card = load_card(ws, "fp")
    subjects = sorted({r[0] for r in ws.sql("SELECT DISTINCT subject FROM videos WHERE dataset = ?", [ds])[1]})
    assert card["kind"] == "flow-peaks" and [f["heldout_subjects"] for f in card["folds"]] == [[s] for s in subjects]
    assert all(np.isfinite(f["threshold"]) for f in card["folds"]) and card["post"] == card["config"]["post"]
    spot = out["spot"]
    assert spot["kind"] == "flow-peaks" and spot["n_videos"] == len(subjects)
    # one frame_scores part per video: dense frames, the micro score and the macro head stored
    t = ws.read("frame_scores", run_id=spot["run_id"])
    n = dict(ws.sql("SELECT video, n_frames FROM videos WHERE dataset = ?", [ds])[1])
    assert t.num_rows == sum(n.values()) and t.column("macro").null_count == 0
    assert 0.0 <= float(np.min(t.column("score"))) and float(np.max(t.column("score"))) <= 1.0
    preds = ws.read("predictions", run_id=spot["run_id"]).to_pylist()
    assert all(0 <= p["onset"] <= p["offset"] < n[p["video"]] for p in preds)
    assert set(spot["scores"]) >= {f"{ds}/megc2025", f"{ds}/strict"}
    # post-processing again from the stored scores: same videos, no new frame scores
    again = spot_flow(ds, "fp", ws.home, scores_from=spot["run_id"])
    assert again["n_videos"] == spot["n_videos"]
    assert ws.read("frame_scores", run_id=again["run_id"]).num_rows == 0


def test_compare_writes_one_table_from_metrics(tiny, ray_local):
    from flows.compare import compare_flow

    ws, ds = tiny
    out = compare_flow(ds, ws.home, models=["flow-peaks", "roi-tcn"],
                       params={"roi-tcn": {"steps": 20, "inner_folds": 0}})
    rows = [dict(zip(out["columns"], r)) for r in out["rows"]]
    assert {(r["kind"], r["protocol"]) for r in rows} == {(k, p) for k in ("flow-peaks", "roi-tcn")
                                                          for p in ("megc2025", "strict")}
    strict = [r for r in rows if r["protocol"] == "strict"]
    assert strict[0]["tp"] + strict[0]["fn"] == strict[1]["tp"] + strict[1]["fn"] > 0  # same GT for both kinds
    for r in rows:
        f1 = 2 * r["tp"] / (2 * r["tp"] + r["fp"] + r["fn"]) if r["tp"] else 0.0
        assert r["spot_f1"] == pytest.approx(f1)
    _, stored = ws.sql("SELECT kind FROM comparisons WHERE compare_id = ? ORDER BY kind", [out["run_id"]])
    assert stored == [("flow-peaks",), ("roi-tcn",)]
    html = Path(out["report"]).read_text()
    assert "Spotter comparison" in html and (Path(out["report"]).parent / "compare.png").stat().st_size > 3000


def test_cli_train_and_spot_any_kind(tiny, flow_peaks_run):
    ws, ds = tiny
    megc = [str(VENV_BIN / "megc"), "--home", str(ws.root)]
    bad = subprocess.run([*megc, "train", "flow-peaks", ds, "--set", "params.nope=1"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "nope" in bad.stderr
    res = subprocess.run([*megc, "spot", ds, "--model", "fp", "--set", "n_actors=1"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["kind"] == "flow-peaks" and out["n_videos"] == 3
    run = json.loads((ws.root / "runs" / out["run_id"] / "run.json").read_text())
    assert run["config"]["n_actors"] == 1 and run["config"]["model_kind"] == "flow-peaks"


def test_frames_near_a_lost_face_are_never_spotted(tiny, flow_peaks_run):
    """A key frame without a face zeroes the scores within a second of it, notes the span in qc, and no
    predicted interval overlaps it (the stored frame scores are post-processed again)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from flows.spot import spot_flow

    ws, ds = tiny
    first = flow_peaks_run["spot"]["run_id"]
    preds = ws.read("predictions", run_id=first).to_pylist()
    assert preds, "flow-peaks found nothing to mask on the tiny dataset"
    target = preds[0]
    video, fps = target["video"], dict(ws.sql("SELECT video, fps FROM videos WHERE dataset = ?", [ds])[1])
    lost = (target["onset"] + target["offset"]) // 2
    lm = ws.read("landmarks", dataset=ds, video=video)
    detected = pc.not_equal(lm.column("frame"), pa.scalar(lost, pa.int64()))
    ws.replace("landmarks", lm.set_column(lm.schema.get_field_index("detected"), "detected", detected),
               dataset=ds, video=video)
    try:
        out = spot_flow(ds, "fp", ws.home, scores_from=first)
    finally:
        ws.replace("landmarks", lm, dataset=ds, video=video)  # the module's other tests see the face again
    margin = round(fps[video])
    for p in ws.read("predictions", run_id=out["run_id"], dataset=ds).to_pylist():
        if p["video"] == video:
            assert p["offset"] < lost - margin or p["onset"] > lost + margin, p
    qc = [r for r in ws.read("qc", dataset=ds, video=video).to_pylist() if r["stage"] == "spot"]
    assert any("face lost" in r["reason"] and r["frame"] == max(0, lost - margin) for r in qc), qc


def test_a_recognizer_gives_the_emotions(tiny, flow_peaks_run):
    """flow-peaks has no recognition: with recognizer=<a MEAN> each interval's emotion is the majority per-frame
    argmax of that MEAN's class probabilities over the interval; a recognizer of other classes is refused."""
    import torch

    from flows.spot import read_scores, spot_flow
    from models.mean import MEAN, state_arrays
    from models.registry import save_model
    from storage.errors import InputError

    ws, ds = tiny
    torch.manual_seed(3)
    card = {"kind": "mean", "classes": ["negative", "positive", "surprise"], "k": 3, "k_prime": 5, "folds": []}
    save_model(ws, "rand-mean", state_arrays(MEAN(3)), card)
    out = spot_flow(ds, "fp", ws.home, scores_from=flow_peaks_run["spot"]["run_id"], recognizer="rand-mean")
    n = dict(ws.sql("SELECT video, n_frames FROM videos WHERE dataset = ?", [ds])[1])
    preds = ws.read("predictions", run_id=out["run_id"], dataset=ds).to_pylist()
    assert preds
    for p in preds:
        probs = read_scores(ws, f"{out['run_id']}-recognizer", ds, p["video"], n[p["video"]])["probs"]
        votes = np.bincount(probs[p["onset"]:p["offset"] + 1].argmax(axis=1), minlength=3)
        assert p["emotion"] == card["classes"][int(votes.argmax())]
    save_model(ws, "rand-mean4", state_arrays(MEAN(4)), {**card, "classes": [*card["classes"], "others"]})
    with pytest.raises(InputError, match="must be the same"):
        spot_flow(ds, "fp", ws.home, scores_from=flow_peaks_run["spot"]["run_id"], recognizer="rand-mean4")
