"""Prefect flow `train-mean`: MEAN spot-then-recognize training, one Ray task per fold (LOSO or holdout).

Each fold trainer reads only its sampled rows from the feature shards (tasks.mean_data.gather). k' comes
from the fold's training subjects only. LOSO stores the per-fold models plus, with train_final, a final model
trained on every subject; holdout stores the one model (the fold) as the final model.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from datetime import datetime, UTC
from typing import Any

import numpy as np

from flows.runtime import prefect_defaults, ray_init

prefect_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402

from models.mean import MeanTrainParams  # noqa: E402
from models.registry import check_name, save_model  # noqa: E402
from storage.config import config_hash, git_revision, load_config, to_dict  # noqa: E402
from storage.errors import InputError  # noqa: E402
from storage.runs import new_run_id, record_run  # noqa: E402
from storage.vocabulary import STR_CLASSES  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks.mean_data import ME, Shard, gather, micro_intervals, plan_size, rec_plan, shard_index, spot_plan  # noqa: E402
from tasks.pseudo_labels import k_prime  # noqa: E402


@dataclasses.dataclass
class TrainMeanConfig:
    """Settings of one MEAN training (reference values by default)."""

    name: str = ""                  # registry name; default mean-<dataset>
    split: str = "loso"             # loso | holdout
    holdout_subjects: list[str] = dataclasses.field(default_factory=list)  # holdout: default last 25% sorted
    holdout_fraction: float = 0.25
    epochs_spot: int = 10
    epochs_rec: int = 100
    batch_size: int = 32
    lr: float = 5e-4
    neg_ratio: float = 5.0
    seed: int = 0
    classes: list[str] = dataclasses.field(default_factory=lambda: list(STR_CLASSES))
    train_final: bool = True        # LOSO: also train one model on every subject
    validate: bool = True           # per-fold figures on the held-out subjects' balanced samples
    evaluate: bool = True           # then run the spot flow (cross-validated) and score it
    ray_address: str = ""
    num_cpus: float = 1.0
    num_gpus: float = -1.0          # -1: one GPU per fold when the cluster has GPUs, else none
    device: str = ""                # '' = cuda when available, else cpu


def _folds(subjects: list[str], cfg: TrainMeanConfig) -> list[tuple[str, list[str]]]:
    """(fold name, held-out subjects) per fold."""
    if cfg.split == "loso":
        if len(subjects) < 2:
            raise InputError(f"LOSO needs at least 2 subjects with features; found {subjects}")
        return [(f"fold{i:02d}", [s]) for i, s in enumerate(subjects)]
    if cfg.split == "holdout":
        held = list(cfg.holdout_subjects) or subjects[len(subjects) - max(1, math.ceil(cfg.holdout_fraction
                                                                                      * len(subjects))):]
        unknown = sorted(set(held) - set(subjects))
        if unknown:
            raise InputError(f"holdout subjects {unknown} have no features; subjects: {subjects}")
        if len(held) >= len(subjects):
            raise InputError("holdout leaves no training subject")
        return [("holdout", held)]
    raise InputError(f"split must be loso or holdout, not {cfg.split!r}")


def _job(fold: str, held: list[str], shards: list[Shard], mes: list[ME], cfg: TrainMeanConfig):
    from models.mean_actors import FoldJob

    train = [s for s in shards if s.subject not in held]
    test = [s for s in shards if s.subject in held]
    train_mes = [m for m in mes if m.subject not in held]
    if not train_mes:
        raise InputError(f"fold {fold}: the training subjects have no micro-expression intervals")
    kp = k_prime([(m.onset, m.offset) for m in train_mes])
    val = cfg.validate and bool(test)
    params = MeanTrainParams(cfg.epochs_spot, cfg.epochs_rec, cfg.batch_size, cfg.lr, cfg.seed, cfg.device)
    job = FoldJob(fold, held, spot_plan(train, train_mes, kp, cfg.neg_ratio, cfg.seed),
                  rec_plan(train, train_mes, cfg.classes),
                  spot_plan(test, mes, kp, cfg.neg_ratio, cfg.seed) if val else [],
                  rec_plan(test, mes, cfg.classes) if val else [], len(cfg.classes), params)
    return job, kp


@task(name="train-folds")
def train_folds_task(jobs: list, cfg: TrainMeanConfig, home: str) -> list[dict]:
    """All folds on Ray (each reads its rows from the workspace `home`)."""
    from models.mean_actors import train_folds

    from flows.progress import StageProgress

    ray_init(cfg.ray_address or None)
    load = functools.partial(gather, ws=Workspace(home))
    with StageProgress("train folds", len(jobs), "folds", logger=get_run_logger()) as bar:
        return train_folds(jobs, load, cfg.num_cpus, None if cfg.num_gpus < 0 else cfg.num_gpus, bar.advance)


def _summary(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


@flow(name="train-mean", validate_parameters=False)
def train_mean(dataset: str, home: str, config: dict) -> dict:
    """Train MEAN on a dataset's features and register it (safetensors + card)."""
    cfg = load_config(TrainMeanConfig, None, config)
    name = check_name(cfg.name or f"mean-{dataset}")
    ws = Workspace(home).ensure()
    run_id = new_run_id("train")
    record_run(ws, run_id, "train", {"dataset": dataset, **to_dict(cfg)})
    t0 = time.perf_counter()
    shards = shard_index(ws, dataset)
    if not shards:
        raise InputError(f"dataset {dataset!r} has no feature rows in {ws.tables_dir / 'features'}; "
                         "run preprocess first")
    mes = micro_intervals(ws, dataset)
    subjects = sorted({s.subject for s in shards})
    ks = sorted({s.k for s in shards})
    if len(ks) != 1:
        raise InputError(f"dataset {dataset!r} mixes flow steps k={ks}; re-run preprocess with one k")
    jobs, kps = [], {}
    for fold, held in _folds(subjects, cfg):
        job, kps[fold] = _job(fold, held, shards, mes, cfg)
        jobs.append(job)
    final_fold = None
    if cfg.split == "loso" and cfg.train_final:
        final_fold = "final"
        job, kps[final_fold] = _job(final_fold, [], shards, mes, cfg)
        jobs.append(job)
    results = train_folds_task(jobs, cfg, ws.home)
    wall = time.perf_counter() - t0
    folds = [{"fold": r["fold"], "heldout_subjects": j.heldout_subjects, "k_prime": kps[r["fold"]],
              "stats": r["stats"]} for r, j in zip(results, jobs) if r["fold"] != "final"]
    fold_weights = {r["fold"]: r["weights"] for r in results if r["fold"] != "final"}
    final = next((r for r in results if r["fold"] == "final"), results[0])
    validation = {key: _summary([f["stats"].get(key) for f in folds])
                  for key in ("val_spot_mse", "val_spot_acc", "val_rec_acc")}
    fps = ws.read("videos", columns=["fps"], dataset=dataset).column("fps").to_pylist()
    hashes = sorted({h for (h,) in ws.sql("SELECT DISTINCT config_hash FROM features WHERE dataset = ?",
                                          [dataset])[1]})
    card = {
        "name": name, "kind": "mean", "classes": list(cfg.classes), "k": ks[0],
        "k_prime": kps[final["fold"]] if final_fold else kps[folds[0]["fold"]],
        "fps": sorted(set(fps)), "preprocess_config_hash": hashes,
        "training_data": {"dataset": dataset, "subjects": subjects, "n_videos": len({s.video for s in shards}),
                          "n_frames": int(sum(len(s.frames) for s in shards)), "n_micro": len(mes),
                          "n_spot_samples": [plan_size(j.spot) for j in jobs],
                          "n_rec_samples": [plan_size(j.rec) for j in jobs]},
        "split": cfg.split, "folds": folds, "final": "all subjects" if final_fold else folds[0]["fold"],
        "validation": validation, "train_wall_s": round(wall, 2), "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(), "git_revision": git_revision(),
        "config": to_dict(cfg), "config_hash": config_hash(cfg),
    }
    save_model(ws, name, final["weights"], card, fold_weights)
    out = {"run_id": run_id, "model": name, "train_wall_s": wall, "validation": validation, "folds": len(folds)}
    if cfg.evaluate:
        from flows.spot import SpotConfig, spot

        held = [s for f in folds for s in f["heldout_subjects"]] if cfg.split == "holdout" else []
        spot_cfg = SpotConfig(ray_address=cfg.ray_address, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
                              subjects=held)
        out["spot"] = spot(dataset, name, ws.home, new_run_id("spot"), to_dict(spot_cfg))
    return out


def train_mean_flow(dataset: str, home: str | None = None, **overrides: Any) -> dict:
    """Run the train-mean flow; `overrides` are TrainMeanConfig settings (config=YAML path allowed)."""
    path = overrides.pop("config", None)
    cfg = load_config(TrainMeanConfig, path, overrides)
    ws = Workspace(home).ensure()
    return train_mean(dataset, ws.home, to_dict(cfg))
