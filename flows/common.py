"""Helpers shared by CLI commands: the workspace option, config building, error reporting, table output."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any
from collections.abc import Callable, Sequence

from flows.runtime import debug_enabled
from storage.config import load_config
from storage.errors import MegcError
from storage.workspace import Workspace

STATE: dict[str, Any] = {"home": None}


def workspace() -> Workspace:
    """The workspace (folder or URL) chosen by --home / $MEGC_HOME / ./megc-home."""
    return Workspace(STATE["home"]).ensure()


def parse_sets(sets: Sequence[str] | None) -> dict[str, str]:
    """Parse repeated --set key=value options."""
    out = {}
    for s in sets or []:
        key, eq, value = s.partition("=")
        if not eq or not key:
            raise MegcError(f"--set expects key=value, got {s!r}")
        out[key.strip()] = value.strip()
    return out


def build_config(cls: Any, config_path: str | None, sets: Sequence[str] | None, **cli_values: Any):
    """Config = defaults of `cls` (a class or a starting instance) < YAML file < --set key=value < explicit CLI
    flags (None means not given); validated."""
    overrides = parse_sets(sets)
    overrides.update({k: v for k, v in cli_values.items() if v is not None})
    return load_config(cls, config_path, overrides)


def _resolve(target: str) -> type:
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def with_config(target: str, renames: dict[str, str] | None = None, base: Sequence[str] = (),
                start: str | None = None) -> Callable:
    """Give a command --config FILE and --set key=value and call it with `cfg`, its typed config built once.

    `target` is "module:Class" (imported when the command runs, so the CLI starts fast). The command's
    parameters named like a field of the class, or mapped to a setting by `renames` (e.g. epochs_spot ->
    params.epochs_spot), are its flags: None, or False for a switch, means not given; the command still
    receives them as given. Parameters in `base` choose the starting config instead: they are passed to the
    class (e.g. a train command's `kind`), or to the function `start` ("module:function") when given.
    """
    import inspect

    renames = dict(renames or {})

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        extra = [
            inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
                              default=_typer_option(None, "--config", help="YAML file of settings")),
            inspect.Parameter("sets", inspect.Parameter.KEYWORD_ONLY, annotation=list[str] | None,
                              default=_typer_option(None, "--set", help="key=value setting, e.g. post.p=0.6 "
                                                                        "(repeatable)")),
        ]

        @functools.wraps(fn)
        def wrapper(*args: Any, config: str | None = None, sets: list[str] | None = None, **kwargs: Any):
            import dataclasses

            cls = _resolve(target)
            fields = {f.name for f in dataclasses.fields(cls)}
            first = _resolve(start) if start else cls
            begin = first(*[kwargs[n] for n in base]) if start else first(**{n: kwargs[n] for n in base})
            flags = {renames.get(n, n): v for n, v in kwargs.items()
                     if (n in fields or n in renames) and n not in base and v is not False}
            return fn(*args, cfg=build_config(begin if base else cls, config, sets, **flags), **kwargs)

        params = [p for n, p in sig.parameters.items() if n != "cfg"] + extra
        wrapper.__signature__ = sig.replace(parameters=params)  # what typer reads for the options
        return wrapper

    return deco


def _typer_option(*args: Any, **kwargs: Any) -> Any:
    import typer

    return typer.Option(*args, **kwargs)


def reports_errors(fn: Callable) -> Callable:
    """One line on stderr for a failed command: MegcError exits 2, any other error 1, Ctrl-C 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MegcError as exc:
            if debug_enabled():
                raise
            print(f"megc: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("megc: interrupted; finished parts are kept and a re-run resumes", file=sys.stderr)
            raise SystemExit(130) from None
        except Exception as exc:
            import click
            import typer

            if debug_enabled() or isinstance(exc, (typer.Exit, click.exceptions.Exit, click.ClickException,
                                                    click.Abort)):
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            print(f"megc: error: {type(exc).__name__}: {first} (--debug or MEGC_DEBUG=1 shows the traceback)",
                  file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper


def print_table(columns: list[str], rows: list[Sequence[Any]], fmt: str = "table", title: str | None = None) -> None:
    """Print rows as a rich table, CSV or JSON lines."""
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r)) for r in rows], default=str, indent=None))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for c in columns:
            t.add_column(c, overflow="fold")  # never an ellipsis: a long value wraps onto the next line
        for r in rows:
            t.add_row(*["null" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in r])
        Console(width=table_width()).print(t)


def table_width() -> int:
    """Width for tables: $COLUMNS, else the terminal's; unbounded when output is not a terminal."""
    import os
    import shutil

    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    if sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return 10_000  # a log file or pipe: rows stay whole on one line
