"""VQA visual inputs per interval: sampled face frames, onset-apex-offset frames and an onset->apex flow image.

Images are PNG files cached under <home>/vqa_inputs/<dataset>/<interval_id>/<aligned|crop>/: faces aligned
with the stored landmark transforms once `megc preprocess` has run, else cropped with a dlib box found on the
video's first frame (MEAN's cropping) with landmarks from the first crop. A meta<N>.json written last
marks an interval finished, so re-runs skip it. Work is spread over Dask, one task per video.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import numpy as np

from storage.errors import InputError
from storage.workspace import Workspace
from tasks import face
from tasks.features import ROI_COLUMNS, frame_features
from tasks.optical_flow import compute_flow, remove_head_motion

FACE_SIZE = 128
# roi.npy keeps the ROI columns in name order (the layout caches written so far use).
_ROI_SORTED = sorted(range(len(ROI_COLUMNS)), key=ROI_COLUMNS.__getitem__)


def uniform_indices(onset: int, offset: int, n: int) -> list[int]:
    """`n` frame indices spread evenly over onset..offset inclusive (repeats when the clip is short)."""
    if offset < onset:
        raise InputError(f"offset {offset} is before onset {onset}")
    return [int(round(x)) for x in np.linspace(onset, offset, n)]


def _read_gray(path: Path, frame: int) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise InputError("cannot read frame image", file=path, frame=frame)
    return img


class FrameReader:
    """Reads raw grey frames of one video through the `videos` and `frames` tables."""

    def __init__(self, video_row: dict, frame_files: dict[int, str]):
        self.row, self.files = video_row, frame_files

    def read(self, frames: Sequence[int]) -> list[np.ndarray]:
        """Grey frames (full resolution) in the given order."""
        import cv2

        n = int(self.row["n_frames"])
        for f in frames:
            if not 0 <= f < n:
                raise InputError(f"frame outside the video (0..{n - 1})", file=self.row["path"], frame=f)
        if self.row["source_kind"] == "frames":
            return [_read_gray(Path(self.row["path"]) / self.files[f], f) for f in frames]
        cap = cv2.VideoCapture(str(self.row["path"]))
        out: dict[int, np.ndarray] = {}
        try:
            for f in sorted(set(frames)):
                cap.set(cv2.CAP_PROP_POS_FRAMES, f)
                ok, img = cap.read()
                if not ok:
                    raise InputError("cannot decode frame", file=self.row["path"], frame=f)
                out[f] = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        finally:
            cap.release()
        return [out[f] for f in frames]


def detect_box(gray: np.ndarray, where: str) -> tuple[int, int, int, int]:
    """dlib HOG face box (left, top, right, bottom) on a frame, upsampling once when nothing is found."""
    for up in (0, 1):
        box = face.detect(gray, up)
        if box is not None:
            h, w = gray.shape
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    raise InputError("no face found by the dlib detector", file=where, frame=0)


def crop_faces(frames: Sequence[np.ndarray], box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop every frame with the same box and resize to 128x128 grey (MEAN's first-frame cropping)."""
    import cv2

    left, top, right, bottom = box
    return np.stack([cv2.resize(f[top:bottom, left:right], (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
                     for f in frames])


def nose_box(landmarks: np.ndarray | None) -> tuple[slice, slice]:
    """Rows/cols of the nose region (landmarks 27-35 with a margin), else the face centre."""
    if landmarks is None:
        return slice(48, 80), slice(52, 76)
    pts = np.asarray(landmarks, dtype=np.float32).reshape(68, 2)[27:36]
    x0, y0 = np.clip(pts.min(0) - 4, 0, FACE_SIZE - 1).astype(int)
    x1, y1 = np.clip(pts.max(0) + 4, 1, FACE_SIZE).astype(int)
    return slice(y0, max(y1, y0 + 1)), slice(x0, max(x1, x0 + 1))


def flow_between(a: np.ndarray, b: np.ndarray, landmarks: np.ndarray | None = None,
                 method: str = "farneback") -> np.ndarray:
    """Dense flow a->b (H x W x 2) with head motion removed (mean flow around the nose subtracted)."""
    flow = np.asarray(compute_flow(a, b, method), dtype=np.float32)
    if landmarks is not None:
        return np.asarray(remove_head_motion(flow, np.asarray(landmarks).reshape(68, 2)), dtype=np.float32)
    ys, xs = nose_box(None)
    return flow - flow[ys, xs].reshape(-1, 2).mean(0)


def estimate_apex(faces: np.ndarray, landmarks: np.ndarray | None = None) -> int:
    """Index (into `faces`) of the frame of largest mean motion from the first frame."""
    if len(faces) < 2:
        return 0
    mags = [0.0] + [float(np.linalg.norm(flow_between(faces[0], f, landmarks), axis=2).mean()) for f in faces[1:]]
    return int(np.argmax(mags))


def flow_images(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(HSV-coded BGR image: hue = angle, value = normalised magnitude; u/v/magnitude BGR image)."""
    import cv2

    u, v = flow[..., 0], flow[..., 1]
    mag, ang = cv2.cartToPolar(u, v, angleInDegrees=True)
    peak = float(mag.max()) or 1.0
    hsv = np.zeros(flow.shape[:2] + (3,), np.uint8)
    hsv[..., 0] = (ang / 2).astype(np.uint8)  # OpenCV hue spans 0..179
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / peak * 255, 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    scale = max(float(np.abs(flow).max()), 1e-6)
    uvm = np.stack([np.clip((u / scale + 1) * 127.5, 0, 255), np.clip((v / scale + 1) * 127.5, 0, 255),
                    np.clip(mag / peak * 255, 0, 255)], axis=2).astype(np.uint8)
    return bgr, uvm[..., ::-1].copy()  # stored as RGB u, v, m once read back


def _write_png(path: Path, img: np.ndarray) -> None:
    import cv2

    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.png")
    if not cv2.imwrite(str(tmp), img):
        raise InputError("cannot write image", file=path)
    os.replace(tmp, path)


def interval_dir(home: str | Path, dataset: str, interval_id: str) -> Path:
    """Cache folder of one interval's inputs (with an aligned/ or crop/ subfolder per face source)."""
    safe = interval_id.replace("/", "_").replace(os.sep, "_")
    return Workspace(home).root / "vqa_inputs" / dataset / safe


def _faces_for(ctx: dict, frames: list[int]) -> np.ndarray:
    if ctx.get("aligned") is not None:
        return np.asarray(ctx["aligned"](frames), dtype=np.uint8)
    raw = ctx["reader"].read(frames)
    if ctx.get("box") is None:
        first = ctx["reader"].read([0])[0]
        ctx["box"] = detect_box(first, ctx["reader"].row["path"])
        # Landmarks once per video on the first crop (MEAN's protocol), for head motion and ROIs.
        crop0 = crop_faces([first], ctx["box"])[0]
        ctx["landmarks"] = face.shape(crop0, np.array([0, 0, FACE_SIZE - 1, FACE_SIZE - 1], np.float64))
    return crop_faces(raw, ctx["box"])


def make_interval_inputs(ctx: dict, iv: dict, n_frames: int, out: Path) -> dict:
    """Write the PNGs of one interval and its meta.json; returns the meta (paths, apex used)."""
    onset, offset = int(iv["onset"]), int(iv["offset"])
    apex = iv.get("apex")
    span = list(range(onset, offset + 1))
    sampled = uniform_indices(onset, offset, n_frames)
    if apex is None or not onset <= int(apex) <= offset:
        # Unannotated apex: the frame of largest motion, searched on at most 24 frames of the clip.
        probe = sorted(set(uniform_indices(onset, offset, min(len(span), 24))))
        apex = probe[estimate_apex(_faces_for(ctx, probe), ctx.get("landmarks"))]
        apex_source = "estimated"
    else:
        apex, apex_source = int(apex), "annotated"
    wanted = sorted(set(sampled) | {onset, apex, offset})
    faces = dict(zip(wanted, _faces_for(ctx, wanted)))
    out.mkdir(parents=True, exist_ok=True)
    frame_paths = []
    for i, f in enumerate(sampled):
        p = out / f"frames{n_frames}_{i:02d}.png"
        _write_png(p, faces[f])
        frame_paths.append(str(p))
    oao = []
    for name, f in (("onset", onset), ("apex", apex), ("offset", offset)):
        p = out / f"{name}.png"
        _write_png(p, faces[f])
        oao.append(str(p))
    flow = flow_between(faces[onset], faces[apex], ctx.get("landmarks"))
    hsv, uvm = flow_images(flow)
    _write_png(out / "flow_hsv.png", hsv)
    _write_png(out / "flow_uvm.png", uvm)
    lm = ctx.get("landmarks")
    if lm is None:
        lm = face.shape(faces[onset], np.array([0, 0, FACE_SIZE - 1, FACE_SIZE - 1], np.float64))
    lm = np.asarray(lm, np.float64).reshape(68, 2)
    mi, roi = frame_features(flow, lm)
    np.save(out / "mean_input.npy", mi)
    np.save(out / "roi.npy", roi[_ROI_SORTED].astype(np.float32))
    meta = {"interval_id": iv["interval_id"], "video": iv["video"], "onset": onset, "apex": apex,
            "apex_source": apex_source, "offset": offset, "n_frames": n_frames, "frames": frame_paths,
            "oao": oao, "flow": str(out / "flow_hsv.png"), "flow_uvm": str(out / "flow_uvm.png"),
            "mean_input": str(out / "mean_input.npy"), "roi": str(out / "roi.npy")}
    tmp = out / f".meta.{uuid.uuid4().hex}.json"
    tmp.write_text(json.dumps(meta, indent=1))
    os.replace(tmp, out / f"meta{n_frames}.json")
    return meta


def video_inputs(home: str, dataset: str, video_row: dict, frame_files: dict[int, str], intervals: list[dict],
                 n_frames: int) -> list[dict]:
    """Inputs of every interval of one video (runs on a Dask worker); cached intervals are read back."""
    ws = Workspace(home)
    ctx: dict[str, Any] = {"reader": FrameReader(video_row, frame_files), "landmarks": None}
    video = video_row["video"]
    if ws.files("landmarks", dataset=dataset, video=video):
        # Preprocessed video: aligned faces from the stored transforms, landmarks of its first frame.
        from tasks.face import aligned_frames

        ctx["aligned"] = lambda frames: aligned_frames(ws, dataset, video, frames)
        lm = ws.read("landmarks", columns=["frame", "points"], dataset=dataset, video=video).sort_by("frame")
        ctx["landmarks"] = np.asarray(lm.column("points")[0].as_py(), dtype=np.float32).reshape(68, 2)
    metas = []
    for iv in intervals:
        # Aligned faces (after `megc preprocess`) and first-frame crops are cached apart.
        out = interval_dir(home, dataset, iv["interval_id"]) / ("aligned" if "aligned" in ctx else "crop")
        done = out / f"meta{n_frames}.json"
        if done.is_file():
            metas.append(json.loads(done.read_text()))
        else:
            metas.append(make_interval_inputs(ctx, iv, n_frames, out))
    return metas


def build_inputs(ws: Workspace, dataset: str, intervals: Sequence[dict], n_frames: int = 8,
                 client: Any = None) -> dict[str, dict]:
    """Inputs for the given intervals (dicts with interval_id, video, onset, apex, offset), keyed by interval_id.

    Runs one Dask task per video on `client` (a distributed Client); in this process when None.
    """
    by_video: dict[str, list[dict]] = {}
    for iv in intervals:
        by_video.setdefault(iv["video"], []).append(dict(iv))
    if not by_video:
        return {}
    videos = {r["video"]: r for r in ws.read("videos", dataset=dataset).to_pylist()}
    frames_t = ws.read("frames", columns=["video", "frame", "file"], dataset=dataset).to_pylist()
    files: dict[str, dict[int, str]] = {}
    for r in frames_t:
        if r["video"] in by_video:
            files.setdefault(r["video"], {})[r["frame"]] = r["file"]
    for v in by_video:
        if v not in videos:
            raise InputError(f"video {v!r} of dataset {dataset!r} is not in the videos table (ingest it first)")
    args = [(ws.home, dataset, videos[v], files.get(v, {}), ivs, n_frames) for v, ivs in by_video.items()]

    if client is None:
        results = [video_inputs(*a) for a in args]
    else:
        results = client.gather([client.submit(video_inputs, *a, pure=False) for a in args])
    return {m["interval_id"]: m for metas in results for m in metas}


def interval_features(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """(MEAN input 3x42x42 of the onset->apex flow, per-region mean u/v/magnitude vector) of one interval."""
    return (np.load(meta["mean_input"], allow_pickle=False).astype(np.float32),
            np.load(meta["roi"], allow_pickle=False).astype(np.float32))


def media_for(meta: dict, input_kind: str, flow_coding: str = "hsv") -> list[str]:
    """Image paths for an input kind: frames (N), oao (3) or flow (1, HSV- or u/v/magnitude-coded)."""
    if input_kind == "frames":
        return meta["frames"]
    if input_kind == "oao":
        return meta["oao"]
    if input_kind == "flow":
        if flow_coding not in ("hsv", "uvm"):
            raise InputError(f"flow coding must be hsv or uvm, not {flow_coding!r}")
        return [meta["flow"] if flow_coding == "hsv" else meta["flow_uvm"]]
    raise InputError(f"unknown input kind {input_kind!r}; expected frames, oao or flow")
