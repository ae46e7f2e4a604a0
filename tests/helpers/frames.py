"""Frame folders of a real face with small known head motion, and their videos/frames rows."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

N = 40


def _face_photo(scale: int) -> np.ndarray:
    from skimage import data

    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale != 1 else img


def make_frames(folder: Path, n: int = N, scale: int = 1) -> list[str]:
    """n JPEG frames of a real face with small known head motion (shift + rotation), 320x256 per scale."""
    folder.mkdir(parents=True, exist_ok=True)
    img = _face_photo(scale)
    files = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((222.0 * scale, 126.0 * scale), 1.5 * np.sin(i / 9), 1.0)
        m[:, 2] += (2.0 * scale * np.sin(i / 5), 1.5 * scale * np.cos(i / 7))
        w = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
        crop = w[20 * scale:276 * scale, 62 * scale:382 * scale]
        name = f"img{i + 1:03d}.jpg"
        cv2.imwrite(str(folder / name), crop, [cv2.IMWRITE_JPEG_QUALITY, 92])
        files.append(name)
    return files


def video_row(dataset: str, video: str, path: Path, n: int, kind: str = "frames", scale: int = 1) -> dict:
    return {"dataset": dataset, "subject": "s1", "video": video, "fps": 30.0, "n_frames": n,
            "width": 320 * scale, "height": 256 * scale, "source_kind": kind, "path": str(path),
            "first_frame": 1, "labelled": False}


def frame_rows(dataset: str, video: str, files: list[str]) -> list[dict]:
    return [{"dataset": dataset, "video": video, "frame": i, "file": f, "filled": False} for i, f in enumerate(files)]
