"""Services started by tests (Prefect server, workers, Dask schedulers): ports, process groups, readiness; and the
small synthetic dataset they run on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
SMALL = {"subjects": 2, "duration_s": 2.5, "width": 256, "height": 208}  # 2 x 75 frames


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start a service in its own session (so it and its children can be stopped by process group)."""
    fh = log.open("ab")
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            start_new_session=True)


def stop(*procs: subprocess.Popen, grace: float = 8.0) -> None:
    """Terminate processes started by `spawn` with their process groups; kill what is left after `grace`."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # children left in the group (e.g. a flow run, a nanny's worker)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def wait_for(check, what: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None):
    """Poll `check()` until it returns a truthy value; fail naming `what` (with the log tail) on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            value = check()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"{what} did not come up in {timeout:.0f} s\n{tail}")


def make_small_dataset(ws, out: Path | None = None) -> str:
    """The tiny synthetic dataset, shrunk to 2 subjects x 2.5 s, generated (once per folder) and ingested."""
    from storage.config import apply_overrides
    from tasks.synth import make_dataset, preset

    return make_dataset(ws, apply_overrides(preset("tiny"), SMALL), out=out)
