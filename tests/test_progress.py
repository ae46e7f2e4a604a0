"""Stage progress: in a log, one line per 10% with counts and time; in a terminal, a bar and a closing line."""

from __future__ import annotations

import logging

import pytest

from flows.progress import StageProgress


def test_log_lines_every_tenth(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("megc.test.progress")
    with caplog.at_level(logging.INFO, logger="megc.test.progress"):
        with StageProgress("preprocess", 200, "frames", logger=log, tty=False, every_s=1e9) as bar:
            for _ in range(50):
                bar.advance(4)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 11  # 10%, 20%, ..., 100%, and the closing line
    assert lines[0].startswith("preprocess: 20/200 frames (10%), ") and "s left" in lines[0]
    assert lines[4].startswith("preprocess: 100/200 frames (50%)")
    assert lines[-1].startswith("preprocess: 200/200 frames (100%)") and "left" not in lines[-1]


def test_terminal_bar_logs_only_the_end(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("megc.test.progress")
    with caplog.at_level(logging.INFO, logger="megc.test.progress"):
        with StageProgress("train folds", 3, "folds", logger=log, tty=True) as bar:
            for _ in range(3):
                bar.advance()
            assert bar.done == 3
    assert [r.getMessage().split(",")[0] for r in caplog.records] == ["train folds: 3/3 folds (100%)"]
