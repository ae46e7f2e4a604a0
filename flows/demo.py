"""Prefect flow `demo`: the whole mission on built-in synthetic data, ending in a report.

synthetic preset -> ingest -> preprocess -> train MEAN (held-out subjects) -> spot-then-recognize ->
STR scores under both protocols -> VQA (expert engine, or Qwen2.5-VL with `vlm`) -> VQA scores -> report.
A re-run reuses what is finished: the generated data, ingested tables, preprocessed shards and the trained
models whose config and training data are unchanged.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from flows.runtime import prefect_defaults

prefect_defaults()

from prefect import flow, get_run_logger  # noqa: E402

from storage.config import config_hash, load_config, to_dict  # noqa: E402
from storage.runs import new_run_id, record_run  # noqa: E402
from storage.workspace import Workspace  # noqa: E402


@dataclasses.dataclass
class DemoConfig:
    """Settings of the demo run."""

    preset: str = "demo"            # synthetic preset: tiny (tests), demo, samm, bench
    seed: int = 0
    fmt: str = "casme3"             # layout the synthetic data is written in: casme3, samm_lv, video
    workers: int = 2                # Dask workers for preprocessing
    flow: str = "dis"               # optical flow method
    split: str = "holdout"          # MEAN split: holdout (fast) or loso
    epochs_spot: int = 10
    epochs_rec: int = 100
    vlm: str = ""                   # local Qwen2.5-VL folder; empty: the expert engine answers
    vqa_input: str = "oao"          # frames, oao or flow
    model: str = ""                 # MEAN registry name (default demo-mean-<dataset>)
    spotter: str = "roi-tcn"        # the spotter whose predictions the demo reports first ('mean': MEAN only)


def _reusable_model(ws: Workspace, name: str, dataset: str, train_cfg: dict) -> bool:
    """True when a registered MEAN was trained on the same dataset rows with the same settings."""
    from models.registry import find_card

    card = find_card(ws, name)
    if card is None:
        return False
    _, rows = ws.sql("SELECT count(*), sum(n_frames) FROM videos WHERE dataset = ?", [dataset])
    same_data = card.get("training_data", {}).get("dataset") == dataset and rows[0][0] == card.get(
        "training_data", {}).get("n_videos")
    return same_data and _within(train_cfg, card.get("config", {}))


def _within(want: dict, have: dict) -> bool:
    """True when every setting in `want` (nested dicts: recursively) has that value in `have`."""
    return all(_within(v, have.get(k) or {}) if isinstance(v, dict) else have.get(k) == v for k, v in want.items())


@flow(name="demo", validate_parameters=False)
def demo(home: str, cfg: DemoConfig) -> dict:
    """Run every stage on synthetic data and write the report; returns the summary."""
    from flows.preprocess import preprocess_flow
    from flows.spot import spot_flow
    from flows.train import train_flow
    from flows.vqa import vqa_answer_flow, vqa_build_flow, vqa_train_flow
    from models.registry import load_card
    from tasks.report import write_report
    from tasks.synth import make_dataset

    log = get_run_logger()
    ws = Workspace(home).ensure()
    run_id = new_run_id("demo")
    timings: dict[str, float] = {}
    sub: dict[str, str] = {}

    def stage(label: str, fn, *args, **kwargs):
        t0 = time.perf_counter()
        log.info("demo: %s ...", label)
        out = fn(*args, **kwargs)
        timings[label] = round(time.perf_counter() - t0, 2)
        log.info("demo: %s done in %.1f s", label, timings[label])
        return out

    dataset = stage("synthesize + ingest", make_dataset, ws, cfg.preset, seed=cfg.seed, fmt=cfg.fmt)
    pre = stage("preprocess", preprocess_flow, dataset, home=ws.home, workers=cfg.workers, flow=cfg.flow)
    if pre.get("run_id"):
        sub["preprocess"] = pre["run_id"]
    model = cfg.model or f"demo-mean-{dataset}"
    train_cfg = {"split": cfg.split, "params": {"epochs_spot": cfg.epochs_spot, "epochs_rec": cfg.epochs_rec}}
    if _reusable_model(ws, model, dataset, train_cfg):
        log.info("demo: model %s is up to date; training skipped", model)
        timings["train MEAN"] = 0.0
    else:
        out = stage("train MEAN", train_flow, dataset, home=ws.home, kind="mean", name=model, evaluate=False,
                    **train_cfg)
        sub["train"] = out["run_id"]
    card = load_card(ws, model)
    held = sorted({s for f in card.get("folds", []) for s in f.get("heldout_subjects", [])})
    subjects = held if cfg.split == "holdout" else []
    spot = stage("spot + recognize + score STR (MEAN)", spot_flow, dataset, model, home=ws.home, subjects=subjects)
    sub["spot"] = spot["run_id"]
    if cfg.spotter != "mean":
        best = f"demo-{cfg.spotter}-{dataset}"
        spotter_cfg = {"split": cfg.split, "holdout_subjects": held if cfg.split == "holdout" else []}
        if _reusable_model(ws, best, dataset, spotter_cfg):
            timings[f"train {cfg.spotter}"] = 0.0
        else:
            out = stage(f"train {cfg.spotter}", train_flow, dataset, home=ws.home, kind=cfg.spotter, name=best,
                        evaluate=False, **spotter_cfg)
            sub["train_spotter"] = out["run_id"]
        sub["spot_mean"] = sub["spot"]
        sub["spot"] = stage(f"spot + recognize + score STR ({cfg.spotter})", spot_flow, dataset, best,
                            home=ws.home, subjects=subjects)["run_id"]
    stage("VQA build", vqa_build_flow, dataset, home=ws.home, test_subjects=held)
    engine = "qwen" if cfg.vlm else "expert"
    vqa_kw: dict[str, Any] = {"vlm": cfg.vlm} if cfg.vlm else {"mean_model": model}
    stage("VQA train", vqa_train_flow, dataset, engine="expert", home=ws.home, mean_model=model)
    answers = stage("VQA answer + score", vqa_answer_flow, dataset, engine=engine, home=ws.home,
                    input_kind=cfg.vqa_input, **vqa_kw)
    sub["vqa"] = answers["run_id"]
    record_run(ws, run_id, "demo", {**to_dict(cfg), "dataset": dataset, "model": model,
                                    "config_hash": config_hash(cfg), "sub_runs": sub, "stage_seconds": timings})
    t0 = time.perf_counter()
    paths = write_report(ws, run_id)
    timings["report"] = round(time.perf_counter() - t0, 2)
    return {"run_id": run_id, "dataset": dataset, "model": model, "sub_runs": sub, "timings": timings,
            "report": str(paths["html"]), "report_md": str(paths["markdown"])}


def demo_flow(home: str | None = None, cfg: DemoConfig | None = None, **settings: Any) -> dict:
    """Run the demo flow with `cfg` and/or DemoConfig `settings`."""
    return demo(Workspace(home).ensure().home, load_config(cfg or DemoConfig, None, settings))
