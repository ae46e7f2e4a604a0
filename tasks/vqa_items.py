"""ME-VQA question items from canonical intervals (every MEGC template), answer composition, MEGC JSONL I/O."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from storage.errors import InputError
from storage.jsonl import read_jsonl, write_jsonl  # noqa: F401  (re-exported)
from storage.vocabulary import AU_NAMES, FINE, FINE_LABELS, STR_CLASSES
from storage.workspace import Workspace
from tasks import vqa_labels

Q_COARSE = "What is the coarse expression class?"
Q_FINE = "What is the fine-grained expression class?"
Q_AU_ONE = "What is the action unit?"
Q_AU_MANY = "What are the action units?"
Q_COMPOUND_ONE = ("What is the action unit present, and based on it, what is the fine-grained expression "
                  "and the coarse expression class?")
Q_COMPOUND_MANY = ("What are the action units present, and based on them, what is the fine-grained expression "
                   "and the coarse expression class?")
UNILATERAL_FIRST = ("AU12", "AU14", "AU15", "AU10", "AU2", "AU1")
_YESNO = re.compile(r"is the action unit (.+?) shown on the face", re.I)
_SIDE = re.compile(r"is the action unit (.+?) located on the left or right", re.I)


def au_name(au: str) -> str | None:
    """FACS name of an AU code such as 'AU12' (None when megc has no name for it)."""
    return AU_NAMES.get(au.upper())


def q_yesno(name: str) -> str:
    """The AU yes/no question for a FACS name."""
    return f"Is the action unit {name} shown on the face?"


def q_side(name: str) -> str:
    """The left/right question for a FACS name."""
    return f"Is the action unit {name} located on the left or right face?"


def fine_and_coarse(emotion: str | None, emotion_fine: str | None) -> tuple[str | None, str | None]:
    """(fine, coarse) made consistent: the fine label must map to the coarse class, else fine is dropped."""
    coarse = (emotion or "").strip().lower() or None
    fine = None
    if emotion_fine:
        canon = FINE_LABELS.get(emotion_fine.strip().lower())
        if canon and canon[0] in FINE:
            fine = canon[0] if coarse is None or canon[1] == coarse else None
            coarse = coarse or canon[1]
    elif coarse in ("positive", "surprise"):
        fine = "happiness" if coarse == "positive" else "surprise"
    return fine, coarse


def compound_answer(names: Sequence[str], fine: str, coarse: str) -> str:
    """The compound template's answer sentence."""
    lead = "The action units present are" if len(names) != 1 else "The action unit present is"
    return (f"{lead}: {', '.join(names)}. Therefore, the fine-grained expression class is {fine}, "
            f"and the coarse expression class is {coarse}.")


def interval_items(iv: dict, split: str) -> list[dict]:
    """Every template's item for one micro interval (skipping templates its labels cannot answer)."""
    fine, coarse = fine_and_coarse(iv.get("emotion"), iv.get("emotion_fine"))
    codes = [a.upper() for a in (iv.get("aus") or []) if au_name(a)]
    codes = list(dict.fromkeys(codes))
    names = [au_name(a) for a in codes]
    rng = random.Random(f"{iv['dataset']}/{iv['interval_id']}")
    qa: list[tuple[str, str, str]] = []
    if coarse in STR_CLASSES:
        qa.append(("coarse", Q_COARSE, coarse))
    if fine:
        qa.append(("fine", Q_FINE, fine))
    if names:
        qa.append(("au", Q_AU_ONE if len(names) == 1 else Q_AU_MANY, ", ".join(names)))
        qa.append(("au_yes_no", q_yesno(rng.choice(names)), "yes"))
        absent = [n for c, n in AU_NAMES.items() if c not in codes]
        if absent:
            qa.append(("au_yes_no", q_yesno(rng.choice(sorted(absent))), "no"))
        side = (iv.get("side") or "").lower()
        if side in ("left", "right"):
            lateral = next((c for c in UNILATERAL_FIRST if c in codes), codes[0])
            qa.append(("au_side", q_side(au_name(lateral)), side))
        if fine and coarse in STR_CLASSES:
            qa.append(("compound", Q_COMPOUND_ONE if len(names) == 1 else Q_COMPOUND_MANY,
                       compound_answer(names, fine, coarse)))
    return [{"dataset": iv["dataset"], "split": split, "item_id": f"{iv['interval_id']}#{i}",
             "subject": iv["subject"], "video": iv["video"], "interval_id": iv["interval_id"], "qtype": t,
             "question": q, "answer": a, "onset": iv["onset"], "apex": iv.get("apex"), "offset": iv["offset"],
             "source": None} for i, (t, q, a) in enumerate(qa)]


def default_test_subjects(subjects: Iterable[str], fraction: float = 0.2) -> list[str]:
    """A deterministic held-out set: round(fraction * n) (at least one) subjects spread evenly over the sorted list."""
    subs = sorted(set(subjects))
    if len(subs) < 2:
        return []
    k = min(len(subs) - 1, max(1, round(len(subs) * fraction)))
    return [subs[round((i + 1) * len(subs) / k) - 1] for i in range(k)]


def build_items(ws: Workspace, dataset: str, test_subjects: Sequence[str] | None = None) -> list[dict]:
    """Items for every micro interval of a dataset, split into train/test by subject."""
    rows = [r for r in ws.read("intervals", dataset=dataset).to_pylist() if r["kind"] == "micro"]
    if not rows:
        raise InputError(f"dataset {dataset!r} has no micro intervals (ingest it first)",
                         file=ws.tables_dir / "intervals")
    subjects = {r["subject"] for r in rows}
    test = set(default_test_subjects(subjects) if test_subjects is None else test_subjects)
    unknown = test - subjects
    if unknown:
        raise InputError(f"test subjects {sorted(unknown)} are not in dataset {dataset!r}; "
                         f"subjects: {sorted(subjects)}")
    items = []
    for r in sorted(rows, key=lambda r: (r["subject"], r["video"], r["onset"])):
        items += interval_items(r, "test" if r["subject"] in test else "train")
    return items


def parse_au_question(question: str) -> str | None:
    """The FACS name asked about in a yes/no or left/right question."""
    m = _YESNO.search(question) or _SIDE.search(question)
    return m.group(1).strip().lower() if m else None


def compose_answer(qtype: str, question: str, pred: dict) -> str:
    """Answer text of a question from structured predictions {coarse, fine, aus (codes), side}."""
    names = [n for n in (au_name(a) for a in pred.get("aus") or []) if n]
    if qtype == "coarse":
        return pred["coarse"]
    if qtype == "fine":
        return pred["fine"]
    if qtype == "au":
        return ", ".join(names)
    if qtype == "au_yes_no":
        return "yes" if parse_au_question(question) in names else "no"
    if qtype == "au_side":
        return pred.get("side") or "left"
    if qtype == "compound":
        return compound_answer(names, pred["fine"], pred["coarse"])
    raise InputError(f"unknown question type {qtype!r}")


# ---- MEGC JSONL files ------------------------------------------------------------------------------------
def qtype_of(question: str) -> str:
    """megc question type of a question text (via tasks.vqa_labels.question_type)."""
    return vqa_labels.question_type(question)


def import_jsonl(ws: Workspace, dataset: str, path: str | Path, split: str | None = None) -> list[dict]:
    """Items from a MEGC training JSONL ({id, ..., answer}) or test JSONL ({video_id, video, question, answer: ""}).

    A row's clip is found in `intervals` (interval_id = filename / image_id / video) else in `videos` (the whole
    video is the clip); rows whose clip is in neither keep null frames and cannot be answered from pixels.
    """
    path = Path(path)
    rows = read_jsonl(path)
    ivs = {r["interval_id"]: r for r in ws.read("intervals", dataset=dataset).to_pylist()}
    vids = {r["video"]: r for r in ws.read("videos", dataset=dataset).to_pylist()}
    items = []
    for n, row in enumerate(rows, 1):
        if "question" not in row:
            raise InputError("row has no 'question'", file=path, row=row.get("_row", n))
        is_test = "video_id" in row
        keys = ["video_id", "video"] if is_test else ["filename", "image_id", "id"]
        for k in keys:
            if k not in row:
                raise InputError(f"row has no {k!r} (expected {'test' if is_test else 'training'} row keys)",
                                 file=path, row=row.get("_row", n))
        cand = [str(row[k]) for k in (["video", "video_id"] if is_test else ["filename", "image_id"])]
        iv = next((ivs[c] for c in cand if c in ivs), None)
        clip = cand[0]
        subject, video, onset, apex, offset = row.get("subject"), clip, None, None, None
        if iv is not None:
            clip, subject, video = iv["interval_id"], iv["subject"], iv["video"]
            onset, apex, offset = iv["onset"], iv["apex"], iv["offset"]
        elif clip in vids:
            subject, onset, offset = vids[clip]["subject"], 0, int(vids[clip]["n_frames"]) - 1
        item_id = str(row["video_id"] if is_test else row["id"])
        items.append({"dataset": dataset, "split": split or ("test" if is_test else "train"),
                      "item_id": f"{item_id}#{n}", "subject": str(subject or ""), "video": video,
                      "interval_id": clip, "qtype": qtype_of(row["question"]), "question": row["question"],
                      "answer": str(row.get("answer") or "").strip().lower(), "onset": onset, "apex": apex,
                      "offset": offset, "source": json.dumps(row, ensure_ascii=False)})
    return items


def training_rows(items: Iterable[dict]) -> list[dict]:
    """MEGC training JSONL rows {id, dataset, image_id, subject, filename, question, answer}."""
    out = []
    for it in items:
        src = json.loads(it["source"]) if it.get("source") else {}
        out.append({"id": src.get("id", it["item_id"]), "dataset": src.get("dataset", it["dataset"]),
                    "image_id": src.get("image_id", it["interval_id"]), "subject": it["subject"],
                    "filename": src.get("filename", it["interval_id"]), "question": it["question"],
                    "answer": it["answer"]})
    return out


def test_rows(items: Iterable[dict], answers: dict[str, str] | None = None) -> list[dict]:
    """MEGC test rows {video_id, video, question, answer}; `answers` (item_id -> text) fills a submission."""
    out = []
    for it in items:
        src = json.loads(it["source"]) if it.get("source") else {}
        row = {"video_id": src.get("video_id", f"{it['dataset']}_test_{it['interval_id']}"),
               "video": src.get("video", it["interval_id"]), "question": it["question"],
               "answer": (answers or {}).get(it["item_id"], "")}
        out.append(row)
    return out


def submission_name(dataset: str) -> str:
    """File name of a dataset's submission (e.g. me_vqa_casme3_test_pred.jsonl)."""
    short = re.sub(r"[^a-z0-9]+", "", dataset.lower().split("_")[0]) or "data"
    return f"me_vqa_{short}_test_pred.jsonl"
