"""MEAN network, pseudo-labels, registry and LOSO training on Ray over planted features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.mean import KERAS_SPOT_PARAMS, MEAN, MeanTrainParams, predict, spot_param_count, train_recognition, \
    train_spotting
from tasks.pseudo_labels import balanced_sample, frame_labels, k_prime, recognition_frames
from tasks.synth.planted import BLOB_AT, plant_dataset

CLASSES = ("negative", "positive", "surprise")
def test_spot_param_count_matches_keras():
    # Keras: 3 streams (78+12)+(78+12)+(208+32) = 420, head conv 2808, dense 393 -> 3621
    model = MEAN(3)
    assert spot_param_count(model) == KERAS_SPOT_PARAMS == 3621
    s, logits = model(torch.zeros(5, 3, 42, 42))
    assert s.shape == (5,) and logits.shape == (5, 3)


def test_keras_equivalent_settings():
    torch.manual_seed(0)
    model = MEAN(3)
    for stream in model.streams():
        assert stream.bn.momentum == pytest.approx(0.01) and stream.bn.eps == pytest.approx(1e-3)
        assert torch.all(stream.conv.bias == 0)
    assert model.stream_u.conv.out_channels == 3 and model.stream_e.conv.out_channels == 8
    # Glorot uniform bound sqrt(6 / (fan_in + fan_out)) for the head conv: fan_in 14*25, fan_out 8*25
    bound = (6 / (14 * 25 + 8 * 25)) ** 0.5
    w = model.spot.conv.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert torch.all(model.spot.dense.bias == 0)
    expected = sum(1e-3 * s.conv.weight.pow(2).sum() for s in model.streams()) + 0.1 * w.pow(2).sum()
    assert model.l2_penalty("spot").item() == pytest.approx(expected.item(), rel=1e-6)
    assert model.l2_penalty("rec").item() == pytest.approx(0.1 * model.rec.conv.weight.pow(2).sum().item(), rel=1e-6)


def test_k_prime_and_frame_labels():
    # lengths (offset - onset) 10 and 13 -> N = 11.5 -> k' = int(12.5 / 2) = 6
    assert k_prime([(5, 15), (40, 53)]) == 6
    assert k_prime([(0, 2)]) == 1
    labels = frame_labels(np.arange(30), [(10, 12)], kp=3)
    # window [i, i+2] overlaps [10, 12] for i in 8..12
    assert np.flatnonzero(labels).tolist() == [8, 9, 10, 11, 12]
    idx = balanced_sample(np.r_[np.ones(3), np.zeros(100)], neg_ratio=5, seed=1)
    assert len(idx) == 18 and set(range(3)) <= set(idx.tolist())
    assert idx.tolist() == balanced_sample(np.r_[np.ones(3), np.zeros(100)], neg_ratio=5, seed=1).tolist()
    assert recognition_frames(10, 14, 20) == [10, 11, 12, 13]
    assert recognition_frames(10, None, 20) == [10, 11, 12, 13, 14]
    assert recognition_frames(10, 10, 20) == [10]


def test_training_loops_learn_in_process():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.3, (200, 3, 42, 42)).astype(np.float32)
    y = (np.arange(200) % 4 == 0).astype(np.float32)
    x[y > 0, :, 5:15, 5:15] = 0.95
    torch.manual_seed(0)
    model = MEAN(3)
    params = MeanTrainParams(epochs_spot=4, epochs_rec=10, seed=0)
    losses = train_spotting(model, x, y, params)
    assert losses[-1] < losses[0]
    s, _ = predict(model, x)
    # few steps with the reference's strong L2: small outputs, but positives must rank above negatives
    auc = float((s[y > 0][:, None] > s[y == 0][None, :]).mean())
    assert auc > 0.95 and s[y > 0].mean() > s[y == 0].mean() + 0.05
    cls = (np.arange(200) % 3).astype(np.int64)
    xr = rng.uniform(0, 0.3, (200, 3, 42, 42)).astype(np.float32)
    for c, (cy, cx) in enumerate(BLOB_AT.values()):
        xr[cls == c, :, cy - 3:cy + 3, cx - 3:cx + 3] = 0.95
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("rec.")}
    train_recognition(model, xr, cls, params)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # shared layers, BN stats and spot head frozen
    _, p = predict(model, xr)
    assert (p.argmax(1) == cls).mean() > 0.8


def test_registry_round_trip(ws):
    from models.mean import state_arrays
    from models.registry import fold_for_subject, list_models, load_mean, save_model

    torch.manual_seed(3)
    model = MEAN(3)
    card = {"classes": list(CLASSES), "k": 3, "k_prime": 6, "folds": [{"fold": "fold00", "heldout_subjects": ["a"]}]}
    save_model(ws, "m1", state_arrays(model), card, {"fold00": state_arrays(MEAN(3))})
    loaded, c = load_mean(ws, "m1")
    x = torch.rand(7, 3, 42, 42)
    model.eval()
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert c["name"] == "m1" and [m["name"] for m in list_models(ws)] == ["m1"]
    assert fold_for_subject(c, "a") == "fold00" and fold_for_subject(c, "b") is None
    fold_model, _ = load_mean(ws, "m1", fold="fold00")
    with torch.no_grad():
        assert not torch.equal(fold_model(x)[0], a[0])
    assert not any(ws.root.joinpath("models", "m1").rglob("*.pt"))
    from storage.errors import InputError

    with pytest.raises(InputError):
        load_mean(ws, "../etc")


def test_gather_reads_only_planned_rows(ws):
    from tasks.mean_data import gather, shard_index, spot_plan, micro_intervals

    plant_dataset(ws, subjects=2, n_frames=120, mes_per_video=1)
    shards = shard_index(ws, "planted")
    assert [s.subject for s in shards] == ["s01", "s02"] and len(shards[0].frames) == 117
    mes = micro_intervals(ws, "planted")
    plan = spot_plan(shards, mes, kp=6, neg_ratio=2, seed=0)
    x, y = gather(plan)
    assert x.shape[1:] == (3, 42, 42) and len(x) == len(y) == sum(len(p[1]) for p in plan)
    n_pos = int((y > 0).sum())
    assert n_pos > 0 and len(y) == 3 * n_pos
    # planted positives carry the blob (max near 0.95), negatives only noise (< 0.3)
    assert x[y > 0].max(axis=(1, 2, 3)).mean() > x[y == 0].max(axis=(1, 2, 3)).mean()


def test_loso_training_on_ray_learns(ws, ray_local):
    import pyarrow as pa

    from flows.train import train_flow
    from models.registry import list_models, load_card
    from tasks.score_str import score_str

    mes = plant_dataset(ws, subjects=3, n_frames=240, mes_per_video=3, seed=1)
    out = train_flow("planted", str(ws.root), params={"epochs_spot": 3, "epochs_rec": 5}, train_final=False,
                     name="loso")
    card = load_card(ws, "loso")
    assert [m["name"] for m in list_models(ws)] == ["loso"]
    assert [f["heldout_subjects"] for f in card["folds"]] == [["s01"], ["s02"], ["s03"]]
    # k' from the training subjects' MEs only
    for f in card["folds"]:
        train = [(m["onset"], m["offset"]) for m in mes if m["subject"] not in f["heldout_subjects"]]
        assert f["k_prime"] == k_prime(train)
        assert (ws.root / "models" / "loso" / "folds" / f"{f['fold']}.safetensors").is_file()
    assert card["k"] == 3 and card["classes"] == list(CLASSES) and card["split"] == "loso"
    assert card["training_data"]["n_micro"] == 9 and card["config"]["params"]["epochs_spot"] == 3

    spot = out["spot"]
    preds = ws.read("predictions", run_id=spot["run_id"]).to_pylist()
    learned = spot["scores"]["planted/megc2025"]["spotting"]["f1"]
    # chance: as many intervals of the same width at random places in the same videos
    rng = np.random.default_rng(0)
    gt = pa.Table.from_pylist([{k: m[k] for k in ("subject", "video", "onset", "offset", "emotion")} for m in mes])
    chance = []
    for _ in range(20):
        rand = []
        for p in preds:
            on = int(rng.integers(0, 240 - (p["offset"] - p["onset"])))
            rand.append({"subject": p["subject"], "video": p["video"], "onset": on,
                         "offset": on + p["offset"] - p["onset"], "emotion": p["emotion"]})
        chance.append(score_str(pa.Table.from_pylist(rand), gt)["spotting"]["f1"])
    assert learned >= 0.3 and learned > float(np.mean(chance)) + 0.25, (learned, chance)


def test_fold_splits():
    from tasks.stage_config import TrainConfig, split_folds
    from storage.errors import InputError

    subjects = ["a", "b", "c", "d", "e"]
    assert split_folds(subjects, TrainConfig()) == [(f"fold{i:02d}", [s]) for i, s in enumerate(subjects)]
    assert split_folds(subjects, TrainConfig(split="holdout")) == [("holdout", ["d", "e"])]  # ceil(25%), sorted
    assert split_folds(subjects, TrainConfig(split="holdout", holdout_fraction=0.5)) == [("holdout", ["c", "d", "e"])]
    assert split_folds(subjects, TrainConfig(split="holdout", holdout_subjects=["a"])) == [("holdout", ["a"])]
    for bad in (TrainConfig(split="holdout", holdout_subjects=["zz"]), TrainConfig(split="kfold")):
        with pytest.raises(InputError):
            split_folds(subjects, bad)
    with pytest.raises(InputError):
        split_folds(["a"], TrainConfig())
