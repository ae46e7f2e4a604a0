"""Prefect flows for ME-VQA: build QA items, train (expert heads or Qwen2.5-VL LoRA), answer + score, export.

Visual inputs are made with Dask and cached in the workspace; Qwen runs inside Ray actors.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from flows.runtime import prefect_defaults

prefect_defaults()

from prefect import flow, get_run_logger, task  # noqa: E402

from models.expert import ExpertSettings, load_expert, save_expert, train_expert  # noqa: E402
from models.lora import LoraSettings  # noqa: E402
from models.registry import check_name  # noqa: E402
from storage.config import load_config, to_dict  # noqa: E402
from storage.errors import InputError, MegcError  # noqa: E402
from storage.runs import new_run_id, record_metrics, record_run  # noqa: E402
from storage.vocabulary import AU_NAMES, FINE, STR_CLASSES  # noqa: E402
from storage.workspace import Workspace  # noqa: E402
from tasks import vqa_items as vi  # noqa: E402
from tasks import vqa_labels  # noqa: E402

ENGINES = ("expert", "qwen")


@dataclasses.dataclass
class VqaConfig:
    """Settings of VQA training and answering runs."""

    input_kind: str = "oao"          # frames, oao or flow
    flow_coding: str = "hsv"         # flow image: hsv (hue = angle, value = magnitude) or uvm (u, v, magnitude)
    n_frames: int = 8                # uniformly sampled face frames for the frames input
    vlm: str = ""                    # local Qwen2.5-VL folder (engine qwen)
    adapter: str = ""                # LoRA adapter: a name under <home>/adapters or a folder
    name: str = ""                   # registry / adapter name written by train (default per dataset)
    expert: str = ""                 # expert model used for answers and hints (default vqa-expert-DATASET)
    mean_model: str = ""             # registered MEAN whose recognition head gives the coarse class
    hints: bool = False              # put the expert's predictions into the VLM prompt
    split: str = "test"              # items answered: test, train or all
    test_subjects: list[str] = dataclasses.field(default_factory=list)  # build: held-out subjects ([] = auto)
    max_new_tokens: int = 64
    batch_size: int = 4
    actors: int = 1                  # Ray actors for batch answering
    gpu_fraction: float = -1.0       # GPU per actor; -1: one when CUDA is visible, else CPU
    use_ray: bool = True             # False: run Qwen in this process (debugging)
    ray_address: str = ""
    dask_address: str = ""
    dask_workers: int = 2
    bleu: str = "corpus"             # corpus or sentence BLEU in the scores
    lora: LoraSettings = dataclasses.field(default_factory=LoraSettings)
    heads: ExpertSettings = dataclasses.field(default_factory=ExpertSettings)


def _items(ws: Workspace, dataset: str, split: str) -> list[dict]:
    rows = ws.read("vqa_items", dataset=dataset).to_pylist()
    if not rows:
        raise MegcError(f"no VQA items for dataset {dataset!r}; run `megc vqa build {dataset}` first")
    if split not in ("train", "test", "all"):
        raise InputError(f"split must be train, test or all, not {split!r}")
    return rows if split == "all" else [r for r in rows if r["split"] == split]


def _clips(items: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for it in items:
        if it["onset"] is None or it["offset"] is None:
            raise InputError(f"item {it['item_id']!r}: clip {it['interval_id']!r} is neither an interval nor a "
                             "video of the dataset, so it has no frames")
        seen.setdefault(it["interval_id"], {k: it[k] for k in ("interval_id", "video", "onset", "apex",
                                                                "offset")})
    return list(seen.values())


@task(name="vqa-inputs")
def make_inputs(home: str, dataset: str, items: list[dict], n_frames: int, dask_address: str,
                dask_workers: int) -> dict[str, dict]:
    """Cached frames / OAO / flow inputs of the items' clips, made on Dask."""
    from flows.runtime import dask_client
    from tasks.vqa_inputs import build_inputs

    ws = Workspace(home)
    clips = _clips(items)
    with dask_client(dask_address or None, workers=max(1, min(dask_workers, len(clips)))) as client:
        return build_inputs(ws, dataset, clips, n_frames, client)


def _labels_by_clip(items: list[dict]) -> dict[str, dict]:
    """Structured labels per clip read back from its items' answers (works for built and imported items)."""
    out: dict[str, dict] = {}
    for it in items:
        lab = out.setdefault(it["interval_id"], {"coarse": None, "fine": None, "aus": None, "side": None})
        a = (it["answer"] or "").strip().lower()
        if not a:
            continue
        if it["qtype"] == "coarse":
            lab["coarse"] = a
        elif it["qtype"] == "fine":
            lab["fine"] = a
        elif it["qtype"] == "au":
            lab["aus"] = vqa_labels.extract_aus(a)
        elif it["qtype"] == "au_side":
            lab["side"] = a
    return out


def _features(metas: dict[str, dict], clips: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from models.expert import feature_vector
    from tasks.vqa_inputs import interval_features

    mis, feats = [], []
    for c in clips:
        mi, roi = interval_features(metas[c])
        mis.append(mi)
        feats.append(feature_vector(mi, roi))
    return np.stack(feats), np.stack(mis)


def _expert_name(dataset: str, cfg: VqaConfig) -> str:
    return check_name(cfg.expert or (cfg.name if cfg.name else f"vqa-expert-{dataset}"))


def system_prompt() -> str:
    """System prompt listing every valid label."""
    return ("You are an expert in facial micro-expressions and the Facial Action Coding System. Answer in lower "
            f"case. Coarse expression classes: {', '.join(STR_CLASSES)}. Fine-grained expression classes: "
            f"{', '.join(FINE)}. Action units (FACS names): "
            f"{', '.join(AU_NAMES.values())}. Yes/no questions are answered yes or no; left/right "
            "questions left or right; the fine-grained class must belong to the coarse class.")


def _hint_text(pred: dict) -> str:
    names = [n for n in (vi.au_name(a) for a in pred["aus"]) if n]
    return f"coarse {pred['coarse']}; fine-grained {pred['fine']}; action units {', '.join(names)}"


def _conversations(items: list[dict], metas: dict[str, dict], cfg: VqaConfig,
                   hints: dict[str, dict] | None) -> list[list[dict]]:
    from models.qwen_vl import build_messages
    from tasks.vqa_inputs import media_for

    system = system_prompt()
    convs = []
    for it in items:
        media = media_for(metas[it["interval_id"]], cfg.input_kind, cfg.flow_coding)
        hint = _hint_text(hints[it["interval_id"]]) if hints else None
        convs.append(build_messages(it["question"], media, cfg.input_kind, system=system, hints=hint))
    return convs


def _adapter_dir(ws: Workspace, adapter: str) -> Path:
    p = Path(adapter).expanduser()
    if p.is_dir():
        return p
    name = check_name(adapter)
    if not ws.listdir("adapters", name):
        raise InputError(f"no LoRA adapter named {adapter!r}", file=ws.location("adapters", name))
    return ws.fetch_dir("adapters", name)


def _check_run(engine: str, cfg: VqaConfig, ws: Workspace) -> Path | None:
    """Fail before any work: engine, input kind, and for qwen the checkpoint and adapter folders."""
    from models.qwen_vl import INPUT_KINDS, check_checkpoint

    if engine not in ENGINES:
        raise InputError(f"engine must be one of {ENGINES}, not {engine!r}")
    if cfg.input_kind not in INPUT_KINDS:
        raise InputError(f"input kind must be one of {INPUT_KINDS}, not {cfg.input_kind!r}")
    if engine != "qwen":
        return None
    if not cfg.vlm:
        raise InputError("engine qwen needs --vlm PATH (a local Qwen2.5-VL folder)")
    if cfg.adapter:
        _adapter_dir(ws, cfg.adapter)
    return check_checkpoint(cfg.vlm)


def _ray(cfg: VqaConfig) -> None:
    from flows.runtime import ray_init

    ray_init(cfg.ray_address or None)


def _gpu(cfg: VqaConfig) -> float | None:
    return None if cfg.gpu_fraction < 0 else cfg.gpu_fraction


def _expert_predictions(ws: Workspace, dataset: str, cfg: VqaConfig, metas: dict[str, dict],
                        clips: list[str]) -> dict[str, dict]:
    expert = load_expert(ws, _expert_name(dataset, cfg), cfg.mean_model or None)
    feats, mis = _features(metas, clips)
    return dict(zip(clips, expert.predict(feats, mis)))


# ---- flows -----------------------------------------------------------------------------------------------
@flow(name="vqa-build", validate_parameters=False)
def vqa_build(dataset: str, home: str | None, test_subjects: list[str] | None, jsonl: list[str],
                   split: str | None) -> dict:
    """Build the dataset's VQA items from its micro intervals (or import MEGC JSONL files) into vqa_items."""
    ws = Workspace(home).ensure()
    run_id = new_run_id("vqa-build")
    record_run(ws, run_id, "vqa-build", {"dataset": dataset, "test_subjects": test_subjects, "jsonl": jsonl,
                                         "split": split})
    if jsonl:
        items = [it for p in jsonl for it in vi.import_jsonl(ws, dataset, p, split)]
        old = {r["item_id"]: r for r in ws.read("vqa_items", dataset=dataset).to_pylist()}
        old.update({it["item_id"]: it for it in items})
        items = list(old.values())
    else:
        items = vi.build_items(ws, dataset, test_subjects or None)
    ws.replace("vqa_items", items, dataset=dataset)
    by_type: dict[str, int] = {}
    for it in items:
        by_type[it["qtype"]] = by_type.get(it["qtype"], 0) + 1
    return {"run_id": run_id, "dataset": dataset, "items": len(items),
            "train": sum(it["split"] == "train" for it in items),
            "test": sum(it["split"] == "test" for it in items), "by_qtype": by_type,
            "test_subjects": sorted({it["subject"] for it in items if it["split"] == "test"})}


def vqa_build_flow(dataset: str, home: str | None = None, **kw: Any) -> dict:
    """Build VQA items (kw: test_subjects=[...], jsonl=[paths], split=None)."""
    return vqa_build(dataset, Workspace(home).home, kw.get("test_subjects"), list(kw.get("jsonl") or []),
                          kw.get("split"))


@flow(name="vqa-train", validate_parameters=False)
def vqa_train(dataset: str, engine: str, home: str, cfg: VqaConfig) -> dict:
    """Train the expert heads or a Qwen2.5-VL LoRA adapter on the train split."""
    ws = Workspace(home).ensure()
    vlm = _check_run(engine, cfg, ws)
    run_id = new_run_id("vqa-train")
    record_run(ws, run_id, "vqa-train", {"dataset": dataset, "engine": engine, **to_dict(cfg)})
    items = _items(ws, dataset, "train")
    if not items:
        raise MegcError(f"dataset {dataset!r} has no train items")
    metas = make_inputs(ws.home, dataset, items, cfg.n_frames, cfg.dask_address, cfg.dask_workers)
    if engine == "expert":
        labels = _labels_by_clip(items)
        clips = sorted(labels)
        feats, _ = _features(metas, clips)
        expert = train_expert(feats, [labels[c] for c in clips], cfg.heads)
        expert.card.update({"dataset": dataset, "run_id": run_id, "clips": len(clips)})
        name = _expert_name(dataset, cfg)
        save_expert(ws, name, expert)
        return {"run_id": run_id, "engine": engine, "model": name, "clips": len(clips), "aus": expert.card["aus"],
                "fine": expert.card["fine"]}
    hints = _expert_predictions(ws, dataset, cfg, metas, sorted(metas)) if cfg.hints else None
    convs = _conversations(items, metas, cfg, hints)
    answers = [it["answer"] for it in items]
    name = check_name(cfg.name or f"vqa-lora-{dataset}-{cfg.input_kind}")
    out = ws.root / "adapters" / name  # written here, then stored (a no-op for a local workspace)
    if cfg.use_ray:
        from models.vqa_actors import train_on_ray

        _ray(cfg)
        res = train_on_ray(vlm, convs, answers, cfg.lora, out, _gpu(cfg))
    else:
        from models.vqa_actors import QwenWorker

        res = QwenWorker(str(vlm)).train(convs, answers, dataclasses.asdict(cfg.lora), str(out))
    meta = {"dataset": dataset, "vlm": str(vlm), "input_kind": cfg.input_kind, "run_id": run_id,
            "losses": res["losses"], "items": len(items)}
    (out / "megc_adapter.json").write_text(json.dumps(meta, indent=2))
    ws.put_dir(out, "adapters", name)
    return {"run_id": run_id, "engine": engine, "adapter": name, "path": res["adapter"], "losses": res["losses"]}


def vqa_train_flow(dataset: str, engine: str = "expert", home: str | None = None, cfg: VqaConfig | None = None,
              **settings: Any) -> dict:
    """Train an engine on the dataset's train items (`cfg` and/or VqaConfig settings: vlm=, input_kind=, lora=)."""
    cfg = load_config(cfg or VqaConfig, None, settings)
    _check_run(engine, cfg, Workspace(home))
    return vqa_train(dataset, engine, Workspace(home).home, cfg)


def score_answers(rows: list[dict], bleu: str = "corpus") -> dict | None:
    """tasks.score_vqa figures for answered rows that have a ground truth (None when none has one)."""
    from tasks.score_vqa import score_vqa

    scored = [r for r in rows if r.get("gt")]
    if not scored:
        return None
    pred = [{"id": r.get("item_id", str(i)), "dataset": r.get("dataset"), "question": r["question"],
             "answer": r["answer"]} for i, r in enumerate(scored)]
    gt = [{"id": p["id"], "dataset": p["dataset"], "question": r["question"], "answer": r["gt"]}
          for p, r in zip(pred, scored)]
    return score_vqa(pred, gt, bleu=bleu)


@flow(name="vqa-answer", validate_parameters=False)
def vqa_answer(dataset: str, engine: str, home: str, cfg: VqaConfig, run_id: str | None = None) -> dict:
    """Answer the chosen split's items, store them in vqa_answers under a run id, score and record metrics."""
    ws = Workspace(home).ensure()
    vlm = _check_run(engine, cfg, ws)
    run_id = run_id or new_run_id("vqa")
    record_run(ws, run_id, "vqa", {"dataset": dataset, "engine": engine, **to_dict(cfg)})
    items = _items(ws, dataset, cfg.split)
    if not items:
        raise MegcError(f"dataset {dataset!r} has no {cfg.split} items")
    metas = make_inputs(ws.home, dataset, items, cfg.n_frames, cfg.dask_address, cfg.dask_workers)
    clips = sorted({it["interval_id"] for it in items})
    if engine == "expert":
        preds = _expert_predictions(ws, dataset, cfg, metas, clips)
        answers = [vi.compose_answer(it["qtype"], it["question"], preds[it["interval_id"]]) for it in items]
    else:
        adapter = str(_adapter_dir(ws, cfg.adapter)) if cfg.adapter else None
        hints = _expert_predictions(ws, dataset, cfg, metas, clips) if cfg.hints else None
        convs = _conversations(items, metas, cfg, hints)
        if cfg.use_ray:
            from models.vqa_actors import answer_on_ray

            from flows.progress import StageProgress

            _ray(cfg)
            with StageProgress(f"vqa answer {dataset}", len(convs), "items", logger=get_run_logger()) as bar:
                answers = answer_on_ray(vlm, convs, adapter, cfg.max_new_tokens, cfg.batch_size, cfg.actors,
                                        _gpu(cfg), bar.advance)
        else:
            from models.vqa_actors import QwenWorker

            answers = QwenWorker(str(vlm), adapter).answer(convs, cfg.max_new_tokens, cfg.batch_size)
    rows = [{"run_id": run_id, "dataset": dataset, "item_id": it["item_id"], "interval_id": it["interval_id"],
             "qtype": it["qtype"], "question": it["question"], "answer": a, "gt": it["answer"] or None,
             "engine": engine, "input_kind": cfg.input_kind} for it, a in zip(items, answers)]
    ws.write("vqa_answers", rows, run_id=run_id, dataset=dataset)
    scores = score_answers(rows, cfg.bleu)
    if scores:
        from tasks.score_vqa import metric_rows

        record_metrics(ws, run_id, metric_rows(scores), part=f"vqa-{dataset}")
    return {"run_id": run_id, "engine": engine, "input_kind": cfg.input_kind, "answered": len(rows),
            "scores": scores}


def vqa_answer_flow(dataset: str, engine: str = "expert", home: str | None = None, cfg: VqaConfig | None = None,
               run_id: str | None = None, **settings: Any) -> dict:
    """Answer and score the dataset's items (`cfg` and/or VqaConfig settings: vlm=, adapter=, hints=, split=)."""
    cfg = load_config(cfg or VqaConfig, None, settings)
    _check_run(engine, cfg, Workspace(home))
    return vqa_answer(dataset, engine, Workspace(home).home, cfg, run_id)


def export_vqa(ws: Workspace, run_id: str, out: str | Path) -> list[Path]:
    """Submission JSONL per dataset of a run (test rows with answers filled), e.g. me_vqa_casme3_test_pred.jsonl."""
    parts = ws.partitions("vqa_answers", run_id=run_id)
    if not parts:
        raise MegcError(f"run {run_id!r} has no VQA answers")
    written = []
    for p in parts:
        dataset = p["dataset"]
        answers = {r["item_id"]: r["answer"] for r in ws.read("vqa_answers", run_id=run_id, dataset=dataset)
                   .to_pylist()}
        items = [it for it in ws.read("vqa_items", dataset=dataset).to_pylist() if it["item_id"] in answers]
        written.append(vi.write_jsonl(Path(out) / vi.submission_name(dataset), vi.test_rows(items, answers)))
    return written


def export_items(ws: Workspace, dataset: str, out: str | Path) -> list[Path]:
    """The dataset's items as MEGC JSONL: training rows (train split) and empty-answer test rows (test split)."""
    items = ws.read("vqa_items", dataset=dataset).to_pylist()
    if not items:
        raise MegcError(f"no VQA items for dataset {dataset!r}; run `megc vqa build {dataset}` first")
    stem = vi.submission_name(dataset).replace("_test_pred.jsonl", "")
    train = vi.training_rows([it for it in items if it["split"] == "train"])
    test = vi.test_rows([it for it in items if it["split"] == "test"])
    return [vi.write_jsonl(Path(out) / f"{stem}_train.jsonl", train),
            vi.write_jsonl(Path(out) / f"{stem}_test.jsonl", test)]
