"""The `megc` command line. Heavy libraries are imported inside the commands that need them."""

from __future__ import annotations


import typer

from flows.common import STATE, print_table, reports_errors, workspace

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Micro-expression spotting, recognition and VQA at scale.")
train_app = typer.Typer(no_args_is_help=True, help="Train models.")
export_app = typer.Typer(no_args_is_help=True, help="Write MEGC submission files.")
score_app = typer.Typer(no_args_is_help=True, help="Score predictions against ground truth.")
vqa_app = typer.Typer(no_args_is_help=True, help="ME-VQA: build QA items, train, answer.")
app.add_typer(train_app, name="train")
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


@app.command()
@reports_errors
def sql(query: str = typer.Argument(..., help="SQL over the catalog views"),
        fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """Run SQL against the workspace catalog (DuckDB views over every table)."""
    cols, rows = workspace().sql(query)
    print_table(cols, rows, fmt)


@app.command()
@reports_errors
def runs(fmt: str = typer.Option("table", "--format", help="table, csv or json")) -> None:
    """List recorded runs."""
    cols, rows = workspace().sql("SELECT run_id, kind, created_at, git_revision FROM runs ORDER BY created_at")
    print_table(cols, rows, fmt)


def _register() -> None:
    import importlib
    import pkgutil

    import flows.commands as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"flows.commands.{m.name}")


_register()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: clusters and servers shut down, temp files stay temp


def main() -> None:
    """Console-script entry point."""
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    app()
