"""Dataset adapters on tiny datasets in the real layouts: exact canonical rows after ingest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import dataset_fixtures as fx
from storage.adapters import ADAPTERS
from storage.adapters.base import parse_aus
from storage.frames import frame_number, scan_frames
from storage.ingest import dataset_summary, ingest
from tasks.synth.formats import casme3, generic, samm_lv

ICOLS = ("video", "interval_id", "onset", "apex", "offset", "kind", "emotion", "emotion_fine", "aus", "side")
VCOLS = ("subject", "video", "fps", "n_frames", "width", "height", "source_kind", "first_frame", "labelled")


def intervals(ws, dataset: str) -> list[tuple]:
    rows = ws.read("intervals", dataset=dataset).to_pylist()
    return sorted(tuple(r[c] for c in ICOLS) for r in rows)


def videos(ws, dataset: str) -> list[tuple]:
    return sorted(tuple(r[c] for c in VCOLS) for r in ws.read("videos", dataset=dataset).to_pylist())


def test_registry_names():
    assert sorted(ADAPTERS) == ["casme2", "casme3", "folder", "fourdme", "generic", "samm_lv", "smic_e_long"]


@pytest.mark.parametrize("text,expected", [
    ("R12", (["AU12"], "right")), ("L14", (["AU14"], "left")), ("4+7", (["AU4", "AU7"], None)),
    ("AU4+AU7", (["AU4", "AU7"], None)), ("12B", (["AU12"], None)), (12.0, (["AU12"], None)),
    ("L4+L7", (["AU4", "AU7"], "left")), ("R12+L14", (["AU12", "AU14"], None)), (None, ([], None)),
])
def test_parse_aus(text, expected):
    assert parse_aus(text) == expected


def test_frame_numbers_and_gaps(tmp_path):
    assert [frame_number(n) for n in ("img001.jpg", "img_1.jpg", "006_1_0012.jpg", "image0012345.jpg", "7.png")] \
        == [1, 1, 12, 12345, 7]
    fx.jpegs(tmp_path / "v", ["img_2.jpg", "img_3.jpg", "img_6.jpg", "img_10.jpg", "notes.txt.jpg"])
    ff = scan_frames(tmp_path / "v")
    assert ff.first == 2 and (ff.width, ff.height) == (64, 48)
    assert ff.files == ["img_2.jpg", "img_3.jpg", "img_3.jpg", "img_3.jpg", "img_6.jpg", "img_6.jpg",
                        "img_6.jpg", "img_6.jpg", "img_10.jpg"]
    assert ff.filled == [False, False, True, True, False, True, True, True, False]


def test_samm_lv(ws, tmp_path):
    s = ingest(ws, "samm_lv", fx.build_samm_lv(tmp_path / "samm"))
    assert (s["dataset"], s["videos"], s["frames"], s["micro"], s["macro"], s["rejects"]) == \
        ("samm_lv", 2, 14, 2, 2, 0)
    assert videos(ws, "samm_lv") == [("006", "006_1", 200.0, 8, 64, 48, "frames", 1, True),
                                     ("007", "007_6", 200.0, 6, 80, 60, "frames", 1, True)]
    assert intervals(ws, "samm_lv") == [
        # onset 2.5 rounds to 3 -> 0-based 2; emotion from the FACS-codes sheet
        ("006_1", "006_1_1", 2, 3, 5, "micro", "positive", "happiness", ["AU12"], "right"),
        ("006_1", "006_1_2", 0, None, 7, "macro", "others", None, ["AU4", "AU7"], None),  # apex -1
        ("007_6", "007_6_1", 1, 4, 4, "micro", "negative", "contempt", ["AU12"], None),  # offset 0 -> apex
        ("007_6", "007_6_2", 0, 1, 2, "macro", "others", None, ["AU1", "AU2"], None),
    ]
    rows = ws.read("intervals", dataset="samm_lv").to_pylist()
    assert {r["source_row"] for r in rows} == {11, 12, 13, 15}
    assert all(r["source_file"].endswith("SAMM_LongVideos_V3_Release.xlsx") for r in rows)
    frames = ws.read("frames", dataset="samm_lv").to_pylist()
    assert [(f["frame"], f["file"]) for f in frames if f["video"] == "006_1"][:2] == \
        [(0, "006_1_0001.jpg"), (1, "006_1_0002.jpg")]


def test_casme2(ws, tmp_path):
    ingest(ws, "casme2", fx.build_casme2(tmp_path / "c2"))
    assert videos(ws, "casme2") == [("s15", "15_0101", 30.0, 8, 64, 48, "frames", 1, True),
                                    ("s16", "16_0401", 30.0, 6, 64, 48, "frames", 1, True)]
    assert intervals(ws, "casme2") == [
        ("15_0101", "s15_disgust1_1", 1, 2, 4, "micro", "negative", None, ["AU4", "AU7"], None),
        ("15_0101", "s15_disgust1_2", 3, 5, 5, "macro", "positive", None, ["AU12"], "left"),  # offset 0
        ("16_0401", "s16_anger1_1", 0, 1, 5, "macro", "others", None, ["AU4"], None),
    ]


def test_casme3_xls_with_gap(ws, tmp_path):
    ingest(ws, "casme3", fx.build_casme3(tmp_path / "c3"), dataset="cas3")
    assert videos(ws, "cas3") == [("spNO.1", "spNO.1_a", 30.0, 9, 64, 48, "frames", 0, True),
                                  ("spNO.2", "spNO.2_b", 30.0, 6, 64, 48, "frames", 0, True)]
    assert intervals(ws, "cas3") == [
        ("spNO.1_a", "spNO.1_a_1_6_micro", 1, 3, 6, "micro", "negative", "disgust", ["AU4", "AU7"], "left"),
        ("spNO.1_a", "spNO.1_a_5_8_macro", 5, 6, 8, "macro", "positive", "happiness", ["AU12"], None),
        ("spNO.2_b", "spNO.2_b_0_4_micro", 0, 1, 4, "micro", "surprise", "surprise", ["AU1", "AU2"], None),
        ("spNO.2_b", "spNO.2_b_2_3_micro", 2, 3, 3, "micro", "others", "others", ["AU14"], "right"),
    ]
    fr = [(r["frame"], r["file"], r["filled"]) for r in ws.read("frames", dataset="cas3").to_pylist()
          if r["video"] == "spNO.1_a"]
    assert fr[3:6] == [(3, "3.jpg", False), (4, "3.jpg", True), (5, "5.jpg", False)]


def test_smic_e_long(ws, tmp_path):
    ingest(ws, "smic_e_long", fx.build_smic_e_long(tmp_path / "smic"))
    assert videos(ws, "smic_e_long") == [("s01", "s01_ne_01", 100.0, 10, 64, 48, "frames", 1000, True)]
    assert intervals(ws, "smic_e_long") == [
        ("s01_ne_01", "s01_ne_01_2", 2, None, 6, "micro", "negative", None, [], None),
        ("s01_ne_01", "s01_ne_01_3", 7, None, 9, "micro", "surprise", None, [], None),
    ]


def test_fourdme(ws, tmp_path):
    ingest(ws, "fourdme", fx.build_fourdme(tmp_path / "4d"))
    assert videos(ws, "fourdme") == [("S01", "S01_0101", 60.0, 8, 64, 48, "frames", 10, True)]
    assert intervals(ws, "fourdme") == [
        ("S01_0101", "S01_0101_2", 1, 3, 5, "micro", "positive", None, ["AU12"], "left"),
        ("S01_0101", "S01_0101_3", 2, 4, 7, "micro", "negative", None, ["AU4", "AU5"], None),
    ]


def test_generic_video_file_and_folder(ws, tmp_path):
    root = fx.build_generic(tmp_path / "gen")
    ingest(ws, "generic", root, dataset="mine")
    assert videos(ws, "mine") == [("p1", "clip1", 25.0, 12, 64, 48, "video_file", 0, True),
                                  ("p2", "clip2", 50.0, 6, 64, 48, "frames", 1, True)]
    assert intervals(ws, "mine") == [
        ("clip1", "clip1_2", 2, 4, 7, "micro", "positive", "happiness", ["AU6", "AU12"], None),
        ("clip1", "clip1_3", 8, None, 11, "macro", "negative", None, ["AU4"], "right"),
        ("clip2", "clip2_4", 0, 2, 5, "micro", "surprise", "surprise", ["AU1", "AU2"], "left"),
    ]
    v = ws.read("videos", dataset="mine").to_pylist()
    assert v[0]["path"] == str((root / "videos" / "clip1.avi").resolve())
    assert ws.read("frames", dataset="mine").num_rows == 6  # only the frame folder gets frame rows


def test_folder_unlabelled(ws, tmp_path):
    ingest(ws, "folder", fx.build_folder(tmp_path / "raw"), dataset="raw", fps=40.0)
    assert videos(ws, "raw") == [("bob", "bob_take1", 40.0, 5, 64, 48, "frames", 1, False),
                                 ("clipA", "clipA", 40.0, 9, 64, 48, "video_file", 0, False)]
    assert ws.read("intervals", dataset="raw").num_rows == 0
    summary = {r["dataset"]: r for r in dataset_summary(ws)}
    assert summary["raw"]["labelled"] is False and summary["raw"]["frames"] == 14


def _spec(first: int):
    vids = [{"subject": "006", "video_code": "006_1", "fps": 200.0, "n_frames": 12, "width": 64, "height": 48,
             "first_frame": first}]
    ivs = [{"subject": "006", "video_code": "006_1", "onset": 1, "apex": 3, "offset": 5, "kind": "micro",
            "emotion": "negative", "emotion_fine": "disgust", "aus": ["AU4", "AU7"], "side": "left"},
           {"subject": "006", "video_code": "006_1", "onset": 4, "apex": None, "offset": 11, "kind": "macro",
            "emotion": "positive", "emotion_fine": "happiness", "aus": ["AU12"], "side": None},
           {"subject": "006", "video_code": "006_1", "onset": 7, "apex": 8, "offset": 9, "kind": "micro",
            "emotion": "negative", "emotion_fine": None, "aus": [], "side": None}]
    return vids, ivs


@pytest.mark.parametrize("mod,first", [(samm_lv, 1), (casme3, 0), (casme3, 5), (generic, 0)])
def test_writer_round_trip(ws, tmp_path, mod, first):
    vids, ivs = _spec(first)
    v = vids[0]
    if mod is casme3:
        for it in [v, *ivs]:
            it["subject"], it["video_code"] = "spNO.1", "a"
    root = tmp_path / "ds"
    for n in range(first, first + v["n_frames"]):
        fx.jpegs(mod.frame_path(root, v["subject"], v["video_code"], n).parent,
                 [mod.frame_path(root, v["subject"], v["video_code"], n).name])
    paths = mod.write_annotations(root, vids, ivs)
    mod.write_events(root, [{"subject": v["subject"], "video_code": v["video_code"], "kind": "blink",
                             "onset": 2, "offset": 4}])
    assert all(p.is_file() for p in paths)
    s = ingest(ws, mod.ADAPTER, root, dataset="rt")
    assert s["rejects"] == 0 and s["events"] == 1
    vid = mod.video_id(v["subject"], v["video_code"])
    got = sorted((r["video"], r["onset"], r["apex"], r["offset"], r["kind"], r["emotion"], r["emotion_fine"],
                  r["aus"], r["side"]) for r in ws.read("intervals", dataset="rt").to_pylist())
    assert got == sorted((vid, i["onset"], i["apex"], i["offset"], i["kind"], i["emotion"], i["emotion_fine"],
                          i["aus"], i["side"]) for i in ivs)
    (row,) = ws.read("videos", dataset="rt").to_pylist()
    assert (row["video"], row["n_frames"], row["first_frame"]) == (vid, 12, first)
    assert ws.read("events", dataset="rt").to_pylist() == [
        {"dataset": "rt", "video": vid, "kind": "blink", "onset": 2, "offset": 4}]


def test_generic_writer_video_file(ws, tmp_path):
    root = tmp_path / "g"
    fx.write_avi(generic.video_path(root, "p1", "v1"), n=10, fps=20.0)
    generic.write_annotations(root, [{"subject": "p1", "video_code": "v1", "fps": 20.0, "n_frames": 10,
                                      "width": 64, "height": 48, "first_frame": 0}],
                              [{"subject": "p1", "video_code": "v1", "onset": 2, "apex": 3, "offset": 6,
                                "kind": "micro", "emotion": "negative", "emotion_fine": "fear",
                                "aus": ["AU1", "AU4"], "side": "right"}])
    ingest(ws, "generic", root, dataset="g")
    assert videos(ws, "g") == [("p1", "v1", 20.0, 10, 64, 48, "video_file", 0, True)]
    assert intervals(ws, "g")[0][2:] == (2, 3, 6, "micro", "negative", "fear", ["AU1", "AU4"], "right")


def test_cli_ingest_datasets_and_sql(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    home = str(tmp_path / "home")
    runner = CliRunner()
    res = runner.invoke(app, ["--home", home, "ingest", "casme3", str(fx.build_casme3(tmp_path / "c3", xls=False))])
    assert res.exit_code == 0, res.output
    assert "ingested casme3 (casme3): 2 videos, 15 frames, 4 intervals (3 micro, 1 macro)" in res.output
    res = runner.invoke(app, ["--home", home, "ingest", "samm_lv", str(fx.build_samm_lv(tmp_path / "s"))])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["--home", home, "sql", "select dataset, count(*) AS n from intervals group by 1 "
                                                     "order by 1", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == [{"dataset": "casme3", "n": 4}, {"dataset": "samm_lv", "n": 4}]
    res = runner.invoke(app, ["--home", home, "datasets", "--format", "json"])
    rows = {r["dataset"]: r for r in json.loads(res.output)}
    assert (rows["casme3"]["micro_negative"], rows["casme3"]["micro_surprise"], rows["casme3"]["micro_others"],
            rows["casme3"]["macro_positive"]) == (1, 1, 1, 1)
    assert (rows["samm_lv"]["micro"], rows["samm_lv"]["macro_others"]) == (2, 2)
    res = runner.invoke(app, ["--home", home, "runs", "--format", "json"])
    assert [r["kind"] for r in json.loads(res.output)] == ["ingest", "ingest"]
    assert Path(home, "tables", "intervals", "dataset=casme3").is_dir()
