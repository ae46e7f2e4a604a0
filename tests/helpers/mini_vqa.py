"""`make_mini` writes a tiny labelled dataset into a workspace: a real face photograph whose brows or mouth corners
move (AU-like local warps) through each micro interval, so dlib, optical flow and the VQA heads see real motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# class -> (fine, AUs, landmark anchors (index, dx, dy) of the motion)
_CLASSES = {
    "positive": ("happiness", ["AU12"], [(48, -1.0, -0.8), (54, 1.0, -0.8)]),
    "surprise": ("surprise", ["AU1", "AU2"], [(19, 0.0, -1.0), (24, 0.0, -1.0), (21, 0.0, -1.0), (22, 0.0, -1.0)]),
    "negative": ("disgust", ["AU4"], [(20, 0.6, 0.8), (21, 0.6, 0.8), (23, -0.6, 0.8), (22, -0.6, 0.8)]),
}


def _face(brightness: float) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from tasks.synth.identities import detect, photo

    g = cv2.cvtColor(photo("astronaut"), cv2.COLOR_RGB2GRAY)[30:230, 120:320]
    g = cv2.resize(g, (256, 256), interpolation=cv2.INTER_CUBIC)
    g = np.clip(g.astype(np.float32) * brightness, 0, 255).astype(np.uint8)
    _, pts = detect(g)
    return g, pts


def _warp(img: np.ndarray, pts: np.ndarray, anchors: list, amp: float, side: str | None) -> np.ndarray:
    import cv2

    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx = np.zeros((h, w), np.float32)
    dy = np.zeros((h, w), np.float32)
    for idx, ax, ay in anchors:
        if side == "left" and idx == 48 or side == "right" and idx == 54:
            continue  # subject's left is the image's right (landmark 54)
        cx, cy = pts[idx]
        g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 9.0 ** 2))
        dx += amp * ax * g
        dy += amp * ay * g
    return cv2.remap(img, xx - dx, yy - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def make_mini(ws, dataset: str = "mini", subjects: int = 4, per_subject: int = 3, n_frames: int = 14) -> list[dict]:
    """Write videos/frames/intervals of a tiny dataset (one micro interval per video); returns the intervals."""
    import cv2

    classes = list(_CLASSES)
    videos, frames, intervals = [], [], []
    k = 0
    for s in range(subjects):
        base, pts = _face(0.85 + 0.1 * s)
        for v in range(per_subject):
            coarse = classes[k % 3]
            fine, aus, anchors = _CLASSES[coarse]
            side = ("left", "right")[(k // 3) % 2] if coarse == "positive" else None
            vid = f"s{s}_v{v}"
            folder = Path(ws.root) / "raw" / dataset / vid
            folder.mkdir(parents=True, exist_ok=True)
            onset, apex, offset = 3, 7, 11
            for f in range(n_frames):
                amp = 0.0 if f < onset or f > offset else 3.5 * (1 - abs(f - apex) / (apex - onset + 1))
                cv2.imwrite(str(folder / f"img{f + 1:03d}.png"), _warp(base, pts, anchors, amp, side))
                frames.append({"dataset": dataset, "video": vid, "frame": f, "file": f"img{f + 1:03d}.png",
                               "filled": False})
            videos.append({"dataset": dataset, "subject": f"s{s}", "video": vid, "fps": 30.0, "n_frames": n_frames,
                           "width": 256, "height": 256, "source_kind": "frames", "path": str(folder),
                           "first_frame": 1, "labelled": True})
            intervals.append({"dataset": dataset, "subject": f"s{s}", "video": vid, "interval_id": f"{vid}_1",
                              "onset": onset, "apex": apex if k % 4 else None, "offset": offset, "kind": "micro",
                              "emotion": coarse, "emotion_fine": fine, "aus": aus, "side": side,
                              "source_file": "mini.csv", "source_row": k + 2})
            k += 1
    ws.write("videos", videos, dataset=dataset)
    ws.write("frames", frames, dataset=dataset)
    ws.write("intervals", intervals, dataset=dataset)
    return intervals
