"""Ground truth of a generated dataset: rows in the format writers' form, canonical rows, JSON file."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.synth.formats import WRITERS, writer_module
from tasks.synth.timeline import Timeline

GROUND_TRUTH_FILE = "megc_synth.json"  # written last: its presence marks a finished dataset
ADAPTER_OF_FORMAT = {fmt: mod.ADAPTER for fmt, mod in WRITERS.items()}


@dataclass
class SynthResult:
    """A generated dataset: where it is and its exact ground truth (0-based frames, offsets inclusive)."""

    root: Path
    format: str
    seed: int
    config: dict
    videos: list[dict] = field(default_factory=list)  # subject, video_code, fps, n_frames, width, height, first_frame
    intervals: list[dict] = field(default_factory=list)  # subject, video_code, onset, apex, offset, kind, ...
    events: list[dict] = field(default_factory=list)  # subject, video_code, kind (blink|head_jerk), onset, offset
    apex_displacement: list[dict] = field(default_factory=list)  # per interval: peak field displacement, px

    @property
    def fps(self) -> float | None:
        """The rendered frame rate (frame-folder layouts cannot store it, so ingest is told)."""
        return float(self.videos[0]["fps"]) if self.videos else None

    @property
    def adapter(self) -> str:
        """Name of the adapter that ingests this dataset."""
        return ADAPTER_OF_FORMAT[self.format]

    def video_id(self, subject: str, video_code: str) -> str:
        """The canonical megc video id the adapter gives this video."""
        return writer_module(self.format).video_id(subject, video_code)

    def canonical_intervals(self, dataset: str) -> list[dict]:
        """Interval rows as the `intervals` table holds them (without interval_id/source columns), sorted."""
        rows = [{"dataset": dataset, "subject": it["subject"], "video": self.video_id(it["subject"], it["video_code"]),
                 "onset": it["onset"], "apex": it["apex"], "offset": it["offset"], "kind": it["kind"],
                 "emotion": it["emotion"], "emotion_fine": it["emotion_fine"], "aus": list(it["aus"]),
                 "side": it["side"]} for it in self.intervals]
        return sorted(rows, key=lambda r: (r["video"], r["onset"]))

    def canonical_events(self, dataset: str) -> list[dict]:
        """Event rows as the `events` table holds them, sorted."""
        rows = [{"dataset": dataset, "video": self.video_id(e["subject"], e["video_code"]), "kind": e["kind"],
                 "onset": e["onset"], "offset": e["offset"]} for e in self.events]
        return sorted(rows, key=lambda r: (r["video"], r["onset"], r["kind"]))

    def save(self) -> Path:
        """Write the ground truth JSON into the dataset root (atomically)."""
        p = Path(self.root) / GROUND_TRUTH_FILE
        tmp = p.with_suffix(".json.tmp")
        d = dataclasses.asdict(self)
        d["root"] = str(self.root)
        tmp.write_text(json.dumps(d, indent=1))
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, root: Path) -> "SynthResult":
        """Read a finished dataset's ground truth (root is where it is now, even if it was moved)."""
        d: dict[str, Any] = json.loads((Path(root) / GROUND_TRUTH_FILE).read_text())
        d["root"] = Path(root).resolve()
        return cls(**d)


def video_rows(subject: str, video_code: str, timeline: Timeline, width: int, height: int, first_frame: int,
               displacement: dict[int, float]) -> tuple[dict, list[dict], list[dict], list[dict]]:
    """Ground-truth rows of one video: video, intervals, events, apex displacement per interval."""
    video = {"subject": subject, "video_code": video_code, "fps": timeline.fps, "n_frames": timeline.n_frames,
             "width": width, "height": height, "first_frame": first_frame}
    intervals, amps = [], []
    for i, e in enumerate(timeline.expressions):
        intervals.append({"subject": subject, "video_code": video_code, "onset": e.onset, "apex": e.apex,
                          "offset": e.offset, "kind": e.kind, "emotion": e.emotion, "emotion_fine": e.emotion_fine,
                          "aus": list(e.aus), "side": e.side})
        amps.append({"subject": subject, "video_code": video_code, "onset": e.onset, "kind": e.kind,
                     "amplitude_ref_px": e.amplitude, "peak_px": displacement.get(i, 0.0)})
    events = ([{"subject": subject, "video_code": video_code, "kind": "blink", "onset": b.onset, "offset": b.offset}
               for b in timeline.blinks]
              + [{"subject": subject, "video_code": video_code, "kind": "head_jerk", "onset": j.onset,
                  "offset": j.offset} for j in timeline.jerks])
    events.sort(key=lambda e: e["onset"])
    return video, intervals, events, amps
