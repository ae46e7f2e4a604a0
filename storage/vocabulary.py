"""The labels megc speaks: coarse and fine emotions, fine -> coarse, AU codes with FACS names, VQA question types.

Adapters, the VQA items and scorer, the expert, the synthetic generator and reports all read them from here.
"""

from __future__ import annotations

COARSE_EMOTIONS = ("negative", "positive", "surprise", "others")   # every coarse class a row may carry
STR_CLASSES = ("negative", "positive", "surprise")                 # the coarse classes MEGC scores and asks about
FINE = ("happiness", "surprise", "fear", "disgust", "anger", "sadness", "repression", "contempt")  # MEGC VQA

# Canonical fine label -> its coarse class (repression and tense count as "others", as the datasets do).
FINE_TO_COARSE: dict[str, str] = {
    "happiness": "positive", "surprise": "surprise",
    "anger": "negative", "contempt": "negative", "disgust": "negative", "fear": "negative", "sadness": "negative",
    "repression": "others", "tense": "others", "others": "others",
}
# Fine label as any dataset spells it (lower case) -> canonical fine label.
_FINE_SPELLINGS = {"angry": "anger", "disgusted": "disgust", "fearful": "fear", "sad": "sadness",
                   "happy": "happiness", "surprised": "surprise", "other": "others"}
FINE_LABELS: dict[str, tuple[str, str]] = {
    s: (c, FINE_TO_COARSE[c]) for s, c in {**{c: c for c in FINE_TO_COARSE}, **_FINE_SPELLINGS}.items()}
# Coarse word as datasets spell it -> coarse class.
COARSE_WORDS = {**{c: c for c in COARSE_EMOTIONS}, "other": "others"}

# FACS names as the MEGC question templates spell them (lower case).
AU_NAMES: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU17": "chin raiser",
    "AU23": "lip tightener",
    "AU24": "lip pressor",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU43": "eyes closed",
    "AU45": "blink",
}
AU_BY_NAME = {n: code for code, n in AU_NAMES.items()}

QUESTION_TYPES = ("coarse", "fine", "au", "au_yes_no", "au_side", "compound", "other")
