"""Bench: the expert VQA engine's six MEGC metrics and average on held-out synthetic subjects, printed as JSON.

The baseline measured in the same run answers every question with the most frequent training answer of its
question type (the compound sentence is composed from the majority labels). Usage:
    python bench/vqa.py [--home DIR] [--subjects 8] [--duration 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _dataset(ws, subjects: int, duration_s: float) -> tuple[str, str]:
    """Make the synthetic dataset (tasks.synth, preset tiny)."""
    import dataclasses

    from tasks.synth import make_dataset, preset

    cfg = dataclasses.replace(preset("tiny"), subjects=subjects, duration_s=duration_s, workers=2)
    return make_dataset(ws, cfg), f"tasks.synth.make_dataset(tiny, subjects={subjects}, duration_s={duration_s})"


def majority_answers(train: list[dict], test: list[dict]) -> list[str]:
    """Most frequent training answer per question type (yes/no and side likewise)."""
    from tasks.vqa_items import compound_answer

    common = {q: Counter(it["answer"] for it in train if it["qtype"] == q).most_common(1) for q in
              {it["qtype"] for it in train}}
    pick = {q: c[0][0] for q, c in common.items() if c}
    out = []
    for it in test:
        if it["qtype"] == "compound":
            names = pick.get("au", "").split(", ")
            out.append(compound_answer(names, pick.get("fine", "surprise"), pick.get("coarse", "negative")))
        else:
            out.append(pick.get(it["qtype"], ""))
    return out


def _six(s: dict) -> dict:
    """The six leaderboard figures, their average, and per-question-type accuracy."""
    return {"coarse_uf1": s["coarse"]["uf1"], "coarse_uar": s["coarse"]["uar"], "fine_uf1": s["fine"]["uf1"],
            "fine_uar": s["fine"]["uar"], "bleu": s["bleu"], "rouge1": s["rouge1"], "average": s["average"],
            "n": s["n"], "accuracy_by_question": {q: round(v["accuracy"], 3) for q, v in s["per_question"].items()}}


def main() -> None:
    """Run the bench and print one JSON object."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", default=None)
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--held-out", type=int, default=3, help="subjects held out for testing (the last ones)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per synthetic video")
    args = ap.parse_args()
    os.environ.setdefault("PREFECT_HOME", str(Path(tempfile.gettempdir()) / "megc-bench-prefect"))
    from flows.runtime import dask_client
    from flows.vqa import score_answers, vqa_answer_flow, vqa_build_flow, vqa_train_flow
    from storage.workspace import Workspace

    home = args.home or tempfile.mkdtemp(prefix="megc-bench-vqa-")
    ws = Workspace(home).ensure()
    t0 = time.perf_counter()
    dataset, source = _dataset(ws, args.subjects, args.duration)
    t_data = time.perf_counter() - t0
    subjects = sorted({r["subject"] for r in ws.read("intervals", dataset=dataset).to_pylist()
                       if r["kind"] == "micro"})
    built = vqa_build_flow(dataset, home, test_subjects=subjects[-args.held_out:])
    result: dict = {"bench": "vqa-expert", "dataset": dataset, "data_source": source, "items": built["items"],
                    "train_items": built["train"], "test_items": built["test"],
                    "test_subjects": built["test_subjects"], "bleu": "corpus", "seconds_make_data": round(t_data, 2)}
    with dask_client(workers=2) as client:
        addr = client.scheduler.address
        t = time.perf_counter()
        vqa_train_flow(dataset, "expert", home, dask_address=addr)
        result["seconds_train"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        ans = vqa_answer_flow(dataset, "expert", home, input_kind="oao", dask_address=addr)
        result["seconds_answer"] = round(time.perf_counter() - t, 2)
    result["expert"] = _six(ans["scores"])
    result["expert_run"] = ans["run_id"]
    items = ws.read("vqa_items", dataset=dataset).to_pylist()
    train = [it for it in items if it["split"] == "train"]
    test = [it for it in items if it["split"] == "test"]
    base = majority_answers(train, test)
    result["majority_baseline"] = _six(score_answers(
        [{"item_id": it["item_id"], "dataset": dataset, "question": it["question"], "answer": a, "gt": it["answer"]}
         for it, a in zip(test, base)], "corpus"))
    result["note"] = ("the expert reads onset->apex flow features only, so its answers do not depend on the VLM "
                      "input kind (frames / oao / flow)")
    print(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
