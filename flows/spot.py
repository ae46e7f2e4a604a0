"""Prefect flow `spot`: a registered spotter of any kind scores every video on Ray actors (frame_scores), its
post-processing turns the scores into intervals with an emotion (predictions), and STR scoring follows; and the
MEGC STR CSV export.

LOSO models score each video with the fold model that never saw its subject (cross-validated predictions),
with that fold's k' (MEAN) or threshold (ROI-series kinds); other videos (and holdout models) use the final
model. MEAN's k' is in frames at the card's frame rate and is rescaled to each video's. Frames near a lost
face are zeroed before post-processing and noted in qc.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flows.runtime import prefect_defaults, ray_init

prefect_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402

from models.registry import fold_for_subject, load_card  # noqa: E402
from models.spotters import get_spotter  # noqa: E402
from storage.config import load_config, to_dict  # noqa: E402
from storage.errors import InputError, MegcError  # noqa: E402
from storage.runs import new_run_id, record_run  # noqa: E402
from storage.schemas import FRAME_SCORES  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks.mean_data import shard_index, shard_stem  # noqa: E402
from tasks.spot_inputs import lost_frames, lost_runs, read_item  # noqa: E402
from models.spotters.decode import PeakPostConfig, decode_intervals  # noqa: E402
from tasks.spot_post import dense, postprocess_video  # noqa: E402
from tasks.stage_config import SpotConfig  # noqa: E402

HEADS = ("macro", "onset", "offset")


def _frame_scores_table(run_id: str, dataset: str, res: dict) -> pa.Table:
    frames, probs = res["frames"], np.asarray(res["probs"], np.float32)
    n, c = probs.shape if probs.ndim == 2 else (0, 0)
    offsets = pa.array(np.arange(0, n * c + 1, c, dtype=np.int32) if n else np.zeros(1, np.int32))
    cols = {
        "run_id": pa.array([run_id] * len(frames), pa.string()),
        "dataset": pa.array([dataset] * len(frames), pa.string()),
        "video": pa.array([res["video"]] * len(frames), pa.string()),
        "frame": pa.array(np.asarray(frames, np.int64)),
        "score": pa.array(np.asarray(res["scores"], np.float32)),
        "probs": pa.ListArray.from_arrays(offsets, pa.array(probs.reshape(-1))),
    }
    for h in HEADS:
        cols[h] = pa.array(np.asarray(res[h], np.float32)) if h in res else pa.nulls(len(frames), pa.float32())
    return pa.table(cols, schema=FRAME_SCORES)


def _part(item: dict) -> str:
    return shard_stem(item["path"]) if item.get("path") else "video"


@task(name="score-items")
def score_shards(ws: Workspace, dataset: str, model: str, run_id: str, items: list[dict], cfg: SpotConfig) -> int:
    """Score pending work items (shards or videos) on Ray actors, one frame_scores part each; returns the
    number scored (finished parts are skipped, so a re-run resumes)."""
    from models.spot_actors import score_items

    pending = [it for it in items if not ws.has_part("frame_scores", part=_part(it), run_id=run_id,
                                                     dataset=dataset, video=it["video"])]
    if not pending:
        return 0
    from flows.progress import StageProgress

    ray_init(cfg.ray_address or None)
    done = 0
    read = functools.partial(read_item, ws=ws)
    unit = "shards" if pending[0].get("path") else "videos"
    with StageProgress(f"spot {dataset}", len(pending), unit, logger=get_run_logger()) as bar:
        for res in score_items(pending, ws.home, model, read, cfg.n_actors, cfg.num_cpus,
                               None if cfg.num_gpus < 0 else cfg.num_gpus):
            ws.write("frame_scores", _frame_scores_table(run_id, dataset, res), part=_part(res), run_id=run_id,
                     dataset=dataset, video=res["video"])
            done += 1
            bar.advance()
    return done


def read_scores(ws: Workspace, scores_run: str, dataset: str, video: str, n_frames: int) -> dict | None:
    """A video's stored frame_scores as dense per-frame arrays {micro, probs, macro?, onset?, offset?}."""
    t = ws.read("frame_scores", run_id=scores_run, dataset=dataset, video=video)
    if t.num_rows == 0:
        return None
    frames = t.column("frame").to_numpy()
    probs = np.asarray(t.column("probs").combine_chunks().flatten().to_numpy(), np.float32).reshape(len(frames), -1)
    out = {"micro": dense(frames, t.column("score").to_numpy(), n_frames),
           "probs": dense(frames, probs, n_frames, fill=1.0 / max(1, probs.shape[1]))}
    for h in HEADS:
        col = t.column(h)
        if col.null_count < len(col):
            out[h] = dense(frames, col.to_numpy(zero_copy_only=False).astype(np.float64), n_frames)
    return out


def video_k_prime(card: dict, kp: int, fps: float | None) -> int:
    """MEAN's k' (frames at the card's frame rate) at a video's frame rate."""
    rates = card.get("fps") or []
    if fps and len(rates) == 1 and float(rates[0]) > 0 and abs(float(rates[0]) - fps) > 1e-6:
        return max(1, int(round(kp * fps / float(rates[0]))))
    return kp


def predict_video(scores: dict, card: dict, fold: str | None, n_frames: int, fps: float | None,
                  cfg: SpotConfig) -> list[dict]:
    """Intervals of one video from its dense scores, by the post-processing of the model's kind."""
    classes = list(card["classes"])
    if get_spotter(card.get("kind", "mean")).input_table == "features":
        kp = {f["fold"]: int(f["k_prime"]) for f in card.get("folds", [])}.get(fold or "", int(card["k_prime"]))
        return postprocess_video(np.arange(n_frames), scores["micro"], scores["probs"], n_frames,
                                 video_k_prime(card, kp, fps), classes, cfg.post)
    thresholds = {f["fold"]: float(f["threshold"]) for f in card.get("folds", [])}
    post = load_config(PeakPostConfig, None, card.get("post", {}))
    return decode_intervals(scores, float(fps or card["fps"][0]), thresholds.get(fold or "", float(card["threshold"])),
                            post, classes)


def _videos(ws: Workspace, dataset: str, cfg: SpotConfig) -> list[dict]:
    """The dataset's videos this run spots (only_labelled, subjects)."""
    videos = ws.read("videos", columns=["subject", "video", "n_frames", "fps"], dataset=dataset).to_pylist()
    if cfg.only_labelled:
        labelled = {r["video"] for r in ws.read("intervals", columns=["video", "kind"], dataset=dataset).to_pylist()
                    if r["kind"] == "micro"}
        videos = [v for v in videos if v["video"] in labelled]
    if cfg.subjects:
        videos = [v for v in videos if v["subject"] in cfg.subjects]
    return videos


def work_items(ws: Workspace, dataset: str, card: dict, videos: list[dict], cross_validated: bool
               ) -> tuple[list[tuple[dict, str | None]], list[dict], dict[str, str]]:
    """(videos to spot with their fold, the Ray work items, {video: why it cannot be spotted}) for a model."""
    spotter = get_spotter(card.get("kind", "mean"))
    k = int(card.get("k") or 0)
    if spotter.input_table == "features":
        by_video: dict[str, list] = {}
        for s in shard_index(ws, dataset):
            by_video.setdefault(s.video, []).append(s)
    else:
        by_video = {p["video"]: [] for p in ws.partitions("roi_series", dataset=dataset)
                    if ws.files("roi_series", **p)}
    plans, items, skipped = [], [], {}
    for v in videos:
        fold = fold_for_subject(card, v["subject"]) if cross_validated else None
        if v["n_frames"] <= k:
            skipped[v["video"]] = f"video has {v['n_frames']} frames, too short for flow step k={k}: no prediction"
            continue
        if v["video"] not in by_video:
            table = "feature" if spotter.input_table == "features" else "roi_series"
            skipped[v["video"]] = f"no {table} rows for this video: no prediction"
            continue
        plans.append((v, fold))
        base = {"dataset": dataset, "video": v["video"], "fold": fold or "", "table": spotter.input_table}
        if spotter.input_table == "features":
            items += [{**base, "path": s.path} for s in by_video[v["video"]]]
        else:
            items.append({**base, "n_frames": int(v["n_frames"]), "fps": float(v["fps"])})
    return plans, items, skipped


def _recognizer_run(ws: Workspace, dataset: str, card: dict, videos: list[dict], run_id: str,
                    cfg: SpotConfig) -> str:
    """Score the videos with cfg.recognizer (its class probabilities replace the spotter's); its run id."""
    rec = load_card(ws, cfg.recognizer)
    if list(rec["classes"]) != list(card["classes"]):
        raise InputError(f"recognizer {cfg.recognizer!r} has classes {rec['classes']}, the spotter "
                         f"{card['name']!r} {card['classes']}; they must be the same, in the same order")
    rec_run = f"{run_id}-recognizer"
    _, items, _ = work_items(ws, dataset, rec, videos, cfg.cross_validated)
    score_shards(ws, dataset, cfg.recognizer, rec_run, items, cfg)
    return rec_run


@flow(name="spot", validate_parameters=False)
def spot(dataset: str, model: str, home: str, run_id: str, cfg: SpotConfig) -> dict:
    """Spot, then recognize, every video of a dataset with a registered spotter; store and score predictions."""
    ws = Workspace(home).ensure()
    card = load_card(ws, model)
    spotter = get_spotter(card.get("kind", "mean"))
    record_run(ws, run_id, "spot", {"dataset": dataset, "model": model, "model_kind": spotter.kind,
                                    "model_post": card.get("post"), **to_dict(cfg)})
    videos = _videos(ws, dataset, cfg)
    plans, items, skipped = work_items(ws, dataset, card, videos, cfg.cross_validated)
    qc_rows: dict[str, list[dict]] = {video: [{"dataset": dataset, "video": video, "frame": None, "stage": "spot",
                                               "reason": why}] for video, why in skipped.items()}
    scores_run = cfg.scores_from or run_id
    if not cfg.scores_from:
        score_shards(ws, dataset, model, run_id, items, cfg)
    rec_run = _recognizer_run(ws, dataset, card, [v for v, _ in plans], run_id, cfg) if cfg.recognizer else None
    preds = []
    for v, fold in plans:
        n, fps = int(v["n_frames"]), (float(v["fps"]) if v.get("fps") else None)
        scores = read_scores(ws, scores_run, dataset, v["video"], n)
        if scores is None:
            continue
        if rec_run:
            scores["probs"] = (read_scores(ws, rec_run, dataset, v["video"], n) or scores)["probs"]
        lost = lost_frames(ws, dataset, v["video"], n, fps or 30.0)
        if lost.any():
            scores["micro"][lost] = 0.0
            qc_rows.setdefault(v["video"], []).extend(
                {"dataset": dataset, "video": v["video"], "frame": a, "stage": "spot",
                 "reason": f"face lost near frames {a}-{b}: scores zeroed, no interval may overlap them"}
                for a, b in lost_runs(lost))
        for iv in predict_video(scores, card, fold, n, fps, cfg):
            if lost[iv["onset"]:iv["offset"] + 1].any():
                continue  # an interval reaching into a lost face is not trusted
            preds.append({"run_id": run_id, "dataset": dataset, "subject": v["subject"], "video": v["video"],
                          "model": model, "onset": iv["onset"], "offset": iv["offset"], "emotion": iv["emotion"],
                          "score": iv["score"]})
    ws.replace("predictions", preds, run_id=run_id, dataset=dataset)
    for video, rows in qc_rows.items():
        ws.write("qc", rows, part=f"spot-{run_id}", dataset=dataset, video=video)
    scores_out = None
    if cfg.score:
        from tasks.score_str import score_str_run

        scores_out = score_str_run(ws, run_id, dataset=dataset)
    return {"run_id": run_id, "dataset": dataset, "model": model, "kind": spotter.kind, "n_videos": len(plans),
            "n_predictions": len(preds), "n_qc": sum(len(r) for r in qc_rows.values()), "scores": scores_out}


def spot_flow(dataset: str, model: str, home: str | None = None, run_id: str | None = None,
              cfg: SpotConfig | None = None, **settings: Any) -> dict:
    """Run the spot flow with `cfg` and/or SpotConfig `settings` (e.g. post={'method': 'megc'}, n_actors=1)."""
    ws = Workspace(home).ensure()
    return spot(dataset, model, ws.home, run_id or new_run_id("spot"), load_config(cfg or SpotConfig, None, settings))


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
