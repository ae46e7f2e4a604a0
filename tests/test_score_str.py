"""STR scoring: the DuckDB SQL against an independent reference, the paper's MEAN rows, quirks, bad input, CLI."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from storage.errors import InputError
from tasks.score_str import read_str_csv, score_detailed, score_jobs, score_str, score_str_run

sys.path.insert(0, str(Path(__file__).parent))
from helpers.str_reference import reference_score  # noqa: E402

EMOTIONS = ("negative", "positive", "surprise", "others")
SCHEMA = pa.schema([("subject", pa.string()), ("video", pa.string()), ("onset", pa.int64()),
                    ("offset", pa.int64()), ("emotion", pa.string())])
VARIANTS = [(p, c) for p in ("megc2025", "strict") for c in (None, ["all"])]


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def row(subject: str, video: str, onset: int, offset: int, emotion: str) -> dict:
    return {"subject": subject, "video": video, "onset": onset, "offset": offset, "emotion": emotion}


def assert_same(got, want, path: str = "") -> None:
    """Equal to 1e-9, None (null) only where None is expected."""
    if isinstance(want, dict):
        for k in want:
            assert_same(got[k], want[k], f"{path}/{k}")
    elif want is None or got is None:
        assert got is None and want is None, (path, got, want)
    elif isinstance(want, (str, list)):
        assert got == want, (path, got, want)
    else:
        assert not math.isnan(got) and abs(got - want) <= 1e-9, (path, got, want)


def _interval(code: int) -> tuple[int, int, str]:
    """Decode one drawn integer into (onset, length 0-20, emotion): one draw per row keeps generation fast."""
    code, e = divmod(code, len(EMOTIONS))
    onset, length = divmod(code, 21)
    return onset, length, EMOTIONS[e]


INTERVAL_CODES = st.integers(0, 61 * 21 * len(EMOTIONS) - 1)


@st.composite
def str_case(draw) -> tuple[list[dict], list[dict]]:
    """1-3 subjects x 1-3 videos, 0-6 GT and 0-8 predictions per video, frames 0-60, rows in shuffled order."""
    pred, gt = [], []
    for s in range(draw(st.integers(1, 3))):
        for v in range(draw(st.integers(1, 3))):
            # video names repeat across subjects: rows must key on (subject, video)
            for rows, most in ((gt, 6), (pred, 8)):
                for code in draw(st.lists(INTERVAL_CODES, max_size=most)):
                    a, n, e = _interval(code)
                    rows.append(row(f"s{s}", f"v{v}", a, min(60, a + n), e))
    return draw(st.permutations(pred)), draw(st.permutations(gt))


def test_sql_matches_reference_on_500_cases():
    """500 hypothesis cases scored in ONE batched SQL run (one scope per case), each against the reference.

    Batching keeps this fast (DuckDB plans a query in tens of ms, so per-case queries would take minutes) and
    also checks that scopes never leak into each other.
    """
    cases: list[tuple[list[dict], list[dict]]] = []

    @settings(max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.generate])
    @given(str_case())
    def collect(case):
        cases.append(case)

    collect()
    assert len(cases) >= 400
    inputs = {f"c{i}": (table(p), table(g)) for i, (p, g) in enumerate(cases)}
    jobs = [(f"c{i}", p, c) for i in range(len(cases)) for p, c in VARIANTS]
    results, _ = score_jobs(inputs, jobs)
    assert len(results) == len(jobs)
    for (scope, protocol, classes), got in zip(jobs, results):
        pred, gt = cases[int(scope[1:])]
        try:
            assert_same(got, reference_score(pred, gt, protocol, classes))
        except AssertionError as exc:
            raise AssertionError(f"{protocol} {classes}: pred={pred} gt={gt}: {exc}") from None


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(str_case(), st.sampled_from(VARIANTS))
def test_single_case_api_matches_reference(case, variant):
    pred, gt = case
    protocol, classes = variant
    assert_same(score_str(table(pred), table(gt), protocol, classes), reference_score(pred, gt, protocol, classes))


def _mean_case(tp: int, fp: int, fn: int, tp_gt: list[str], tp_pred: list[str]) -> tuple[pa.Table, pa.Table]:
    """One long video: tp matched intervals with the given emotions, fp stray predictions, fn missed GTs."""
    gt = [row("s1", "v1", 100 * i, 100 * i + 9, tp_gt[i] if i < tp else "negative") for i in range(tp + fn)]
    pred = [row("s1", "v1", 100 * i, 100 * i + 9, tp_pred[i]) for i in range(tp)]
    pred += [row("s1", "v1", 100 * i + 50, 100 * i + 59, "negative") for i in range(fp)]
    return table(pred), table(gt)


@pytest.mark.parametrize("name,tp,fp,fn,tp_gt,tp_pred,p,r,f1,strs", [
    ("SAMM", 6, 217, 202, ["negative", "positive"] * 3, ["negative"] * 6, .0269, .0288, .0278, .0062),
    # CAS: the third TP is an "others" ME, outside the analysis classes
    ("CAS", 3, 115, 34, ["negative", "positive", "others"], ["negative"] * 3, .0254, .0811, .0387, .0086),
])
def test_paper_mean_rows(name, tp, fp, fn, tp_gt, tp_pred, p, r, f1, strs):
    res = score_str(*_mean_case(tp, fp, fn, tp_gt, tp_pred))
    s = res["spotting"]
    assert (s["tp"], s["fp"], s["fn"]) == (tp, fp, fn)
    assert round(s["precision"], 4) == p and round(s["recall"], 4) == r and round(s["f1"], 4) == f1
    assert round(res["analysis"]["f1"], 4) == .2222
    assert round(res["strs"], 4) == strs


def test_one_prediction_takes_every_free_gt_under_megc2025_only():
    pred = table([row("s", "v", 0, 10, "negative")])
    gt = table([row("s", "v", 1, 10, "negative"), row("s", "v", 0, 9, "negative")])
    official, strict = score_str(pred, gt), score_str(pred, gt, "strict")
    assert (official["spotting"]["tp"], official["spotting"]["fn"]) == (2, 0)
    assert (strict["spotting"]["tp"], strict["spotting"]["fn"]) == (1, 1)
    # every kept TP is negative and predicted negative: the matrix is 1x1, the official zeroes the class
    # (it still prints the 2 correct TPs as its analysis TP count)
    assert official["analysis"]["tp"] == 2 and official["analysis"]["fp"] == official["analysis"]["fn"] == 0
    assert official["analysis"]["f1"] is None and official["strs"] is None
    assert strict["analysis"]["tp"] == 1 and strict["analysis"]["f1"] == pytest.approx(2 * (1 / 3) ** 2 / (2 / 3))


def test_strict_takes_best_iou_and_counts_every_video():
    pred = table([row("s", "v", 0, 9, "positive"), row("s", "w", 0, 9, "positive")])
    gt = table([row("s", "v", 0, 11, "positive"), row("s", "v", 0, 9, "positive"),
                row("t", "x", 0, 9, "surprise")])
    res, matches = score_detailed(pred, gt, "strict")
    tp = matches.filter(pc.equal(matches.column("outcome"), "tp")).to_pylist()
    assert [(m["gt_rn"], m["iou"]) for m in tp] == [(2, 1.0)]
    assert (res["spotting"]["tp"], res["spotting"]["fp"], res["spotting"]["fn"]) == (1, 1, 2)
    official = score_str(pred, gt)
    # megc2025: the prediction takes both GTs, video w has no GT (ignored), subject t has no prediction (no FN)
    assert (official["spotting"]["tp"], official["spotting"]["fp"], official["spotting"]["fn"]) == (2, 0, 0)
    assert official["analysis"]["uar"] == pytest.approx(official["analysis"]["precision"])


def test_no_true_positive_reports_zero_and_a_note():
    res = score_str(table([row("s", "v", 0, 3, "negative")]), table([row("s", "v", 10, 20, "negative")]))
    assert res["spotting"]["fp"] == 1 and res["spotting"]["fn"] == 1
    assert res["strs"] == 0.0 and res["analysis"]["f1"] == 0.0 and "crashes" in res["notes"][0]


def test_classes_all_takes_every_gt_emotion():
    pred = table([row("s", "v", 0, 9, "others"), row("s", "v", 20, 29, "negative")])
    gt = table([row("s", "v", 0, 9, "others"), row("s", "v", 20, 29, "positive")])
    assert score_str(pred, gt, classes=["all"])["classes"] == ["others", "positive"]
    assert score_str(pred, gt, "strict", classes=["all"])["analysis"]["uar"] == pytest.approx(0.5)


def _write(tmp_path: Path, text: str, name: str = "f.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text,match", [
    ("", "empty file"),
    ("subject,video,onset,offset,emotion\n", "no data rows"),
    ("subject,video,onset,emotion\ns,v,1,negative\n", "missing columns \\['offset'\\]"),
    ("subject,video,onset,offset,emotion\ns,v,1,5,negative\ns,v,1.5,5,negative\n",
     "row 2: onset '1.5' is not an integer"),
    ("subject,video,onset,offset,emotion\ns,v,9,5,negative\n", "row 1: onset 9 is after offset 5"),
    ("subject,video,onset,offset,emotion\ns,v,1,5,happy\n", "row 1: unknown emotion 'happy'"),
])
def test_bad_csv_names_file_and_row(tmp_path, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(InputError, match=match) as err:
        read_str_csv(p)
    assert str(p) in str(err.value)


def test_bad_table_input_is_reported():
    with pytest.raises(InputError, match="predictions, row 1: onset 4 is after offset 2"):
        score_str(table([row("s", "v", 4, 2, "negative")]), table([row("s", "v", 0, 2, "negative")]))
    with pytest.raises(InputError, match="unknown protocol"):
        score_str(table([]), table([]), protocol="loose")


CSV_HEAD = "subject,video,onset,offset,emotion\n"


def test_cli_json_stores_metrics_and_matches(tmp_path):
    from flows.cli import app

    pred = _write(tmp_path, CSV_HEAD + "s1,v1,0,10,negative\ns1,v1,40,50,positive\n", "pred.csv")
    gt = _write(tmp_path, CSV_HEAD + "s1,v1,1,10,negative\ns1,v1,0,9,negative\ns2,v2,0,9,positive\n", "gt.csv")
    home = str(tmp_path / "home")
    runner = CliRunner()
    out = runner.invoke(app, ["--home", home, "score", "str", "--pred", str(pred), "--gt", str(gt), "--json",
                              "--run-id", "score-a"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    assert set(res) == {"protocol", "classes", "spotting", "analysis", "strs"}
    assert res["spotting"] == {"tp": 2, "fp": 1, "fn": 0, "precision": 2 / 3, "recall": 1.0, "f1": 0.8}
    assert res["analysis"]["f1"] is None and res["strs"] is None  # degenerate 1x1 matrix, as the official
    out = runner.invoke(app, ["--home", home, "score", "str", "--pred", str(pred), "--gt", str(gt),
                              "--protocol", "strict", "--run-id", "score-a"])
    assert out.exit_code == 0 and "protocol strict" in out.stdout
    # scoring a protocol again replaces its figures instead of adding rows
    out = runner.invoke(app, ["--home", home, "score", "str", "--pred", str(pred), "--gt", str(gt), "--run-id",
                              "score-a", "--set", "protocol=megc2025"])
    assert out.exit_code == 0 and "protocol megc2025" in out.stdout
    # README queries
    q_strs = ("SELECT run_id, dataset, protocol, value AS strs FROM metrics WHERE name = 'strs' "
              "ORDER BY run_id, dataset, protocol")
    out = runner.invoke(app, ["--home", home, "sql", q_strs, "--format", "json"])
    got = json.loads(out.stdout)
    assert [(r["run_id"], r["dataset"], r["protocol"]) for r in got] == [
        ("score-a", "overall", "megc2025"), ("score-a", "overall", "strict")]
    assert got[0]["strs"] is None and got[1]["strs"] == pytest.approx(0.4 / 3)  # spot F1 .4 x analysis F1 1/3
    q_fp = ("SELECT dataset, subject, video, count(*) AS fp FROM str_matches WHERE outcome = 'fp' "
            "AND protocol = 'strict' GROUP BY ALL ORDER BY fp DESC, video LIMIT 10")
    out = runner.invoke(app, ["--home", home, "sql", q_fp, "--format", "json"])
    assert json.loads(out.stdout) == [{"dataset": "overall", "subject": "s1", "video": "v1", "fp": 1}]
    q_conf = ("SELECT gt_emotion, pred_emotion, count(*) AS n FROM str_matches WHERE outcome = 'tp' "
              "AND protocol = 'megc2025' GROUP BY ALL ORDER BY ALL")
    out = runner.invoke(app, ["--home", home, "sql", q_conf, "--format", "json"])
    assert json.loads(out.stdout) == [{"gt_emotion": "negative", "pred_emotion": "negative", "n": 2}]
    bad = _write(tmp_path, CSV_HEAD + "s1,v1,x,10,negative\n", "bad.csv")
    out = runner.invoke(app, ["--home", home, "score", "str", "--pred", str(bad), "--gt", str(gt)])
    assert out.exit_code == 2 and "bad.csv, row 1: onset 'x' is not an integer" in out.stderr


def test_score_run_per_dataset_and_pooled(ws):
    intervals, videos, preds = [], [], []
    for d, subj in (("samm", "006"), ("cas", "spNO.1")):
        for v in ("a", "b"):
            videos.append({"dataset": d, "subject": subj, "video": v, "fps": 30.0, "n_frames": 500, "width": 64,
                           "height": 64, "source_kind": "frames", "path": "/x", "first_frame": 0, "labelled": True})
        for i, (v, on, kind, emo) in enumerate([("a", 10, "micro", "negative"), ("a", 100, "micro", "positive"),
                                                ("b", 10, "macro", "surprise"), ("b", 200, "micro", "surprise")]):
            intervals.append({"dataset": d, "subject": subj, "video": v, "interval_id": f"{v}_{i}", "onset": on,
                              "apex": None, "offset": on + 9, "kind": kind, "emotion": emo, "emotion_fine": None,
                              "aus": [], "side": None, "source_file": "x.xlsx", "source_row": i + 2})
        ws.replace("videos", [r for r in videos if r["dataset"] == d], dataset=d)
        ws.replace("intervals", [r for r in intervals if r["dataset"] == d], dataset=d)
    # samm: hits a_0 (right class) and the macro b (no micro there: FP); cas: only hits a_1
    pred_rows = [("samm", "006", "a", 10, "negative"), ("samm", "006", "b", 10, "surprise"),
                 ("cas", "spNO.1", "a", 101, "negative")]
    for d, subj, v, on, emo in pred_rows:
        preds.append({"run_id": "spot-1", "dataset": d, "subject": subj, "video": v, "onset": on,
                      "offset": on + 9, "emotion": emo, "score": 1.0, "model": "mean"})
    for d in ("samm", "cas"):
        ws.write("predictions", [p for p in preds if p["dataset"] == d], run_id="spot-1", dataset=d)
    out = score_str_run(ws, "spot-1")
    assert set(out) == {f"{d}/{p}" for d in ("samm", "cas", "overall") for p in ("megc2025", "strict")}
    assert [out[f"{d}/strict"]["spotting"][k] for d in ("samm", "cas", "overall") for k in ("tp", "fp", "fn")] == \
        [1, 1, 2, 1, 0, 2, 2, 1, 4]
    assert out["overall/megc2025"]["spotting"]["tp"] == 2
    cols, rows = ws.sql("SELECT dataset, protocol, value FROM metrics WHERE run_id = 'spot-1' AND name = 'spot_tp' "
                        "ORDER BY ALL")
    assert rows == [("cas", "megc2025", 1.0), ("cas", "strict", 1.0), ("overall", "megc2025", 2.0),
                    ("overall", "strict", 2.0), ("samm", "megc2025", 1.0), ("samm", "strict", 1.0)]
    cols, rows = ws.sql("SELECT dataset, outcome, count(*) FROM str_matches WHERE protocol = 'strict' "
                        "GROUP BY ALL ORDER BY ALL")
    assert rows == [("cas", "fn", 2), ("cas", "tp", 1), ("samm", "fn", 2), ("samm", "fp", 1), ("samm", "tp", 1)]
    cols, rows = ws.sql("SELECT gt_interval FROM str_matches WHERE dataset = 'cas' AND outcome = 'tp'")
    assert rows == [("a_1",), ("a_1",)]
    assert ws.read("runs", run_id="spot-1").column("kind").to_pylist() == ["score"]


def test_score_run_counts_only_the_videos_the_run_spotted(ws):
    videos = [{"dataset": "d", "subject": s, "video": v, "fps": 30.0, "n_frames": 300, "width": 64, "height": 64,
               "source_kind": "frames", "path": "/x", "first_frame": 0, "labelled": True}
              for s, v in (("s1", "v1"), ("s2", "v2"))]
    intervals = [{"dataset": "d", "subject": s, "video": v, "interval_id": f"{v}_0", "onset": 50, "apex": None,
                  "offset": 59, "kind": "micro", "emotion": "negative", "emotion_fine": None, "aus": [],
                  "side": None, "source_file": "x.csv", "source_row": 2} for s, v in (("s1", "v1"), ("s2", "v2"))]
    ws.replace("videos", videos, dataset="d")
    ws.replace("intervals", intervals, dataset="d")
    # a run over held-out subject s2 only: v1 was never spotted, so its micro-expression is no miss
    ws.write("predictions", [{"run_id": "r", "dataset": "d", "subject": "s2", "video": "v2", "onset": 200,
                              "offset": 209, "emotion": "negative", "score": 1.0, "model": "m"}],
             run_id="r", dataset="d")
    ws.write("frame_scores", [{"run_id": "r", "dataset": "d", "video": "v2", "frame": 0, "score": 0.0,
                               "probs": [1.0, 0.0, 0.0]}], run_id="r", dataset="d", video="v2")
    out = score_str_run(ws, "r", protocols=("strict",))
    assert [out["d/strict"]["spotting"][k] for k in ("tp", "fp", "fn")] == [0, 1, 1]
