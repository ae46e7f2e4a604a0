"""Generate a whole dataset: render every video (process pool), stream frames to disk in the real
layout through the format writers (tasks.synth.formats), then write annotations, events and ground truth."""

from __future__ import annotations

import json
import os
import queue as queue_mod
from pathlib import Path
from collections.abc import Callable

import numpy as np

from storage.config import to_dict
from storage.errors import InputError
from tasks.synth.aus import peak_displacement
from tasks.synth.formats import writer_module
from tasks.synth.ground_truth import GROUND_TRUTH_FILE, SynthResult, video_rows
from tasks.synth.identities import Identity, make_identity
from tasks.synth.presets import SynthConfig, preset, validate
from tasks.synth.render import VideoRenderer
from tasks.synth.timeline import plan

PARTIAL_FILE = "megc_synth.partial.json"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_PROGRESS_EVERY = 25
_queue = None  # progress queue of a pool worker


def video_names(fmt: str, subject: int, video: int) -> tuple[str, str, int]:
    """(subject, video_code, first_frame) of subject/video indices in a format's naming."""
    if fmt == "casme3":
        return f"spNO.{subject + 1}", _LETTERS[video % 26] * (1 + video // 26), 0
    if fmt == "samm_lv":
        s = f"{subject + 6:03d}"
        return s, f"{s}_{video + 1}", 1
    s = f"s{subject + 1:02d}"
    return s, f"{s}_v{video + 1}", 0


def build_video(cfg: SynthConfig, seed: int, subject: int, video: int, identity: Identity | None = None,
                ) -> VideoRenderer:
    """The renderer of one video (identity, schedule and noise all fixed by the seed)."""
    identity = identity if identity is not None else make_identity(subject, cfg, seed)
    timeline = plan(cfg, np.random.default_rng([seed, 11, subject, video]))
    return VideoRenderer(identity, timeline, cfg, np.random.default_rng([seed, 13, subject, video]))


def _report(n: int, progress: Callable[[int], None] | None) -> None:
    if progress is not None:
        progress(n)
    elif _queue is not None:
        _queue.put(n)


def _write_frames(r: VideoRenderer, mod, root: Path, subject: str, code: str, first: int,
                  progress: Callable[[int], None] | None) -> None:
    n = r.timeline.n_frames
    last = mod.frame_path(root, subject, code, first + n - 1)
    if last.exists():  # the last frame is written last and atomically: the video is complete
        _report(n, progress)
        return
    last.parent.mkdir(parents=True, exist_ok=True)
    pending = 0
    for i in range(n):
        p = mod.frame_path(root, subject, code, first + i)
        data = r.encode(r.frame(i))
        if i == n - 1:
            tmp = p.with_name(p.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, p)
        else:
            p.write_bytes(data)
        pending += 1
        if pending == _PROGRESS_EVERY:
            _report(pending, progress)
            pending = 0
    _report(pending, progress)


def _write_video_file(r: VideoRenderer, cfg: SynthConfig, path: Path, progress: Callable[[int], None] | None,
                      ) -> None:
    import cv2

    n = r.timeline.n_frames
    if path.exists():
        _report(n, progress)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    colour = not cfg.grey
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*cfg.video_codec), cfg.fps, (cfg.width, cfg.height),
                             colour)
    if not writer.isOpened():
        raise InputError(f"OpenCV cannot write codec {cfg.video_codec!r} into {path.suffix} files", file=path)
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, float(r.timeline.jpeg_quality))
    pending = 0
    try:
        for i in range(n):
            img = r.frame(i)
            writer.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if colour else img)
            pending += 1
            if pending == _PROGRESS_EVERY:
                _report(pending, progress)
                pending = 0
    finally:
        writer.release()
    os.replace(tmp, path)
    _report(pending, progress)


def render_video(cfg: SynthConfig, seed: int, subject: int, video: int, root: str,
                 progress: Callable[[int], None] | None = None, identity: Identity | None = None,
                 ) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """Render one video to disk (skipped when already complete); returns its ground-truth rows.

    `identity` (built by the caller) spares a pool worker from loading dlib.
    """
    import cv2

    cv2.setNumThreads(1)
    root_p = Path(root)
    mod = writer_module(cfg.format)
    subj, code, first = video_names(cfg.format, subject, video)
    r = build_video(cfg, seed, subject, video, identity)
    if cfg.format == "video":
        _write_video_file(r, cfg, mod.video_path(root_p, subj, code), progress)
    else:
        _write_frames(r, mod, root_p, subj, code, first, progress)
    peaks = {i: peak_displacement(r.expression_unit_field(e)) for i, e in enumerate(r.timeline.expressions)}
    return video_rows(subj, code, r.timeline, cfg.width, cfg.height, first, peaks)


def _pool_init(q) -> None:
    global _queue
    _queue = q


def _stamp(cfg: SynthConfig, seed: int) -> dict:
    d = to_dict(cfg)
    d.pop("workers", None)  # the pool size does not change the output
    return {"config": d, "seed": seed}


def generate(config: SynthConfig | str, out: Path, seed: int = 0,
             progress: Callable[[int, int], None] | None = None) -> SynthResult:
    """Generate a dataset (preset name or config) into `out`; resumes unfinished work, returns ground truth.

    `progress(done_frames, total_frames)` is called as frames are written.
    """
    cfg = validate(preset(config) if isinstance(config, str) else config)
    out = Path(out).expanduser().resolve()
    stamp = _stamp(cfg, seed)
    if (out / GROUND_TRUTH_FILE).exists():
        res = SynthResult.load(out)
        if {"config": res.config, "seed": res.seed} == json.loads(json.dumps(stamp)):
            if progress:
                total = sum(v["n_frames"] for v in res.videos)
                progress(total, total)
            return res
        raise InputError("holds a synthetic dataset generated with another config or seed; choose another "
                         "output folder", file=out)
    partial = out / PARTIAL_FILE
    if partial.exists() and json.loads(partial.read_text()) != json.loads(json.dumps(stamp)):
        raise InputError("holds an unfinished synthetic dataset with another config or seed; choose another "
                         "output folder or delete it", file=out)
    if out.exists() and not partial.exists() and any(out.iterdir()):
        raise InputError("output folder exists and is not empty", file=out)
    out.mkdir(parents=True, exist_ok=True)
    partial.write_text(json.dumps(stamp))

    jobs = [(s, v) for s in range(cfg.subjects) for v in range(cfg.videos_per_subject)]
    total = sum(int(round(cfg.duration_s * cfg.fps)) for _ in jobs)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    identities = {s: make_identity(s, cfg, seed) for s in range(cfg.subjects)}  # dlib runs here only
    workers = min(cfg.workers or os.cpu_count() or 1, len(jobs))
    if workers <= 1:
        results = [render_video(cfg, seed, s, v, str(out), tick, identities[s]) for s, v in jobs]
    else:
        results = _run_pool(cfg, seed, jobs, identities, out, workers, tick)

    videos = [r[0] for r in results]
    intervals = [row for r in results for row in r[1]]
    events = [row for r in results for row in r[2]]
    amps = [row for r in results for row in r[3]]
    mod = writer_module(cfg.format)
    if cfg.format == "video":
        videos_w = [{**v, "path": mod.video_path(out, v["subject"], v["video_code"])} for v in videos]
    else:
        videos_w = videos
    mod.write_annotations(out, videos_w, intervals)
    mod.write_events(out, events)
    res = SynthResult(out, cfg.format, seed, json.loads(json.dumps(stamp["config"])), videos, intervals, events, amps)
    res.save()
    partial.unlink(missing_ok=True)
    return res


def _run_pool(cfg: SynthConfig, seed: int, jobs: list[tuple[int, int]], identities: dict[int, Identity], out: Path,
              workers: int, tick: Callable[[int], None]) -> list:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_pool_init, initargs=(q,)) as ex:
        futures = [ex.submit(render_video, cfg, seed, s, v, str(out), None, identities[s]) for s, v in jobs]
        while not all(f.done() for f in futures):
            try:
                tick(q.get(timeout=0.2))
            except queue_mod.Empty:
                pass
        results = [f.result() for f in futures]
    while True:
        try:
            tick(q.get_nowait())
        except queue_mod.Empty:
            break
    return results


__all__ = ["generate", "render_video", "build_video", "video_names"]
