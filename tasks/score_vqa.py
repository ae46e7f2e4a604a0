"""ME-VQA scoring: coarse/fine UF1 and UAR (SQL), BLEU-4 (nltk), ROUGE-1 F1 (rouge-score), the six-way average.

Rows pair on (key, question) where key is the row's `video_id` (test files), else `image_id`, else `id`
(training files); questions compare lower-cased with runs of white space collapsed. When no row of either
list carries a key, rows pair by position (the lists must have equal length). A GT row without a
prediction is scored with an empty answer and counted in "missing"; predictions without a GT row are
ignored and counted in "unmatched".
Labels: coarse from coarse and compound questions, fine from fine and compound questions
(tasks.vqa_labels.extract_coarse / extract_fine); UF1 / UAR over the classes present in GT
(sql/vqa_class_metrics.sql). BLEU-4 tokenises lower-cased text with str.split: corpus BLEU by default,
or nltk sentence BLEU with SmoothingFunction().method1 averaged over rows. ROUGE-1 F1 is averaged over rows.
Errors name the file and row; a row number is the 1-based line number of the JSONL file (rows read by
read_jsonl carry it as `_row`, with `_file`; for other rows it is the 1-based position in the list).
"""

from __future__ import annotations

import warnings
from typing import Any

import pyarrow as pa

import sql
from storage.errors import InputError
from storage.jsonl import read_jsonl  # noqa: F401  (part of this module's API)
from storage.vocabulary import QUESTION_TYPES
from tasks.vqa_labels import extract_aus, extract_coarse, extract_fine, question_type

KEY_FIELDS = ("video_id", "image_id", "id")
BLEU_MODES = ("corpus", "sentence")
ALL = "all"


def average_six(coarse_uf1: float | None, coarse_uar: float | None, fine_uf1: float | None,
                fine_uar: float | None, bleu: float | None, rouge1: float | None) -> float | None:
    """The leaderboard average: plain mean of the six figures (None when any is missing)."""
    six = (coarse_uf1, coarse_uar, fine_uf1, fine_uar, bleu, rouge1)
    if any(v is None for v in six):
        return None
    return sum(six) / 6.0


def row_key(row: dict) -> str | None:
    """The clip key of a row: video_id, else image_id, else id (None when it has none)."""
    for f in KEY_FIELDS:
        v = row.get(f)
        if v is not None and str(v) != "":
            return str(v)
    return None


def _norm_q(question: str) -> str:
    return " ".join(str(question).lower().split())


def _check(rows: list[dict], name: str, need_answer: bool) -> None:
    for i, r in enumerate(rows, start=1):
        if not isinstance(r, dict):
            raise InputError("row is not an object", file=name, row=i)
        where, name = r.get("_row", i), r.get("_file", name)
        if not isinstance(r.get("question"), str) or not r["question"].strip():
            raise InputError("missing or empty 'question'", file=name, row=where)
        a = r.get("answer")
        if a is not None and not isinstance(a, str):
            raise InputError(f"'answer' must be a string, not {type(a).__name__}", file=name, row=where)
        if need_answer and not (a or "").strip():
            raise InputError("missing or empty 'answer' in a ground-truth row", file=name, row=where)


def pair_rows(pred_rows: list[dict], gt_rows: list[dict], pred_name: str = "predictions",
              gt_name: str = "ground truth") -> tuple[list[tuple[dict, dict | None]], int]:
    """(GT row, its prediction or None) pairs and the number of predictions without a GT row."""
    _check(gt_rows, gt_name, True)
    _check(pred_rows, pred_name, False)
    keyed = any(row_key(r) is not None for r in gt_rows) or any(row_key(r) is not None for r in pred_rows)
    if not keyed:
        if len(pred_rows) != len(gt_rows):
            raise InputError(f"rows carry no video_id/image_id/id, so they pair by position, but there are "
                             f"{len(pred_rows)} predictions and {len(gt_rows)} ground-truth rows", file=pred_name)
        return list(zip(gt_rows, pred_rows)), 0
    index: dict[tuple[str, str], dict] = {}
    for name, rows in ((gt_name, gt_rows), (pred_name, pred_rows)):
        seen: dict[tuple[str, str], int] = {}
        for i, r in enumerate(rows, start=1):
            key = row_key(r)
            where, file = r.get("_row", i), r.get("_file", name)
            if key is None:
                raise InputError(f"row has none of the key fields {list(KEY_FIELDS)}", file=file, row=where)
            k = (key, _norm_q(r["question"]))
            if k in seen:
                raise InputError(f"duplicate (video_id, question) ({key!r}, {r['question']!r}); first at row "
                                 f"{seen[k]}", file=file, row=where)
            seen[k] = where
            if rows is pred_rows:
                index[k] = r
    gt_keys = {(row_key(g), _norm_q(g["question"])) for g in gt_rows}
    pairs = [(g, index.get((row_key(g), _norm_q(g["question"])))) for g in gt_rows]
    return pairs, sum(1 for k in index if k not in gt_keys)


def dataset_of(gt: dict, pred: dict | None = None) -> str:
    """Dataset of a row: its `dataset` field, else the key's prefix (samm_test_... -> samm), else 'unknown'."""
    for r in (gt, pred or {}):
        if r.get("dataset"):
            return str(r["dataset"])
    key = row_key(gt) or row_key(pred or {})
    if key and "_" in key:
        return key.split("_", 1)[0].lower()
    return "unknown"


def _tokens(text: str) -> list[str]:
    return str(text or "").lower().split()


def bleu4(refs: list[str], hyps: list[str], mode: str = "corpus") -> float | None:
    """BLEU-4 of hypotheses against one reference each (corpus, or mean smoothed sentence BLEU)."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu

    if mode not in BLEU_MODES:
        raise InputError(f"unknown BLEU mode {mode!r}; expected one of {list(BLEU_MODES)}", file="--bleu")
    if not refs:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns when no 4-gram matches (the score is then 0)
        if mode == "corpus":
            return float(corpus_bleu([[_tokens(r)] for r in refs], [_tokens(h) for h in hyps]))
        smooth = SmoothingFunction().method1
        return float(sum(sentence_bleu([_tokens(r)], _tokens(h), smoothing_function=smooth)
                         for r, h in zip(refs, hyps)) / len(refs))


def rouge1(refs: list[str], hyps: list[str]) -> float | None:
    """Mean ROUGE-1 F1 over rows (rouge-score, no stemming)."""
    from rouge_score import rouge_scorer

    if not refs:
        return None
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
    return float(sum(scorer.score(r or "", h or "")["rouge1"].fmeasure for r, h in zip(refs, hyps)) / len(refs))


def class_metrics(labels: list[dict]) -> dict[tuple[str, str], dict]:
    """{(scope, task): {"uf1", "uar"}} from label rows {scope, task, gt, pred} (sql/vqa_class_metrics.sql)."""
    if not labels:
        return {}
    t = pa.Table.from_pylist(labels, schema=pa.schema([("scope", pa.string()), ("task", pa.string()),
                                                       ("gt", pa.string()), ("pred", pa.string())]))
    with sql.scratch(vqa_labels_in=t) as con:
        rows = con.execute(sql.load("vqa_class_metrics")).fetchall()
    return {(s, task): {"uf1": uf1, "uar": uar} for s, task, uf1, uar, _, _ in rows}


def _au_f1(pairs: list[tuple[str, str]]) -> float | None:
    tp = fp = fn = 0
    for gt, pred in pairs:
        g, p = set(extract_aus(gt)), set(extract_aus(pred))
        tp, fp, fn = tp + len(g & p), fp + len(p - g), fn + len(g - p)
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else None


def _exact(gt: str, pred: str) -> bool:
    return " ".join(gt.lower().strip().rstrip(".").split()) == " ".join(pred.lower().strip().rstrip(".").split())


def score_vqa(pred_rows: list[dict], gt_rows: list[dict], bleu: str = "corpus") -> dict:
    """ME-VQA figures: {"coarse": {uf1, uar}, "fine": {uf1, uar}, "bleu", "rouge1", "average",
    "per_question": {type: ...}, "per_dataset": {dataset: ...}, "bleu_mode", "n", "missing", "unmatched"}.
    """
    if bleu not in BLEU_MODES:
        raise InputError(f"unknown BLEU mode {bleu!r}; expected one of {list(BLEU_MODES)}", file="--bleu")
    if not gt_rows:
        raise InputError("no ground-truth rows", file="ground truth")
    pairs, unmatched = pair_rows(pred_rows, gt_rows)
    items = []
    for g, p in pairs:
        ans = (p or {}).get("answer") or ""
        items.append({"qtype": question_type(g["question"]), "dataset": dataset_of(g, p),
                      "gt": g["answer"], "pred": ans})
    labels = []
    for it in items:
        scopes = (ALL, f"d:{it['dataset']}", f"q:{it['qtype']}")
        for task, types, fn in (("coarse", ("coarse", "compound"), extract_coarse),
                                ("fine", ("fine", "compound"), extract_fine)):
            if it["qtype"] in types:
                g = fn(it["gt"])
                if g is not None:
                    p = fn(it["pred"])
                    labels += [{"scope": s, "task": task, "gt": g, "pred": p} for s in scopes]
    cm = class_metrics(labels)

    def emotion(scope: str, task: str) -> dict:
        got = cm.get((scope, task))
        return {"uf1": got["uf1"], "uar": got["uar"]} if got else {"uf1": None, "uar": None}

    def summary(scope: str, subset: list[dict]) -> dict:
        refs, hyps = [it["gt"] for it in subset], [it["pred"] for it in subset]
        c, f = emotion(scope, "coarse"), emotion(scope, "fine")
        b, r = bleu4(refs, hyps, bleu), rouge1(refs, hyps)
        return {"coarse": c, "fine": f, "bleu": b, "rouge1": r,
                "average": average_six(c["uf1"], c["uar"], f["uf1"], f["uar"], b, r), "n": len(subset)}

    result = summary(ALL, items)
    per_question = {}
    for qt in QUESTION_TYPES:
        subset = [it for it in items if it["qtype"] == qt]
        if not subset:
            continue
        refs, hyps = [it["gt"] for it in subset], [it["pred"] for it in subset]
        entry: dict[str, Any] = {"n": len(subset), "bleu": bleu4(refs, hyps, bleu), "rouge1": rouge1(refs, hyps),
                                 "accuracy": sum(_exact(g, p) for g, p in zip(refs, hyps)) / len(subset)}
        if qt in ("coarse", "compound"):
            entry["coarse"] = emotion(f"q:{qt}", "coarse")
        if qt in ("fine", "compound"):
            entry["fine"] = emotion(f"q:{qt}", "fine")
        if qt in ("au", "compound"):
            entry["au_f1"] = _au_f1(list(zip(refs, hyps)))
        per_question[qt] = entry
    per_dataset = {}
    for d in sorted({it["dataset"] for it in items}):
        per_dataset[d] = summary(f"d:{d}", [it for it in items if it["dataset"] == d])
    result.update({"per_question": per_question, "per_dataset": per_dataset, "bleu_mode": bleu,
                   "missing": sum(1 for _, p in pairs if p is None), "unmatched": unmatched})
    return result


def metric_rows(result: dict) -> list[dict]:
    """Metric rows {dataset, protocol='vqa', name, value}: overall figures and one set per dataset."""
    rows = []

    def add(dataset: str, r: dict) -> None:
        for name, v in (("coarse_uf1", r["coarse"]["uf1"]), ("coarse_uar", r["coarse"]["uar"]),
                        ("fine_uf1", r["fine"]["uf1"]), ("fine_uar", r["fine"]["uar"]),
                        ("bleu", r["bleu"]), ("rouge1", r["rouge1"]), ("average", r["average"])):
            rows.append({"dataset": dataset, "protocol": "vqa", "name": name,
                         "value": None if v is None else float(v)})

    add("overall", result)
    for d, r in result["per_dataset"].items():
        add(d, r)
    for qt, r in result["per_question"].items():
        for name in ("bleu", "rouge1", "accuracy"):
            v = r.get(name)
            rows.append({"dataset": "overall", "protocol": "vqa", "name": f"{qt}_{name}",
                         "value": None if v is None else float(v)})
    return rows
