"""Prefect flow `train-series`: trains a ROI-series spotter kind (models.spotters, input_table roi_series),
one Ray task per fold (LOSO or holdout, plus a final model on every subject), and registers it.

Each fold's task reads only its training videos from the workspace and fits the kind on them, choosing the
decision threshold on those training videos alone; the card keeps each fold's threshold, the post-processing
settings it was chosen under, and the kind's settings.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime, UTC

from flows.runtime import prefect_defaults, ray_init

prefect_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402

from models.registry import check_name, save_model  # noqa: E402
from models.spotters import get_spotter  # noqa: E402
from storage.config import config_hash, git_revision, to_dict  # noqa: E402
from storage.errors import InputError  # noqa: E402
from storage.runs import new_run_id, record_run  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks.spot_inputs import load_labelled  # noqa: E402
from tasks.stage_config import TrainConfig, split_folds  # noqa: E402


def fit_fold(kind: str, fold: str, keys: list[dict], cfg: TrainConfig, load, num_cpus: float) -> dict:
    """Fit one fold of a ROI-series kind on its training videos; weights (maybe empty) and fitted state."""
    import torch

    torch.set_num_threads(max(1, int(num_cpus)))
    t0, c0 = time.perf_counter(), time.process_time()
    weights, state = get_spotter(kind).impl().fit(load(keys), cfg.params, cfg.post, list(cfg.classes))
    return {"fold": fold, "weights": weights, "state": state,
            "stats": {"wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(time.process_time() - c0, 2),
                      "n_videos": len(keys)}}


@task(name="fit-folds")
def fit_folds_task(jobs: list[tuple], cfg: TrainConfig, home: str) -> list[dict]:
    """Every fold as a Ray task, each reading its own videos from the workspace `home`."""
    from flows.progress import StageProgress
    from models.ray_tasks import map_tasks

    ray_init(cfg.ray_address or None)
    load = functools.partial(load_labelled, ws=Workspace(home))
    with StageProgress("train folds", len(jobs), "folds", logger=get_run_logger()) as bar:
        return map_tasks(fit_fold, [(cfg.kind, f, keys, cfg, load, cfg.num_cpus) for f, keys in jobs],
                         cfg.num_cpus, None if cfg.num_gpus < 0 else cfg.num_gpus, bar.advance)


@flow(name="train-series", validate_parameters=False)
def train_series(dataset: str, home: str, cfg: TrainConfig) -> dict:
    """Train a ROI-series spotter on a dataset and register it (safetensors + card)."""
    spotter = get_spotter(cfg.kind)
    name = check_name(cfg.name or f"{cfg.kind}-{dataset}")
    ws = Workspace(home).ensure()
    run_id = new_run_id("train")
    record_run(ws, run_id, "train", {"dataset": dataset, **to_dict(cfg)})
    t0 = time.perf_counter()
    have = {p["video"] for p in ws.partitions("roi_series", dataset=dataset) if ws.files("roi_series", **p)}
    videos = [v for v in ws.read("videos", columns=["subject", "video", "n_frames", "fps"], dataset=dataset)
              .to_pylist() if v["video"] in have]
    if not videos:
        raise InputError(f"dataset {dataset!r} has no roi_series rows in {ws.tables_dir / 'roi_series'}; "
                         "run preprocess first")
    subjects = sorted({v["subject"] for v in videos})
    key = lambda v: {"dataset": dataset, "video": v["video"], "n_frames": int(v["n_frames"]), "fps": float(v["fps"])}
    folds = split_folds(subjects, cfg)
    jobs = [(fold, [key(v) for v in videos if v["subject"] not in held]) for fold, held in folds]
    if cfg.split == "loso" and cfg.train_final:
        jobs.append(("final", [key(v) for v in videos]))
    results = fit_folds_task(jobs, cfg, ws.home)
    by_fold = {r["fold"]: r for r in results}
    final = by_fold.get("final", results[0])
    ks = sorted({k for (k,) in ws.sql("SELECT DISTINCT k FROM roi_series WHERE dataset = ?", [dataset])[1]})
    card = {
        "name": name, "kind": spotter.kind, "classes": list(cfg.classes), "k": ks[0] if len(ks) == 1 else None,
        "fps": sorted({float(v["fps"]) for v in videos}), "threshold": final["state"]["threshold"],
        "post": to_dict(cfg.post), "state": final["state"],
        "training_data": {"dataset": dataset, "subjects": subjects, "n_videos": len(videos),
                          "n_frames": int(sum(v["n_frames"] for v in videos))},
        "split": cfg.split, "final": "all subjects" if "final" in by_fold else folds[0][0],
        "folds": [{"fold": f, "heldout_subjects": held, "threshold": by_fold[f]["state"]["threshold"],
                   "state": by_fold[f]["state"], "stats": by_fold[f]["stats"]} for f, held in folds],
        "train_wall_s": round(time.perf_counter() - t0, 2), "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(), "git_revision": git_revision(),
        "config": to_dict(cfg), "config_hash": config_hash(cfg),
    }
    save_model(ws, name, final["weights"], card, {f: by_fold[f]["weights"] for f, _ in folds})
    return {"run_id": run_id, "model": name, "train_wall_s": card["train_wall_s"], "folds": len(folds),
            "heldout_subjects": [s for _, held in folds for s in held]}
