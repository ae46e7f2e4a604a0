"""Operational Prefect flows run by the deployments: nightly preprocessing, retraining on changed labelled data,
and batch inference over newly preprocessed videos.

Each flow is idempotent: run it as often as the schedule likes, it only does work when something changed.
"""

from __future__ import annotations

from datetime import datetime, UTC
from typing import Any
from urllib.parse import quote

from flows.runtime import prefect_defaults

prefect_defaults()

from prefect import flow, get_run_logger  # noqa: E402

from models.registry import check_name, find_card, load_card  # noqa: E402
from storage.errors import InputError, MegcError  # noqa: E402
from storage.runs import new_run_id  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks.manifest import dataset_manifest, featured_videos, read_json, write_json  # noqa: E402

MANIFEST_FILE = "manifest.json"


def ops_parts(model: str, *rest: str) -> tuple[str, ...]:
    """Where these flows keep a model's state: <home>/ops/<model>/..., apart from models/<model>/, which the
    registry replaces whole on each training."""
    return ("ops", check_name(model), *rest)


def ingested_datasets(ws: Workspace) -> list[str]:
    """Names of every dataset with rows in `videos`."""
    return sorted(p["dataset"] for p in ws.partitions("videos") if ws.files("videos", **p))


def recorded_manifest(ws: Workspace, model: str) -> str | None:
    """The manifest hash the model was trained on by `retrain`; None when the registered model came from
    another training (by hand) or there is none."""
    card = find_card(ws, model)
    side = read_json(ws, *ops_parts(model, MANIFEST_FILE))
    if card is None or not side or side.get("train_run_id") != card.get("run_id"):
        return None
    return str(side["manifest_hash"]) if side.get("manifest_hash") else None


def _with(overrides: dict[str, Any] | None, **values: Any) -> dict[str, Any]:
    """Config overrides plus the values given (an empty value keeps what the overrides say)."""
    return {**(overrides or {}), **{k: v for k, v in values.items() if v}}


def _infer_state(model: str, dataset: str) -> tuple[str, ...]:
    return ops_parts(model, "batch_infer", f"{quote(dataset, safe='')}.json")


@flow(name="nightly-preprocess")
def nightly_preprocess(home: str | None = None, dask_address: str | None = None,
                       datasets: list[str] | None = None, preprocess: dict[str, Any] | None = None) -> dict:
    """Preprocess every ingested dataset (or `datasets`) incrementally; finished shards are skipped."""
    from flows.preprocess import PreprocessFailed, preprocess_flow

    log = get_run_logger()
    ws = Workspace(home).ensure()
    names = list(datasets or ingested_datasets(ws))
    out: dict[str, Any] = {"home": ws.home, "datasets": {}}
    for ds in names:
        try:
            s = preprocess_flow(ds, ws.home, **_with(preprocess, dask_address=dask_address))
            out["datasets"][ds] = {"status": "ok", "run_id": s["run_id"], "shards_run": s["shards_run"],
                                   "shards_skipped": s["shards_skipped"], "feature_rows": s["feature_rows"]}
        except PreprocessFailed as exc:
            out["datasets"][ds] = {"status": "failed", "error": str(exc), "run_id": exc.summary.get("run_id")}
        log.info("nightly preprocess %s: %s", ds, out["datasets"][ds])
    failed = [d for d, r in out["datasets"].items() if r["status"] != "ok"]
    if failed:
        raise MegcError(f"nightly preprocess: {len(failed)} of {len(names)} datasets had failures: {failed}; "
                        "their other videos were processed")
    return out


@flow(name="retrain")
def retrain(dataset: str, model_name: str, home: str | None = None, ray_address: str | None = None,
            dask_address: str | None = None, train: dict[str, Any] | None = None,
            preprocess: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Retrain MEAN `model_name` on `dataset` only when its labelled content changed since the last training
    (videos without features are preprocessed first, with the `preprocess` settings the nightly run uses)."""
    from flows.preprocess import PreprocessFailed, preprocess_flow
    from flows.train import train_flow

    log = get_run_logger()
    ws = Workspace(home).ensure()
    manifest = dataset_manifest(ws, dataset)
    if manifest["n_videos"] == 0:
        raise InputError(f"dataset {dataset!r} has no videos (ingest it first)", file=ws.tables_dir / "videos")
    previous = recorded_manifest(ws, model_name)
    base = {"dataset": dataset, "model": model_name, **manifest, "previous_hash": previous}
    if previous == manifest["manifest_hash"] and not force:
        log.info("retrain %s: labelled content of %s unchanged (%s); nothing to do", model_name, dataset,
                 manifest["manifest_hash"][:12])
        return {**base, "status": "unchanged"}
    videos = {r[0] for r in ws.sql("SELECT video FROM videos WHERE dataset = ?", [dataset])[1]}
    missing = sorted(videos - set(featured_videos(ws, dataset)))
    if missing:
        # new videos are preprocessed first, so the model never trains on stale features under a new hash
        log.info("retrain %s: preprocessing %d videos without features first", model_name, len(missing))
        try:
            preprocess_flow(dataset, ws.home, **_with(preprocess, dask_address=dask_address))
        except PreprocessFailed as exc:
            log.warning("retrain %s: training without the videos that failed preprocessing: %s", model_name, exc)
    result = train_flow(dataset, ws.home, **_with(train, name=model_name, ray_address=ray_address))
    write_json(ws, ops_parts(model_name, MANIFEST_FILE),
               {"dataset": dataset, **manifest, "train_run_id": result["run_id"],
                "recorded_at": datetime.now(UTC).isoformat()})
    log.info("retrain %s: trained on %s (run %s, manifest %s)", model_name, dataset, result["run_id"],
             manifest["manifest_hash"][:12])
    return {**base, "status": "trained", "train_run_id": result["run_id"],
            "train_wall_s": result.get("train_wall_s")}


@flow(name="batch-infer")
def batch_infer(dataset: str, model_name: str, home: str | None = None, ray_address: str | None = None,
                spot: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Spot + recognize on `dataset` with `model_name` when videos gained features or the model changed
    since the last batch inference (state in <home>/ops/<name>/batch_infer/<dataset>.json)."""
    from flows.spot import spot_flow

    log = get_run_logger()
    ws = Workspace(home).ensure()
    card = load_card(ws, model_name)
    model_version = str(card.get("run_id") or card.get("created_at"))
    videos = featured_videos(ws, dataset)
    state_parts = _infer_state(model_name, dataset)
    state = read_json(ws, *state_parts) or {}
    done = set(state.get("videos", [])) if state.get("model_version") == model_version else set()
    new = sorted(set(videos) - done)
    base = {"dataset": dataset, "model": model_name, "model_version": model_version, "videos": len(videos),
            "new_videos": new}
    if not videos:
        log.info("batch infer %s: %s has no preprocessed videos yet", model_name, dataset)
        return {**base, "status": "no-features"}
    if not new and not force:
        log.info("batch infer %s on %s: no new videos since run %s", model_name, dataset, state.get("run_id"))
        return {**base, "status": "up-to-date", "run_id": state.get("run_id")}
    run_id = new_run_id("spot")
    out = spot_flow(dataset, model_name, ws.home, run_id, **_with(spot, ray_address=ray_address))
    write_json(ws, state_parts, {"model_version": model_version, "videos": videos, "run_id": run_id,
                                 "n_predictions": out["n_predictions"], "at": datetime.now(UTC).isoformat()})
    log.info("batch infer %s on %s: run %s, %d videos (%d new), %d predictions", model_name, dataset, run_id,
             out["n_videos"], len(new), out["n_predictions"])
    return {**base, "status": "ran", "run_id": run_id, "n_predictions": out["n_predictions"]}
