"""Spotting post-processing on hand-made curves; the spot flow on Ray actors, qc rows and the STR export."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import torch

from tasks.spot_post import PostConfig, majority_class, postprocess_video, smooth, spot_intervals

CLASSES = ["negative", "positive", "surprise"]


def _curve() -> np.ndarray:
    s = np.zeros(100)
    s[20:26] = 1.0   # smoothed peak 1.0 at 23
    s[35:41] = 0.8   # smoothed peak 0.8 at 38
    s[45:51] = 0.5   # smoothed peak 0.5 at 48, below the reference threshold
    return s


def test_smooth_is_the_reference_box_filter():
    s = _curve()
    sm = smooth(s, 6)
    # window [x-3, x+3) for x in 3..96, raw values kept at the edges
    assert np.allclose([sm[23], sm[22], sm[24], sm[38]], [1.0, 5 / 6, 5 / 6, 0.8])
    assert sm[:3].tolist() == [0, 0, 0] and np.allclose(sm[97:], s[97:])
    assert np.isclose(sm.sum(), 6 * 1.0 + 6 * 0.8 + 6 * 0.5)


def test_reference_post_processing_exact():
    s = _curve()
    # mean 13.8/100 = 0.138, T = 0.138 + 0.55 * 0.862 = 0.612: peaks 23 and 38 only
    ivs = spot_intervals(s, 3, PostConfig())
    assert [(iv["onset"], iv["offset"], iv["peak"]) for iv in ivs] == [(20, 26, 23), (35, 41, 38)]
    assert [round(iv["score"], 6) for iv in ivs] == [1.0, 0.8]
    wide = spot_intervals(s, 3, PostConfig(half_width_factor=2.0), n_frames=28)
    assert (wide[0]["onset"], wide[0]["offset"]) == (17, 27)  # clipped to the last frame


def test_megc_post_processing_exact():
    s = _curve()
    # median and MAD are 0, so every peak above 0 counts (the reference threshold drops the 0.5 one)
    ivs = spot_intervals(s, 3, PostConfig(method="megc"))
    assert [(iv["onset"], iv["offset"]) for iv in ivs] == [(20, 26), (35, 41), (45, 51)]
    shifted = spot_intervals(s, 3, PostConfig(method="megc", shift_factor=0.5))  # centre k'/2 = 2 frames later
    assert [(iv["onset"], iv["offset"]) for iv in shifted] == [(22, 28), (37, 43), (47, 53)]
    s2 = np.zeros(60)
    s2[20:26] = 1.0
    s2[29:35] = 0.9
    # h = 9: [16, 34] and [25, 43] overlap with IoU 10/28 > 0.3, so NMS keeps only the higher peak
    nms = spot_intervals(s2, 3, PostConfig(method="megc", half_width_factor=3.0, shift_factor=0.0))
    assert [(iv["onset"], iv["offset"]) for iv in nms] == [(14, 32)]
    loose = spot_intervals(s2, 3, PostConfig(method="megc", half_width_factor=3.0, shift_factor=0.0, nms_iou=1.0))
    assert len(loose) == 2


def test_emotion_is_majority_over_onset_to_peak():
    probs = np.tile([0.8, 0.1, 0.1], (100, 1))
    probs[20:22] = [0.1, 0.1, 0.8]
    probs[22] = [0.1, 0.8, 0.1]
    assert majority_class(probs, 23, 3) == 2  # frames 20, 21 -> surprise, 22 -> positive
    assert majority_class(probs, 0, 3) == 0   # empty window: the peak frame
    out = postprocess_video(np.arange(100), _curve(), probs, 100, 3, CLASSES, PostConfig())
    assert [(o["onset"], o["offset"], o["emotion"]) for o in out] == [(20, 26, "surprise"), (35, 41, "negative")]
    assert postprocess_video(np.zeros(0, int), np.zeros(0), np.zeros((0, 3)), 60, 3, CLASSES, PostConfig()) == []


def test_spot_flow_on_actors_matches_in_process(ws, ray_local):
    from tasks.synth.planted import plant_dataset

    from flows.spot import export_str, spot_flow
    from models.mean import MEAN, state_arrays
    from models.mean_actors import score_shard
    from models.registry import load_mean, save_model
    from tasks.mean_data import iter_shard, shard_index

    plant_dataset(ws, subjects=2, n_frames=120, mes_per_video=2)
    videos = ws.read("videos", dataset="planted").to_pylist()
    short = {**videos[0], "subject": "s03", "video": "s03_1", "n_frames": 3, "path": "/planted/s03_1"}
    empty = {**videos[0], "subject": "s04", "video": "s04_1", "n_frames": 200, "path": "/planted/s04_1"}
    ws.replace("videos", videos + [short, empty], dataset="planted")
    torch.manual_seed(0)
    final, fold = MEAN(3), MEAN(3)
    card = {"classes": CLASSES, "k": 3, "k_prime": 5, "kind": "mean",
            "folds": [{"fold": "fold00", "heldout_subjects": ["s01"], "k_prime": 5}]}
    save_model(ws, "tiny", state_arrays(final), card, {"fold00": state_arrays(fold)})

    out = spot_flow("planted", "tiny", str(ws.root), run_id="spot-test", n_actors=2)
    assert out["run_id"] == "spot-test" and out["n_videos"] == 2 and out["n_qc"] == 2
    # cross-validated: s01 scored by fold00, s02 (in no fold) by the final model; equal to in-process scoring
    for shard in shard_index(ws, "planted"):
        model, _ = load_mean(ws, "tiny", fold="fold00" if shard.subject == "s01" else None, device="cpu")
        frames, scores, probs = score_shard(model, shard.path, iter_shard)
        t = ws.read("frame_scores", run_id="spot-test", dataset="planted", video=shard.video).sort_by("frame")
        assert t.column("frame").to_pylist() == frames.tolist()
        np.testing.assert_allclose(t.column("score").to_numpy(), scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.array(t.column("probs").to_pylist()), probs, rtol=1e-5, atol=1e-6)
    qc = {r["video"]: r["reason"] for r in ws.read("qc", dataset="planted").to_pylist()}
    assert "too short" in qc["s03_1"] and "no feature rows" in qc["s04_1"]
    preds = ws.read("predictions", run_id="spot-test").to_pylist()
    assert preds and {p["video"] for p in preds} <= {"s01_1", "s02_1"} and all(p["model"] == "tiny" for p in preds)
    assert out["scores"] is not None and "planted/megc2025" in out["scores"]

    # a re-run with the same id skips the stored shards and gives the same predictions
    again = spot_flow("planted", "tiny", str(ws.root), run_id="spot-test", n_actors=1)
    assert again["n_predictions"] == len(preds)

    path = export_str(ws, "spot-test", ws.root / "str.csv", frame_numbering="dataset")
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["subject", "video", "onset", "offset", "emotion"]
    expected = sorted((p["subject"], p["video"], p["onset"] + 1, p["offset"] + 1, p["emotion"]) for p in preds)
    assert sorted((r[0], r[1], int(r[2]), int(r[3]), r[4]) for r in rows[1:]) == expected
    megc = list(csv.reader(export_str(ws, "spot-test", ws.root / "m.csv").open()))
    assert sorted(int(r[2]) for r in megc[1:]) == sorted(p["onset"] for p in preds)

    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["--home", str(ws.root), "export", "str", "--run", "spot-test", "--out",
                              str(ws.root / "cli.csv")])
    assert res.exit_code == 0, res.output
    assert (ws.root / "cli.csv").read_text() == (ws.root / "m.csv").read_text()
    res = runner.invoke(app, ["--home", str(ws.root), "export", "str", "--run", "nope"])
    assert res.exit_code == 2 and "no predictions for run 'nope'" in res.output
    res = runner.invoke(app, ["--home", str(ws.root), "models", "--format", "json"])
    assert res.exit_code == 0 and '"name": "tiny"' in res.output


def test_post_config_round_trips_through_overrides():
    from storage.config import apply_overrides

    from flows.spot import SpotConfig

    cfg = apply_overrides(SpotConfig(), {"post.method": "megc", "post.p": "0.6"})
    assert dataclasses.asdict(cfg)["post"]["method"] == "megc" and cfg.post.p == 0.6


def test_mean_k_prime_follows_the_video_frame_rate():
    """A MEAN trained at 30 fps (k' = 6 frames = 0.2 s) spots a 200 fps video with k' = 40 frames (0.2 s)."""
    from flows.spot import video_k_prime

    card = {"fps": [30.0], "k_prime": 6}
    assert video_k_prime(card, 6, 200.0) == 40 and video_k_prime(card, 6, 30.0) == 6
    assert video_k_prime(card, 6, None) == 6 and video_k_prime({"fps": [25.0, 30.0]}, 6, 200.0) == 6
