"""Frame-file discovery: list a folder of frame images in numeric order, fill numbering gaps, read the size.

Any file name holding a frame number is accepted (img001.jpg, img_1.jpg, 006_1_0001.jpg, image12345.jpg,
42.jpg): the frame number is the LAST run of digits in the name's stem. Frames are sorted numerically;
a missing number repeats the previous file and is marked filled=True. Video files (generic, folder
adapters) are probed with cv2.VideoCapture.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from storage.errors import InputError
from storage.schemas import FRAMES

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".avi", ".mp4", ".mov", ".mkv", ".mpg", ".mpeg", ".wmv", ".m4v", ".webm"}
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


@dataclass
class FrameFolder:
    """A scanned frame folder: files[i] is megc frame i (gaps filled), first is its dataset number."""

    path: Path
    files: list[str]
    filled: list[bool]
    first: int
    width: int
    height: int

    @property
    def n_frames(self) -> int:
        """Number of frames including filled gaps."""
        return len(self.files)

    def table(self, dataset: str, video: str) -> pa.Table:
        """`frames` table rows for this folder (columnar: folders can hold many thousand frames)."""
        n = len(self.files)
        return pa.Table.from_arrays(
            [pa.array([dataset] * n, pa.string()), pa.array([video] * n, pa.string()),
             pa.array(range(n), pa.int64()), pa.array(self.files, pa.string()), pa.array(self.filled, pa.bool_())],
            schema=FRAMES)


def frame_number(name: str) -> int | None:
    """The frame number in a file name (last digit run of the stem), or None when there is none."""
    m = _LAST_NUMBER.search(Path(name).stem)
    return int(m.group(1)) if m else None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image; InputError naming the file when it cannot be decoded."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError("cannot read image (not a decodable image file)", file=path)
    return int(img.shape[1]), int(img.shape[0])


def scan_frames(folder: Path) -> FrameFolder:
    """Scan a frame folder; InputError when it is missing, holds no numbered images, or frame 0 is unreadable."""
    if not folder.is_dir():
        raise InputError("frame folder not found", file=folder)
    numbered: dict[int, str] = {}
    with os.scandir(folder) as entries:  # scandir + plain strings: folders hold many thousand frames
        for e in entries:
            stem, ext = os.path.splitext(e.name)
            if ext.lower() not in IMAGE_SUFFIXES:
                continue
            m = _LAST_NUMBER.search(stem)
            if m is None or not e.is_file():
                continue
            n = int(m.group(1))
            if n in numbered:
                raise InputError(f"two files carry frame number {n}: {numbered[n]} and {e.name}", file=folder)
            numbered[n] = e.name
    if not numbered:
        raise InputError("frame folder holds no numbered image files", file=folder)
    nums = sorted(numbered)
    files, filled = [], []
    for n in range(nums[0], nums[-1] + 1):
        if n in numbered:
            files.append(numbered[n])
            filled.append(False)
        else:
            files.append(files[-1])
            filled.append(True)
    width, height = image_size(folder / files[0])
    return FrameFolder(folder, files, filled, nums[0], width, height)


@dataclass
class VideoFile:
    """Properties of a video file read with OpenCV."""

    path: Path
    fps: float
    n_frames: int
    width: int
    height: int


def probe_video(path: Path) -> VideoFile:
    """fps, frame count and size of a video file; InputError when OpenCV cannot decode it."""
    import cv2

    if not path.is_file():
        raise InputError("video file not found", file=path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError("cannot open video file", file=path)
        ok, first = cap.read()
        if not ok or first is None:
            raise InputError("cannot decode the first frame", file=path, frame=0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if n <= 0:  # some containers do not store a count: decode to the end
            n = 1
            while cap.grab():
                n += 1
        return VideoFile(path, fps, n, int(first.shape[1]), int(first.shape[0]))
    finally:
        cap.release()
