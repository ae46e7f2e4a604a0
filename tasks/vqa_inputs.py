"""VQA visual inputs per interval: sampled face frames, onset-apex-offset frames and an onset->apex flow image.

Images are PNG files cached under <home>/vqa_inputs/<dataset>/<interval_id>/<aligned-HASH|crop>/: faces aligned
with the stored landmark transforms once `megc preprocess` has run (HASH is the preprocessing config hash of
those landmarks, so re-preprocessing with other settings builds new images), else aligned as MEAN's
preprocessing mode does (the first frame's dlib box, landmarks on the first crop). Decoding, faces, flow and
head-motion removal are those of preprocessing (tasks.decode, tasks.face, tasks.optical_flow). A meta<N>.json
written last marks an interval finished, so re-runs skip it. Work is spread over Dask, one task per video.
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
from tasks.decode import read_frames
from tasks.features import ROI_COLUMNS, frame_features
from tasks.optical_flow import compute_flow, remove_head_motion

# roi.npy keeps the ROI columns in name order (the layout caches written so far use).
_ROI_SORTED = sorted(range(len(ROI_COLUMNS)), key=ROI_COLUMNS.__getitem__)


def uniform_indices(onset: int, offset: int, n: int) -> list[int]:
    """`n` frame indices spread evenly over onset..offset inclusive (repeats when the clip is short)."""
    if offset < onset:
        raise InputError(f"offset {offset} is before onset {onset}")
    return [int(round(x)) for x in np.linspace(onset, offset, n)]


def flow_between(a: np.ndarray, b: np.ndarray, landmarks: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow a->b (H x W x 2) with head motion removed (the nose-bridge mean flow subtracted)."""
    flow = np.asarray(compute_flow(a, b, method), dtype=np.float32)
    return np.asarray(remove_head_motion(flow, np.asarray(landmarks).reshape(68, 2)), dtype=np.float32)


def estimate_apex(faces: np.ndarray, landmarks: np.ndarray) -> int:
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
    """Cache folder of one interval's inputs (with a subfolder per face source, see cache_key)."""
    safe = interval_id.replace("/", "_").replace(os.sep, "_")
    return Workspace(home).root / "vqa_inputs" / dataset / safe


def cache_key(preprocess_hash: str | None) -> str:
    """Subfolder of a face source: aligned-<preprocessing config hash> once preprocessed, else crop."""
    return "crop" if preprocess_hash is None else f"aligned-{preprocess_hash}"


class FaceSource:
    """128x128 grey faces of one video: stored preprocessing transforms, else MEAN's first-frame alignment."""

    def __init__(self, ws: Workspace, dataset: str, video_row: dict, frame_files: dict[int, str]):
        self.ws, self.dataset, self.row, self.files = ws, dataset, video_row, frame_files
        self.preprocess_hash: str | None = None
        self.transform: np.ndarray | None = None
        self.landmarks: np.ndarray | None = None
        video = video_row["video"]
        if ws.files("landmarks", dataset=dataset, video=video):
            lm = ws.read("landmarks", columns=["frame", "points", "config_hash"], dataset=dataset,
                         video=video).sort_by("frame")
            self.landmarks = np.asarray(lm.column("points")[0].as_py(), dtype=np.float64).reshape(68, 2)
            self.preprocess_hash = str(lm.column("config_hash")[0].as_py() or "unhashed")

    def read(self, frames: Sequence[int]) -> list[np.ndarray]:
        """Full-resolution grey frames in the given order."""
        return read_frames(self.row["path"], self.row["source_kind"], self.files, frames, int(self.row["n_frames"]))

    def faces(self, frames: list[int]) -> np.ndarray:
        """Aligned faces (n, 128, 128) uint8 of the given frames."""
        if self.preprocess_hash is not None:
            return np.asarray(face.aligned_frames(self.ws, self.dataset, self.row["video"], frames), dtype=np.uint8)
        self._align_first_frame()
        return np.stack([face.warp(img, self.transform) for img in self.read(frames)])

    def points(self) -> np.ndarray:
        """Landmarks (68, 2) in face coordinates used for head motion and ROIs (those of the first frame)."""
        if self.landmarks is None:
            self._align_first_frame()
        return self.landmarks

    def _align_first_frame(self) -> None:
        if self.transform is None:
            first = self.read([0])[0]
            box = face.find_face(first)
            if box is None:
                raise InputError("no face found by the dlib detector", file=self.row["path"], frame=0)
            self.transform, self.landmarks = face.mean_alignment(first, box)


def make_interval_inputs(src: FaceSource, iv: dict, n_frames: int, out: Path) -> dict:
    """Write the PNGs of one interval and its meta.json; returns the meta (paths, apex used)."""
    onset, offset = int(iv["onset"]), int(iv["offset"])
    apex = iv.get("apex")
    span = list(range(onset, offset + 1))
    sampled = uniform_indices(onset, offset, n_frames)
    if apex is None or not onset <= int(apex) <= offset:
        # Unannotated apex: the frame of largest motion, searched on at most 24 frames of the clip.
        probe = sorted(set(uniform_indices(onset, offset, min(len(span), 24))))
        apex = probe[estimate_apex(src.faces(probe), src.points())]
        apex_source = "estimated"
    else:
        apex, apex_source = int(apex), "annotated"
    wanted = sorted(set(sampled) | {onset, apex, offset})
    faces = dict(zip(wanted, src.faces(wanted)))
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
    lm = src.points()
    flow = flow_between(faces[onset], faces[apex], lm)
    hsv, uvm = flow_images(flow)
    _write_png(out / "flow_hsv.png", hsv)
    _write_png(out / "flow_uvm.png", uvm)
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
    src = FaceSource(Workspace(home), dataset, video_row, frame_files)
    metas = []
    for iv in intervals:
        out = interval_dir(home, dataset, iv["interval_id"]) / cache_key(src.preprocess_hash)
        done = out / f"meta{n_frames}.json"
        if done.is_file():
            metas.append(json.loads(done.read_text()))
        else:
            metas.append(make_interval_inputs(src, iv, n_frames, out))
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
