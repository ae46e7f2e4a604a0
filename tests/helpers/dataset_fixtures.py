"""Tiny datasets in the real on-disk layouts, written literally (not with the adapters' writers).

Each builder writes a dataset under `root` and returns `root`. Frames are 64x48 JPEGs written with
OpenCV; the expected canonical rows are asserted in tests/test_adapters.py.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

W, H = 64, 48


def jpegs(folder: Path, names: list[str], w: int = W, h: int = H) -> None:
    """Write one small JPEG per name into `folder` (grey level varies with the position)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(names):
        img = np.full((h, w, 3), 40 + 10 * i, np.uint8)
        assert cv2.imwrite(str(folder / n), img)


def xlsx(path: Path, sheets: dict[str, list[list]]) -> Path:
    """Write an .xlsx workbook with the given sheets (in order)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        sh = wb.create_sheet(name)
        for r in rows:
            sh.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def build_samm_lv(root: Path) -> Path:
    """SAMM-LV: preamble rows, fractional onset, apex -1, offset 0, Micro - 1/2, FACS-codes emotion sheet."""
    jpegs(root / "006_1", [f"006_1_{n:04d}.jpg" for n in range(1, 9)])
    jpegs(root / "007_6", [f"007_6_{n:04d}.jpg" for n in range(1, 7)], w=80, h=60)
    header = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration", "Type",
              "Action Units", "Notes"]
    preamble = [["SAMM Long Videos"], [None], ["Movement annotations for the long videos"],
                ["Frame numbers refer to the image files"], [None], ["Apex of -1: not coded"], [None],
                ["Contact: ..."], [None]]
    rows = preamble + [header,
                       [6, "006_1_1", 1, 2.5, 4, 6, 4, "Micro - 1/2", "R12", None],   # row 11
                       [6, "006_1_2", 1, 1, -1, 8, 8, "Macro", "4+7", None],         # row 12
                       [7, "007_6_1", 2, 2, 5, 0, 4, "Micro - 1/2", "12B", "offset 0"],  # row 13
                       [None, None, None, None, None, None, None, None, None, None],
                       [7, "007_6_2", 2, 1, 2, 3, 3, "Macro", "AU1+AU2", None]]     # row 15
    xlsx(root / "SAMM_LongVideos_V3_Release.xlsx", {"FACS_Movement_Only": rows})
    emo_header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
                  "Duration", "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
    emo = [["SAMM micro-expression FACS codes"], [None], emo_header,
           [6, "006_1_1", 1, 2.5, 4, 6, 4, "Micro - 1/2", "R12", "Happiness", 1, None],
           [7, "007_6_1", 2, 2, 5, 0, 4, "Micro - 1/2", "12B", "Contempt", 3, None]]
    xlsx(root / "SAMM_20181215_Micro_FACS_Codes_v2.xlsx", {"Sheet1": emo})
    return root


def build_casme2(root: Path) -> Path:
    """CAS(ME)^2: headerless code sheet + subject and video naming sheets; rawpic/s15/15_0101.../img001.jpg."""
    jpegs(root / "rawpic" / "s15" / "15_0101disgustingteeth", [f"img{n:03d}.jpg" for n in range(1, 9)])
    jpegs(root / "rawpic" / "s16" / "16_0401girlcrashing", [f"img{n:03d}.jpg" for n in range(1, 7)])
    codes = [[1, "disgust1_1", 2, 3, 5, "4+7", "negative", "micro-expression", "disgust"],
             [1, "disgust1_2", 4, 6, 0, "L12", "positive", "macro-expression", "happy"],
             [2, "anger1_1", 1, 2, 6, "4", "others", "macro-expression", "anger"]]
    subjects = [[None, 15, 1], [None, 16, 2]]
    videos = [["0101", "disgust1"], ["0401", "anger1"]]
    xlsx(root / "CAS(ME)^2code_final.xlsx", {"Sheet1": codes, "naming rule1": subjects, "naming rule2": videos})
    return root


def build_casme3(root: Path, xls: bool = True) -> Path:
    """CAS(ME)^3 part A: label sheet (.xls by default) + spNO.X/<letter>/color/<N>.jpg with a gap at 4."""
    jpegs(root / "spNO.1" / "a" / "color", [f"{n}.jpg" for n in (0, 1, 2, 3, 5, 6, 7, 8)])  # 4 missing
    jpegs(root / "spNO.2" / "b" / "color", [f"{n}.jpg" for n in range(0, 6)])
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Expression type", "Objective class",
              "emotion"]
    rows = [header,
            ["spNO.1", "a", 1, 3, 6, "L4+L7", "Micro-expression", 2, "disgust"],
            ["spNO.1", "a", 5, 6, 8, "12", "Macro-expression", 1, "happy"],
            ["spNO.2", "b", 0, 1, 4, "1+2", "Micro-expression", 6, "surprise"],
            ["spNO.2", "b", 2, 3, 3, "R14", "Micro-expression", 7, "others"]]
    name = "cas(me)3_part_A_ME_label_JpgIndex_v2"
    if xls:
        import xlwt

        book = xlwt.Workbook()
        sh = book.add_sheet("Sheet1")
        for i, r in enumerate(rows):
            for j, v in enumerate(r):
                sh.write(i, j, v)
        root.mkdir(parents=True, exist_ok=True)
        book.save(str(root / f"{name}.xls"))
    else:
        xlsx(root / f"{name}.xlsx", {"Sheet1": rows})
    return root


def build_smic_e_long(root: Path) -> Path:
    """SMIC-E-long: FirstF/OnsetF/OffsetF sheet + s01/s01_ne_01/image<absolute#>.jpg, no apex."""
    jpegs(root / "s01" / "s01_ne_01", [f"image{n:07d}.jpg" for n in range(1000, 1010)])
    rows = [["Subject", "Filename", "FirstF", "OnsetF", "OffsetF", "Emotion"],
            [1, "s01_ne_01", 1000, 1002, 1006, "negative"],
            [1, "s01_ne_01", 1000, 1007, 1009, "surprise"]]
    xlsx(root / "SMIC-E_long_annotation.xlsx", {"Sheet1": rows})
    return root


def build_fourdme(root: Path) -> Path:
    """4DME: sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs + S01/S01_0101/img_<N>.jpg frames."""
    jpegs(root / "S01" / "S01_0101", [f"img_{n}.jpg" for n in range(10, 18)])
    rows = [["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs"],
            ["S01", "S01_0101", "Positive", 11, 13, 15, "L12"],
            ["S01", "S01_0101", "Negative+Surprise", 12, 14, 17, "AU4+AU5"]]
    path = root / "4DME_Labelling_Micro_release.csv"
    root.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return root


def write_avi(path: Path, n: int = 12, fps: float = 25.0, w: int = W, h: int = H) -> Path:
    """A small MJPG .avi with `n` frames."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for i in range(n):
        vw.write(np.full((h, w, 3), 20 * i % 255, np.uint8))
    vw.release()
    return path


def build_generic(root: Path) -> Path:
    """Generic: manifest.csv (a video file and a frame folder) + annotations.csv (0-based)."""
    write_avi(root / "videos" / "clip1.avi", n=12, fps=25.0)
    jpegs(root / "frames" / "clip2", [f"frame_{n:03d}.png" for n in range(1, 7)])
    (root / "manifest.csv").write_text("subject,video,path,fps\n"
                                       "p1,clip1,videos/clip1.avi,\n"
                                       "p2,clip2,frames/clip2,50\n")
    (root / "annotations.csv").write_text(
        "subject,video,onset,apex,offset,kind,emotion,emotion_fine,aus,side\n"
        "p1,clip1,2,4,7,micro,positive,happiness,AU6+AU12,\n"
        "p1,clip1,8,,11,macro,negative,,R4,\n"
        "p2,clip2,0,2,5,micro,surprise,surprise,1+2,left\n")
    return root


def build_folder(root: Path) -> Path:
    """Unlabelled: a video file at the top and a frame folder one level down."""
    write_avi(root / "clipA.avi", n=9, fps=30.0)
    jpegs(root / "bob" / "take1", [f"{n:04d}.jpg" for n in range(1, 6)])
    return root
