"""CAS(ME)^3 part A writer: the label sheet and spNO.X/<letter>/color/<N>.jpg frames (see storage.adapters.casme3)."""

from __future__ import annotations

from pathlib import Path

from storage.adapters.casme3 import video_id
from tasks.synth.formats.sheets import format_aus, write_events, write_xlsx

ADAPTER = "casme3"
LABEL_SHEET = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"
COLUMNS = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type", "Objective class",
           "emotion"]
# canonical fine label -> the sheet's spelling
_FINE_OUT = {"happiness": "happy", "sadness": "sad"}


def frame_path(root: Path, subject: str, video_code: str, number: int) -> Path:
    """Image of dataset frame `number`: root/spNO.1/a/color/<number>.jpg (no zero padding)."""
    return Path(root) / subject / video_code / "color" / f"{number}.jpg"


def write_annotations(root: Path, videos: list[dict], intervals: list[dict]) -> list[Path]:
    """Write the part A label sheet (macro and micro rows, told apart by Expression type)."""
    root = Path(root)
    first = {(v["subject"], v["video_code"]): int(v.get("first_frame", 0)) for v in videos}
    rows: list[list] = [COLUMNS]
    for it in intervals:
        base = first[(it["subject"], it["video_code"])]
        apex = it["apex"] + base if it.get("apex") is not None else None
        fine = it.get("emotion_fine") or it.get("emotion") or "others"
        rows.append([it["subject"], it["video_code"], it["onset"] + base, apex, it["offset"] + base,
                     format_aus(it.get("aus"), it.get("side")),
                     "Macro-expression" if it["kind"] == "macro" else "Micro-expression", None,
                     _FINE_OUT.get(fine, fine)])
    return [write_xlsx(root / LABEL_SHEET, rows, "Sheet1")]


__all__ = ["ADAPTER", "frame_path", "video_id", "write_annotations", "write_events"]
