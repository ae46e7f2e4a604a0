"""Benchmark of STR scoring in DuckDB: prints one JSON object.

Measured in this same run, in CPU seconds of this process (the machine is shared, so wall time is
reported beside it): N random small cases scored one query pair per case (score_str, both protocols)
versus all cases in one batched query pair (score_jobs, one scope per case); plus one large input
(12 long videos, about 2400 predictions and 180 GT intervals) under both protocols.
Usage: python bench/score.py [--cases N]
"""

from __future__ import annotations

import argparse
import json
import random
import time

import pyarrow as pa

from storage.vocabulary import COARSE_EMOTIONS as EMOTIONS
from tasks.score_str import score_jobs, score_str


def case(rng: random.Random, videos: int = 3, gt: int = 6, pred: int = 8, frames: int = 60) -> tuple[pa.Table, ...]:
    """A random case: subjects s0..s2, each with `videos` videos of up to `gt` GT and `pred` predicted intervals."""
    out = []
    for most in (pred, gt):
        rows = []
        for s in range(3):
            for v in range(videos):
                for _ in range(rng.randint(0, most)):
                    a = rng.randint(0, frames)
                    rows.append({"subject": f"s{s}", "video": f"v{v}", "onset": a,
                                 "offset": min(frames, a + rng.randint(0, 20)), "emotion": rng.choice(EMOTIONS)})
        rng.shuffle(rows)
        out.append(pa.Table.from_pylist(rows))
    return tuple(out)


def timed(fn) -> tuple[float, float]:
    c, w = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c, time.perf_counter() - w


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=50)
    n = ap.parse_args().cases
    rng = random.Random(0)
    cases = [case(rng) for _ in range(n)]
    score_str(*cases[0])  # warm up the connection
    per_cpu, per_wall = timed(lambda: [score_str(p, g, proto) for p, g in cases for proto in ("megc2025", "strict")])
    inputs = {f"c{i}": c for i, c in enumerate(cases)}
    jobs = [(f"c{i}", proto, None) for i in range(n) for proto in ("megc2025", "strict")]
    batch_cpu, batch_wall = timed(lambda: score_jobs(inputs, jobs))
    big = case(random.Random(1), videos=4, gt=30, pred=400, frames=100_000)
    rows = big[0].num_rows
    big_cpu, big_wall = timed(lambda: score_jobs({"big": big}, [("big", "megc2025", None), ("big", "strict", None)]))
    print(json.dumps({
        "cases": n,
        "per_case_cpu_s": round(per_cpu, 3), "per_case_wall_s": round(per_wall, 3),
        "batched_cpu_s": round(batch_cpu, 3), "batched_wall_s": round(batch_wall, 3),
        "batched_speedup_cpu": round(per_cpu / batch_cpu, 1),
        "large_predictions": rows, "large_gt": big[1].num_rows,
        "large_cpu_s": round(big_cpu, 3), "large_wall_s": round(big_wall, 3),
    }))


if __name__ == "__main__":
    main()
