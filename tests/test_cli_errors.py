"""Errors as an operator sees them: one line on stderr, no traceback unless asked, partial preprocess exits 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from helpers.frames import frame_rows, make_frames, video_row

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


def test_interrupted_preprocess_leaves_whole_files_and_resumes(ws, tmp_path, dask_local) -> None:
    import signal
    import time

    import pyarrow.parquet as pq

    from flows.preprocess import preprocess_flow

    # enough shards that a run cannot finish between two polls of the test (a finished run cannot be interrupted)
    n, videos = 48, [f"v{i}" for i in range(10)]
    shards = len(videos) * n // 16
    files = make_frames(tmp_path / "face", n=n)
    ws.replace("videos", [video_row("ds", v, tmp_path / "face", n) for v in videos], dataset="ds")
    ws.replace("frames", [r for v in videos for r in frame_rows("ds", v, files)], dataset="ds")
    args = ["--home", str(ws.root), "preprocess", "ds", "--shard-size", "16",
            "--dask-address", dask_local.scheduler.address]
    for sig in (signal.SIGINT, signal.SIGTERM):
        before = len(ws.files("qc", dataset="ds"))
        for _attempt in range(3):
            # a run that finished before the signal could be sent (a cold start outran the polling) proves
            # nothing: clear its outputs and interrupt a new one
            proc = subprocess.Popen([MEGC, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 300
            while len(ws.files("qc", dataset="ds")) <= before and proc.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                break
            proc.communicate(timeout=120)
            for table in ("features", "roi_series", "landmarks", "qc"):
                ws.delete(table, dataset="ds")
            before = 0
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (sig, proc.returncode, err)
        assert "megc: interrupted; finished parts are kept and a re-run resumes" in err
        assert "Traceback" not in err
        # Every file a reader can see is a whole Parquet file; temporary names never show in the tables.
        for table in ("features", "roi_series", "landmarks", "qc"):
            for f in ws.files(table, dataset="ds"):
                assert f.suffix == ".parquet" and pq.read_table(f).num_rows > 0 or table == "qc"
        assert not [p for p in (ws.root / "tables").rglob("*") if p.is_file() and p.suffix != ".parquet"]
    # Shards the killed clients had started finish on the shared cluster; let them land before counting.
    deadline = time.monotonic() + 120
    while any(dask_local.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    done = len(ws.files("qc", dataset="ds"))
    assert 2 <= done < shards
    s = preprocess_flow("ds", home=str(ws.root), shard_size=16, dask_address=dask_local.scheduler.address)
    assert s["shards_skipped"] == done and s["shards_run"] == shards - done and s["failed"] == []
    _, rows = ws.sql("SELECT video, count(*), count(DISTINCT frame) FROM features GROUP BY video ORDER BY video")
    assert rows == [(v, n - 3, n - 3) for v in videos]
