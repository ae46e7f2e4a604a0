"""Face detection (dlib HOG), 68 landmarks, and alignment of frames to a canonical 128x128 grayscale face."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from storage.errors import InputError

FACE_SIZE = 128
# Stable points for the similarity transform: eye corners (36, 39, 42, 45) and the nose bridge/tip (27, 30).
STABLE = np.array([36, 39, 42, 45, 27, 30])
# Their canonical positions in the aligned 128x128 face (a frontal face measured with dlib, symmetrised and
# scaled so brows to chin span about y 12..124).
TEMPLATE = np.array([[28.7, 36.0], [48.7, 36.0], [79.3, 36.0], [99.3, 36.0], [64.0, 35.0], [64.0, 64.0]],
                    dtype=np.float64)
MIN_DETECT_PX = 90  # dlib's HOG detector misses faces under ~80 px: upsample below this width
DETECT_FACE_PX = 100  # key frames are searched on a copy scaled down while the face stays at least this wide


@functools.lru_cache(maxsize=1)
def dlib_models():
    """dlib's HOG face detector and 68-point shape predictor (from face-recognition-models), loaded once."""
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("package face-recognition-models is not installed (68-landmark model)")
    path = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


def detect(img: np.ndarray, upsample: int = 0) -> np.ndarray | None:
    """Largest face box (x0, y0, x1, y1) in image pixels, or None."""
    det, _ = dlib_models()
    rects = det(np.ascontiguousarray(img), upsample)
    if len(rects) == 0:
        return None
    r = max(rects, key=lambda r: r.width() * r.height())
    return np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float64)


def detect_near(img: np.ndarray, hint: np.ndarray | None, upsample: int = 0) -> np.ndarray | None:
    """detect() inside the hint box widened by half its size on every side, skipping the detector's finest
    pyramid levels where the face is large; the whole image when no face is found there."""
    if hint is not None:
        x0, y0, x1, y1 = hint
        w, h = x1 - x0, y1 - y0
        a, b = max(0, int(x0 - w / 2)), max(0, int(y0 - h / 2))
        c, d = min(img.shape[1], int(x1 + w / 2) + 1), min(img.shape[0], int(y1 + h / 2) + 1)
        crop, s = img[b:d, a:c], 1.0
        # dlib searches a pyramid that shrinks by 5/6 a level; shrinking by whole levels first finds the same
        # face (to a pixel) while a face this large is only found on coarse levels anyway.
        while upsample == 0 and w * s * 5 / 6 >= DETECT_FACE_PX:
            s *= 5 / 6
        if s < 1.0:
            crop = cv2.resize(crop, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        box = detect(crop, upsample)
        if box is not None:
            return (box + 0.5) / s - 0.5 + np.array([a, b, a, b], dtype=np.float64)
    return detect(img, upsample)


def shape(img: np.ndarray, box: np.ndarray) -> np.ndarray:
    """68 dlib landmarks (68, 2) inside `box` (image pixels)."""
    import dlib

    _, sp = dlib_models()
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    s = sp(np.ascontiguousarray(img), dlib.rectangle(x0, y0, x1, y1))
    return np.array([(p.x, p.y) for p in s.parts()], dtype=np.float64)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2x3) taking points `src` onto `dst` (no reflection)."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    # For z = a + ib acting on complex points: minimise |z s - d|^2.
    denom = (s ** 2).sum()
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / denom
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / denom
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = md - m[:, :2] @ ms
    return m


def box_transform(box: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """2x3 affine that maps a face box onto a size x size square (the crop-and-resize of MEAN)."""
    x0, y0, x1, y1 = box
    sx, sy = size / max(x1 - x0, 1.0), size / max(y1 - y0, 1.0)
    return np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (n, 2) points."""
    return pts @ m[:, :2].T + m[:, 2]


def to_full(pts: np.ndarray, factor: int) -> np.ndarray:
    """Points in a 1/factor decoded image -> full-resolution pixel coordinates."""
    return (pts + 0.5) * factor - 0.5 if factor != 1 else pts


def warp(img: np.ndarray, m_full: np.ndarray, factor: int = 1, size: int = FACE_SIZE) -> np.ndarray:
    """Aligned size x size face from an image decoded at 1/factor, given the full-resolution transform."""
    m = m_full.copy()
    if factor != 1:
        # full = (reduced + 0.5) * factor - 0.5
        m[:, 2] = m_full[:, 2] + m_full[:, :2] @ np.array([0.5 * factor - 0.5] * 2)
        m[:, :2] = m_full[:, :2] * factor
    if size != FACE_SIZE:
        m = m * (size / FACE_SIZE)
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass
class FaceTrack:
    """Per-frame alignment of a window of frames (index -> value)."""

    transform: dict[int, np.ndarray] = field(default_factory=dict)   # 2x3 full-res -> aligned
    points: dict[int, np.ndarray] = field(default_factory=dict)      # (68, 2) aligned coords
    detected: dict[int, bool] = field(default_factory=dict)
    qc: list[tuple[int, str, str]] = field(default_factory=list)     # (frame, stage, reason)


def mean_points(first_face: np.ndarray) -> np.ndarray:
    """Landmarks of MEAN's reference mode: dlib 68 points once on the first 128x128 crop."""
    return shape(first_face, np.array([0, 0, FACE_SIZE - 1, FACE_SIZE - 1], dtype=np.float64))


def track(images: dict[int, np.ndarray | None], lo: int, hi: int, n_frames: int, factor: int,
          detect_every: int, smooth: int, upsample: int, where: str, landmark_every: int = 1,
          hint: np.ndarray | None = None) -> FaceTrack:
    """Align frames lo..hi: detect at key frames (multiples of detect_every), interpolate the box, fit
    landmarks at multiples of landmark_every (and the last frame), interpolate them in time, smooth with a
    centred window of 2*smooth+1 frames, then align each frame by a similarity on the stable points.

    `images` must hold the frames tasks.shards.needed_frames lists, so that a frame's result does not
    depend on where the caller's window starts. `hint` (a box in the decoded images' pixels, the same for
    every shard of a video) narrows the search of the detector.
    """
    out = FaceTrack()
    keys = sorted(i for i in images if i % detect_every == 0)
    boxes: dict[int, np.ndarray] = {}
    for kf in keys:
        img = images[kf]
        b = detect_near(img, hint, upsample) if img is not None else None
        if b is None:
            out.qc.append((kf, "face", "no face detected at key frame; box interpolated from neighbouring keys"))
        else:
            boxes[kf] = b
    good = sorted(boxes)
    if not good:
        raise InputError(f"no face found in any key frame of frames {min(images)}..{max(images)}", file=where)
    gi = np.array(good)
    w_lo, w_hi = max(0, lo - smooth), min(n_frames - 1, hi + smooth)
    f_lo = (w_lo // landmark_every) * landmark_every
    f_hi = min(n_frames - 1, -((-w_hi // landmark_every) * landmark_every))
    failed = {f for f in keys if f not in boxes}  # faceless key frames: landmarks interpolated over them
    fit = [f for f in range(f_lo, f_hi + 1) if images.get(f) is not None and f not in failed
           and (f % landmark_every == 0 or f == n_frames - 1)]
    if not fit:
        raise InputError(f"no decodable frame in frames {w_lo}..{w_hi}", file=where, frame=w_lo)
    raw = np.empty((len(fit), 68, 2))
    for j, f in enumerate(fit):
        p = np.searchsorted(gi, f, side="right") - 1
        if p < 0:
            box = boxes[good[0]]
        elif p == len(gi) - 1 or gi[p] == f:
            box = boxes[good[p]]
        else:
            a, b = good[p], good[p + 1]
            t = (f - a) / (b - a)
            box = (1 - t) * boxes[a] + t * boxes[b]
        raw[j] = shape(images[f], box)
    raw = to_full(raw, factor)
    idx = np.arange(w_lo, w_hi + 1)
    if len(fit) == 1:
        series = np.repeat(raw, len(idx), axis=0)
    else:
        flat = raw.reshape(len(fit), -1)
        series = np.stack([np.interp(idx, fit, flat[:, c]) for c in range(flat.shape[1])], 1).reshape(-1, 68, 2)
    # Centred moving average with windows clipped at the video's ends.
    cs = np.concatenate([np.zeros((1, 68, 2)), np.cumsum(series, axis=0)])
    for f in range(lo, hi + 1):
        a, b = max(w_lo, f - smooth), min(w_hi, f + smooth)
        pts = (cs[b - w_lo + 1] - cs[a - w_lo]) / (b - a + 1)
        m = similarity(pts[STABLE], TEMPLATE)
        out.transform[f] = m
        out.points[f] = apply(m, pts)
        out.detected[f] = images.get(f) is not None and not (f % detect_every == 0 and f not in boxes)
    return out


def find_face(img: np.ndarray, upsample_below_px: int = 2200) -> np.ndarray | None:
    """detect() on a whole frame, again upsampled once when nothing is found and the frame is not too large."""
    box = detect(img, 0)
    if box is None and max(img.shape) <= upsample_below_px:
        box = detect(img, 1)
    return box


def mean_alignment(img: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MEAN's first-frame alignment: (2x3 transform of the box onto the face, landmarks on that first crop)."""
    m = box_transform(box)
    return m, mean_points(warp(img, m))


def aligned_frames(ws, dataset: str, video: str, frames: list[int], size: int = FACE_SIZE) -> np.ndarray:
    """Re-decode and align just `frames` of a preprocessed video with its stored transforms: (n, size, size) uint8."""
    import pyarrow.compute as pc

    from tasks.decode import read_frames

    vids = ws.read("videos", dataset=dataset)
    vids = vids.filter(pc.equal(vids["video"], video)).to_pylist()
    if not vids:
        raise InputError(f"video {video!r} is not in dataset {dataset!r}", file=ws.tables_dir / "videos")
    v = vids[0]
    lm = ws.read("landmarks", columns=["frame", "transform"], dataset=dataset, video=video)
    tf = dict(zip(lm["frame"].to_pylist(), lm["transform"].to_pylist()))
    files = {}
    if v["source_kind"] == "frames":
        fr = ws.read("frames", dataset=dataset)
        fr = fr.filter(pc.equal(fr["video"], video))
        files = dict(zip(fr["frame"].to_pylist(), fr["file"].to_pylist()))
    for f in frames:
        if f not in tf:
            raise InputError(f"frame has no stored landmarks (run `megc preprocess {dataset}` first)",
                             file=v["path"], frame=f)
    out = np.zeros((len(frames), size, size), np.uint8)
    for j, (f, img) in enumerate(zip(frames, read_frames(v["path"], v["source_kind"], files, frames))):
        out[j] = warp(img, np.asarray(tf[f], np.float64).reshape(2, 3), 1, size)
    return out
