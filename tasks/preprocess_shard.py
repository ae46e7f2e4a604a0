"""Process one shard end to end (decode, align, flow, features, write its part files): the unit Dask runs."""

from __future__ import annotations

import os
import resource
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from storage.config import config_hash
from storage.errors import InputError, MegcError
from storage.workspace import Workspace
from tasks.shards import Shard, needed_frames, resolve_frames, window

FLOW_METHODS = ("dis", "farneback", "tvl1")
FACE_MODES = ("track", "mean")
# Settings that change what is written; the others (workers, addresses, force) only change how it runs.
CONTENT_FIELDS = ("flow", "k", "face_mode", "detect_every", "smooth", "landmark_every", "remove_head_motion",
                  "min_face_px", "reduced_decode")


@dataclass
class PreprocessConfig:
    """Preprocessing settings (defaults = the fast default pipeline; see `reference()` for MEAN's)."""

    flow: str = "dis"                 # dis | farneback | tvl1
    k: str = "auto"                   # flow step in frames, or auto = round(0.1 s x fps)
    face_mode: str = "track"          # track (re-detect, smooth, similarity-align) | mean (first-frame box)
    # The next three are frame counts, or auto: taken from the video's frame rate (30 fps: 30, 2, 3; 200 fps:
    # 200, 13, 20), so a SAMM video at 200 fps gets the same timing as a CAS(ME)^3 one at 30.
    detect_every: str = "auto"        # track: HOG detection at absolute frames that are multiples of this (1 s)
    smooth: str = "auto"              # track: landmarks averaged over 2*smooth+1 frames (1/15 s each side)
    landmark_every: str = "auto"      # track: dlib landmarks fitted at multiples of this, interpolated (0.1 s)
    remove_head_motion: bool = True   # subtract the nose-bridge mean flow
    min_face_px: int = 160            # reduced JPEG decode only while the face stays at least this wide
    reduced_decode: bool = True
    shard_size: int = 256             # frames owned per shard
    workers: int = 2                  # LocalCluster worker processes (1 thread each)
    dask_address: str = ""            # tcp://HOST:PORT of an existing scheduler; empty = LocalCluster
    retries: int = 2                  # Dask retries of a crashed shard
    force: bool = False               # recompute finished shards

    def check(self) -> "PreprocessConfig":
        """Raise InputError on impossible settings."""
        if self.flow not in FLOW_METHODS:
            raise InputError(f"flow must be one of {FLOW_METHODS}, got {self.flow!r}", file="config")
        if self.face_mode not in FACE_MODES:
            raise InputError(f"face_mode must be one of {FACE_MODES}, got {self.face_mode!r}", file="config")
        if str(self.k).lower() != "auto" and (not str(self.k).isdigit() or int(self.k) < 1):
            raise InputError(f"k must be auto or a positive integer, got {self.k!r}", file="config")
        for name in ("shard_size", "workers"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1", file="config")
        for name, least in (("detect_every", 1), ("landmark_every", 1), ("smooth", 0)):
            v = str(getattr(self, name)).strip().lower()
            if v != "auto" and (not v.isdigit() or int(v) < least):
                raise InputError(f"{name} must be auto or an integer >= {least}, got {getattr(self, name)!r}",
                                 file="config")
        return self

    def frame_steps(self, fps: float) -> tuple[int, int, int]:
        """(detect_every, smooth, landmark_every) in frames for a video at `fps`."""
        return (resolve_frames(self.detect_every, fps, 1.0, "detect_every"),
                resolve_frames(self.smooth, fps, 1 / 15, "smooth", minimum=0),
                resolve_frames(self.landmark_every, fps, 0.1, "landmark_every"))

    @staticmethod
    def reference() -> "PreprocessConfig":
        """MEAN's reference preprocessing: first-frame box, TV-L1 defaults, no head-motion removal."""
        return PreprocessConfig(flow="tvl1", face_mode="mean", remove_head_motion=False, reduced_decode=False)


def content_hash(cfg: PreprocessConfig) -> str:
    """Hash of the settings that determine the stored features."""
    return config_hash({f: getattr(cfg, f) for f in CONTENT_FIELDS})


def _frame_path(shard: Shard, i: int) -> Path:
    return Path(shard.path) / shard.files[i]


def probe_video(shard: Shard, c: PreprocessConfig) -> dict:
    """Per-video facts every shard needs: face box/size on the first frame with a face, decode factor,
    detector upsampling, and (mean mode) MEAN's landmarks on the first crop. Returns {'error': ...} on bad input."""
    import cv2

    from tasks import face
    from tasks.decode import read_image, read_video_frame, reduce_factor

    cv2.setNumThreads(1)
    try:
        n = shard.n_frames
        candidates = [0] if c.face_mode == "mean" else sorted({0, n // 4, n // 2, (3 * n) // 4})
        for i in candidates:
            if shard.source_kind == "frames":
                img = read_image(_frame_path(shard, i))
            else:
                img = read_video_frame(shard.path, i)
            if img is None:
                continue
            box = face.find_face(img)
            if box is None:
                continue
            width = float(box[2] - box[0])
            factor = reduce_factor(width, c.min_face_px) if c.reduced_decode else 1
            out = {"frame": i, "box": box.tolist(), "face_width": width, "factor": factor,
                   "upsample": int(width / factor < face.MIN_DETECT_PX), "size": [int(s) for s in img.shape[:2]]}
            if c.face_mode == "mean":
                out["points"] = face.mean_alignment(img, box)[1].tolist()
            return out
        where = _frame_path(shard, 0) if shard.source_kind == "frames" else shard.path
        raise InputError(f"no face found (tried frames {candidates})", file=where, frame=candidates[0])
    except MegcError as exc:
        return {"error": str(exc)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_shard(home: str, shard: Shard, probe: dict, cfg: PreprocessConfig) -> dict:
    """Compute and write one shard's features, roi_series, landmarks and qc parts (qc last = done marker).

    Returns stats; bad input comes back as {'error': message} (not raised, so Dask does not retry it).
    """
    if "error" in probe:
        return {"video": shard.video, "start": shard.start, "error": probe["error"]}
    try:
        return _run(home, shard, probe, cfg)
    except MegcError as exc:
        return {"video": shard.video, "start": shard.start, "error": str(exc)}
    except Exception as exc:  # unexpected: report with the place it happened, and let the caller decide
        raise RuntimeError(f"shard {shard.video}@{shard.start}: {exc}\n{traceback.format_exc()}") from exc


def _same_size(shape: tuple, size: list[int], factor: int) -> bool:
    """A frame decoded at 1/factor matches the full-size (height, width) `size` (reduced decode rounds up)."""
    return all(-(-full // factor) == got or full // factor == got for got, full in zip(shape[:2], size))


def _run(home: str, shard: Shard, probe: dict, c: PreprocessConfig) -> dict:
    import cv2

    from tasks import face
    from tasks.decode import iter_video, read_image
    from storage.schemas import MEAN_INPUT_SIZE
    from tasks.features import ROI_COLUMNS, frame_features
    from tasks.optical_flow import compute_flow

    cv2.setNumThreads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    n, k, start, end = shard.n_frames, shard.k, shard.start, shard.end
    factor = int(probe["factor"])
    chash = content_hash(c)
    qc: list[dict] = []

    def note(frame: int | None, stage: str, reason: str) -> None:
        if frame is None or start <= frame < end:  # each frame's issues are reported by the shard owning it
            qc.append({"dataset": shard.dataset, "video": shard.video, "frame": frame, "stage": stage,
                       "reason": reason})

    # 1. decode (reduced size) every frame the shard needs; a frame of another size than the probed one is
    # treated as undecodable, since face boxes and transforms are tracked in one frame geometry
    size = probe.get("size")
    detect_every, smooth, landmark_every = c.frame_steps(shard.fps)
    need = needed_frames(start, end, n, k, c.face_mode, detect_every, smooth, landmark_every)
    images: dict[int, np.ndarray | None] = {}
    if shard.source_kind == "frames":
        for i in need:
            img = read_image(_frame_path(shard, i), factor)
            if img is None:
                note(i, "decode", f"cannot decode {shard.files[i]}; nearest decodable frame reused")
            elif size and not _same_size(img.shape, size, factor):
                note(i, "decode", f"{shard.files[i]} is {img.shape[1] * factor}x{img.shape[0] * factor}, the video's "
                                  f"frames are {size[1]}x{size[0]}; nearest frame of the right size reused")
                img = None
            images[i] = img
    else:
        for i, img in iter_video(shard.path, need[0], need[-1] + 1, factor, need):
            images[i] = img
    t_decode = time.perf_counter() - t0

    # 2. face alignment
    lo, hi = window(start, end, n, k)
    where = str(shard.path)
    if c.face_mode == "track":
        hint = (np.asarray(probe["box"]) + 0.5) / factor - 0.5
        tr = face.track(images, lo, hi, n, factor, detect_every, smooth, int(probe["upsample"]), where,
                        landmark_every, hint)
        for f, stage, reason in tr.qc:
            note(f, stage, reason)
        transforms, points, detected = tr.transform, tr.points, tr.detected
    else:
        m = face.box_transform(np.asarray(probe["box"]))
        pts = np.asarray(probe["points"])
        transforms = {f: m for f in range(lo, hi + 1)}
        points = {f: pts for f in range(lo, hi + 1)}
        detected = {f: images.get(f) is not None for f in range(lo, hi + 1)}
    good = [f for f in range(lo, hi + 1) if images.get(f) is not None]
    if not good:
        raise InputError(f"no decodable frame in frames {lo}..{hi}", file=where, frame=lo)
    aligned: dict[int, np.ndarray] = {}
    for f in range(lo, hi + 1):
        src = f
        if images.get(f) is None:  # nearest decodable frame, earlier first
            src = min(good, key=lambda g: (abs(g - f), g))
        aligned[f] = face.warp(images[src], transforms[f], factor)
    images.clear()
    t_face = time.perf_counter() - t0 - t_decode

    # 3. flow and features for the frames this shard owns
    owned = list(range(start, min(end, n - k)))
    mean_inputs = np.empty((len(owned), MEAN_INPUT_SIZE), np.float32)
    rois = np.empty((len(owned), len(ROI_COLUMNS)), np.float64)
    t_flow = 0.0
    for j, i in enumerate(owned):
        tf = time.perf_counter()
        fl = compute_flow(aligned[i], aligned[i + k], c.flow)
        t_flow += time.perf_counter() - tf
        mi, rois[j] = frame_features(fl, points[i], c.remove_head_motion)
        mean_inputs[j] = mi.ravel()
    if start == 0 and n <= k:
        note(None, "flow", f"video has {n} frames, not more than k={k}: no flow features")

    # 4. write; the qc part goes last and marks the shard finished
    key = {"dataset": shard.dataset, "video": shard.video}
    ws = Workspace(home)
    ids = {"dataset": shard.dataset, "subject": shard.subject, "video": shard.video, "frame": owned, "k": k,
           "config_hash": chash}
    ws.write("features", _features_table(ids, mean_inputs), part=shard.part, **key)
    ws.write("roi_series", _roi_table(ids, rois), part=shard.part, **key)
    frames = list(range(start, end))
    ws.write("landmarks", _landmarks_table({**ids, "frame": frames}, [points[f] for f in frames],
                                           [transforms[f] for f in frames], [detected[f] for f in frames]),
             part=shard.part, **key)
    ws.write("qc", qc, part=shard.part, **key)
    total = time.perf_counter() - t0
    return {"video": shard.video, "start": start, "frames": end - start, "features": len(owned),
            "qc": len(qc), "seconds": total, "cpu_s": time.process_time() - c0, "decode_s": t_decode,
            "face_s": t_face, "flow_s": t_flow,
            "peak_rss_mb": _peak_rss_mb(), "pid": os.getpid()}


def _columns(schema, ids: dict, n: int) -> dict:
    """Arrow columns of the id fields (scalars repeated n times, lists as they are) typed by `schema`."""
    import pyarrow as pa

    return {name: pa.array(val if isinstance(val, list) else [val] * n, schema.field(name).type)
            for name, val in ids.items() if name in schema.names}


def _fixed(rows, size: int):
    """A fixed-size-list float32 Arrow column from rows of `size` numbers each."""
    import pyarrow as pa

    flat = np.asarray(rows, np.float32).reshape(-1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), size)


def _features_table(ids: dict, mean_inputs: np.ndarray):
    """The features part of a shard, built column-wise (fast for the 5292-float arrays)."""
    import pyarrow as pa

    from storage.schemas import FEATURES, MEAN_INPUT_SIZE

    return pa.table({**_columns(FEATURES, ids, len(mean_inputs)), "mean_input": _fixed(mean_inputs, MEAN_INPUT_SIZE)}
                    ).select(FEATURES.names)


def _landmarks_table(ids: dict, points: list, transforms: list, detected: list):
    """The landmarks part of a shard: 68 points and the 2x3 transform per frame."""
    import pyarrow as pa

    from storage.schemas import LANDMARKS

    return pa.table({**_columns(LANDMARKS, ids, len(points)), "points": _fixed(points, 136),
                     "transform": _fixed(transforms, 6), "detected": pa.array([bool(d) for d in detected])}
                    ).select(LANDMARKS.names)


def _roi_table(ids: dict, rois: np.ndarray):
    """The roi_series part of a shard, one float column per region and component."""
    import pyarrow as pa

    from storage.schemas import ROI_SERIES
    from tasks.features import ROI_COLUMNS

    cols = {name: pa.array(rois[:, j], pa.float32()) for j, name in enumerate(ROI_COLUMNS)}
    return pa.table({**_columns(ROI_SERIES, ids, len(rois)), **cols}).select(ROI_SERIES.names)
