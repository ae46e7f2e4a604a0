"""CLI tables never hide values: long names fold at the terminal width and stay whole in a pipe."""

from __future__ import annotations

import pytest

from flows.common import print_table

LONG = "mean-casme3-loso-final-" + "x" * 40
COLS = ["name", "kind", "dataset", "classes"]
ROWS = [[LONG, "mean", "casme3-demo-dataset", "negative,positive,surprise,others"], ["short", "mean", "d", None]]


def _cells(out: str) -> list[list[str]]:
    """Body lines of a rich table split into their cell texts (box characters dropped)."""
    lines = [ln for ln in out.splitlines() if "│" in ln or "┃" in ln]
    return [[c.strip() for c in ln.replace("┃", "│").split("│")[1:-1]] for ln in lines]


def test_pipe_keeps_rows_whole(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    print_table(COLS, ROWS)
    out = capsys.readouterr().out
    assert "…" not in out
    cells = _cells(out)
    assert cells[0] == COLS
    assert cells[1] == ROWS[0]
    assert cells[2] == ["short", "mean", "d", "null"]


def test_narrow_terminal_folds(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    print_table(COLS, ROWS)
    out = capsys.readouterr().out
    assert "…" not in out
    assert max(len(ln) for ln in out.splitlines()) <= 60
    cells = _cells(out)
    # the first data row spans several lines; its pieces joined give back every value
    body = cells[1:-1]
    joined = ["".join(line[i] for line in body) for i in range(len(COLS))]
    assert joined == ROWS[0]
    assert len(body) > 1


def test_csv_and_json_listing(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(COLS, ROWS, "csv")
    row = capsys.readouterr().out.splitlines()[1]
    assert row == f"{LONG},mean,casme3-demo-dataset,\"negative,positive,surprise,others\""
    print_table(COLS, ROWS, "json")
    assert f'"name": "{LONG}"' in capsys.readouterr().out
