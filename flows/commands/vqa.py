"""CLI: `megc vqa build|train|answer` and `megc export vqa` (heavy imports inside the commands)."""

from __future__ import annotations

import json

import typer

from flows.app import export_app, vqa_app
from flows.common import STATE, reports_errors, with_config, workspace


def _print(out: object) -> None:
    print(json.dumps(out, indent=2, default=str))


@vqa_app.command("build")
@reports_errors
def build_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    test_subjects: list[str] | None = typer.Option(None, "--test-subjects",
                                                      help="held-out subjects (repeatable or comma-separated)"),
    jsonl: list[str] | None = typer.Option(None, "--jsonl", help="import a MEGC VQA JSONL file (repeatable)"),
    split: str | None = typer.Option(None, "--split", help="split for imported rows (default: by row kind)"),
) -> None:
    """Build QA items from the dataset's micro intervals (every MEGC template), or import MEGC JSONL files."""
    from flows.vqa import vqa_build_flow

    subs = [s.strip() for t in test_subjects or [] for s in t.split(",") if s.strip()] or None
    _print(vqa_build_flow(dataset, STATE["home"], test_subjects=subs, jsonl=jsonl or [], split=split))


@vqa_app.command("train")
@reports_errors
@with_config("flows.vqa:VqaConfig")
def train_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    engine: str = typer.Option("expert", "--engine", help="expert or qwen"),
    vlm: str | None = typer.Option(None, "--vlm", help="local Qwen2.5-VL folder"),
    input_kind: str | None = typer.Option(None, "--input", help="frames, oao or flow"),
    name: str | None = typer.Option(None, "--name", help="name of the expert model / adapter written"),
    hints: bool | None = typer.Option(None, "--hints/--no-hints", help="expert predictions in the prompt"),
    cfg=None,
) -> None:
    """Train the expert heads or a Qwen2.5-VL LoRA adapter on the train split."""
    from flows.vqa import vqa_train_flow

    _print(vqa_train_flow(dataset, engine, STATE["home"], cfg))


@vqa_app.command("answer")
@reports_errors
@with_config("flows.vqa:VqaConfig")
def answer_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    engine: str = typer.Option("expert", "--engine", help="expert or qwen"),
    vlm: str | None = typer.Option(None, "--vlm", help="local Qwen2.5-VL folder"),
    adapter: str | None = typer.Option(None, "--adapter", help="LoRA adapter name or folder"),
    input_kind: str | None = typer.Option(None, "--input", help="frames, oao or flow"),
    hints: bool | None = typer.Option(None, "--hints/--no-hints", help="expert predictions in the prompt"),
    split: str | None = typer.Option(None, "--split", help="test, train or all"),
    run_id: str | None = typer.Option(None, "--run-id", help="run id to write under"),
    cfg=None,
) -> None:
    """Answer the items, store them in vqa_answers and record the scores in metrics."""
    from flows.vqa import vqa_answer_flow

    _print(vqa_answer_flow(dataset, engine, STATE["home"], cfg, run_id=run_id))


@export_app.command("vqa")
@reports_errors
def export_vqa_cmd(
    run: str = typer.Option(..., "--run", help="VQA answering run id"),
    out: str = typer.Option(".", "--out", help="output folder"),
) -> None:
    """Write MEGC ME-VQA submission JSONL files (one per dataset) for a run."""
    from flows.vqa import export_vqa

    _print([str(p) for p in export_vqa(workspace(), run, out)])


@export_app.command("vqa-items")
@reports_errors
def export_items_cmd(
    dataset: str = typer.Argument(..., help="dataset name in the workspace"),
    out: str = typer.Option(".", "--out", help="output folder"),
) -> None:
    """Write a dataset's VQA items as MEGC JSONL: training rows and test rows with empty answers."""
    from flows.vqa import export_items

    _print([str(p) for p in export_items(workspace(), dataset, out)])
