"""Per-dataset writer locks, so two processes never write one dataset's rows at once.

A local workspace locks `<home>/locks/<dataset>.lock` with flock (released by the OS when the holder dies,
so a killed run never leaves a stale lock). A URL workspace locks the same name in its local cache folder,
which guards the writers of one machine only: object stores offer pyarrow no create-if-absent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import datetime, UTC
from pathlib import Path

from storage.errors import MegcError


class DatasetBusy(MegcError):
    """Another process holds the dataset's writer lock."""


def _lock_dir(ws) -> Path:  # noqa: ANN001 (a Workspace: its local folder, the cache folder of a URL one)
    d = ws.root / "locks"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def dataset_lock(ws, dataset: str, what: str, wait_s: float = 0.0) -> Iterator[None]:  # noqa: ANN001
    """Hold the writer lock of `dataset` for `what` (e.g. 'ingest'); waits up to wait_s, then DatasetBusy."""
    path = _lock_dir(ws) / f"{dataset}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DatasetBusy(f"dataset {dataset!r} is being written by another megc process "
                                      f"({_holder(path)}); wait for it to finish, then run {what} again") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"what": what, "pid": os.getpid(), "host": socket.gethostname(),
                                 "since": datetime.now(UTC).isoformat(timespec="seconds")}).encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _holder(path: Path) -> str:
    try:
        h = json.loads(path.read_text() or "{}")
        return f"{h['what']}, pid {h['pid']} on {h['host']}, since {h['since']}"
    except (OSError, ValueError, KeyError):
        return "holder unknown"
