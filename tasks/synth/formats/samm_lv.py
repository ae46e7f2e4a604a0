"""SAMM-LV writer: interval and emotion sheets and 006_1/006_1_NNNN.jpg frames (see storage.adapters.samm_lv).

Unlike the real release, the emotion sheet also lists macro rows (Type "Macro"), so macro labels survive a round
trip through the adapter.
"""

from __future__ import annotations

from pathlib import Path

from tasks.synth.formats.sheets import format_aus, write_events, write_xlsx

ADAPTER = "samm_lv"
INTERVAL_SHEET = "SAMM_LongVideos_V3_Release.xlsx"
EMOTION_SHEET = "SAMM_20181215_Micro_FACS_Codes_v2.xlsx"
INTERVAL_COLUMNS = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
                    "Action Units", "Notes"]
EMOTION_COLUMNS = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
                   "Duration", "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


def video_id(subject: str, video_code: str) -> str:
    """Canonical megc video id: the SAMM video code itself (e.g. 006_1)."""
    return video_code


def frame_path(root: Path, subject: str, video_code: str, number: int) -> Path:
    """Image of dataset frame `number` of a video: root/006_1/006_1_0001.jpg."""
    return Path(root) / video_code / f"{video_code}_{number:04d}.jpg"


def write_annotations(root: Path, videos: list[dict], intervals: list[dict]) -> list[Path]:
    """Write the SAMM-LV interval sheet and the micro FACS-codes emotion sheet; returns both paths."""
    root = Path(root)
    first = {(v["subject"], v["video_code"]): int(v.get("first_frame", 1)) for v in videos}
    counter: dict[str, int] = {}
    lv_rows: list[list] = [["SAMM Long Videos"], [], ["Release V3"], ["Frame numbers match the image file names."],
                           ["Apex -1: not annotated."], [], ["Type: Macro or Micro - 1/2"], [], []]
    emo_rows: list[list] = [["SAMM Micro FACS Codes"], ["Version 2 (2018-12-15)"], [], []]
    lv_rows.append(INTERVAL_COLUMNS)
    emo_rows.append(EMOTION_COLUMNS)
    for it in intervals:
        base = first[(it["subject"], it["video_code"])]
        counter[it["video_code"]] = counter.get(it["video_code"], 0) + 1
        name = f"{it['video_code']}_{counter[it['video_code']]}"
        on, off = it["onset"] + base, it["offset"] + base
        apex = it["apex"] + base if it.get("apex") is not None else -1
        subj = int(it["subject"]) if str(it["subject"]).isdigit() else it["subject"]
        aus = format_aus(it.get("aus"), it.get("side"))
        typ = "Macro" if it["kind"] == "macro" else "Micro - 1/2"
        lv_rows.append([subj, name, 1, on, apex, off, off - on + 1, typ, aus, None])
        emotion = (it.get("emotion_fine") or it.get("emotion") or "other").capitalize()
        emo_rows.append([subj, name, 1, on, apex, off, off - on + 1, typ, aus, emotion, None, None])
    return [write_xlsx(root / INTERVAL_SHEET, lv_rows, "FACS_Movement_Only"),
            write_xlsx(root / EMOTION_SHEET, emo_rows, "Micro_FACS_Codes")]


__all__ = ["ADAPTER", "frame_path", "video_id", "write_annotations", "write_events"]
