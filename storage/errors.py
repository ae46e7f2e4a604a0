"""Errors raised on bad input; every message names the file, row or frame and the problem."""

from __future__ import annotations


class MegcError(Exception):
    """Base class for errors megc reports to the user without a traceback."""


class InputError(MegcError):
    """Bad user input: names where (file, row, frame) and what is wrong."""

    def __init__(self, problem: str, *, file: object = None, row: object = None, frame: object = None):
        self.problem, self.file, self.row, self.frame = problem, file, row, frame
        where = []
        if file is not None:
            where.append(f"{file}")
        if row is not None:
            where.append(f"row {row}")
        if frame is not None:
            where.append(f"frame {frame}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)
