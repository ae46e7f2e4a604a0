"""What a spotter reads for one work item, and which frames it must never spot (face lost).

A work item is a feature shard (`features` kinds: MEAN) or a whole video (`roi_series` kinds). Frames near a
key frame where no face was detected (landmarks.detected false) are invalid: their flow describes whatever
covered or replaced the face, so their scores are zeroed before post-processing and they are noted in qc.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from storage.workspace import Workspace
from tasks.mean_data import iter_shard

LOST_MARGIN_S = 1.0  # a failed key frame invalidates this much time on each side (the detection step)


def read_item(item: dict, ws: Workspace) -> Any:
    """A feature shard's (frames, inputs) batches, or a video's ROI series (models.spotters.series.VideoSeries)."""
    if item.get("table", "features") == "features":
        return iter_shard(item["path"], ws=ws)
    from models.spotters.series import from_table

    t = ws.read("roi_series", dataset=item["dataset"], video=item["video"])
    video = from_table(t, int(item["n_frames"]), float(item["fps"]))
    video.valid = ~lost_frames(ws, item["dataset"], item["video"], int(item["n_frames"]), float(item["fps"]))
    return video


def lost_frames(ws: Workspace, dataset: str, video: str, n_frames: int, fps: float) -> np.ndarray:
    """(n_frames,) bool: True within LOST_MARGIN_S of a frame whose face was not detected."""
    lost = np.zeros(n_frames, bool)
    t = ws.read("landmarks", columns=["frame", "detected"], dataset=dataset, video=video)
    if t.num_rows == 0:
        return lost
    frames = t.column("frame").to_numpy()
    failed = frames[~t.column("detected").to_numpy(zero_copy_only=False).astype(bool)]
    margin = max(1, int(round(LOST_MARGIN_S * fps)))
    for f in failed.tolist():
        lost[max(0, f - margin):min(n_frames, f + margin + 1)] = True
    return lost


def lost_runs(lost: np.ndarray) -> Iterator[tuple[int, int]]:
    """(first, last) frame of each run of True in a mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2]):
        yield int(a), int(b) - 1


def load_labelled(keys: list[dict], ws: Workspace) -> list:
    """Training videos (models.spotters.series.Labelled) for work keys {dataset, video, n_frames, fps}: each
    video's ROI series with its annotated intervals and non-expression events (blinks, head jerks)."""
    from models.spotters.series import Labelled

    rows: dict[tuple[str, str], dict[str, list]] = {}
    for ds in sorted({k["dataset"] for k in keys}):
        for table, cols in (("intervals", ["video", "onset", "offset", "kind", "emotion"]),
                            ("events", ["video", "onset", "offset", "kind"])):
            for r in ws.read(table, columns=cols, dataset=ds).to_pylist():
                rows.setdefault((ds, r.pop("video")), {}).setdefault(table, []).append(tuple(r.values()))
    out = []
    for key in keys:
        got = rows.get((key["dataset"], key["video"]), {})
        out.append(Labelled(video=read_item({**key, "table": "roi_series"}, ws),
                            intervals=sorted(got.get("intervals", [])), events=sorted(got.get("events", []))))
    return out
