"""ME-VQA scoring: label extraction, UF1/UAR in SQL, BLEU/ROUGE, pairing, bad input, CLI."""

from __future__ import annotations

import json

import pytest
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu
from typer.testing import CliRunner

from storage.errors import InputError
from tasks import vqa_labels as L
from tasks.score_vqa import average_six, read_jsonl, score_vqa

Q_COARSE = "What is the coarse expression class?"
Q_FINE = "What is the fine-grained expression class?"
Q_AU = "What are the action units?"
Q_YES = "Is the action unit lip corner puller shown on the face?"
Q_SIDE = "Is the action unit dimpler located on the left or right face?"
Q_COMP = ("What are the action units present, and based on them, what is the fine-grained expression "
          "and the coarse expression class?")


def test_winner_average():
    assert average_six(0.733, 0.722, 0.368, 0.408, 0.615, 0.607) == pytest.approx(0.5755, abs=1e-12)
    assert average_six(0.5, None, 0.5, 0.5, 0.5, 0.5) is None


def test_question_types_and_labels():
    assert [L.question_type(q) for q in (Q_COARSE, Q_FINE, Q_AU, Q_YES, Q_SIDE, Q_COMP)] == \
        ["coarse", "fine", "au", "au_yes_no", "au_side", "compound"]
    comp = ("The action units present are: lip corner puller, cheek raiser. Therefore, the fine-grained "
            "expression class is surprise, and the coarse expression class is positive.")
    assert L.extract_coarse(comp) == "positive"  # the phrase wins over the earlier word "surprise"
    assert L.extract_fine(comp) == "surprise"
    assert L.extract_aus(comp) == ["AU12", "AU6"]
    assert L.extract_aus("au4 and lip tightener, not lid tightener; AU4") == ["AU4", "AU23", "AU7"]
    assert L.extract_coarse("I think it is negative, maybe surprise") == "negative"
    assert L.extract_fine("Happiness.") == "happiness" and L.extract_fine("no idea") is None
    assert L.AU_NAMES["AU1"] == "inner brow raiser" and len(set(L.AU_NAMES.values())) == len(L.AU_NAMES)


def _gt_rows() -> list[dict]:
    rows = []
    for vid, coarse, fine in (("samm_test_SAMM-1_1", "negative", "anger"), ("samm_test_SAMM-2_1", "positive",
                              "happiness"), ("casme3_test_a_1", "surprise", "surprise"),
                              ("casme3_test_b_1", "negative", "disgust")):
        rows += [{"video_id": vid, "video": vid.split("_")[2], "question": Q_COARSE, "answer": coarse},
                 {"video_id": vid, "video": vid.split("_")[2], "question": Q_FINE, "answer": fine}]
    rows.append({"video_id": "casme3_test_b_1", "question": Q_YES, "answer": "yes"})
    return rows


@pytest.mark.filterwarnings("ignore::UserWarning")  # nltk: no 4-gram overlap in the direct reference call
def test_score_vqa_figures():
    gt = _gt_rows()
    pred = [dict(r) for r in gt]
    pred[0]["answer"] = "positive"          # coarse negative -> positive
    pred[3]["answer"] = "the fine-grained expression class is anger"  # happiness -> anger
    pred[6]["answer"] = "Negative."         # right, with case and punctuation
    pred[8]["answer"] = "no"
    pred = list(reversed(pred))             # pairing is by (video_id, question), not by position
    res = score_vqa(pred, gt)
    # coarse: negative (tp1 fn1), positive (tp1 fp1), surprise (tp1) -> F1 2/3, 2/3, 1; recall 1/2, 1, 1
    assert res["coarse"]["uf1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert res["coarse"]["uar"] == pytest.approx((0.5 + 1 + 1) / 3)
    # fine: anger (tp1 fp1) F1 2/3, happiness (fn1) 0, surprise 1, disgust 1
    assert res["fine"]["uf1"] == pytest.approx((2 / 3 + 0 + 1 + 1) / 4)
    assert res["fine"]["uar"] == pytest.approx(3 / 4)
    ordered = {(p["video_id"], p["question"]): p["answer"] for p in pred}
    hyps = [ordered[(g["video_id"], g["question"])].lower().split() for g in gt]
    assert res["bleu"] == pytest.approx(corpus_bleu([[g["answer"].lower().split()] for g in gt], hyps))
    assert res["average"] == pytest.approx(sum([res["coarse"]["uf1"], res["coarse"]["uar"], res["fine"]["uf1"],
                                                res["fine"]["uar"], res["bleu"], res["rouge1"]]) / 6)
    assert set(res["per_dataset"]) == {"samm", "casme3"}
    assert res["per_dataset"]["samm"]["coarse"] == {"uf1": pytest.approx(1 / 3), "uar": pytest.approx(0.5)}
    assert res["per_question"]["au_yes_no"]["accuracy"] == 0.0
    assert res["per_question"]["coarse"]["accuracy"] == 0.75
    assert res["per_question"]["coarse"]["n"] == 4 and "fine" not in res["per_question"]["coarse"]
    sent = score_vqa(pred, gt, bleu="sentence")
    smooth = SmoothingFunction().method1
    want = sum(sentence_bleu([g["answer"].lower().split()], h, smoothing_function=smooth)
               for g, h in zip(gt, hyps)) / len(gt)
    assert sent["bleu"] == pytest.approx(want) and sent["bleu"] != pytest.approx(res["bleu"])


def test_training_rows_keyed_by_image_id_and_unkeyed_rows_by_position():
    gt = [{"id": 1, "dataset": "casme2", "image_id": "sub01_EP02", "question": Q_COARSE, "answer": "negative"},
          {"id": 2, "dataset": "casme2", "image_id": "sub01_EP02", "question": Q_FINE, "answer": "disgust"}]
    pred = [{"image_id": "sub01_EP02", "question": Q_FINE, "answer": "disgust"}]
    res = score_vqa(pred, gt)
    assert res["missing"] == 1 and res["fine"]["uf1"] == 1.0 and res["coarse"]["uf1"] == 0.0
    assert set(res["per_dataset"]) == {"casme2"}
    plain = score_vqa([{"question": Q_COARSE, "answer": "negative"}], [{"question": Q_COARSE, "answer": "negative"}])
    assert plain["coarse"] == {"uf1": 1.0, "uar": 1.0}


def _jsonl(tmp_path, name: str, lines: list[str]):
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines))
    return p


def test_bad_input_names_file_and_row(tmp_path):
    ok = json.dumps({"video_id": "samm_1", "question": Q_COARSE, "answer": "negative"})
    p = _jsonl(tmp_path, "bad.jsonl", [ok, '{"video_id": "samm_2", "question": '])
    with pytest.raises(InputError, match=r"bad.jsonl, row 2: malformed JSON"):
        read_jsonl(p)
    with pytest.raises(InputError, match=r"empty.jsonl: empty file"):
        read_jsonl(_jsonl(tmp_path, "empty.jsonl", []))
    with pytest.raises(InputError, match=r"row 2: expected a JSON object"):
        read_jsonl(_jsonl(tmp_path, "list.jsonl", [ok, "[1, 2]"]))
    dup = read_jsonl(_jsonl(tmp_path, "dup.jsonl", [ok, ok.replace("negative", "positive")]))
    with pytest.raises(InputError, match=r"dup.jsonl, row 2: duplicate \(video_id, question\).*first at row 1"):
        score_vqa(dup[:1], dup)
    noq = read_jsonl(_jsonl(tmp_path, "noq.jsonl", [ok, json.dumps({"video_id": "samm_3", "answer": "x"})]))
    with pytest.raises(InputError, match=r"noq.jsonl, row 2: missing or empty .question."):
        score_vqa(noq[:1], noq)
    with pytest.raises(InputError, match="pair by position"):
        score_vqa([], [{"question": Q_COARSE, "answer": "negative"}])


def test_cli_scores_and_stores(tmp_path):
    from flows.cli import app
    from storage.workspace import Workspace

    gt = _gt_rows()
    pred = [dict(r) for r in gt]
    pred[0]["answer"] = "positive"
    gp = _jsonl(tmp_path, "gt.jsonl", [json.dumps(r) for r in gt])
    pp = _jsonl(tmp_path, "pred.jsonl", [json.dumps(r) for r in pred[1:]])
    home = tmp_path / "home"
    out = CliRunner().invoke(app, ["--home", str(home), "score", "vqa", "--pred", str(pp), "--gt", str(gp),
                                   "--json", "--run-id", "vqa-score-1"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    assert {"coarse", "fine", "bleu", "rouge1", "average", "per_question", "per_dataset"} <= set(res)
    assert res["missing"] == 1 and "1 ground-truth rows have no prediction" in out.stderr
    cols, rows = Workspace(home).sql("SELECT dataset, value FROM metrics WHERE run_id = 'vqa-score-1' AND "
                                     "name = 'average' ORDER BY dataset")
    assert [r[0] for r in rows] == ["casme3", "overall", "samm"]
    assert rows[1][1] == pytest.approx(res["average"])
    out = CliRunner().invoke(app, ["--home", str(home), "score", "vqa", "--pred", str(pp), "--gt", str(gp)])
    assert out.exit_code == 0 and "ME-VQA scores" in out.stdout
