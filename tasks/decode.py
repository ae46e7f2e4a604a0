"""Frame decoding: grayscale image files (at reduced size when the face allows) and sequential video-file reads."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterable, Iterator, Mapping, Sequence

import cv2
import numpy as np

from storage.errors import InputError

REDUCE_FLAGS = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
                4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def reduce_factor(face_width: float, min_face_px: int = 160) -> int:
    """Largest decode reduction (1, 2, 4, 8) that keeps a face of `face_width` full-size pixels >= min_face_px."""
    for f in (8, 4, 2):
        if face_width / f >= min_face_px:
            return f
    return 1


def read_image(path: str | Path, factor: int = 1) -> np.ndarray | None:
    """A grayscale image decoded at 1/factor size (JPEG scales in the DCT), or None when undecodable."""
    try:
        img = cv2.imread(str(path), REDUCE_FLAGS[factor])
    except cv2.error:
        return None
    return img


def _shrink(img: np.ndarray, factor: int) -> np.ndarray:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if factor == 1:
        return img
    return cv2.resize(img, (img.shape[1] // factor, img.shape[0] // factor), interpolation=cv2.INTER_AREA)


def open_video(path: str | Path) -> "cv2.VideoCapture":
    """An opened cv2.VideoCapture; InputError naming the file when it cannot be opened."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError("cannot open video file (missing or corrupt)", file=path, frame=0)
    return cap


def iter_video(path: str | Path, start: int, stop: int, factor: int = 1,
               wanted: Iterable[int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Decode frames [start, stop) of a video file in order; frames not in `wanted` are skipped undecoded.

    Raises InputError naming the file and frame when the stream ends early or a frame cannot be decoded.
    """
    want = None if wanted is None else set(wanted)
    cap = open_video(path)
    try:
        if start > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != start:
                # Inexact seek: read forward from the beginning instead.
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                for j in range(start):
                    if not cap.grab():
                        raise InputError("video stream ended early or is corrupt", file=path, frame=j)
        for i in range(start, stop):
            if not cap.grab():
                raise InputError("video stream ended early or is corrupt", file=path, frame=i)
            if want is not None and i not in want:
                continue
            ok, img = cap.retrieve()
            if not ok or img is None:
                raise InputError("video frame cannot be decoded", file=path, frame=i)
            yield i, _shrink(img, factor)
    finally:
        cap.release()


def read_video_frame(path: str | Path, index: int, factor: int = 1) -> np.ndarray:
    """One frame of a video file (sequential decode up to it when seeking is inexact)."""
    for _, img in iter_video(path, index, index + 1, factor):
        return img
    raise InputError("video frame not found", file=path, frame=index)


def read_frames(path: str | Path, source_kind: str, files: Mapping[int, str], frames: Sequence[int],
                n_frames: int | None = None, factor: int = 1) -> list[np.ndarray]:
    """Grey frames of one video (an image folder or a video file) in the given order.

    Raises InputError naming the file and frame for a frame outside 0..n_frames-1, an undecodable image, or a
    video whose stream does not reach the frame.
    """
    if n_frames is not None:
        for f in frames:
            if not 0 <= f < n_frames:
                raise InputError(f"frame outside the video (0..{n_frames - 1})", file=path, frame=f)
    if source_kind == "frames":
        out = []
        for f in frames:
            if f not in files:
                raise InputError("frame has no image file in the frames table", file=path, frame=f)
            img = read_image(Path(path) / files[f], factor)
            if img is None:
                raise InputError("frame image cannot be decoded", file=Path(path) / files[f], frame=f)
            out.append(img)
        return out
    if not frames:
        return []
    got = dict(iter_video(path, min(frames), max(frames) + 1, factor, frames))
    return [got[f] for f in frames]
