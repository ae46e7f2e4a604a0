"""Planted MEAN inputs: features, videos and intervals rows without any video, for training and benchmarks.

Each micro-expression is a Gaussian blob in the 42x42 optical-flow mosaic at a place that depends on its class,
over random background motion, so a model can learn spotting and recognition from them in seconds.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from storage.schemas import FEATURES
from storage.vocabulary import STR_CLASSES
from storage.workspace import Workspace

# Blob centre (row, col) per class in the 42x42 ROI mosaic: eyes band left/right vs mouth.
BLOB_AT = {"negative": (10, 10), "positive": (32, 21), "surprise": (8, 32)}


def plant_dataset(ws: Workspace, dataset: str = "planted", subjects: int = 4, videos_per_subject: int = 1,
                  n_frames: int = 400, mes_per_video: int = 3, k: int = 3, seed: int = 0,
                  fps: float = 30.0) -> list[dict]:
    """Write features/videos/intervals rows with Gaussian blobs in u/v/strain over each ME; returns the MEs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:42, 0:42]
    videos, intervals = [], []
    for si in range(subjects):
        subject = f"s{si + 1:02d}"
        for vi in range(videos_per_subject):
            video = f"{subject}_{vi + 1}"
            n_feat = n_frames - k
            x = rng.uniform(0.0, 0.3, size=(n_feat, 3, 42, 42)).astype(np.float32)
            gap = n_frames // (mes_per_video + 1)
            for j in range(mes_per_video):
                length = int(rng.integers(9, 14))
                onset = gap * (j + 1) - length // 2 + int(rng.integers(-10, 10))
                offset = onset + length - 1
                emotion = STR_CLASSES[(si + vi + j) % 3]
                cy, cx = BLOB_AT[emotion]
                blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 4.0 ** 2)).astype(np.float32)
                lo, hi = max(0, onset - k + 1), min(n_feat - 1, offset)
                for f in range(lo, hi + 1):
                    x[f] = np.maximum(x[f], 0.95 * blob)
                intervals.append({"dataset": dataset, "subject": subject, "video": video,
                                  "interval_id": f"{video}_{j}", "onset": onset, "apex": onset + length // 2,
                                  "offset": offset, "kind": "micro", "emotion": emotion, "emotion_fine": None,
                                  "aus": [], "side": None, "source_file": "planted.csv",
                                  "source_row": len(intervals) + 2})
            rows = {"dataset": [dataset] * n_feat, "subject": [subject] * n_feat, "video": [video] * n_feat,
                    "frame": np.arange(n_feat), "k": [k] * n_feat, "config_hash": ["planted"] * n_feat}
            t = pa.table({**rows, "mean_input": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 5292)})
            ws.write("features", t.select(FEATURES.names).cast(FEATURES), part="shard-00000000",
                     dataset=dataset, video=video)
            videos.append({"dataset": dataset, "subject": subject, "video": video, "fps": fps, "n_frames": n_frames,
                           "width": 128, "height": 128, "source_kind": "frames", "path": f"/planted/{video}",
                           "first_frame": 1, "labelled": True})
    ws.replace("videos", videos, dataset=dataset)
    ws.replace("intervals", intervals, dataset=dataset)
    return intervals
