"""Feature shards (Parquet) to MEAN tensors: a cheap shard index, fold sampling plans, and streaming reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.errors import InputError
from storage.schemas import MEAN_INPUT_SIZE
from storage.workspace import Workspace
from tasks.pseudo_labels import balanced_sample, frame_labels, recognition_frames

SHAPE = (3, 42, 42)

# A plan lists, per shard file, the frames a trainer reads and their targets.
Plan = list[tuple[str, np.ndarray, np.ndarray]]


@dataclasses.dataclass
class Shard:
    """One feature part file of one video, with its frame numbers (read without the feature column)."""

    dataset: str
    subject: str
    video: str
    path: str
    frames: np.ndarray
    k: int


@dataclasses.dataclass
class ME:
    """One annotated ME interval (0-based, offset inclusive)."""

    subject: str
    video: str
    onset: int
    apex: int | None
    offset: int
    emotion: str


def shard_index(ws: Workspace, dataset: str, videos: Sequence[str] | None = None) -> list[Shard]:
    """Every feature shard of a dataset (optionally some videos), reading only subject/frame/k columns."""
    out = []
    parts = ws.partitions("features", dataset=dataset)
    for part in parts:
        if videos is not None and part["video"] not in videos:
            continue
        for f in ws.files("features", dataset=dataset, video=part["video"]):
            t = ws.read_file(f, columns=["subject", "frame", "k"])
            if t.num_rows == 0:
                continue
            out.append(Shard(dataset, str(t.column("subject")[0]), part["video"], str(f),
                             t.column("frame").to_numpy().astype(np.int64), int(t.column("k")[0].as_py())))
    return out


def micro_intervals(ws: Workspace, dataset: str) -> list[ME]:
    """The dataset's micro-expression intervals, checked for sane frame numbers."""
    t = ws.read("intervals", dataset=dataset).to_pylist()
    out = []
    for r in t:
        if r["kind"] != "micro":
            continue
        if r["offset"] < r["onset"] or r["onset"] < 0:
            raise InputError(f"interval {r['interval_id']} has onset {r['onset']} and offset {r['offset']}",
                             file=r["source_file"], row=r["source_row"])
        out.append(ME(r["subject"], r["video"], int(r["onset"]), r["apex"], int(r["offset"]), r["emotion"]))
    return out


def to_array(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A fixed-size-list `mean_input` column as a float32 array (N, 3, 42, 42)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return np.array(flat, dtype=np.float32).reshape(-1, *SHAPE)  # a writable copy (torch needs one)


def _batches(path: str, batch_size: int, ws: Workspace | None) -> Iterator[pa.RecordBatch]:
    columns = ["frame", "mean_input"]
    if ws is not None:
        return iter(ws.iter_file(path, columns, batch_size))
    return pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)


def iter_shard(path: str, batch_size: int = 2048, ws: Workspace | None = None
               ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream (frames, inputs) batches of one shard file (a local path, or a path in `ws`'s store)."""
    for b in _batches(path, batch_size, ws):
        yield b.column(0).to_numpy().astype(np.int64), to_array(b.column(1))


def gather(plan: Plan, batch_size: int = 2048, ws: Workspace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read only the planned rows (streaming each shard, from `ws`'s store when given) into one preallocated
    (X, targets) pair."""
    total = sum(len(fr) for _, fr, _ in plan)
    x = np.empty((total, *SHAPE), dtype=np.float32)
    y = np.empty(total, dtype=plan[0][2].dtype if plan else np.float32)
    pos = 0
    for path, frames, targets in plan:
        want = dict(zip(frames.tolist(), targets.tolist()))
        for b in _batches(path, batch_size, ws):
            mask = pc.is_in(b.column(0), value_set=pa.array(frames, pa.int64()))
            if not pc.any(mask).as_py():
                continue
            sel = b.filter(mask)
            n = sel.num_rows
            if sel.column(1).type.list_size != MEAN_INPUT_SIZE:
                raise InputError("mean_input has the wrong size", file=path)
            x[pos:pos + n] = to_array(sel.column(1))
            y[pos:pos + n] = [want[f] for f in sel.column(0).to_pylist()]
            pos += n
    return x[:pos], y[:pos]


def spot_plan(shards: Sequence[Shard], mes: Sequence[ME], kp: int, neg_ratio: float, seed: int) -> Plan:
    """All positive frames plus neg_ratio x as many random negatives, pooled over `shards`."""
    by_video: dict[str, list[tuple[int, int]]] = {}
    for m in mes:
        by_video.setdefault(m.video, []).append((m.onset, m.offset))
    labels = [frame_labels(s.frames, by_video.get(s.video, []), kp) for s in shards]
    if not labels:
        return []
    owner = np.concatenate([np.full(len(lab), i) for i, lab in enumerate(labels)])
    flat = np.concatenate(labels)
    idx = balanced_sample(flat, neg_ratio, seed)
    plan = []
    offsets = np.concatenate([[0], np.cumsum([len(lab) for lab in labels])])
    for i, s in enumerate(shards):
        mine = idx[owner[idx] == i] - offsets[i]
        if len(mine):
            plan.append((s.path, s.frames[mine], labels[i][mine]))
    return plan


def rec_plan(shards: Sequence[Shard], mes: Sequence[ME], classes: Sequence[str]) -> Plan:
    """Frames [onset, apex) of every ME whose emotion is in `classes`, labelled with the class index."""
    plan = []
    for s in shards:
        have = set(s.frames.tolist())
        frames, targets = [], []
        for m in mes:
            if m.video != s.video or m.emotion not in classes:
                continue
            for f in recognition_frames(m.onset, m.apex, m.offset):
                if f in have:
                    frames.append(f)
                    targets.append(classes.index(m.emotion))
        if frames:
            plan.append((s.path, np.array(frames, np.int64), np.array(targets, np.int64)))
    return plan


def plan_size(plan: Plan) -> int:
    """Number of rows a plan reads."""
    return sum(len(fr) for _, fr, _ in plan)


def shard_stem(path: str) -> str:
    """The part name of a shard file (e.g. shard-00000000)."""
    return Path(path).name.removesuffix(".parquet")
