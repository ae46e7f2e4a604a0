"""Canonical table schemas (pyarrow); every column is documented in its field metadata.

Frame indices are 0-based everywhere inside megc; adapters convert from each dataset's numbering.
"""

from __future__ import annotations

import pyarrow as pa


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


COARSE_EMOTIONS = ("negative", "positive", "surprise", "others")
STR_CLASSES = ("negative", "positive", "surprise")
INTERVAL_KINDS = ("micro", "macro")
SOURCE_KINDS = ("frames", "video_file")

VIDEOS = pa.schema([
    _f("dataset", pa.string(), "dataset name given at ingest (e.g. samm_lv, casme3)"),
    _f("subject", pa.string(), "subject id as the dataset writes it (e.g. 006, spNO.1, s15)"),
    _f("video", pa.string(), "video id, unique within the dataset (e.g. 006_1, spNO.1_a)"),
    _f("fps", pa.float64(), "frames per second"),
    _f("n_frames", pa.int64(), "number of frames, gaps in frame numbering filled"),
    _f("width", pa.int32(), "frame width in pixels"),
    _f("height", pa.int32(), "frame height in pixels"),
    _f("source_kind", pa.string(), "frames (a folder of images) or video_file"),
    _f("path", pa.string(), "absolute path of the frame folder or the video file"),
    _f("first_frame", pa.int64(), "dataset frame number of megc frame 0 (e.g. 1 for img001.jpg)"),
    _f("labelled", pa.bool_(), "true when the dataset came with interval annotations"),
])

FRAMES = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("video", pa.string(), "video id"),
    _f("frame", pa.int64(), "0-based megc frame index"),
    _f("file", pa.string(), "image file name inside the video's frame folder"),
    _f("filled", pa.bool_(), "true when this frame number was missing and repeats the previous file"),
])

INTERVALS = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("subject", pa.string(), "subject id"),
    _f("video", pa.string(), "video id"),
    _f("interval_id", pa.string(), "id of the annotated instance (e.g. SAMM 006_1_2), unique in the dataset"),
    _f("onset", pa.int64(), "0-based onset frame"),
    _f("apex", pa.int64(), "0-based apex frame; null when not annotated", nullable=True),
    _f("offset", pa.int64(), "0-based offset frame, inclusive"),
    _f("kind", pa.string(), "micro or macro"),
    _f("emotion", pa.string(), "coarse class: negative, positive, surprise or others"),
    _f("emotion_fine", pa.string(), "fine label (happiness, disgust, ...); null when unknown", nullable=True),
    _f("aus", pa.list_(pa.string()), "action units as AU<n> (e.g. AU4, AU12); side in `side`"),
    _f("side", pa.string(), "left or right when an AU is unilateral; null otherwise", nullable=True),
    _f("source_file", pa.string(), "annotation file the row came from"),
    _f("source_row", pa.int64(), "1-based row number in that file (spreadsheet numbering)"),
])

EVENTS = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("video", pa.string(), "video id"),
    _f("kind", pa.string(), "blink or head_jerk (ground truth of non-expression motion)"),
    _f("onset", pa.int64(), "0-based first frame"),
    _f("offset", pa.int64(), "0-based last frame, inclusive"),
])

REJECTS = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("source_file", pa.string(), "file holding the bad row"),
    _f("source_row", pa.int64(), "1-based row number", nullable=True),
    _f("reason", pa.string(), "what is wrong with the row"),
    _f("raw", pa.string(), "the row's values as JSON"),
])

QC = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("video", pa.string(), "video id"),
    _f("frame", pa.int64(), "0-based frame, null when the issue concerns the whole video", nullable=True),
    _f("stage", pa.string(), "stage that noticed it (decode, face, flow, spot, ...)"),
    _f("reason", pa.string(), "what happened and how it was handled"),
])

LANDMARKS = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("video", pa.string(), "video id"),
    _f("frame", pa.int64(), "0-based frame"),
    _f("points", pa.list_(pa.float32(), 136), "68 dlib landmarks (x0, y0, x1, y1, ...) "
       "in aligned 128x128 face coordinates"),
    _f("transform", pa.list_(pa.float32(), 6), "2x3 affine (row-major) "
       "from full-resolution frame pixels to the aligned face"),
    _f("detected", pa.bool_(), "false when the face was not found and landmarks were interpolated or carried"),
    _f("config_hash", pa.string(), "hash of the preprocessing config"),
])

MEAN_INPUT_SIZE = 3 * 42 * 42
FEATURES = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("subject", pa.string(), "subject id"),
    _f("video", pa.string(), "video id"),
    _f("frame", pa.int64(), "0-based frame i; the flow runs from frame i to frame i + k"),
    _f("k", pa.int32(), "flow step in frames"),
    _f("mean_input", pa.list_(pa.float32(), MEAN_INPUT_SIZE), "MEAN input 3x42x42 (u, v, strain; "
       "channel first), each plane min-max scaled to [0, 1]"),
    _f("config_hash", pa.string(), "hash of the preprocessing config"),
])

FRAME_SCORES = pa.schema([
    _f("run_id", pa.string(), "inference run"),
    _f("dataset", pa.string(), "dataset name"),
    _f("video", pa.string(), "video id"),
    _f("frame", pa.int64(), "0-based frame"),
    _f("score", pa.float32(), "spotting score (regression output)"),
    _f("probs", pa.list_(pa.float32()), "class probabilities in the model card's class order"),
])

PREDICTIONS = pa.schema([
    _f("run_id", pa.string(), "inference run"),
    _f("dataset", pa.string(), "dataset name"),
    _f("subject", pa.string(), "subject id"),
    _f("video", pa.string(), "video id"),
    _f("onset", pa.int64(), "0-based onset frame"),
    _f("offset", pa.int64(), "0-based offset frame, inclusive"),
    _f("emotion", pa.string(), "predicted coarse class"),
    _f("score", pa.float32(), "peak height of the smoothed spotting score"),
    _f("model", pa.string(), "model name in the registry"),
])

RUNS = pa.schema([
    _f("run_id", pa.string(), "run id"),
    _f("kind", pa.string(), "what ran (ingest, preprocess, train, spot, score, vqa, demo, ...)"),
    _f("created_at", pa.timestamp("us", tz="UTC"), "start time"),
    _f("config", pa.string(), "the run's full config as JSON"),
    _f("git_revision", pa.string(), "git revision of megc that ran", nullable=True),
])

METRICS = pa.schema([
    _f("run_id", pa.string(), "run the figure belongs to"),
    _f("dataset", pa.string(), "dataset, or 'overall' for the pooled figure"),
    _f("protocol", pa.string(), "megc2025, strict, or vqa"),
    _f("name", pa.string(), "metric name (e.g. strs, spot_f1, coarse_uf1)"),
    _f("value", pa.float64(), "value; null where the official scorer prints nan", nullable=True),
])

# Tables kept in the workspace, name -> (schema, partition keys).
TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    "videos": (VIDEOS, ("dataset",)),
    "frames": (FRAMES, ("dataset",)),
    "intervals": (INTERVALS, ("dataset",)),
    "events": (EVENTS, ("dataset",)),
    "rejects": (REJECTS, ("dataset",)),
    "qc": (QC, ("dataset", "video")),
    "landmarks": (LANDMARKS, ("dataset", "video")),
    "features": (FEATURES, ("dataset", "video")),
    "frame_scores": (FRAME_SCORES, ("run_id", "dataset", "video")),
    "predictions": (PREDICTIONS, ("run_id", "dataset")),
    "runs": (RUNS, ("run_id",)),
    "metrics": (METRICS, ("run_id",)),
}


def register_table(name: str, schema: pa.Schema, partition_keys: tuple[str, ...]) -> None:
    """Add a table that a later stage defines (its module calls this at import)."""
    TABLES[name] = (schema, partition_keys)


def describe(schema: pa.Schema) -> list[tuple[str, str, str]]:
    """(column, type, doc) for every column of a schema."""
    return [(f.name, str(f.type), (f.metadata or {}).get(b"doc", b"").decode()) for f in schema]
