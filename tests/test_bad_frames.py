"""A frame folder with one frame of another size: that frame is noted in qc and replaced, the rest is kept."""

from __future__ import annotations

import cv2

from storage.workspace import Workspace
from tasks.preprocess_shard import PreprocessConfig, probe_video, run_shard
from tasks.shards import Shard
from helpers.frames import make_frames


def test_mixed_frame_sizes_are_flagged(tmp_path) -> None:
    n = 24
    folder = tmp_path / "clip"
    files = make_frames(folder, n=n)
    odd = cv2.imread(str(folder / files[10]), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(folder / files[10]), cv2.resize(odd, (200, 160)))
    cfg = PreprocessConfig()
    shard = Shard("d", "s1", "v", "frames", str(folder), 30.0, n, 3, 0, n, dict(enumerate(files)))
    probe = probe_video(Shard("d", "s1", "v", "frames", str(folder), 30.0, n, 3, 0, 0, dict(enumerate(files))), cfg)
    assert probe["size"] == [256, 320]
    res = run_shard(str(tmp_path / "home"), shard, probe, cfg)
    assert "error" not in res, res
    ws = Workspace(tmp_path / "home")
    qc = [r for r in ws.read("qc", dataset="d", video="v").to_pylist() if r["stage"] == "decode"]
    assert [r["frame"] for r in qc] == [10]
    assert qc[0]["reason"] == (f"{files[10]} is 200x160, the video's frames are 320x256; "
                               "nearest frame of the right size reused")
    lm = ws.read("landmarks", dataset="d", video="v").sort_by("frame")
    assert lm["frame"].to_pylist() == list(range(n)) and lm["detected"].to_pylist()[10] is False
    assert ws.read("features", dataset="d", video="v").num_rows == n - 3
