"""The ROI-series spotters (flow-peaks, roi-tcn) and their post-processing, on series made here.

A video is a per-region displacement signal (expressions as smooth bumps in one region, blinks in the eyes,
head motion common to every region, per-frame noise) turned into flow rows i -> i + k as the preprocessing
would store them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from models.spotters import flow_peaks, roi_tcn
from models.spotters.series import REGIONS, VALUE_COLUMNS, Labelled, VideoSeries, from_table
from models.spotters.decode import PeakPostConfig, choose_threshold, decode_intervals, match_counts

CLASSES = ["negative", "positive", "surprise", "others"]
R = {r: i for i, r in enumerate(REGIONS)}
MICRO_REGIONS = ("mouth_corner_l", "mouth_corner_r", "upper_lip", "chin", "brow_l", "nose")
EMOTION_OF = {"mouth_corner_l": "positive", "mouth_corner_r": "positive", "upper_lip": "negative",
              "chin": "negative", "brow_l": "surprise", "nose": "negative"}


def _bump(t: np.ndarray, on: float, off: float) -> np.ndarray:
    """0 outside [on, off], a smooth rise to 1 at the middle and back."""
    x = np.clip((t - on) / max(off - on, 1e-9), 0.0, 1.0)
    return np.sin(np.pi * x) ** 2


def make_video(fps: float, seconds: float, micros: list[tuple[float, float, str]],
               macros: list[tuple[float, float, str]] = (), blinks: list[tuple[float, float]] = (),
               seed: int = 0, micro_px: float = 1.0, macro_px: float = 5.0, noise: float = 0.1) -> Labelled:
    """A labelled video: micros / macros as (start s, duration s, region), blinks as (start s, duration s)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    k = max(1, int(round(0.1 * fps)))
    t = np.arange(n + k) / fps
    disp = np.zeros((n + k, len(REGIONS), 2))
    intervals = []
    for events, amp, kind in ((micros, micro_px, "micro"), (macros, macro_px, "macro")):
        for start, dur, region in events:
            direction = np.array([0.6, -0.8]) if kind == "micro" else np.array([-0.6, -0.8])
            disp[:, R[region]] += amp * _bump(t, start, start + dur)[:, None] * direction
            intervals.append((int(round(start * fps)), int(round((start + dur) * fps)) - 1, kind,
                              EMOTION_OF.get(region, "others")))
    evs = []
    for start, dur in blinks:
        for eye in ("eye_l", "eye_r"):
            disp[:, R[eye], 1] += 4.0 * _bump(t, start, start + dur)
        evs.append((int(round(start * fps)), int(round((start + dur) * fps)) - 1, "blink"))
    head = np.cumsum(rng.normal(0, 0.02, (n + k, 2)), axis=0)  # a slow random head drift, common to all
    disp += head[:, None, :] + rng.normal(0, noise, disp.shape)
    flow = disp[k:] - disp[:n]
    mag = np.hypot(flow[..., 0], flow[..., 1]) + np.abs(rng.normal(0, noise, (n, len(REGIONS))))
    series = np.concatenate([flow, mag[..., None]], axis=2).astype(np.float32)
    return Labelled(VideoSeries(series, float(fps), k), sorted(intervals), evs)


def random_video(seed: int, fps: float = 30.0, seconds: float = 30.0) -> Labelled:
    """A video with 4-6 micros in random regions, one macro-expression and a few blinks, well apart."""
    rng = np.random.default_rng(seed)
    slots = rng.permutation(np.arange(1.0, seconds - 2.0, 2.0))
    kinds = ["macro"] + ["micro"] * int(rng.integers(4, 7)) + ["blink"] * 3
    micros, macros, blinks = [], [], []
    for slot, kind in zip(slots, kinds):
        if kind == "micro":
            micros.append((slot, float(rng.uniform(0.25, 0.5)), str(rng.choice(MICRO_REGIONS))))
        elif kind == "macro":
            macros.append((slot, 1.8, str(rng.choice(MICRO_REGIONS))))
        else:
            blinks.append((slot, float(rng.uniform(0.15, 0.3))))
    return make_video(fps, seconds, micros, macros, blinks, seed=seed)


def _f1(spot, train: list[Labelled], test: list[Labelled]) -> tuple[float, int, int, int]:
    tp = fp = fn = 0
    for item in test:
        scores, th, post = spot(item)
        ivs = decode_intervals(scores, item.video.fps, th, post, CLASSES)
        a, b, c = match_counts([(d["onset"], d["offset"]) for d in ivs], item.micro())
        tp, fp, fn = tp + a, fp + b, fn + c
    return (2 * tp / (2 * tp + fp + fn) if tp else 0.0), tp, fp, fn


# --- series ---------------------------------------------------------------------------------------------


def test_from_table_fills_missing_rows_and_marks_them_invalid():
    n, fps = 10, 30.0
    frames = [0, 1, 2, 5, 6]
    cols = {"frame": pa.array(frames, pa.int64()), "k": pa.array([3] * 5, pa.int32())}
    for j, name in enumerate(VALUE_COLUMNS):
        cols[name] = pa.array([float(f * 100 + j) for f in frames], pa.float32())
    cols[VALUE_COLUMNS[0]] = pa.array([0.0, 1.0, float("nan"), 5.0, 6.0], pa.float32())
    v = from_table(pa.table(cols), n, fps)
    assert v.series.shape == (n, len(REGIONS), 3) and v.k == 3 and v.fps == 30.0
    assert v.valid.tolist() == [True, True, False, False, False, True, True, False, False, False]
    assert v.series[5, 0, 0] == 5.0 and v.series[5, 0, 1] == 501.0  # column 1 = first region's v
    assert v.series[6, 1, 2] == 600.0 + 5  # second region's mag is value column 5
    assert not v.series[2].any() and not v.series[9].any()


def test_from_table_rejects_frames_outside_the_video():
    cols = {"frame": pa.array([0, 12], pa.int64()), "k": pa.array([3, 3], pa.int32())}
    cols.update({c: pa.array([0.0, 0.0], pa.float32()) for c in VALUE_COLUMNS})
    with pytest.raises(Exception, match="frame 12 outside"):
        from_table(pa.table(cols), 10, 30.0)


# --- post-processing --------------------------------------------------------------------------------------


def test_decode_uses_boundary_heads_length_prior_macro_rule_and_majority_emotion():
    n, fps = 300, 30.0
    micro = np.zeros(n)
    micro[95:106] = np.hanning(13)[1:-1]  # peak at 100
    micro[200:211] = np.hanning(13)[1:-1]  # peak at 205, but inside a macro
    onset, offset = np.zeros(n), np.zeros(n)
    onset[94], offset[107] = 0.9, 0.8
    macro = np.zeros(n)
    macro[190:230] = 0.9
    probs = np.tile([0.1, 0.6, 0.2, 0.1], (n, 1))
    probs[94:99] = [0.7, 0.1, 0.1, 0.1]  # 5 frames negative, 9 positive over 94..107
    cfg = PeakPostConfig()
    scores = {"micro": micro, "macro": macro, "onset": onset, "offset": offset, "probs": probs}
    out = decode_intervals(scores, fps, 0.5, cfg, CLASSES)
    assert [(d["onset"], d["offset"], d["peak"], d["emotion"]) for d in out] == [(94, 107, 100, "positive")]
    # without boundary heads: edges where the score halves, then widened to micro_min_s (6 frames)
    del scores["onset"], scores["offset"]
    out = decode_intervals(scores, fps, 0.5, cfg, CLASSES)
    assert [(d["onset"], d["offset"]) for d in out] == [(97, 103)]
    cfg.macro_reject = 1.0
    assert [d["peak"] for d in decode_intervals(scores, fps, 0.5, cfg, CLASSES)] == [100, 205]
    # the length prior cuts a long boundary-head interval to micro_max_s (15 frames) around the peak
    long_on = np.zeros(n)
    long_on[88] = 0.9
    scores.update(onset=long_on, offset=offset)
    (d,) = decode_intervals(scores, fps, 0.5, PeakPostConfig(), CLASSES)
    assert d["offset"] - d["onset"] + 1 == 15 and d["onset"] <= 100 <= d["offset"]


def test_match_counts_is_one_to_one():
    assert match_counts([(10, 20), (11, 21)], [(10, 20)]) == (1, 1, 0)
    assert match_counts([(0, 100)], [(10, 20), (30, 40)]) == (0, 1, 2)
    assert match_counts([(30, 41), (10, 19)], [(10, 20), (30, 40)]) == (2, 0, 0)


def test_choose_threshold_maximises_f1_on_the_given_videos():
    n, fps = 400, 30.0
    micro = np.zeros(n)
    gt = []
    for c, h in ((50, 0.9), (150, 0.8), (250, 0.3), (350, 0.35)):  # two true peaks high, two false ones low
        micro[c - 5:c + 6] = h * np.hanning(13)[1:-1]
        if h > 0.5:
            gt.append((c - 5, c + 5))
    t = choose_threshold([({"micro": micro, "macro": np.zeros(n)}, fps, gt)], PeakPostConfig(), CLASSES)
    assert 0.35 < t <= 0.8


# --- flow-peaks -------------------------------------------------------------------------------------------


def test_flow_peaks_finds_bumps_at_the_right_frames_and_ignores_a_long_macro_bump():
    train = [random_video(s) for s in range(4)]
    post = PeakPostConfig()
    _, state = flow_peaks.fit(train, flow_peaks.FlowPeaksParams(), post, CLASSES)
    micros = [(3.0, 0.3, "mouth_corner_l"), (9.0, 0.4, "upper_lip"), (15.0, 0.25, "chin")]
    item = make_video(30.0, 24.0, micros, macros=[(19.0, 2.5, "mouth_corner_r")], blinks=[(6.0, 0.2)], seed=9)
    scores = flow_peaks.score({}, item.video, flow_peaks.FlowPeaksParams(), CLASSES)
    assert scores["micro"].shape == (item.video.n,) and scores["probs"].shape == (item.video.n, 4)
    assert np.all(scores["probs"][:, 3] == 1.0)  # no recognition model: all mass on 'others'
    out = decode_intervals(scores, 30.0, state["threshold"], post, CLASSES)
    got = [(d["onset"], d["offset"]) for d in out]
    tp, fp, fn = match_counts(got, item.micro())
    assert tp == 3 and fn == 0 and fp <= 1, (got, item.micro())
    assert not any(d["offset"] >= 19 * 30 and d["onset"] <= 21.5 * 30 for d in out)  # the macro bump
    assert not any(d["offset"] >= 6 * 30 and d["onset"] <= 6.2 * 30 for d in out)  # the blink


def test_invalid_frames_get_no_micro_score():
    item = make_video(30.0, 10.0, [(4.0, 0.3, "chin")], seed=1)
    item.video.valid = np.ones(item.video.n, bool)
    item.video.valid[110:140] = False
    s = flow_peaks.score({}, item.video, flow_peaks.FlowPeaksParams(), CLASSES)
    assert np.all(s["micro"][110:140] == 0.0) and s["micro"][120 - 10:120 + 10].max() == 0.0
    w, _ = roi_tcn.fit([item], roi_tcn.RoiTcnParams(steps=2, inner_folds=0), PeakPostConfig(), CLASSES)
    s = roi_tcn.score(w, item.video, roi_tcn.RoiTcnParams(), CLASSES)
    assert np.all(s["micro"][110:140] == 0.0) and s["micro"].max() > 0.0


@pytest.mark.parametrize("spotter", ["flow-peaks", "roi-tcn"])
def test_200_and_30_fps_give_intervals_of_the_same_duration_in_seconds(spotter):
    micros = [(2.0, 0.3, "chin"), (5.0, 0.45, "mouth_corner_l")]
    out = {}
    for fps in (30.0, 200.0):
        item = make_video(fps, 8.0, micros, seed=3)
        if spotter == "flow-peaks":
            scores = flow_peaks.score({}, item.video, flow_peaks.FlowPeaksParams(), CLASSES)
        else:
            p = roi_tcn.RoiTcnParams(steps=100, inner_folds=0, window_s=4.0)
            planted = [(s, 0.3 + 0.05 * (i % 3), ("chin", "mouth_corner_l")[i % 2])
                       for i, s in enumerate(range(1, 19, 2))]
            w, _ = roi_tcn.fit([make_video(30.0, 20.0, planted, seed=4)], p, PeakPostConfig(), CLASSES)
            scores = roi_tcn.score(w, item.video, p, CLASSES)
        ivs = decode_intervals(scores, fps, 0.2 * float(scores["micro"].max()), PeakPostConfig(), CLASSES)
        # the interval found around each planted micro (others are noise, which differs between the two rates)
        out[fps] = [[(d["onset"] / fps, (d["offset"] + 1) / fps) for d in ivs
                     if start - 0.2 <= d["peak"] / fps <= start + dur + 0.2] for start, dur, _ in micros]
    assert all(len(v) == 1 for v in out[30.0] + out[200.0]), out
    for ((a30, b30),), ((a200, b200),), (start, _, _) in zip(out[30.0], out[200.0], micros):
        assert abs((b30 - a30) - (b200 - a200)) <= 2 / 30 + 1e-9, out
        assert abs(a30 - a200) <= 2 / 30 + 1e-9 and abs(a30 - start) <= 0.1, out


def test_thresholds_come_from_training_videos_only():
    train = [random_video(s) for s in range(3)]
    scored = random_video(10)
    post = PeakPostConfig()
    p = flow_peaks.FlowPeaksParams()
    before = flow_peaks.fit(train, p, post, CLASSES)[1]["threshold"]
    scored.video.series *= 5.0  # the scored video changes a lot ...
    scored.video.series[100:130, R["chin"], :2] += 3.0
    assert flow_peaks.fit(train, p, post, CLASSES)[1]["threshold"] == before  # ... its threshold does not
    # the threshold does depend on what fit sees: train on other videos and it moves
    assert flow_peaks.fit([random_video(s, seconds=20.0) for s in (20, 21)], p, post, CLASSES)[1]["threshold"] != before
    tp = roi_tcn.RoiTcnParams(steps=30, inner_folds=2)
    w1, s1 = roi_tcn.fit(train, tp, post, CLASSES)
    scored.video.series[:] = 0.0
    w2, s2 = roi_tcn.fit(train, tp, post, CLASSES)
    assert s1["threshold"] == s2["threshold"] and all(np.array_equal(w1[k], w2[k]) for k in w1)


# --- learning ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spotter", ["flow-peaks", "roi-tcn"])
def test_spotter_learns_planted_micro_expressions_above_chance(spotter):
    train = [random_video(s) for s in range(6)]
    test = [random_video(s) for s in (100, 101)]
    post = PeakPostConfig()
    if spotter == "flow-peaks":
        p = flow_peaks.FlowPeaksParams()
        th = flow_peaks.fit(train, p, post, CLASSES)[1]["threshold"]
        spot = lambda it: (flow_peaks.score({}, it.video, p, CLASSES), th, post)  # noqa: E731
    else:
        p = roi_tcn.RoiTcnParams(steps=400, inner_folds=0)
        w, state = roi_tcn.fit(train, p, post, CLASSES)
        assert 5_000 < state["n_params"] < 60_000
        spot = lambda it: (roi_tcn.score(w, it.video, p, CLASSES), state["threshold"], post)  # noqa: E731
    f1, tp, fp, fn = _f1(spot, train, test)
    # chance: as many random 0.3 s intervals as there are micros hit one with IoU >= 0.5 about 1% of the time
    rng = np.random.default_rng(0)
    chance = []
    for it in test:
        starts = rng.integers(0, it.video.n - 9, size=len(it.micro()))
        chance.append(match_counts([(int(s), int(s) + 8) for s in starts], it.micro()))
    c_tp = sum(c[0] for c in chance)
    assert f1 >= 0.6 and tp > fp and tp > c_tp + 3, (f1, tp, fp, fn, c_tp)
