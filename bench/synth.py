"""Benchmark of the synthetic data generator: frames per second per core at 640x480 and peak memory.

Prints one JSON object. Each measurement runs in its own process (one core, cv2 single-threaded) so
its peak RSS is its own. Rates are frames per CPU second of that process (the machine is shared, so
wall-clock rates are reported beside them but depend on the load). Baseline in the same run: the
I/O floor, i.e. JPEG-encoding and writing the static neutral frame without rendering anything.

    python bench/synth.py [--minutes 1] [--long]    (--long adds the 10-minute video)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import time
from pathlib import Path


def _generate(minutes: float, out: str, q) -> None:
    import cv2

    from tasks.synth import generate, preset

    cv2.setNumThreads(1)
    cfg = dataclasses.replace(preset("bench"), duration_s=60.0 * minutes, workers=1)
    t, c = time.perf_counter(), time.process_time()
    res = generate(cfg, Path(out), seed=0)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    n = sum(v["n_frames"] for v in res.videos)
    q.put({"minutes": minutes, "frames": n, "wall_s": round(dt, 2), "cpu_s": round(dc, 2),
           "frames_per_s_per_core": round(n / dc, 1), "frames_per_wall_s": round(n / dt, 1),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


def _render_only(frames: int, q) -> None:
    import cv2

    from tasks.synth import preset
    from tasks.synth.writer import build_video

    cv2.setNumThreads(1)
    cfg = preset("bench")
    r = build_video(cfg, 0, 0, 0)
    t = time.process_time()
    for i in range(frames):
        r.frame(i)
    render = time.process_time() - t
    t = time.process_time()
    for i in range(frames):
        r.encode(r.frame(i))
    encode = time.process_time() - t
    d = Path(tempfile.mkdtemp(prefix="megc-bench-io-"))
    try:
        t = time.process_time()
        for i in range(frames):  # baseline: the I/O floor (no rendering)
            (d / f"{i}.jpg").write_bytes(r.encode(r.base))
        floor = time.process_time() - t
    finally:
        shutil.rmtree(d, ignore_errors=True)
    q.put({"frames": frames, "render_frames_per_s": round(frames / render, 1),
           "render_encode_frames_per_s": round(frames / encode, 1),
           "baseline_encode_write_static_frames_per_s": round(frames / floor, 1)})


def _in_child(fn, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=fn, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def main() -> None:
    """Run the benchmark and print JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=1.0)
    ap.add_argument("--long", action="store_true", help="also generate a 10-minute video")
    args = ap.parse_args()
    result = {"bench": "synth", "resolution": "640x480 colour, 30 fps, face 200 px",
              "parts": _in_child(_render_only, 600), "videos": []}
    for minutes in [args.minutes] + ([10.0] if args.long else []):
        out = tempfile.mkdtemp(prefix="megc-bench-synth-")
        try:
            result["videos"].append(_in_child(_generate, minutes, str(Path(out) / "ds")))
        finally:
            shutil.rmtree(out, ignore_errors=True)
    result["target_frames_per_s_per_core"] = 100
    result["meets_target"] = all(v["frames_per_s_per_core"] >= 100 for v in result["videos"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
