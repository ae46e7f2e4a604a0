"""Expert VQA engine on a small real-pixel dataset (helpers.mini_vqa): inputs (Dask), heads, answers, scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers.mini_vqa import make_mini

@pytest.fixture(scope="module")
def mini_ws(tmp_path_factory, dask_local):
    """A built mini dataset with its VQA items and expert heads trained on the train split."""
    from flows.vqa import vqa_build_flow, vqa_train_flow
    from storage.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("vqa") / "home").ensure()
    make_mini(ws, subjects=4, per_subject=3)
    built = vqa_build_flow("mini", str(ws.root), test_subjects=["s3"])
    trained = vqa_train_flow("mini", "expert", str(ws.root), dask_address=dask_local.scheduler.address)
    return ws, built, trained


def test_inputs_are_cached_pngs_with_estimated_apex(mini_ws, dask_local):
    import cv2

    from tasks.vqa_inputs import build_inputs

    ws, _, _ = mini_ws
    ivs = ws.read("intervals", dataset="mini").to_pylist()
    metas = build_inputs(ws, "mini", ivs, 8, dask_local)
    assert set(metas) == {iv["interval_id"] for iv in ivs}
    m = metas["s0_v0_1"]  # apex not annotated (k = 0): estimated from motion, inside the clip
    assert m["apex_source"] == "estimated" and 5 <= m["apex"] <= 9
    assert len(m["frames"]) == 8 and len(m["oao"]) == 3
    flow = cv2.imread(m["flow"])
    assert flow.shape == (128, 128, 3) and flow[..., :].max() > 100  # visible motion coded in value
    face = cv2.imread(m["frames"][0], cv2.IMREAD_GRAYSCALE)
    assert face.shape == (128, 128) and face.std() > 10
    # cached: the meta file is reused, the PNG is not rewritten
    before = Path(m["flow"]).stat().st_mtime_ns
    again = build_inputs(ws, "mini", ivs[:1], 8, None)
    assert again[ivs[0]["interval_id"]] == metas[ivs[0]["interval_id"]]
    assert Path(m["flow"]).stat().st_mtime_ns == before


def test_expert_trains_answers_and_scores(mini_ws, dask_local):
    from flows.vqa import vqa_answer_flow
    from models.expert import load_expert

    ws, built, trained = mini_ws
    assert built["test_subjects"] == ["s3"] and built["train"] > built["test"] > 0
    card = load_expert(ws, trained["model"]).card
    assert card["aus"] == ["AU1", "AU2", "AU4", "AU12"] and card["has_side"]
    assert (ws.root / "models" / trained["model"] / "model.safetensors").is_file()
    out = vqa_answer_flow("mini", "expert", str(ws.root), input_kind="oao", split="all",
                     dask_address=dask_local.scheduler.address)
    rows = ws.read("vqa_answers", run_id=out["run_id"], dataset="mini").to_pylist()
    assert len(rows) == built["items"]
    coarse = [r for r in rows if r["qtype"] == "coarse"]
    # brows up / brows down / mouth corners up are separable: the train subjects are answered right
    assert sum(r["answer"] == r["gt"] for r in coarse) >= len(coarse) - 1
    for r in rows:
        if r["qtype"] == "compound":
            assert r["answer"].startswith("The action unit") and "coarse expression class is" in r["answer"]
    s = out["scores"]
    assert 0.6 <= s["coarse"]["uf1"] <= 1.0 and 0.0 <= s["bleu"] <= 1.0 and s["missing"] == 0
    _, got = ws.sql("SELECT name, value FROM metrics WHERE run_id = ? AND protocol = 'vqa' AND dataset = 'overall'",
                    [out["run_id"]])
    assert dict(got)["coarse_uf1"] == pytest.approx(s["coarse"]["uf1"])
    assert dict(got)["average"] == pytest.approx(s["average"])


def test_export_writes_submission_rows(mini_ws, dask_local, tmp_path):
    from flows.vqa import export_vqa, vqa_answer_flow

    ws, built, _ = mini_ws
    out = vqa_answer_flow("mini", "expert", str(ws.root), input_kind="flow", dask_address=dask_local.scheduler.address)
    files = export_vqa(ws, out["run_id"], tmp_path)
    assert [f.name for f in files] == ["me_vqa_mini_test_pred.jsonl"]
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert len(rows) == built["test"] and all(set(r) == {"video_id", "video", "question", "answer"} for r in rows)
    assert all(r["answer"] for r in rows) and rows[0]["video"] == "s3_v0_1"


def test_cli_qwen_engine_with_hints_and_errors(mini_ws, dask_local, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app
    from helpers.tiny_qwen import build_tiny_qwen

    ws, built, _ = mini_ws
    vlm = build_tiny_qwen(tmp_path / "tiny")
    home = str(ws.root)
    run = CliRunner().invoke(app, ["--home", home, "vqa", "answer", "mini", "--engine", "qwen", "--vlm", str(vlm),
                                   "--input", "flow", "--hints", "--set", "use_ray=false", "--set",
                                   "max_new_tokens=4", "--set", f"dask_address={dask_local.scheduler.address}"])
    assert run.exit_code == 0, run.output
    out = json.loads(run.stdout[run.stdout.index("{"):])
    rows = ws.read("vqa_answers", run_id=out["run_id"], dataset="mini").to_pylist()
    assert len(rows) == built["test"] and {r["engine"] for r in rows} == {"qwen"}
    assert out["scores"]["n"] == built["test"]
    bad = CliRunner().invoke(app, ["--home", home, "vqa", "answer", "mini", "--engine", "qwen"])
    assert bad.exit_code == 2 and "needs --vlm" in bad.output
    wrong = CliRunner().invoke(app, ["--home", home, "vqa", "answer", "mini", "--engine", "qwen", "--vlm",
                                     str(tmp_path)])
    assert wrong.exit_code == 2 and "no config.json" in wrong.output
    exp = CliRunner().invoke(app, ["--home", home, "export", "vqa", "--run", out["run_id"], "--out",
                                   str(tmp_path / "sub")])
    assert exp.exit_code == 0 and (tmp_path / "sub" / "me_vqa_mini_test_pred.jsonl").is_file()


def test_expert_takes_coarse_from_a_registered_mean_and_constrains_fine(ws):
    import torch

    from models.expert import ExpertSettings, load_expert, save_expert, train_expert
    from models.mean import MEAN, state_arrays
    from models.registry import save_model

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(12, 183)).astype(np.float32)
    labels = [{"coarse": c, "fine": f, "aus": a, "side": None} for c, f, a in
              [("positive", "happiness", ["AU12"]), ("negative", "disgust", ["AU4"]),
               ("negative", "anger", ["AU4", "AU7"])] * 4]
    save_expert(ws, "ex", train_expert(feats, labels, ExpertSettings(steps=50)))
    torch.manual_seed(0)
    mean = MEAN(2)
    with torch.no_grad():  # a MEAN that always says its second class, "surprise"
        mean.rec.dense.weight.zero_()
        mean.rec.dense.bias.copy_(torch.tensor([0.0, 5.0]))
    save_model(ws, "mean-x", state_arrays(mean), {"classes": ["negative", "surprise"]})
    expert = load_expert(ws, "ex", "mean-x")
    preds = expert.predict(feats[:3], rng.random((3, 3, 42, 42)).astype(np.float32))
    assert [p["coarse"] for p in preds] == ["surprise"] * 3
    assert all(p["fine"] == "surprise" for p in preds)  # no trained fine label of that class: its default
    own = load_expert(ws, "ex").predict(feats)
    for p in own:
        assert {"positive": {"happiness"}, "negative": {"disgust", "anger"}}[p["coarse"]] >= {p["fine"]}
        assert p["aus"] and set(p["aus"]) <= {"AU4", "AU7", "AU12"}
    with pytest.raises(Exception, match="not a VQA expert"):
        load_expert(ws, "mean-x")
