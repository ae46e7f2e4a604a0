"""VQA item templates, label consistency, left/right, splits, answer composition and MEGC JSONL I/O."""

from __future__ import annotations

import json

import pytest

from storage.errors import InputError


def _iv(i: int, subject: str, emotion: str, fine: str | None, aus: list[str], side: str | None = None) -> dict:
    return {"dataset": "d", "subject": subject, "video": f"{subject}_v{i}", "interval_id": f"{subject}_{i}",
            "onset": 10, "apex": 14, "offset": 20, "kind": "micro", "emotion": emotion, "emotion_fine": fine,
            "aus": aus, "side": side, "source_file": "x.csv", "source_row": i + 2}


def test_every_template_with_consistent_labels_and_side():
    from tasks import vqa_labels
    from tasks.vqa_items import compose_answer, interval_items

    items = interval_items(_iv(1, "s1", "positive", "happiness", ["AU6", "AU12"], "left"), "train")
    by = {}
    for it in items:
        by.setdefault(it["qtype"], []).append(it)
    assert set(by) == {"coarse", "fine", "au", "au_yes_no", "au_side", "compound"}
    assert by["coarse"][0]["question"] == "What is the coarse expression class?"
    assert by["coarse"][0]["answer"] == "positive" and by["fine"][0]["answer"] == "happiness"
    assert by["au"][0]["question"] == "What are the action units?"
    assert by["au"][0]["answer"] == "cheek raiser, lip corner puller"
    yn = {it["answer"]: it["question"] for it in by["au_yes_no"]}
    assert set(yn) == {"yes", "no"}
    present = yn["yes"].split("unit ")[1].split(" shown")[0]
    absent = yn["no"].split("unit ")[1].split(" shown")[0]
    assert present in ("cheek raiser", "lip corner puller")
    assert absent in vqa_labels.AU_NAMES.values() and absent not in ("cheek raiser", "lip corner puller")
    side = by["au_side"][0]
    assert side["question"] == "Is the action unit lip corner puller located on the left or right face?"
    assert side["answer"] == "left"
    assert by["compound"][0]["answer"] == ("The action units present are: cheek raiser, lip corner puller. "
                                          "Therefore, the fine-grained expression class is happiness, and the "
                                          "coarse expression class is positive.")
    # the question classifier of tasks.vqa_labels agrees with every template
    assert all(vqa_labels.question_type(it["question"]) == it["qtype"] for it in items)
    # composing from the ground-truth labels reproduces every answer
    truth = {"coarse": "positive", "fine": "happiness", "aus": ["AU6", "AU12"], "side": "left"}
    assert all(compose_answer(it["qtype"], it["question"], truth) == it["answer"] for it in items)


def test_single_au_wording_and_inconsistent_fine_dropped():
    from tasks.vqa_items import interval_items

    one = {it["qtype"]: it for it in interval_items(_iv(2, "s1", "negative", "disgust", ["AU4"]), "test")}
    assert one["au"]["question"] == "What is the action unit?" and one["au"]["answer"] == "brow lowerer"
    assert one["compound"]["answer"].startswith("The action unit present is: brow lowerer.")
    assert "au_side" not in one and one["fine"]["answer"] == "disgust"
    bad = {it["qtype"] for it in interval_items(_iv(3, "s1", "positive", "disgust", ["AU4"]), "test")}
    assert "fine" not in bad and "compound" not in bad and "coarse" in bad


def test_build_splits_by_subject_and_rejects_unknown(ws):
    from tasks.vqa_items import build_items

    ivs = [_iv(i, f"s{i % 3}", "surprise", "surprise", ["AU1", "AU2"]) for i in range(6)]
    ivs.append({**_iv(9, "s0", "negative", None, ["AU4"]), "kind": "macro"})
    ws.write("intervals", ivs, dataset="d")
    items = build_items(ws, "d", ["s2"])
    assert {it["subject"] for it in items if it["split"] == "test"} == {"s2"}
    assert {it["subject"] for it in items if it["split"] == "train"} == {"s0", "s1"}
    assert not any(it["interval_id"] == "s0_9" for it in items)  # macro rows give no items
    assert len({it["item_id"] for it in items}) == len(items)
    with pytest.raises(InputError, match="not in dataset"):
        build_items(ws, "d", ["nobody"])


def test_jsonl_import_export_round_trip(ws, tmp_path):
    from tasks.vqa_items import import_jsonl, test_rows, training_rows, write_jsonl

    ws.write("videos", [{"dataset": "d", "subject": "007", "video": "SAMM-1", "fps": 200.0, "n_frames": 40,
                         "width": 64, "height": 64, "source_kind": "frames", "path": "/x", "first_frame": 1,
                         "labelled": False}], dataset="d")
    train = [{"id": 1, "dataset": "samm", "image_id": "006_1_2", "subject": "006", "filename": "006_1_2",
              "question": "What is the coarse expression class?", "answer": "Negative"}]
    test = [{"video_id": "samm_test_SAMM-1_1", "video": "SAMM-1", "question": "What are the action units?",
             "answer": ""}]
    p_train, p_test = write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(tmp_path / "test.jsonl", test)
    items = import_jsonl(ws, "d", p_train) + import_jsonl(ws, "d", p_test)
    assert [it["split"] for it in items] == ["train", "test"]
    assert items[0]["answer"] == "negative" and items[0]["qtype"] == "coarse" and items[0]["onset"] is None
    assert items[1]["onset"] == 0 and items[1]["offset"] == 39 and items[1]["subject"] == "007"
    assert training_rows(items[:1])[0] == {**train[0], "answer": "negative"}
    filled = test_rows(items[1:], {items[1]["item_id"]: "brow lowerer"})
    assert filled == [{**test[0], "answer": "brow lowerer"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(train[0]) + "\n{not json\n")
    with pytest.raises(InputError, match=r"bad.jsonl, row 2: malformed JSON"):
        import_jsonl(ws, "d", bad)


def test_default_test_subjects_hold_out_about_a_fifth():
    from tasks.vqa_items import default_test_subjects, submission_name

    assert default_test_subjects(["a"]) == []
    assert default_test_subjects(["b", "a", "c"]) == ["c"]
    ten = default_test_subjects([f"s{i:02d}" for i in range(10)])
    assert ten == ["s04", "s09"]
    assert submission_name("casme3") == "me_vqa_casme3_test_pred.jsonl"
    assert submission_name("samm_lv") == "me_vqa_samm_test_pred.jsonl"
