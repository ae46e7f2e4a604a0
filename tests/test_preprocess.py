"""Preprocess: flow kernels, features, shard planning, face tracking, and the Prefect+Dask flow end to end."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tasks.preprocess_shard import PreprocessConfig, probe_video, run_shard
from tasks.shards import Shard, needed_frames, plan_ranges, resolve_k

from helpers.frames import N, frame_rows, make_frames, video_row

@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict:
    """Frame folders shared by the tests: a plain face, a 4x larger one, one with a corrupt frame file."""
    root = tmp_path_factory.mktemp("clips")
    out = {"a": (root / "a", make_frames(root / "a")),
           "big": (root / "big", make_frames(root / "big", n=12, scale=4))}
    bad = root / "bad"
    files = make_frames(bad)
    (bad / files[10]).write_bytes(b"not a jpeg at all")
    out["bad"] = (bad, files)
    # A video file cut short: 40 frames declared, the stream breaks partway.
    avi = root / "broken.avi"
    w = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 256), False)
    for f in out["a"][1]:
        w.write(cv2.imread(str(root / "a" / f), cv2.IMREAD_GRAYSCALE))
    w.release()
    data = avi.read_bytes()
    avi.write_bytes(data[: len(data) // 2])
    out["broken"] = (avi, [])
    return out


# ---- kernels ---------------------------------------------------------------------------------------------

def _textured(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur((rng.random((128, 128)) * 255).astype(np.uint8), (0, 0), 2.0)


@pytest.mark.parametrize("method", ["dis", "farneback", "tvl1"])
def test_compute_flow_recovers_a_known_shift(method):
    from tasks.optical_flow import compute_flow

    a = _textured()
    m = np.float32([[1, 0, 2.0], [0, 1, -1.0]])
    b = cv2.warpAffine(a, m, (128, 128), borderMode=cv2.BORDER_REFLECT)
    f = compute_flow(a, b, method)
    assert f.shape == (128, 128, 2) and f.dtype == np.float32
    inner = f[20:108, 20:108].reshape(-1, 2)
    assert np.allclose(np.median(inner, 0), [2.0, -1.0], atol=0.25)


def test_strain_and_head_motion_removal():
    from tasks.optical_flow import remove_head_motion, strain

    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    shift = np.dstack([np.full_like(xx, 3.0), np.full_like(xx, -2.0)])
    zero = np.zeros_like(xx)
    assert np.allclose(strain(shift[..., 0].copy(), shift[..., 1].copy()), 0.0)
    assert np.allclose(strain(0.1 * xx, zero), 0.1, atol=1e-5)  # u_x = 0.1 -> e = 0.1
    assert np.allclose(strain(0.2 * yy, zero), np.sqrt(0.5) * 0.2, atol=1e-5)  # u_y = 0.2 -> sqrt(0.5) * 0.2
    wave = np.sin(xx / 5.0) * np.cos(yy / 7.0)  # matches numpy's central differences, edges included
    u_y, u_x = np.gradient(wave)
    v_y, v_x = np.gradient(wave.T.copy())
    assert np.allclose(strain(wave, wave.T.copy()), np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2),
                       atol=1e-6)
    lm = np.zeros((68, 2))
    lm[27:31] = [[30, 20], [30, 24], [30, 28], [30, 32]]
    local = shift.copy()
    local[50:60, 5:15] += [1.0, 1.0]  # an "expression" far from the nose
    out = remove_head_motion(local, lm)
    assert np.allclose(out[20:30, 28:32], 0.0, atol=1e-6)
    assert np.allclose(out[55, 10], [1.0, 1.0], atol=1e-6)


def test_frame_features_follow_the_landmarks():
    from tasks.features import ROI_COLUMNS, frame_features, mean_boxes, region_boxes
    from tasks.optical_flow import nose_box

    rng = np.random.default_rng(1)
    lm = np.column_stack([rng.uniform(30, 98, 68), rng.uniform(20, 110, 68)])
    lm[17:27, 1] = 30
    lm[36:48, 1] = 40
    lm[48:68, 1] = 90
    lm[50, 1], lm[57, 1] = 84, 98
    flow = np.zeros((128, 128, 2), np.float32)
    (ex0, ey0, ex1, ey1), _ = mean_boxes(lm)
    flow[ey0:ey1, ex0:ex1, 0] = 1.0  # motion only in the eyes band
    x, _ = frame_features(flow, lm)
    assert x.shape == (3, 42, 42) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.allclose(x[0, :21], 1.0) and np.allclose(x[0, 21:], 0.0)  # eyes band on top, mouth below
    assert np.allclose(x[1], 0.0)  # constant v plane -> zeros
    assert x[2, :21].max() > 0.5 and np.allclose(x[2, 21:], 0.0)  # strain only at the band's edges
    const = np.dstack([np.full((128, 128), 1.0), np.full((128, 128), -2.0)]).astype(np.float32)
    _, r = frame_features(const, lm)
    names = region_boxes(lm)
    assert len(names) >= 12 and r.shape == (3 * len(names),) and len(ROI_COLUMNS) == r.size
    got = dict(zip(ROI_COLUMNS, r))
    assert all(np.isclose(got[f"{n}_u"], 1.0) and np.isclose(got[f"{n}_v"], -2.0)
               and np.isclose(got[f"{n}_mag"], np.sqrt(5.0), atol=1e-5) for n in names)
    # Region means are exact box means: a blob inside one region moves its mean and no other region's.
    x0, y0, x1, y1 = names["mouth_corner_l"]
    blob = np.zeros_like(flow)
    blob[y0:y1, x0:x1, 1] = 2.0
    _, r = frame_features(blob, lm)
    got = dict(zip(ROI_COLUMNS, r))
    assert np.isclose(got["mouth_corner_l_v"], 2.0) and np.isclose(got["mouth_corner_l_mag"], 2.0)
    # Head motion: a uniform shift is removed from the ROI means but leaves MEAN's (min-max scaled) input alone.
    shifted = blob + np.array([0.7, -0.4], np.float32)
    a, _ = frame_features(blob, lm)
    b, rb = frame_features(shifted, lm, head_motion=True)
    assert np.allclose(a, b, atol=1e-6)
    nx0, ny0, nx1, ny1 = nose_box(lm, (128, 128))
    assert nx1 <= x0 or x1 <= nx0 or ny1 <= y0 or y1 <= ny0  # the blob is outside the nose bridge box
    got = dict(zip(ROI_COLUMNS, rb))
    assert np.isclose(got["mouth_corner_l_u"], 0.0, atol=1e-6) and np.isclose(got["mouth_corner_l_v"], 2.0)


def test_shard_planning():
    assert resolve_k("auto", 30) == 3 and resolve_k("auto", 200) == 20 and resolve_k("auto", 100) == 10
    assert resolve_k(5, 30) == 5
    assert plan_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    need = needed_frames(64, 96, 200, 3, "track", 30, 2, 3)
    assert need[0] == 60 and {60, 90, 120} <= set(need) and 98 in need
    assert needed_frames(8, 10, 10, 3, "mean", 30, 2) == [8, 9]


def test_similarity_recovers_a_known_transform():
    from tasks.face import apply, similarity

    rng = np.random.default_rng(3)
    src = rng.uniform(0, 100, (6, 2))
    ang, s = 0.3, 1.7
    m = np.array([[s * np.cos(ang), -s * np.sin(ang), 5.0], [s * np.sin(ang), s * np.cos(ang), -7.0]])
    assert np.allclose(similarity(src, apply(m, src)), m, atol=1e-9)


# ---- one shard, no services --------------------------------------------------------------------------------

def _shard(folder: Path, files: list[str], start: int, end: int, k: int = 3) -> Shard:
    return Shard("d", "s1", "v", "frames", str(folder), 30.0, len(files), k, start, end, dict(enumerate(files)))


def _run_cuts(home: Path, folder: Path, files: list[str], cuts, cfg: dict):
    from storage.workspace import Workspace

    probe = probe_video(_shard(folder, files, 0, 0), cfg)
    for a, b in cuts:
        res = run_shard(str(home), _shard(folder, files, a, b), probe, cfg)
        assert "error" not in res, res
    ws = Workspace(home)
    return {t: ws.read(t).sort_by("frame") for t in ("features", "landmarks", "roi_series", "qc")}


def test_shard_outputs_do_not_depend_on_the_cut(tmp_path, clips):
    folder, files = clips["a"]
    cfg = PreprocessConfig()
    one = _run_cuts(tmp_path / "one", folder, files, [(0, N)], cfg)
    many = _run_cuts(tmp_path / "many", folder, files, [(0, 7), (7, 20), (20, 33), (33, N)], cfg)
    assert one["features"]["frame"].to_pylist() == list(range(N - 3))  # one row per frame 0..N-k-1
    assert many["features"]["frame"].to_pylist() == list(range(N - 3))
    assert one["landmarks"]["frame"].to_pylist() == list(range(N))
    for t, col in (("features", "mean_input"), ("landmarks", "transform"), ("roi_series", "mouth_corner_l_v")):
        assert np.array_equal(np.array(one[t][col].to_pylist()), np.array(many[t][col].to_pylist())), t
    # Alignment removes the head motion: stable points sit on the template in every frame.
    from tasks.face import STABLE, TEMPLATE

    pts = np.array(one["landmarks"]["points"].to_pylist()).reshape(N, 68, 2)
    assert np.abs(pts[:, STABLE] - TEMPLATE).max() < 6.0
    assert np.ptp(pts[:, STABLE], axis=0).max() < 3.0
    assert all(one["landmarks"]["detected"].to_pylist())


def test_a_frame_without_a_face_is_recorded_and_bridged(tmp_path, clips):
    import shutil

    src, files = clips["a"]
    folder = tmp_path / "noface"
    shutil.copytree(src, folder)
    cv2.imwrite(str(folder / files[30]), np.full((256, 320), 128, np.uint8))  # key frame 30: no face
    out = _run_cuts(tmp_path / "nf", folder, files, [(0, 20), (20, N)], PreprocessConfig())
    qc = out["qc"].to_pylist()
    assert [(r["frame"], r["stage"]) for r in qc] == [(30, "face")]
    assert out["landmarks"]["detected"].to_pylist() == [i != 30 for i in range(N)]
    assert out["features"]["frame"].to_pylist() == list(range(N - 3))
    pts = np.array(out["landmarks"]["points"].to_pylist()).reshape(N, 68, 2)
    from tasks.face import STABLE, TEMPLATE

    assert np.abs(pts[:, STABLE] - TEMPLATE).max() < 6.0  # box carried from key frame 0


def test_mean_mode_uses_the_first_frame_box(tmp_path, clips):
    folder, files = clips["a"]
    cfg = PreprocessConfig(face_mode="mean", flow="farneback", remove_head_motion=False)
    out = _run_cuts(tmp_path / "m", folder, files, [(0, 20), (20, N)], cfg)
    tf = np.array(out["landmarks"]["transform"].to_pylist())
    pts = np.array(out["landmarks"]["points"].to_pylist())
    assert np.allclose(tf, tf[0]) and np.allclose(pts, pts[0])  # one box, landmarks once per video
    assert np.isclose(tf[0][1], 0.0) and tf[0][0] > 1.0  # crop-and-resize of a ~87 px face box to 128
    x = np.array(out["features"]["mean_input"].to_pylist())
    assert x.shape == (N - 3, 3 * 42 * 42) and x.min() >= 0 and x.max() <= 1 and x.std() > 0.01


def test_large_frames_decode_reduced_and_match(tmp_path, clips):
    folder, files = clips["big"]
    cfg = PreprocessConfig()
    probe = probe_video(_shard(folder, files, 0, 0), cfg)
    assert probe["face_width"] > 320 and probe["factor"] == 2
    out = _run_cuts(tmp_path / "big", folder, files, [(0, 12)], cfg)
    pts = np.array(out["landmarks"]["points"].to_pylist()).reshape(12, 68, 2)
    from tasks.face import STABLE, TEMPLATE

    assert np.abs(pts[:, STABLE] - TEMPLATE).max() < 6.0


# ---- the flow: Prefect + a real Dask LocalCluster ----------------------------------------------------------

def _features(ws, dataset: str, video: str) -> np.ndarray:
    t = ws.read("features", dataset=dataset, video=video).sort_by("frame")
    assert t["frame"].to_pylist() == list(range(N - 3))
    return np.array(t["mean_input"].to_pylist())


def test_flow_end_to_end_with_faults_resume_and_new_videos(ws, clips, dask_local):
    from flows.preprocess import PreprocessFailed, preprocess_flow
    from tasks.face import aligned_frames

    addr = dask_local.scheduler.address
    ok_dir, ok_files = clips["a"]
    bad_dir, bad_files = clips["bad"]
    broken, _ = clips["broken"]
    ws.replace("videos", [video_row("ds", "v1", ok_dir, N), video_row("ds", "v2", bad_dir, N),
                          video_row("ds", "v3", broken, N, kind="video_file")], dataset="ds")
    ws.replace("frames", frame_rows("ds", "v1", ok_files) + frame_rows("ds", "v2", bad_files), dataset="ds")
    with pytest.raises(PreprocessFailed) as err:
        preprocess_flow("ds", home=str(ws.root), shard_size=16, dask_address=addr)
    msg = str(err.value)
    assert "v3" in msg and "broken.avi" in msg and "frame" in msg and "v1" not in msg
    s = err.value.summary
    assert s["shards_run"] >= 6 and [f["video"] for f in s["failed"]] == ["v3"]
    # The good videos are complete, one row per frame, the corrupt frame recorded in qc.
    f1 = _features(ws, "ds", "v1")
    _features(ws, "ds", "v2")
    qc = ws.read("qc", dataset="ds", video="v2").to_pylist()
    assert any(r["frame"] == 10 and r["stage"] == "decode" for r in qc)
    lm2 = ws.read("landmarks", dataset="ds", video="v2").sort_by("frame")
    assert lm2["frame"].to_pylist() == list(range(N)) and lm2["detected"].to_pylist()[10] is False
    assert set(ws.read("features", dataset="ds")["config_hash"].to_pylist()) == {s["config_hash"]}
    cols, rows = ws.sql("SELECT count(*) FROM runs WHERE kind = 'preprocess'")
    assert rows[0][0] == 1
    cols, rows = ws.sql("SELECT video, count(*) FROM roi_series GROUP BY video ORDER BY video")
    assert rows == [("v1", N - 3), ("v2", N - 3)]

    # aligned_frames re-creates aligned faces from the stored transforms: the head motion is gone.
    faces = aligned_frames(ws, "ds", "v1", [0, 12])
    assert faces.shape == (2, 128, 128) and faces.dtype == np.uint8
    raw = [cv2.imread(str(ok_dir / ok_files[i]), cv2.IMREAD_GRAYSCALE).astype(float) for i in (0, 12)]
    assert np.abs(faces[0].astype(float) - faces[1]).mean() < 0.6 * np.abs(raw[0] - raw[1]).mean()

    # Re-run without the broken video: nothing is recomputed; then a new video is processed alone.
    ws.replace("videos", [video_row("ds", "v1", ok_dir, N), video_row("ds", "v2", bad_dir, N)], dataset="ds")
    before = {p: p.stat().st_mtime_ns for p in ws.files("features", dataset="ds")}
    from typer.testing import CliRunner

    from flows.cli import app

    res = CliRunner().invoke(app, ["--home", str(ws.root), "preprocess", "ds", "--shard-size", "16",
                                   "--dask-address", addr])
    assert res.exit_code == 0, res.output
    assert '"shards_run": 0' in res.output and '"shards_skipped": 6' in res.output
    ws.replace("videos", [video_row("ds", "v1", ok_dir, N), video_row("ds", "v2", bad_dir, N),
                          video_row("ds", "v4", ok_dir, N)], dataset="ds")
    ws.replace("frames", frame_rows("ds", "v1", ok_files) + frame_rows("ds", "v2", bad_files)
               + frame_rows("ds", "v4", ok_files), dataset="ds")
    s2 = preprocess_flow("ds", home=str(ws.root), shard_size=16, dask_address=addr)
    assert s2["shards_run"] == 3 and s2["shards_skipped"] == 6 and s2["failed"] == []
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert np.array_equal(_features(ws, "ds", "v4"), f1)  # same frames -> same features

    # A different shard size rewrites a video's parts without duplicating rows; --force recomputes all.
    s3 = preprocess_flow("ds", home=str(ws.root), shard_size=32, dask_address=addr, force=True)
    assert s3["shards_run"] == 6 and s3["shards_skipped"] == 0
    assert np.array_equal(_features(ws, "ds", "v1"), f1)


def test_flow_survives_a_killed_worker(ws, tmp_path, clips, dask_local):
    from flows.preprocess import preprocess_flow
    from helpers.faults import KillFirstShard

    folder, files = clips["a"]
    ws.replace("videos", [video_row("k", "v1", folder, N)], dataset="k")
    ws.replace("frames", frame_rows("k", "v1", files), dataset="k")
    marker = tmp_path / "killed"
    dask_local.register_plugin(KillFirstShard(str(marker)), name="kill-first-shard")
    try:
        s = preprocess_flow("k", home=str(ws.root), shard_size=8, dask_address=dask_local.scheduler.address)
    finally:
        dask_local.unregister_worker_plugin("kill-first-shard")
    assert marker.exists()  # a worker process really died mid-run
    assert s["failed"] == [] and s["shards_run"] == 5
    base = tmp_path / "base"
    undisturbed = _run_cuts(base, folder, files, [(0, N)], PreprocessConfig())
    assert np.array_equal(_features(ws, "k", "v1"), np.array(undisturbed["features"]["mean_input"].to_pylist()))
    assert ws.read("landmarks", dataset="k", video="v1").num_rows == N


def test_flow_on_the_synthetic_dataset(ws, dask_local):
    """The synthetic generator's tiny dataset: every video complete, and its expressions show up as motion."""
    import dataclasses

    from flows.preprocess import preprocess_flow
    from tasks.synth import dataset as synth
    from tasks.synth.presets import preset

    name = synth.make_dataset(ws, dataclasses.replace(preset("tiny"), subjects=1, duration_s=4.0))
    s = preprocess_flow(name, home=str(ws.root), shard_size=64, dask_address=dask_local.scheduler.address)
    assert s["failed"] == []
    ivs = ws.read("intervals", dataset=name).to_pylist()
    inside, outside = [], []
    for v in ws.read("videos", dataset=name).to_pylist():
        k = resolve_k("auto", v["fps"])
        t = ws.read("roi_series", dataset=name, video=v["video"]).sort_by("frame").to_pandas()
        assert t["frame"].tolist() == list(range(v["n_frames"] - k))
        lm = ws.read("landmarks", dataset=name, video=v["video"])
        assert lm.num_rows == v["n_frames"] and sum(lm["detected"].to_pylist()) >= 0.9 * v["n_frames"]
        motion = t[[c for c in t.columns if c.endswith("_mag")]].sum(axis=1).to_numpy()
        mine = [(r["onset"], r["offset"]) for r in ivs if r["video"] == v["video"]]
        flag = np.zeros(len(motion), bool)
        for on, off in mine:
            flag[max(0, on - k):off + 1] = True
        inside.append(motion[flag])
        outside.append(motion[~flag])
    inside, outside = np.concatenate(inside), np.concatenate(outside)
    assert len(inside) >= 10 and np.mean(inside) > 1.2 * np.median(outside), (np.mean(inside), np.median(outside))
