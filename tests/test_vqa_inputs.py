"""VQA inputs reuse preprocessing: their cache follows the preprocessing config, and decoding checks its seeks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from storage.errors import InputError
from helpers.mini_vqa import make_mini


def _preprocess(ws, flow: str) -> str:
    """Run the real preprocessing of the mini dataset's first video (one shard); returns its config hash."""
    from tasks.preprocess_shard import PreprocessConfig, content_hash, probe_video, run_shard
    from tasks.shards import Shard

    v = ws.read("videos", dataset="mini").to_pylist()[0]
    fr = [r for r in ws.read("frames", dataset="mini").to_pylist() if r["video"] == v["video"]]
    files = {r["frame"]: r["file"] for r in fr}
    cfg = PreprocessConfig(flow=flow)
    c = cfg

    def shard(start: int, end: int) -> Shard:
        return Shard("mini", v["subject"], v["video"], "frames", v["path"], v["fps"], v["n_frames"], 3, start, end,
                     files)

    probe = probe_video(shard(0, 0), c)
    assert "error" not in probe, probe
    res = run_shard(str(ws.root), shard(0, v["n_frames"]), probe, c)
    assert "error" not in res, res
    return content_hash(cfg)


def test_a_changed_preprocessing_config_rebuilds_the_vqa_images(ws):
    from tasks.vqa_inputs import build_inputs, cache_key

    ivs = make_mini(ws, subjects=1, per_subject=1)
    crop = build_inputs(ws, "mini", ivs, 4)[ivs[0]["interval_id"]]
    assert Path(crop["flow"]).parent.name == cache_key(None) == "crop"

    h_dis = _preprocess(ws, "dis")
    dis = build_inputs(ws, "mini", ivs, 4)[ivs[0]["interval_id"]]
    assert Path(dis["flow"]).parent.name == cache_key(h_dis) == f"aligned-{h_dis}"

    h_farneback = _preprocess(ws, "farneback")
    assert h_farneback != h_dis
    fb = build_inputs(ws, "mini", ivs, 4)[ivs[0]["interval_id"]]
    assert Path(fb["flow"]).parent.name == f"aligned-{h_farneback}"
    assert all(Path(p).is_file() for p in fb["frames"] + fb["oao"] + [fb["flow"], fb["roi"]])
    assert not set(fb["frames"]) & set(dis["frames"])  # nothing read back from the older config's folder


def _write_video(path: Path, n: int) -> Path:
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for i in range(n):
        out.write(np.full((48, 64, 3), 10 * i, np.uint8))
    out.release()
    return path


def test_a_seek_past_the_stream_names_the_file_and_frame(tmp_path):
    from tasks.decode import read_frames

    path = _write_video(tmp_path / "short.avi", 10)
    got = read_frames(path, "video", {}, [7, 2])
    assert [int(g.mean()) for g in got] == pytest.approx([70, 20], abs=3)
    with pytest.raises(InputError) as exc:
        read_frames(path, "video", {}, [15])  # the table may claim frames the file does not hold
    assert str(exc.value) == f"{path}, frame 10: video stream ended early or is corrupt"  # first missing frame
    with pytest.raises(InputError, match="frame outside the video"):
        read_frames(path, "video", {}, [10], n_frames=10)
