"""Prefect flow `spot`: MEAN inference on Ray actors over feature shards, post-processing, STR scoring; and the
MEGC STR CSV export.

LOSO models score each video with the fold model that never saw its subject (cross-validated predictions),
using that fold's k'; other videos (and holdout models) use the final model and the card's k'.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flows.runtime import prefect_defaults, ray_init

prefect_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402

from models.registry import fold_for_subject, load_card  # noqa: E402
from storage.config import load_config, to_dict  # noqa: E402
from storage.errors import InputError, MegcError  # noqa: E402
from storage.runs import new_run_id, record_run  # noqa: E402
from storage.schemas import FRAME_SCORES  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks.mean_data import iter_shard, shard_index, shard_stem  # noqa: E402
from tasks.spot_post import PostConfig, postprocess_video  # noqa: E402


@dataclasses.dataclass
class SpotConfig:
    """Settings of one spotting run."""

    ray_address: str = ""
    n_actors: int = 2
    num_cpus: float = 1.0
    num_gpus: float = -1.0          # -1: one GPU shared by the actors when the cluster has one
    cross_validated: bool = True    # LOSO models: each video by the fold that held out its subject
    only_labelled: bool = False     # the paper scored only videos with at least one ME
    subjects: list[str] = dataclasses.field(default_factory=list)  # only these subjects' videos ([] = all)
    scores_from: str = ""           # reuse the frame_scores of this earlier run (post-processing only)
    score: bool = True              # score with tasks.score_str when it is available
    post: PostConfig = dataclasses.field(default_factory=PostConfig)


def _video_rows(ws: Workspace, dataset: str, shards: list) -> list[dict]:
    """(subject, video, n_frames) of every video: from `videos`, else from the feature shards."""
    rows = ws.read("videos", columns=["subject", "video", "n_frames"], dataset=dataset).to_pylist()
    if rows:
        return rows
    last: dict[str, dict] = {}
    for s in shards:
        r = last.setdefault(s.video, {"subject": s.subject, "video": s.video, "n_frames": 0})
        r["n_frames"] = max(r["n_frames"], int(s.frames.max()) + s.k + 1)
    return list(last.values())


def _frame_scores_table(run_id: str, dataset: str, video: str, frames: np.ndarray, scores: np.ndarray,
                        probs: np.ndarray) -> pa.Table:
    n, c = probs.shape if probs.ndim == 2 else (0, 0)
    offsets = pa.array(np.arange(0, n * c + 1, c, dtype=np.int32) if n else np.zeros(1, np.int32))
    return pa.table({
        "run_id": pa.array([run_id] * len(frames), pa.string()),
        "dataset": pa.array([dataset] * len(frames), pa.string()),
        "video": pa.array([video] * len(frames), pa.string()),
        "frame": pa.array(np.asarray(frames, np.int64)),
        "score": pa.array(np.asarray(scores, np.float32)),
        "probs": pa.ListArray.from_arrays(offsets, pa.array(np.asarray(probs, np.float32).reshape(-1))),
    }, schema=FRAME_SCORES)


@task(name="score-shards")
def score_shards(ws: Workspace, dataset: str, model: str, run_id: str, items: list[dict], cfg: SpotConfig) -> int:
    """Score pending shards on Ray actors, writing one frame_scores part per shard; returns shards scored."""
    from models.mean_actors import score_items

    pending = [it for it in items if not ws.has_part("frame_scores", part=shard_stem(it["path"]), run_id=run_id,
                                                     dataset=dataset, video=it["video"])]
    if not pending:
        return 0
    from flows.progress import StageProgress

    ray_init(cfg.ray_address or None)
    done = 0
    read = functools.partial(iter_shard, ws=ws)
    with StageProgress(f"spot {dataset}", len(pending), "shards", logger=get_run_logger()) as bar:
        for res in score_items(pending, ws.home, model, read, cfg.n_actors, cfg.num_cpus,
                               None if cfg.num_gpus < 0 else cfg.num_gpus):
            t = _frame_scores_table(run_id, dataset, res["video"], res["frames"], res["scores"], res["probs"])
            ws.write("frame_scores", t, part=shard_stem(res["path"]), run_id=run_id, dataset=dataset,
                     video=res["video"])
            done += 1
            bar.advance()
    return done


def predict_video(ws: Workspace, scores_run: str, dataset: str, video: str, n_frames: int, kp: int,
                  classes: list[str], post: PostConfig) -> list[dict]:
    """Intervals of one video from its stored frame_scores (the per-frame vectors only)."""
    t = ws.read("frame_scores", columns=["frame", "score", "probs"], run_id=scores_run, dataset=dataset, video=video)
    if t.num_rows == 0:
        return []
    frames = t.column("frame").to_numpy()
    probs = np.asarray(t.column("probs").combine_chunks().flatten().to_numpy(), np.float32).reshape(len(frames), -1)
    return postprocess_video(frames, t.column("score").to_numpy(), probs, n_frames, kp, classes, post)


def _score_run(ws: Workspace, run_id: str, dataset: str) -> dict | None:
    if importlib.util.find_spec("tasks.score_str") is None:
        return None
    from tasks.score_str import score_str_run

    return score_str_run(ws, run_id, dataset=dataset)


@flow(name="spot", validate_parameters=False)
def spot(dataset: str, model: str, home: str, run_id: str, config: dict) -> dict:
    """Spot, then recognize, every video of a dataset with a registered MEAN; store and score predictions."""
    cfg = _spot_config(config)
    ws = Workspace(home).ensure()
    card = load_card(ws, model)
    classes = list(card["classes"])
    k = int(card["k"])
    fold_kp = {f["fold"]: int(f["k_prime"]) for f in card.get("folds", [])}
    record_run(ws, run_id, "spot", {"dataset": dataset, "model": model, **to_dict(cfg)})
    shards = shard_index(ws, dataset)
    by_video: dict[str, list] = {}
    for s in shards:
        by_video.setdefault(s.video, []).append(s)
    videos = _video_rows(ws, dataset, shards)
    if cfg.only_labelled:
        labelled = {r["video"] for r in ws.read("intervals", columns=["video", "kind"], dataset=dataset).to_pylist()
                    if r["kind"] == "micro"}
        videos = [v for v in videos if v["video"] in labelled]
    if cfg.subjects:
        videos = [v for v in videos if v["subject"] in cfg.subjects]
    qc_rows: dict[str, list[dict]] = {}
    items, plans = [], []
    for v in videos:
        fold = fold_for_subject(card, v["subject"]) if cfg.cross_validated else None
        kp = fold_kp.get(fold, int(card["k_prime"])) if fold else int(card["k_prime"])
        if v["n_frames"] <= k:
            reason = f"video has {v['n_frames']} frames, too short for flow step k={k}: no prediction"
        elif v["video"] not in by_video:
            reason = "no feature rows for this video: no prediction"
        else:
            reason = None
        if reason:
            qc_rows.setdefault(v["video"], []).append(
                {"dataset": dataset, "video": v["video"], "frame": None, "stage": "spot", "reason": reason})
            continue
        plans.append((v, kp))
        items += [{"dataset": dataset, "video": v["video"], "fold": fold or "", "path": s.path}
                  for s in by_video[v["video"]]]
    scores_run = cfg.scores_from or run_id
    if not cfg.scores_from:
        score_shards(ws, dataset, model, run_id, items, cfg)
    preds = []
    for v, kp in plans:
        for iv in predict_video(ws, scores_run, dataset, v["video"], int(v["n_frames"]), kp, classes, cfg.post):
            preds.append({"run_id": run_id, "dataset": dataset, "subject": v["subject"], "video": v["video"],
                          "model": model, **iv})
    ws.replace("predictions", preds, run_id=run_id, dataset=dataset)
    for video, rows in qc_rows.items():
        ws.write("qc", rows, part=f"spot-{run_id}", dataset=dataset, video=video)
    scores = _score_run(ws, run_id, dataset) if cfg.score else None
    return {"run_id": run_id, "dataset": dataset, "model": model, "n_videos": len(plans),
            "n_predictions": len(preds), "n_qc": sum(len(r) for r in qc_rows.values()), "scores": scores}


def _spot_config(config: dict) -> SpotConfig:
    return load_config(SpotConfig, None, config)


def spot_flow(dataset: str, model: str, home: str | None = None, run_id: str | None = None,
              **overrides: Any) -> dict:
    """Run the spot flow; `overrides` are SpotConfig settings (post={...} or 'post.p'=...; config=YAML path)."""
    path = overrides.pop("config", None)
    cfg = load_config(SpotConfig, path, overrides)
    ws = Workspace(home).ensure()
    return spot(dataset, model, ws.home, run_id or new_run_id("spot"), to_dict(cfg))


def export_str(ws: Workspace, run_id: str, out: str | Path | None = None, frame_numbering: str = "megc") -> Path:
    """Write a run's predictions as the MEGC STR CSV (subject, video, onset, offset, emotion)."""
    if frame_numbering not in ("megc", "dataset"):
        raise InputError(f"frame numbering must be megc or dataset, not {frame_numbering!r}")
    cols, rows = ws.sql(
        "SELECT p.subject, p.video, p.onset, p.offset, p.emotion, coalesce(v.first_frame, 0) AS first_frame "
        "FROM predictions p LEFT JOIN videos v ON v.dataset = p.dataset AND v.video = p.video "
        "WHERE p.run_id = ? ORDER BY p.dataset, p.subject, p.video, p.onset, p.offset", [run_id])
    if not rows:
        known = ws.sql("SELECT DISTINCT run_id FROM predictions ORDER BY run_id")[1]
        raise MegcError(f"no predictions for run {run_id!r}; runs with predictions: {[r[0] for r in known]}")
    path = Path(out) if out else ws.path("exports", f"{run_id}_str.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["subject", "video", "onset", "offset", "emotion"])
        for subject, video, onset, offset, emotion, first in rows:
            add = int(first) if frame_numbering == "dataset" else 0
            w.writerow([subject, video, onset + add, offset + add, emotion])
    tmp.replace(path)
    return path
