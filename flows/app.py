"""The Typer application of the `megc` CLI and its command groups; command modules (flows/commands/) add to
them, and flows/cli.py loads those modules."""

from __future__ import annotations

import typer

from flows.common import STATE

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Micro-expression spotting, recognition and VQA at scale.")
export_app = typer.Typer(no_args_is_help=True, help="Write MEGC submission files.")
score_app = typer.Typer(no_args_is_help=True, help="Score predictions against ground truth.")
vqa_app = typer.Typer(no_args_is_help=True, help="ME-VQA: build QA items, train, answer.")
app.add_typer(export_app, name="export")
app.add_typer(score_app, name="score")
app.add_typer(vqa_app, name="vqa")


@app.callback()
def _main(home: str | None = typer.Option(
        None, "--home", envvar="MEGC_HOME",
        help="Workspace: a folder (default ./megc-home) or a URL such as s3://bucket/prefix."),
          debug: bool = typer.Option(False, "--debug", help="show tracebacks and Prefect's own log lines "
                                                             "(also MEGC_DEBUG=1)")) -> None:
    STATE["home"] = home
    if debug:
        import os

        os.environ["MEGC_DEBUG"] = "1"
