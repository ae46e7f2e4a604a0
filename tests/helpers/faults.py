"""Faults injected from outside the code under test."""

from __future__ import annotations

import os
import signal

from distributed import WorkerPlugin


class KillFirstShard(WorkerPlugin):
    """Kills its Dask worker process with SIGKILL when the first task whose key starts with `prefix` begins to
    execute, once across all workers: the worker that creates the marker file is the one that dies."""

    def __init__(self, marker: str, prefix: str = "shard-"):
        self.marker, self.prefix = marker, prefix

    def transition(self, key, start, finish, **kwargs) -> None:  # noqa: ANN001 - distributed's hook signature
        if finish != "executing" or not str(key).startswith(self.prefix):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
