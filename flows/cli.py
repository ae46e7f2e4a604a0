"""The `megc` command line: loads every command module of flows/commands/ onto the app (flows/app.py).
Heavy libraries are imported inside the commands that need them."""

from __future__ import annotations

import importlib
import pkgutil

import flows.commands as commands
from flows.app import app

for _m in pkgutil.iter_modules(commands.__path__):
    importlib.import_module(f"flows.commands.{_m.name}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM unwinds like Ctrl-C: clusters and servers shut down, temp files stay temp


def main() -> None:
    """Console-script entry point."""
    import signal

    # SIGINT too: a process started with SIGINT ignored (a background job of a script, a child of a process that
    # ignores it) would otherwise run on through Ctrl-C
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    app()
