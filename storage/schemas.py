"""Canonical table schemas (pyarrow); every column is documented in its field metadata.

Frame indices are 0-based everywhere inside megc; adapters convert from each dataset's numbering.
"""

from __future__ import annotations

import pyarrow as pa


def _f(name: str, typ: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable, metadata={"doc": doc})


INTERVAL_KINDS = ("micro", "macro")

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
    _f("score", pa.float32(), "micro-expression spotting score (MEAN: its regression output)"),
    _f("probs", pa.list_(pa.float32()), "class probabilities in the model card's class order"),
    _f("macro", pa.float32(), "macro-expression score; null for spotters without a macro head", nullable=True),
    _f("onset", pa.float32(), "onset boundary score; null for spotters without boundary heads", nullable=True),
    _f("offset", pa.float32(), "offset boundary score; null for spotters without boundary heads", nullable=True),
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

STR_MATCHES = pa.schema([
    _f("run_id", pa.string(), "run whose predictions were scored (or the score run for CSV files)"),
    _f("dataset", pa.string(), "dataset name"),
    _f("protocol", pa.string(), "megc2025 or strict"),
    _f("subject", pa.string(), "subject id"),
    _f("video", pa.string(), "video id"),
    _f("pred_row", pa.int64(), "1-based row of the prediction in scoring order; null for an FN", nullable=True),
    _f("pred_onset", pa.int64(), "predicted onset frame; null for an FN", nullable=True),
    _f("pred_offset", pa.int64(), "predicted offset frame, inclusive; null for an FN", nullable=True),
    _f("pred_emotion", pa.string(), "predicted class; null for an FN", nullable=True),
    _f("gt_interval", pa.string(), "matched GT interval_id (CSV: 1-based GT data row); null for an FP",
       nullable=True),
    _f("gt_onset", pa.int64(), "GT onset frame; null for an FP", nullable=True),
    _f("gt_offset", pa.int64(), "GT offset frame, inclusive; null for an FP", nullable=True),
    _f("gt_emotion", pa.string(), "GT class; null for an FP", nullable=True),
    _f("iou", pa.float64(), "IoU of a TP pair; null otherwise", nullable=True),
    _f("outcome", pa.string(), "tp (one row per matched pair), fp or fn"),
])

# Landmark regions of the `roi_series` table (subject's left/right: dlib points 0-8, 17-21, 36-41, 48 lie on
# the subject's RIGHT, i.e. the image's left). Geometry lives in tasks.features.REGION_POINTS.
ROI_REGIONS: dict[str, str] = {
    "brow_l": "subject's left eyebrow (dlib 22-26)",
    "brow_r": "subject's right eyebrow (dlib 17-21)",
    "eye_l": "subject's left eye (dlib 42-47)",
    "eye_r": "subject's right eye (dlib 36-41)",
    "nose": "nose wings and tip (dlib 31-35, 30)",
    "cheek_l": "subject's left cheek, below the eye and lateral of the nose (dlib 42-47, 35, 54, 14)",
    "cheek_r": "subject's right cheek (dlib 36-41, 31, 48, 2)",
    "mouth_corner_l": "subject's left mouth corner (dlib 54, 53, 55, 64)",
    "mouth_corner_r": "subject's right mouth corner (dlib 48, 49, 59, 60)",
    "upper_lip": "upper lip (dlib 49-53, 61-63)",
    "lower_lip": "lower lip (dlib 55-59, 65-67)",
    "chin": "chin (dlib 6-10, below the lower lip)",
}
ROI_SERIES = pa.schema(
    [
        _f("dataset", pa.string(), "dataset name"),
        _f("video", pa.string(), "video id"),
        _f("frame", pa.int64(), "0-based frame i; the flow runs from frame i to frame i + k"),
        _f("k", pa.int32(), "flow step in frames"),
    ]
    + [_f(f"{r}_{c}", pa.float32(), f"{doc}: mean {what} over the region (aligned-face pixels)")
       for r, doc in ROI_REGIONS.items()
       for c, what in (("u", "horizontal flow"), ("v", "vertical flow (down +)"), ("mag", "flow magnitude"))]
    + [_f("config_hash", pa.string(), "hash of the preprocessing config")]
)


VQA_ITEMS = pa.schema([
    _f("dataset", pa.string(), "dataset name"),
    _f("split", pa.string(), "train or test (split by subject)"),
    _f("item_id", pa.string(), "question id, unique in the dataset"),
    _f("subject", pa.string(), "subject id"),
    _f("video", pa.string(), "video id"),
    _f("interval_id", pa.string(), "interval the question is about (or the clip's video id for imported clips)"),
    _f("qtype", pa.string(), "coarse, fine, au, au_yes_no, au_side or compound"),
    _f("question", pa.string(), "question text"),
    _f("answer", pa.string(), "ground-truth answer (lower case); empty for unlabelled test rows"),
    _f("onset", pa.int64(), "0-based onset frame of the clip", nullable=True),
    _f("apex", pa.int64(), "0-based apex frame; null when not annotated", nullable=True),
    _f("offset", pa.int64(), "0-based offset frame, inclusive", nullable=True),
    _f("source", pa.string(), "the imported MEGC JSONL row as JSON; null for items built from intervals",
       nullable=True),
])

VQA_ANSWERS = pa.schema([
    _f("run_id", pa.string(), "answering run"),
    _f("dataset", pa.string(), "dataset name"),
    _f("item_id", pa.string(), "question id (vqa_items.item_id)"),
    _f("interval_id", pa.string(), "interval / clip id"),
    _f("qtype", pa.string(), "question type"),
    _f("question", pa.string(), "question text"),
    _f("answer", pa.string(), "predicted answer"),
    _f("gt", pa.string(), "ground-truth answer; null when unknown", nullable=True),
    _f("engine", pa.string(), "expert or qwen"),
    _f("input_kind", pa.string(), "frames, oao or flow"),
])

COMPARISONS = pa.schema([
    _f("compare_id", pa.string(), "compare run"),
    _f("dataset", pa.string(), "dataset the spotters were cross-validated on"),
    _f("kind", pa.string(), "spotter kind (mean, roi-tcn, flow-peaks, ...)"),
    _f("model", pa.string(), "registered model the comparison trained"),
    _f("train_run_id", pa.string(), "training run"),
    _f("spot_run_id", pa.string(), "cross-validated spot run whose figures are in `metrics`"),
    _f("train_s", pa.float64(), "training wall time in seconds"),
    _f("spot_s", pa.float64(), "spotting and scoring wall time in seconds"),
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
    "roi_series": (ROI_SERIES, ("dataset", "video")),
    "frame_scores": (FRAME_SCORES, ("run_id", "dataset", "video")),
    "predictions": (PREDICTIONS, ("run_id", "dataset")),
    "runs": (RUNS, ("run_id",)),
    "metrics": (METRICS, ("run_id",)),
    "str_matches": (STR_MATCHES, ("run_id", "dataset")),
    "vqa_items": (VQA_ITEMS, ("dataset",)),
    "vqa_answers": (VQA_ANSWERS, ("run_id", "dataset")),
    "comparisons": (COMPARISONS, ("compare_id",)),
}
