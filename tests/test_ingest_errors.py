"""Bad input: clear errors naming file and row/frame, previous rows kept, --skip-bad-rows writes rejects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import dataset_fixtures as fx
from storage.errors import InputError
from storage.ingest import ingest

LABEL = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type", "Objective class", "emotion"]
GOOD = [["spNO.1", "a", 1, 3, 6, "L4+L7", "Micro-expression", 2, "disgust"],
        ["spNO.2", "b", 0, 1, 4, "1+2", "Micro-expression", 6, "surprise"]]


@pytest.fixture
def stored(ws, tmp_path):
    """A workspace already holding dataset 'cas3' (from the fixture) and the fixture's root."""
    root = fx.build_casme3(tmp_path / "good", xls=False)
    ingest(ws, "casme3", root, dataset="cas3")
    return ws, root


def intact(ws) -> None:
    """The previously ingested dataset is still complete."""
    assert ws.read("videos", dataset="cas3").num_rows == 2
    assert ws.read("intervals", dataset="cas3").num_rows == 4
    assert ws.read("frames", dataset="cas3").num_rows == 15


def variant(src: Path, dst: Path, rows: list[list] | None, header: list = HEADER) -> Path:
    """A copy of the good dataset whose label sheet holds `rows` (None: no label sheet at all)."""
    shutil.copytree(src, dst)
    (dst / LABEL).unlink()
    if rows is not None:
        fx.xlsx(dst / LABEL, {"Sheet1": [header, *rows]})
    return dst


def fails(ws, root: Path, *needles: str) -> str:
    with pytest.raises(InputError) as ei:
        ingest(ws, "casme3", root, dataset="cas3")
    msg = str(ei.value)
    for n in needles:
        assert n in msg, msg
    intact(ws)
    return msg


def test_missing_annotation_file(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", None)
    fails(ws, bad, str(bad), "no label sheet")


def test_missing_annotation_file_samm(ws, tmp_path):
    root = fx.build_samm_lv(tmp_path / "s")
    (root / "SAMM_LongVideos_V3_Release.xlsx").unlink()
    with pytest.raises(InputError, match=r"SAMM_LongVideos_V\*_Release.xlsx not found"):
        ingest(ws, "samm_lv", root)


def test_renamed_column(stored, tmp_path):
    ws, root = stored
    header = [("Onset frame" if h == "Onset" else h) for h in HEADER]
    bad = variant(root, tmp_path / "bad", GOOD, header)
    msg = fails(ws, bad, LABEL, "row 1", "missing column(s) ['onset']", "'Onset frame'", "'Apex'")
    assert "found columns" in msg


def test_renamed_column_samm_finds_header_after_preamble(ws, tmp_path):
    root = fx.build_samm_lv(tmp_path / "s")
    import openpyxl

    p = root / "SAMM_LongVideos_V3_Release.xlsx"
    wb = openpyxl.load_workbook(p)
    wb.active["H10"] = "Kind"  # the Type column, header on row 10 after 9 preamble rows
    wb.save(p)
    with pytest.raises(InputError) as ei:
        ingest(ws, "samm_lv", root)
    assert "row 10" in str(ei.value) and "missing column(s) ['type']" in str(ei.value)
    assert "'Kind'" in str(ei.value)


def test_onset_after_offset(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", [GOOD[0], ["spNO.2", "b", 4, 3, 2, "1", "Micro-expression", 6, "fear"]])
    fails(ws, bad, LABEL, "row 3", "onset 4 > offset 2")


def test_interval_outside_video(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", [GOOD[0], ["spNO.2", "b", 2, 3, 6, "1", "Micro-expression", 6, "fear"]])
    fails(ws, bad, LABEL, "row 3", "outside video spNO.2_b (6 frames")


def test_missing_frame_folder(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", [*GOOD, ["spNO.3", "c", 1, 2, 3, "4", "Micro-expression", 2, "anger"]])
    fails(ws, bad, LABEL, "row 4", str(bad / "spNO.3" / "c" / "color"), "not found")


def test_empty_frame_folder(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", GOOD)
    for f in (bad / "spNO.2" / "b" / "color").iterdir():
        f.unlink()
    fails(ws, bad, str(bad / "spNO.2" / "b" / "color"), "no numbered image files")


def test_unreadable_first_frame(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", GOOD)
    (bad / "spNO.1" / "a" / "color" / "0.jpg").write_bytes(b"not a jpeg")
    fails(ws, bad, str(bad / "spNO.1" / "a" / "color" / "0.jpg"), "cannot read image")


def test_duplicate_rows(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", [GOOD[0], GOOD[1], GOOD[0]])
    fails(ws, bad, LABEL, "row 4", "duplicate of row 2")


def test_bad_emotion_and_number(stored, tmp_path):
    ws, root = stored
    bad = variant(root, tmp_path / "bad", [GOOD[0], ["spNO.2", "b", "x1", 1, 4, "1", "Micro-expression", 6, "fear"]])
    fails(ws, bad, LABEL, "row 3", "Onset 'x1' is not a number")
    bad2 = variant(root, tmp_path / "bad2", [GOOD[0], ["spNO.2", "b", 0, 1, 4, "1", "Micro-expression", 6, "joy"]])
    fails(ws, bad2, LABEL, "row 3", "unknown emotion 'joy'")


def test_skip_bad_rows_writes_rejects(stored, tmp_path):
    ws, root = stored
    rows = [GOOD[0], ["spNO.2", "b", 4, 3, 2, "1", "Micro-expression", 6, "fear"],
            ["spNO.3", "c", 1, 2, 3, "4", "Micro-expression", 2, "anger"], GOOD[1], GOOD[0]]
    bad = variant(root, tmp_path / "bad", rows)
    (bad / "spNO.1" / "a" / "color" / "0.jpg").write_bytes(b"broken")  # spNO.1_a's folder becomes unusable
    s = ingest(ws, "casme3", bad, dataset="cas3", skip_bad_rows=True)
    assert (s["videos"], s["intervals"], s["rejects"]) == (1, 1, 5)
    got = sorted(((r["source_row"] or 0), r["reason"]) for r in ws.read("rejects", dataset="cas3").to_pylist())
    assert [g[0] for g in got] == [0, 2, 3, 4, 6]
    assert got[0][1].startswith("cannot read image")
    assert got[1][1] == got[4][1] == f"frame folder {bad / 'spNO.1' / 'a' / 'color'} is unusable"
    assert got[2][1] == "onset 4 > offset 2 (0-based frames)"
    assert got[3][1] == f"frame folder {bad / 'spNO.3' / 'c' / 'color'} not found"
    raw = ws.read("rejects", dataset="cas3").to_pylist()
    assert any(r["raw"] == '["spNO.3", "c", 1, 2, 3, "4", "Micro-expression", 2, "anger"]' for r in raw)
    (kept,) = ws.read("intervals", dataset="cas3").to_pylist()
    assert (kept["video"], kept["onset"], kept["offset"], kept["source_row"]) == ("spNO.2_b", 0, 4, 5)
    # a clean re-ingest replaces the rejects too
    ingest(ws, "casme3", root, dataset="cas3")
    intact(ws)
    assert ws.read("rejects", dataset="cas3").num_rows == 0


def test_cli_error_message_and_exit_code(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    root = fx.build_casme3(tmp_path / "c3", xls=False)
    variant(root, tmp_path / "bad", [["spNO.2", "b", 4, 3, 2, "1", "Micro-expression", 6, "fear"]])
    res = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "ingest", "casme3", str(tmp_path / "bad")])
    assert res.exit_code == 2
    assert "megc: error:" in res.output and "row 2: onset 4 > offset 2" in res.output
    res = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "ingest", "nosuch", str(root)])
    assert res.exit_code == 2 and "unknown dataset adapter 'nosuch'" in res.output


def _manifest(root: Path, fps_cell: str) -> None:
    (root / "manifest.csv").write_text(f"subject,video,path,fps\np1,clip1,videos/clip1.avi,{fps_cell}\n"
                                       "p2,clip2,frames/clip2,50\n")


def _latin1(root: Path) -> None:
    text = (root / "annotations.csv").read_text().replace("1+2,left", "1+2,gauche é")
    (root / "annotations.csv").write_bytes(text.encode("latin-1"))


@pytest.mark.parametrize("mutate, needles", [
    (lambda r: _manifest(r, "0"), ["manifest.csv, row 2", "fps must be a positive number", "'0'"]),
    (lambda r: _manifest(r, "nan"), ["manifest.csv, row 2", "fps must be a positive number", "'nan'"]),
    (_latin1, ["annotations.csv: line 4: byte 0xe9 is not UTF-8 text", "save the file as UTF-8"]),
    (lambda r: (r / "manifest.csv").write_bytes(b""), ["manifest.csv: the sheet is empty"]),
    (lambda r: (r / "videos" / "clip1.avi").write_bytes((r / "videos" / "clip1.avi").read_bytes()[:300]),
     ["clip1.avi: cannot open video file"]),
    (lambda r: (r / "manifest.csv").write_text("subject,video,path,fps\np1,clip1,videos/clip1.avi,\n"
                                               "p2,clip1,frames/clip2,50\n"),
     ["manifest.csv, row 3: video 'clip1' is listed twice"]),
], ids=["fps-zero", "fps-nan", "non-utf8-csv", "zero-byte-manifest", "truncated-video", "duplicate-video-id"])
def test_generic_bad_input_keeps_stored_rows(ws, tmp_path, mutate, needles):
    ingest(ws, "generic", fx.build_generic(tmp_path / "good"), dataset="gen")
    bad = fx.build_generic(tmp_path / "bad")
    mutate(bad)
    with pytest.raises(InputError) as ei:
        ingest(ws, "generic", bad, dataset="gen")
    for n in needles:
        assert n in str(ei.value), str(ei.value)
    assert str(bad) in str(ei.value)
    assert ws.read("videos", dataset="gen").num_rows == 2 and ws.read("intervals", dataset="gen").num_rows == 3


def test_dataset_path_that_is_a_file(ws, tmp_path):
    root = fx.build_generic(tmp_path / "g")
    with pytest.raises(InputError, match="manifest.csv: is a file; give the dataset's folder"):
        ingest(ws, "generic", root / "manifest.csv", dataset="gen")
    with pytest.raises(InputError, match="--fps must be a positive number of frames per second, got nan"):
        ingest(ws, "generic", root, dataset="gen", fps=float("nan"))
