"""Progress of long stages: a live bar in a terminal, periodic one-line INFO logs in a log file or CI."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType


class StageProgress:
    """Counts finished units of a stage; use as a context manager and call advance() per unit."""

    def __init__(self, label: str, total: int, unit: str = "items", every_s: float = 30.0,
                 logger: logging.Logger | logging.LoggerAdapter | None = None, tty: bool | None = None):
        self.label, self.total, self.unit, self.every_s = label, int(total), unit, every_s
        self.log = logger or logging.getLogger("megc")
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.done = 0
        self._bar = self._job = None
        self._t0 = self._last = time.monotonic()
        self._next_pct = 10

    def __enter__(self) -> StageProgress:
        if self.tty and self.total:
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._job = self._bar.add_task(f"{self.label} ({self.unit})", total=self.total)
        return self

    def advance(self, n: int = 1) -> None:
        """Record n more finished units; in a log, a line each 10% or every_s seconds."""
        self.done += n
        if self._bar is not None:
            self._bar.advance(self._job, n)
            return
        now, pct = time.monotonic(), 100 * self.done // max(1, self.total)
        if pct >= self._next_pct or now - self._last >= self.every_s:
            self.log.info(self.line())
            self._last = now
            self._next_pct = (pct // 10 + 1) * 10

    def line(self) -> str:
        """One line: done/total, percent, elapsed and estimated time left."""
        el = time.monotonic() - self._t0
        left = el / self.done * (self.total - self.done) if self.done else float("nan")
        pct = 100 * self.done // max(1, self.total)
        eta = f", ~{left:.0f} s left" if self.done < self.total and self.done else ""
        return f"{self.label}: {self.done}/{self.total} {self.unit} ({pct}%), {el:.0f} s{eta}"

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        if exc_type is None and self.total:
            self.log.info(self.line())
