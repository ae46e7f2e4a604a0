"""One workspace, several processes: writers of different datasets run side by side, readers never fail,
and a second writer of the same dataset is turned away with a clear message."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from helpers import dataset_fixtures as fx
from storage.locks import dataset_lock
from helpers.frames import frame_rows, make_frames, video_row

MEGC = str(Path(sys.executable).with_name("megc"))


def test_parallel_writers_and_readers(ws, tmp_path, dask_local) -> None:
    n = 32
    files = make_frames(tmp_path / "face", n=n)
    for ds in ("a", "b"):
        ws.replace("videos", [video_row(ds, f"{ds}{i}", tmp_path / "face", n) for i in range(2)], dataset=ds)
        ws.replace("frames", [r for i in range(2) for r in frame_rows(ds, f"{ds}{i}", files)], dataset=ds)
    gen = fx.build_generic(tmp_path / "gen")
    home = ["--home", str(ws.root)]
    pre = ["--shard-size", "16", "--dask-address", dask_local.scheduler.address]
    procs = [subprocess.Popen([MEGC, *home, "preprocess", ds, *pre], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for ds in ("a", "b")]
    procs.append(subprocess.Popen([MEGC, *home, "ingest", "generic", str(gen), "--dataset", "g"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    reads = 0
    while any(p.poll() is None for p in procs):  # a reader during the writes: every query answers
        ws.sql("SELECT dataset, count(*) FROM features GROUP BY dataset")
        ws.sql("SELECT count(*) FROM videos")
        reads += 1
        time.sleep(0.2)
    for p in procs:
        out, err = p.communicate()
        assert p.returncode == 0, err
    assert reads > 3
    _, rows = ws.sql("SELECT dataset, video, count(*), count(DISTINCT frame) FROM features "
                     "GROUP BY ALL ORDER BY ALL")
    assert rows == [(ds, f"{ds}{i}", n - 3, n - 3) for ds in ("a", "b") for i in range(2)]
    _, rows = ws.sql("SELECT dataset, count(*) FROM videos GROUP BY dataset ORDER BY dataset")
    assert rows == [("a", 2), ("b", 2), ("g", 2)]
    assert ws.read("intervals", dataset="g").num_rows == 3
    for table in ("features", "roi_series", "landmarks", "qc", "videos", "frames"):
        for f in ws.files(table):
            pq.read_table(f)  # every stored file is whole
    assert not [p for p in (ws.root / "tables").rglob("*") if p.is_file() and p.suffix != ".parquet"]


def test_second_writer_of_a_dataset_is_turned_away(ws, tmp_path) -> None:
    gen = fx.build_generic(tmp_path / "gen")
    with dataset_lock(ws, "g", "preprocess"):
        res = subprocess.run([MEGC, "--home", str(ws.root), "ingest", "generic", str(gen), "--dataset", "g"],
                             capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line.startswith("megc: error: dataset 'g' is being written by another megc process (preprocess, pid ")
    assert line.endswith("; wait for it to finish, then run ingest again") and "\n" not in line
    assert ws.read("videos", dataset="g").num_rows == 0  # nothing was written
    res = subprocess.run([MEGC, "--home", str(ws.root), "ingest", "generic", str(gen), "--dataset", "g"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr  # the lock went with its holder
    assert ws.read("videos", dataset="g").num_rows == 2
