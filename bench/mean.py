"""Benchmark of MEAN spot-then-recognize with LOSO: prints one JSON object.

On the synthetic demo dataset (tasks.synth.make_dataset preset "demo" + the preprocess flow; about 16 videos x
40 s x 30 fps, 8 subjects), or with --planted on planted features of the same size (tasks/synth/planted.py):
- LOSO training wall time (Ray tasks, one per fold, plus the final model unless --no-final);
- cross-validated spotting, then STR scores (spot F1, analysis F1, STRS) under both protocols (megc2025 and
  strict), for the reference post-processing and for megc's defaults (the same frame scores, post-processed
  twice);
- inference wall time and frames/s.
Usage: python bench/mean.py [--home DIR] [--planted] [--epochs-spot N] [--epochs-rec N] [--no-final]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def _figures(scores: dict | None) -> dict:
    out = {}
    for key, r in (scores or {}).items():
        out[key] = {"spot_f1": r["spotting"]["f1"], "tp": r["spotting"]["tp"], "fp": r["spotting"]["fp"],
                    "fn": r["spotting"]["fn"], "analysis_f1": r["analysis"]["f1"], "strs": r["strs"]}
    return out


def _dataset(ws, planted: bool) -> tuple[str, str, float]:
    """(dataset name, source description, seconds spent making it)."""
    t0 = time.perf_counter()
    if planted:
        from tasks.synth.planted import plant_dataset

        if not ws.files("features", dataset="planted"):
            plant_dataset(ws, "planted", subjects=8, videos_per_subject=2, n_frames=1200, mes_per_video=3)
        return "planted", "planted features (tasks/synth/planted.py), 8 subjects x 2 videos x 1200 frames", \
            time.perf_counter() - t0
    from flows.preprocess import preprocess_flow
    from tasks.synth.dataset import make_dataset

    name = make_dataset(ws, "demo")
    preprocess_flow(name, str(ws.root))
    return name, "tasks.synth demo preset + preprocess flow", time.perf_counter() - t0


def main() -> None:
    """Run the benchmark and print its JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=None)
    ap.add_argument("--planted", action="store_true")
    ap.add_argument("--epochs-spot", type=int, default=10)
    ap.add_argument("--epochs-rec", type=int, default=100)
    ap.add_argument("--no-final", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    home = args.home or tempfile.mkdtemp(prefix="megc-bench-mean-")

    from flows.runtime import ray_init
    from storage.workspace import Workspace

    ws = Workspace(home).ensure()
    load0 = os.getloadavg()[0]
    dataset, source, make_s = _dataset(ws, args.planted)
    ray_init()

    from flows.spot import spot_flow
    from flows.train import train_flow
    from models.registry import load_card

    t0 = time.perf_counter()
    train = train_flow(dataset, home, kind="mean", params={"epochs_spot": args.epochs_spot,
                                                           "epochs_rec": args.epochs_rec},
                       train_final=not args.no_final, evaluate=False, name="bench-mean")
    train_s = time.perf_counter() - t0
    card = load_card(ws, "bench-mean")
    t0 = time.perf_counter()
    ref = spot_flow(dataset, "bench-mean", home)
    spot_s = time.perf_counter() - t0
    megc = spot_flow(dataset, "bench-mean", home, scores_from=ref["run_id"], post={"method": "megc"})
    labelled = spot_flow(dataset, "bench-mean", home, scores_from=ref["run_id"], only_labelled=True)
    n_frames = card["training_data"]["n_frames"]
    print(json.dumps({
        "bench": "mean", "dataset": dataset, "source": source, "dataset_prep_s": round(make_s, 1),
        "n_videos": card["training_data"]["n_videos"], "n_frames": n_frames,
        "n_micro": card["training_data"]["n_micro"], "subjects": len(card["training_data"]["subjects"]),
        "k": card["k"], "k_prime": card["k_prime"], "epochs_spot": args.epochs_spot, "epochs_rec": args.epochs_rec,
        "folds": len(card["folds"]), "final_model": not args.no_final,
        "train_wall_s": round(train_s, 1), "train_wall_in_flow_s": card["train_wall_s"],
        "spot_wall_s": round(spot_s, 1), "spot_frames_per_s": round(n_frames / spot_s, 1),
        "fold_cpu_s": [f["stats"].get("cpu_s") for f in card["folds"]],
        "fold_wall_s": [f["stats"].get("wall_s") for f in card["folds"]],
        "validation": card["validation"],
        "reference_post": _figures(ref["scores"]), "megc_post": _figures(megc["scores"]),
        "reference_post_only_labelled_videos": _figures(labelled["scores"]),
        "n_predictions": {"reference": ref["n_predictions"], "megc": megc["n_predictions"]},
        "runs": {"train": train["run_id"], "reference": ref["run_id"], "megc": megc["run_id"]},
        "cpus": os.cpu_count(), "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2),
        "home": home,
    }, indent=1))


if __name__ == "__main__":
    main()
