"""Prefect flow `preprocess`: plan shards, fan them out on Dask (retrying crashed shards), finalize a summary."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

from flows.runtime import dask_client, prefect_defaults
from storage.config import load_config, to_dict
from storage.errors import InputError, MegcError
from storage.locks import dataset_lock
from storage.runs import new_run_id, record_run
from storage.workspace import Workspace
from tasks.preprocess_shard import PreprocessConfig, content_hash, probe_video, run_shard
from tasks.shards import Shard, needed_frames, plan_ranges, resolve_k, shard_part

prefect_defaults()
from prefect import flow, get_run_logger, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

OUTPUT_TABLES = ("features", "roi_series", "landmarks", "qc")
FAILED_PART = "failed"  # qc part holding a video's failure row from its latest attempt (no rows: it succeeded)


class PreprocessFailed(MegcError):
    """Some videos could not be preprocessed; `summary` holds the whole run's summary."""

    def __init__(self, message: str, summary: dict | None = None):
        super().__init__(message)
        self.summary = summary or {}

    def __reduce__(self):
        return (PreprocessFailed, (str(self), self.summary))


def _frame_files(ws: Workspace, dataset: str) -> dict[str, dict[int, str]]:
    t = ws.read("frames", columns=["video", "frame", "file"], dataset=dataset)
    out: dict[str, dict[int, str]] = defaultdict(dict)
    for v, f, name in zip(t["video"].to_pylist(), t["frame"].to_pylist(), t["file"].to_pylist()):
        out[v][f] = name
    return out


def _stored_state(ws: Workspace, dataset: str, video: str) -> tuple[set[str], set[str], str | None]:
    """(done shard parts, every stored part name, config hash of the stored landmarks)."""
    done = {p.stem for p in ws.files("qc", dataset=dataset, video=video)} - {FAILED_PART}
    parts: set[str] = set()
    for t in OUTPUT_TABLES:
        parts |= {p.stem for p in ws.files(t, dataset=dataset, video=video)}
    parts.discard(FAILED_PART)
    lm = ws.files("landmarks", dataset=dataset, video=video)
    stored = None
    if lm:
        col = ws.read_file(lm[0], columns=["config_hash"]).column(0)
        stored = col[0].as_py() if len(col) else None
    return done, parts, stored


def _wipe(ws: Workspace, dataset: str, video: str) -> None:
    for t in OUTPUT_TABLES:
        ws.delete(t, dataset=dataset, video=video)


@task(name="plan", cache_policy=NO_CACHE)
def plan(dataset: str, home: str, c: PreprocessConfig) -> dict:
    """List videos, wipe stale outputs (config changed, other shard size, --force), and the shards to run."""
    log = get_run_logger()
    ws = Workspace(home).ensure()
    videos = ws.read("videos", dataset=dataset).to_pylist()
    if not videos:
        raise InputError(f"dataset {dataset!r} has no videos (ingest it first)", file=ws.tables_dir / "videos")
    files = _frame_files(ws, dataset)
    chash = content_hash(c)
    work, failed, skipped = [], [], 0
    for v in sorted(videos, key=lambda r: r["video"]):
        name, n = v["video"], int(v["n_frames"])
        k = resolve_k(c.k, v["fps"])
        ranges = plan_ranges(n, c.shard_size)
        if v["source_kind"] == "frames":
            fmap = files.get(name, {})
            missing = [i for i in range(n) if i not in fmap]
            if missing:
                failed.append({"video": name, "error": str(InputError(
                    f"frames table lacks {len(missing)} of {n} frames of video {name!r} (first: {missing[0]})",
                    file=ws.tables_dir / "frames", frame=missing[0]))})
                continue
        else:
            fmap = {}
        planned = {shard_part(s) for s, _ in ranges}
        done, parts, stored = _stored_state(ws, dataset, name)
        if c.force or (stored is not None and stored != chash) or not parts <= planned:
            _wipe(ws, dataset, name)
            done = set()
        todo = []
        for s, e in ranges:
            if shard_part(s) in done:
                skipped += 1
                continue
            need = needed_frames(s, e, n, k, c.face_mode, *c.frame_steps(float(v["fps"])))
            todo.append(Shard(dataset, v["subject"], name, v["source_kind"], v["path"], float(v["fps"]), n, k,
                              s, e, {i: fmap[i] for i in need} if fmap else {}))
        if todo:
            cand = sorted({0, n // 4, n // 2, (3 * n) // 4})
            probe = Shard(dataset, v["subject"], name, v["source_kind"], v["path"], float(v["fps"]), n, k, 0, 0,
                          {i: fmap[i] for i in cand} if fmap else {})
            work.append({"video": name, "probe": probe, "shards": todo})
    log.info("preprocess %s: %d videos, %d shards to run, %d already done", dataset, len(videos),
             sum(len(w["shards"]) for w in work), skipped)
    return {"work": work, "failed": failed, "skipped": skipped, "videos": len(videos), "config_hash": chash}


@task(name="compute", cache_policy=NO_CACHE)
def compute(home: str, work: list[dict], c: PreprocessConfig) -> list[dict]:
    """Run the shards on Dask (LocalCluster or the scheduler at dask_address) with retries; one result each."""
    from distributed import as_completed

    from flows.progress import StageProgress

    log = get_run_logger()
    results: list[dict] = []
    if not work:
        return results
    with dask_client(c.dask_address or None, workers=c.workers) as client:
        # Shards get their video's probe as a value, submitted when the probe is done: had they depended on
        # the probe's future, Dask would place them all on the worker holding it and rebalance only later.
        probe_of, owner, pending = {}, {}, as_completed()
        for w in work:
            pf = client.submit(probe_video, w["probe"], c, pure=False, retries=c.retries,
                               key=f"probe-{w['video']}-{time.time_ns()}")
            probe_of[pf.key] = w
            pending.add(pf)
        frames = sum(sh.end - sh.start for w in work for sh in w["shards"])
        with StageProgress("preprocess", frames, "frames", logger=log) as bar:
            for fut in pending:
                if fut.key in probe_of:
                    try:
                        probe = fut.result()
                    except Exception as exc:  # crashed beyond its retries: every shard reports it
                        probe = {"error": f"face probe crashed: {exc}"}
                    fut.release()
                    for sh in probe_of[fut.key]["shards"]:
                        f = client.submit(run_shard, home, sh, probe, c, pure=False, retries=c.retries,
                                          key=f"shard-{sh.video}-{sh.start}-{time.time_ns()}")
                        owner[f.key] = sh
                        pending.add(f)
                    continue
                sh = owner[fut.key]
                try:
                    res = fut.result()
                except Exception as exc:  # crashed beyond its retries (e.g. KilledWorker)
                    res = {"video": sh.video, "start": sh.start, "error": f"shard crashed: {exc}"}
                if "error" in res:
                    log.info("video %s shard %d: %s", sh.video, sh.start, res["error"])  # summed up in finalize
                results.append(res)
                bar.advance(sh.end - sh.start)
                fut.release()
    return results


def _record_failures(ws: Workspace, dataset: str, attempted: list[str], errors: dict[str, str]) -> None:
    """One qc row per failed video (stage `preprocess`); videos that succeeded get their old failure row cleared."""
    for video in attempted:
        rows = []
        if video in errors:
            rows = [{"dataset": dataset, "video": video, "frame": None, "stage": "preprocess",
                     "reason": f"video not preprocessed: {errors[video].splitlines()[0]}"}]
        ws.write("qc", rows, part=FAILED_PART, dataset=dataset, video=video)


def failure_message(summary: dict) -> str:
    """One line naming every video a preprocess run could not finish."""
    names = "; ".join(f"{f['video']}: {f['error'].splitlines()[0]}" for f in summary["failed"])
    return (f"preprocess {summary['dataset']}: {len(summary['failed'])} of {summary['videos']} videos failed "
            f"({names}); the others finished")


@task(name="finalize", cache_policy=NO_CACHE)
def finalize(dataset: str, home: str, run_id: str, planned: dict, results: list[dict], seconds: float) -> dict:
    """Summarise the run, record failed videos in qc and write the summary beside the run record."""
    log = get_run_logger()
    errors: dict[str, str] = {f["video"]: f["error"] for f in planned["failed"]}
    for r in results:
        if "error" in r:
            errors.setdefault(r["video"], r["error"])
    attempted = sorted({w["video"] for w in planned["work"]} | set(errors))
    _record_failures(Workspace(home), dataset, attempted, errors)
    ok = [r for r in results if "error" not in r]
    frames = sum(r["frames"] for r in ok)
    summary: dict[str, Any] = {
        "run_id": run_id, "dataset": dataset, "config_hash": planned["config_hash"], "videos": planned["videos"],
        "shards_run": len(ok), "shards_skipped": planned["skipped"], "frames": frames,
        "feature_rows": sum(r["features"] for r in ok), "qc_rows": sum(r["qc"] for r in ok),
        "seconds": round(seconds, 3), "shard_seconds": round(sum(r["seconds"] for r in ok), 3),
        "shard_cpu_seconds": round(sum(r["cpu_s"] for r in ok), 3),
        "flow_seconds": round(sum(r["flow_s"] for r in ok), 3),
        "peak_worker_rss_mb": max((r["peak_rss_mb"] for r in ok), default=0.0),
        "failed": [{"video": v, "error": e} for v, e in sorted(errors.items())],
    }
    Workspace(home).write_bytes(json.dumps(summary, indent=2).encode(), "runs", run_id, "summary.json")
    if errors:  # reported by the caller: a failed flow run would print Prefect's traceback
        log.warning(failure_message(summary))
    log.info("preprocess %s: %d frames in %.1f s", dataset, frames, seconds)
    return summary


@flow(name="preprocess")
def preprocess(dataset: str, home: str | None = None, cfg: PreprocessConfig | None = None) -> dict:
    """Prefect flow: plan -> compute (Dask) -> finalize; returns the run summary (`failed` lists videos)."""
    cfg = cfg or PreprocessConfig()
    ws = Workspace(home).ensure()
    run_id = new_run_id("preprocess")
    record_run(ws, run_id, "preprocess", {"dataset": dataset, **to_dict(cfg),
                                          "config_hash": content_hash(cfg)})
    t0 = time.perf_counter()
    with dataset_lock(ws, dataset, "preprocess"):
        planned = plan(dataset, ws.home, cfg)
        results = compute(ws.home, planned["work"], cfg)
        return finalize(dataset, ws.home, run_id, planned, results, time.perf_counter() - t0)


def preprocess_flow(dataset: str, home: str | None = None, cfg: PreprocessConfig | None = None,
                    **settings: Any) -> dict:
    """Preprocess every video of `dataset` (resumable) with `cfg` and/or PreprocessConfig `settings`. Returns
    the summary; raises PreprocessFailed (with .summary) naming the videos that failed."""
    summary = preprocess(dataset, home, load_config(cfg or PreprocessConfig, None, settings))
    if summary["failed"]:
        raise PreprocessFailed(failure_message(summary), summary)
    return summary
