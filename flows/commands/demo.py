"""CLI: `megc demo` (the whole pipeline on built-in data) and `megc report RUN`."""

from __future__ import annotations

import typer

from flows.app import app
from flows.common import print_table, reports_errors, with_config, workspace


@app.command()
@reports_errors
@with_config("flows.demo:DemoConfig")
def demo(preset: str = typer.Option(None, help="synthetic preset: tiny, demo (default), samm, bench"),
         seed: int = typer.Option(None, help="random seed of the synthetic data"),
         vlm: str = typer.Option(None, "--vlm", help="local Qwen2.5-VL folder (default: expert engine)"),
         vqa_input: str = typer.Option(None, "--input", help="VQA input: frames, oao or flow"),
         split: str = typer.Option(None, help="MEAN split: holdout or loso"),
         spotter: str = typer.Option(None, help="spotter reported first (default roi-tcn; mean: MEAN only)"),
         cfg=None) -> None:
    """Run the main job on built-in synthetic data: data -> features -> MEAN -> STR -> VQA -> report."""
    ws = workspace()
    print(f"megc demo: preset {cfg.preset}, workspace {ws.location()}")
    from flows.demo import demo

    out = demo(ws.home, cfg)
    label = {run: stage for stage, run in out["sub_runs"].items()}
    _, rows = ws.sql("SELECT run_id, dataset, protocol, name, value FROM metrics WHERE list_contains($ids, run_id) "
                     "AND name IN ('spot_f1', 'analysis_f1', 'strs', 'coarse_uf1', 'coarse_uar', 'fine_uf1', "
                     "'fine_uar', 'bleu', 'rouge1', 'average') ORDER BY protocol, dataset, run_id, name",
                     {"ids": list(out["sub_runs"].values())})
    rows = [(label[r[0]], *r[1:]) for r in rows]
    print_table(["stage", "dataset", "protocol", "metric", "value"], rows,
                title=f"megc demo summary ({out['run_id']}; spot = {cfg.spotter}, spot_mean = MEAN)")
    if any(r[4] is None for r in rows):
        print("null: the official megc2025 scorer prints nan here (analysis precision and recall both 0, or every "
              "class matrix degenerate); see the strict protocol's figures")
    print_table(["stage", "seconds"], [[k, v] for k, v in out["timings"].items()], title="stage wall time")
    print(f"report: {out['report']}")


@app.command()
@reports_errors
def report(run: str = typer.Argument(..., help="run id (see `megc runs`)")) -> None:
    """Write the HTML and Markdown report of a run into the workspace."""
    from tasks.report import write_report

    paths = write_report(workspace(), run)
    print(f"report: {paths['html']}\nmarkdown: {paths['markdown']}")
