"""ME-VQA labels read from text: question types of question texts, classes and AU codes named in answers."""

from __future__ import annotations

import re

from storage.vocabulary import AU_BY_NAME, AU_NAMES, FINE, STR_CLASSES

_COARSE_PHRASE = re.compile(r"coarse expression class is\s*:?\s*([a-z]+)")
_FINE_PHRASE = re.compile(r"fine-grained expression(?: class)? is\s*:?\s*([a-z]+)")
_COARSE_WORD = re.compile(r"\b(" + "|".join(STR_CLASSES) + r")\b")
_FINE_WORD = re.compile(r"\b(" + "|".join(FINE) + r")\b")
# longest names first so that no name matches inside a longer one
_AU_NAME = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(AU_NAMES.values(), key=len, reverse=True))
                      + r")\b|\bau\s?(\d+)\b")


def question_type(question: str) -> str:
    """One of coarse, fine, au, au_yes_no, au_side, compound (or other) for a MEGC question text."""
    q = " ".join(str(question).lower().split())
    if "action unit" in q and ("coarse" in q or "fine-grained" in q or "based on" in q):
        return "compound"
    if "left or right" in q:
        return "au_side"
    if q.startswith("is the action unit") or "shown on the face" in q:
        return "au_yes_no"
    if "action unit" in q:
        return "au"
    if "fine-grained" in q or "fine grained" in q:
        return "fine"
    if "coarse" in q:
        return "coarse"
    return "other"


def _extract(answer: str | None, phrase: re.Pattern, word: re.Pattern, classes: tuple[str, ...]) -> str | None:
    if not answer:
        return None
    text = str(answer).lower()
    m = phrase.search(text)
    if m and m.group(1) in classes:
        return m.group(1)
    m = word.search(text)
    return m.group(1) if m else None


def extract_coarse(answer: str | None) -> str | None:
    """Coarse class of an answer: 'coarse expression class is X' when present, else the first coarse word."""
    return _extract(answer, _COARSE_PHRASE, _COARSE_WORD, STR_CLASSES)


def extract_fine(answer: str | None) -> str | None:
    """Fine class of an answer: 'fine-grained expression class is X' when present, else the first fine word."""
    return _extract(answer, _FINE_PHRASE, _FINE_WORD, FINE)


def extract_aus(answer: str | None) -> list[str]:
    """AU codes (e.g. ['AU4', 'AU12']) named in an answer by FACS name or as AU<n>, in order, without repeats."""
    if not answer:
        return []
    out: list[str] = []
    for m in _AU_NAME.finditer(str(answer).lower()):
        code = AU_BY_NAME[m.group(1)] if m.group(1) else f"AU{int(m.group(2))}"
        if code not in out:
            out.append(code)
    return out
