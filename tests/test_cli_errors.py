"""Errors as an operator sees them: one line on stderr, no traceback unless asked, partial preprocess exits 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from test_preprocess import frame_rows, make_frames, video_row

MEGC = str(Path(sys.executable).with_name("megc"))


def _megc(home: Path, *args: str, debug: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MEGC_DEBUG"}
    if debug:
        env["MEGC_DEBUG"] = "1"
    return subprocess.run([MEGC, "--home", str(home), *args], capture_output=True, text=True, env=env,
                          timeout=600)


def _faceless(folder: Path, n: int) -> list[str]:
    """n frames of smooth noise with no face in them."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    names = []
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((256, 320)) * 255).astype(np.uint8), (0, 0), 6)
        names.append(f"img{i + 1:03d}.jpg")
        cv2.imwrite(str(folder / names[-1]), img)
    return names


def test_error_is_one_line_without_traceback(ws) -> None:
    res = _megc(ws.root, "preprocess", "nosuch")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert lines == [f"megc: error: {ws.root / 'tables' / 'videos'}: dataset 'nosuch' has no videos (ingest it first)"]
    assert "Traceback" not in res.stdout
    debug = _megc(ws.root, "preprocess", "nosuch", debug=True)
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert "has no videos" in debug.stderr


def test_faceless_video_gives_partial_exit_and_qc_row(ws, tmp_path, dask_local) -> None:
    n = 32
    ok = make_frames(tmp_path / "face", n=n)
    bad = _faceless(tmp_path / "noface", n)
    ws.replace("videos", [video_row("ds", "v1", tmp_path / "face", n),
                          video_row("ds", "v2", tmp_path / "noface", n)], dataset="ds")
    ws.replace("frames", frame_rows("ds", "v1", ok) + frame_rows("ds", "v2", bad), dataset="ds")
    args = ("preprocess", "ds", "--shard-size", "16", "--dask-address", dask_local.scheduler.address)

    res = _megc(ws.root, *args)
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.startswith("megc:")]
    assert len(err) == 1 and err[0].startswith("megc: partial: preprocess ds: 1 of 2 videos failed (v2: ")
    assert "no face found" in err[0] and "the others finished" in err[0]
    summary = json.loads(res.stdout)
    assert [f["video"] for f in summary["failed"]] == ["v2"] and summary["shards_run"] == 2
    qc = ws.read("qc", dataset="ds", video="v2").to_pylist()
    assert [r["stage"] for r in qc] == ["preprocess"] and qc[0]["frame"] is None
    assert qc[0]["reason"].startswith("video not preprocessed: ") and "no face found" in qc[0]["reason"]
    assert ws.read("features", dataset="ds", video="v1").num_rows == n - 3

    again = _megc(ws.root, *args, "--keep-going")
    assert again.returncode == 0, again.stderr
    s2 = json.loads(again.stdout)
    assert s2["shards_skipped"] == 2 and s2["shards_run"] == 0 and [f["video"] for f in s2["failed"]] == ["v2"]
    assert len(ws.read("qc", dataset="ds", video="v2")) == 1  # the failure row is replaced, not repeated
    _, rows = ws.sql("SELECT video, count(*) FROM qc WHERE stage = 'preprocess' GROUP BY video")
    assert rows == [("v2", 1)]
