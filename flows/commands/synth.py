"""CLI: `megc synth` writes a synthetic dataset with exact ground truth in a real dataset layout."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.app import app
from flows.common import reports_errors, with_config, workspace


@app.command("synth")
@reports_errors
@with_config("tasks.synth.presets:SynthConfig", renames={"fmt": "format"}, base=("preset",),
             start="tasks.synth.presets:preset")
def synth_cmd(
    preset: str = typer.Option("tiny", "--preset", help="tiny, demo, samm or bench"),
    out: Path = typer.Option(..., "--out", help="dataset folder to write (resumed when unfinished)"),
    seed: int = typer.Option(0, "--seed", help="random seed: same seed, same dataset"),
    fmt: str | None = typer.Option(None, "--format", help="casme3, samm_lv or video (default: the preset's)"),
    workers: int | None = typer.Option(None, "--workers", help="processes rendering videos (0 = every core)"),
    ingest: bool = typer.Option(False, "--ingest", help="also ingest it into the workspace"),
    dataset: str | None = typer.Option(None, "--dataset", help="dataset name for --ingest"),
    cfg=None,
) -> None:
    """Generate long videos with planted micro-expressions, macro-expressions, blinks and head motion."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from tasks.synth.writer import generate

    columns = (TextColumn("synth {task.description}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} frames"), TimeRemainingColumn())
    with Progress(*columns) as bar:
        task = bar.add_task(f"{cfg.preset} -> {out}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        res = generate(cfg, out, seed, progress)
    n_micro = sum(1 for i in res.intervals if i["kind"] == "micro")
    blinks = sum(1 for e in res.events if e["kind"] == "blink")
    print(f"wrote {res.root} ({res.format}): {len(res.videos)} videos, "
          f"{sum(v['n_frames'] for v in res.videos)} frames, {n_micro} micro, {len(res.intervals) - n_micro} macro, "
          f"{blinks} blinks, {len(res.events) - blinks} head jerks")
    if ingest:
        from storage.ingest import ingest as run_ingest
        from storage.runs import new_run_id, record_run

        ws = workspace()
        run_id = new_run_id("synth")
        record_run(ws, run_id, "synth", {"seed": seed, "out": str(res.root), "config": res.config})
        s = run_ingest(ws, res.adapter, res.root, dataset=dataset or res.root.name, fps=res.fps)
        print(f"ingested as {s['dataset']}: {s['intervals']} intervals, {s['events']} events; run {run_id}")
