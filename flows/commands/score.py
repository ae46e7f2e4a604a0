"""CLI: `megc score str` (ME-STR, STRS under megc2025 or strict) and `megc score vqa` (ME-VQA figures)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import typer

from flows.app import score_app
from storage.vocabulary import STR_CLASSES
from flows.common import print_table, reports_errors, with_config, workspace
from storage.errors import MegcError


@dataclass
class ScoreStrConfig:
    """Settings of `megc score str`."""

    protocol: str = "megc2025"  # megc2025 (official scorer, quirks included) or strict
    classes: list[str] = field(default_factory=lambda: list(STR_CLASSES))  # or ["all"]
    dataset: str = "overall"  # dataset name the figures of a CSV scoring are stored under


@dataclass
class ScoreVqaConfig:
    """Settings of `megc score vqa`."""

    bleu: str = "corpus"  # corpus or sentence (nltk, SmoothingFunction().method1)


def _ensure_run(ws, run_id: str, config: dict) -> None:
    """Record a score run unless the id already names a run (whose own record is kept)."""
    from storage.runs import record_run

    if not ws.files("runs", run_id=run_id):
        record_run(ws, run_id, "score", config)


def _fmt(v) -> str:
    if v is None:
        return "null"
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _print_str(result: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    for c in ("figure", "spotting", "analysis"):
        t.add_column(c)
    s, a = result["spotting"], result["analysis"]
    for k in ("tp", "fp", "fn", "precision", "recall", "f1"):
        t.add_row(k.upper() if len(k) == 2 else k, _fmt(s[k]), _fmt(a[k]))
    uar = "UAR (mean precision, as the official scorer prints)" if result["protocol"] == "megc2025" else "UAR"
    t.add_row("UF1", "", _fmt(a["uf1"]))
    t.add_row(uar, "", _fmt(a["uar"]))
    t.add_row("STRS", "", _fmt(result["strs"]))
    Console().print(t)


@score_app.command("str")
@reports_errors
@with_config("flows.commands.score:ScoreStrConfig")
def score_str_cmd(
    pred: Path | None = typer.Option(None, "--pred", help="predictions CSV: subject,video,onset,offset,emotion"),
    gt: Path | None = typer.Option(None, "--gt", help="ground-truth CSV with the same columns"),
    protocol: str | None = typer.Option(None, "--protocol",
                                        help="megc2025 (default) or strict; scoring a run: both unless given"),
    classes: str | None = typer.Option(None, "--classes",
                                       help="analysis classes, comma separated, or 'all' (every GT emotion); "
                                            "default negative,positive,surprise"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (NaN as null)"),
    run_id: str | None = typer.Option(None, "--run-id",
                                      help="with --pred/--gt: id of this score run (default new); alone: score "
                                           "the workspace predictions of that run against its intervals"),
    dataset: str | None = typer.Option(None, "--dataset",
                                       help="CSV files: dataset name to store under; run: only this dataset"),
    cfg=None,
) -> None:
    """Score ME-STR predictions (STRS) against ground truth; figures and matches go to the workspace."""
    from storage.runs import new_run_id
    from tasks import score_str as S

    ws = workspace()
    if pred is None and gt is None:
        if not run_id:
            raise MegcError("give --pred and --gt (CSV files), or --run-id to score a run's stored predictions")
        one = protocol is not None or cfg.protocol != ScoreStrConfig().protocol
        protos = (cfg.protocol,) if one else S.PROTOCOLS
        results = S.score_str_run(ws, run_id, dataset=dataset, protocols=protos, classes=cfg.classes)
        for key, res in results.items():
            for note in res["notes"]:
                print(f"megc: {key}: {note}", file=sys.stderr)
        if as_json:
            print(json.dumps({k: json.loads(S.result_json(v)) for k, v in results.items()}))
            return
        cols = ["dataset/protocol", "spot TP", "FP", "FN", "spot F1", "analysis F1", "UF1", "UAR", "STRS"]
        rows = [(k, r["spotting"]["tp"], r["spotting"]["fp"], r["spotting"]["fn"], r["spotting"]["f1"],
                 r["analysis"]["f1"], r["analysis"]["uf1"], r["analysis"]["uar"], r["strs"])
                for k, r in results.items()]
        print_table(cols, rows, title=f"STR scores of run {run_id} (UAR under megc2025 = mean precision)")
        return
    if pred is None or gt is None:
        raise MegcError("--pred and --gt go together")
    pred_t, gt_t = S.read_str_csv(pred), S.read_str_csv(gt)
    result, matches = S.score_detailed(pred_t, gt_t, cfg.protocol, cfg.classes)
    run_id = run_id or new_run_id("score")
    _ensure_run(ws, run_id, {**asdict(cfg), "task": "score_str", "pred": str(pred), "gt": str(gt)})
    S.store_scoring(ws, run_id, {f"{cfg.dataset}/{cfg.protocol}": (result, matches)},
                    part=f"score_str_{S.safe_name(cfg.dataset)}")
    for note in result["notes"]:
        print(f"megc: {note}", file=sys.stderr)
    if as_json:
        print(S.result_json(result))
        return
    _print_str(result, f"STR score, protocol {cfg.protocol}, classes {', '.join(result['classes'])}")
    print(f"stored under run {run_id}", file=sys.stderr)


@score_app.command("vqa")
@reports_errors
@with_config("flows.commands.score:ScoreVqaConfig")
def score_vqa_cmd(
    pred: Path = typer.Option(..., "--pred", help="predictions JSONL (rows with video_id or image_id/id, "
                                                  "question, answer)"),
    gt: Path = typer.Option(..., "--gt", help="ground-truth JSONL (test rows keyed by video_id, training rows "
                                              "by image_id/id)"),
    bleu: str | None = typer.Option(None, "--bleu", help="corpus (default) or sentence BLEU-4"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object (NaN as null)"),
    run_id: str | None = typer.Option(None, "--run-id", help="id of this score run (default new)"),
    cfg=None,
) -> None:
    """Score ME-VQA answers: coarse/fine UF1 and UAR, BLEU-4, ROUGE-1 and their average, per type and dataset."""
    from storage.runs import new_run_id, record_metrics
    from tasks import score_vqa as V

    result = V.score_vqa(V.read_jsonl(pred), V.read_jsonl(gt), bleu=cfg.bleu)
    ws = workspace()
    run_id = run_id or new_run_id("score")
    _ensure_run(ws, run_id, {**asdict(cfg), "task": "score_vqa", "pred": str(pred), "gt": str(gt)})
    record_metrics(ws, run_id, V.metric_rows(result), part="score_vqa")
    if result["missing"] or result["unmatched"]:
        print(f"megc: {result['missing']} ground-truth rows have no prediction (scored as empty answers); "
              f"{result['unmatched']} predictions match no ground-truth row (ignored)", file=sys.stderr)
    if as_json:
        print(json.dumps(result))
        return
    cols = ["scope", "n", "coarse UF1", "coarse UAR", "fine UF1", "fine UAR", f"BLEU-4 ({cfg.bleu})", "ROUGE-1",
            "average"]
    scopes = [("all", result)] + [(f"dataset {d}", r) for d, r in result["per_dataset"].items()]
    rows = [(name, r["n"], r["coarse"]["uf1"], r["coarse"]["uar"], r["fine"]["uf1"], r["fine"]["uar"],
             r["bleu"], r["rouge1"], r["average"]) for name, r in scopes]
    print_table(cols, rows, title="ME-VQA scores")
    qcols = ["question type", "n", "accuracy", "BLEU-4", "ROUGE-1"]
    print_table(qcols, [(q, r["n"], r["accuracy"], r["bleu"], r["rouge1"]) for q, r in result["per_question"].items()])
    print(f"stored under run {run_id}", file=sys.stderr)
