"""Run reports: metric tables, per-video score curves over ground truth, confusion matrices, VQA tables.

Writes <home>/reports/<run_id>/report.md and report.html with PNG plots beside them.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from storage.workspace import Workspace

MICRO_COLOUR, MACRO_COLOUR, PRED_COLOUR = "tab:red", "tab:blue", "tab:green"
VQA_PER_QUESTION = ("bleu", "rouge1", "accuracy")


@dataclass
class Section:
    """One report section: a title, Markdown-able tables and images."""

    title: str
    tables: list[tuple[str, list[str], list[list]]] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


def _fmt(v, count: bool = False) -> str:
    if v is None:
        return "null"
    if count and isinstance(v, float) and v == int(v):
        return str(int(v))
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.4f}"
    return str(v)


def _run_info(ws: Workspace, run_id: str) -> dict:
    data = ws.read_bytes("runs", run_id, "run.json")
    if data is None:
        from storage.errors import MegcError

        raise MegcError(f"no run {run_id!r} in workspace {ws.location()} (see `megc runs`)")
    return json.loads(data)


def metrics_section(ws: Workspace, run_ids: list[str], labels: dict[str, str] | None = None) -> Section:
    """Metric table per dataset and protocol for the given runs; with `labels` ({run_id: label}) a dataset's
    column names the run too, so two runs over one dataset (e.g. two spotters) stand side by side."""
    sec = Section("Metrics")
    if not run_ids:
        return sec
    _cols, rows = ws.sql(
        "SELECT run_id, dataset, protocol, name, value FROM metrics WHERE list_contains($ids, run_id) "
        "ORDER BY protocol, dataset, run_id, name", {"ids": run_ids})
    by: dict[tuple[str, str], dict[str, float]] = {}
    names: list[str] = []
    for run, ds, proto, name, value in rows:
        if labels and run in labels:
            ds = f"{ds} ({labels[run]})"
        by.setdefault((proto, ds), {})[name] = value
        if name not in names:
            names.append(name)
    for proto in sorted({p for p, _ in by}):
        keys = [n for n in names if any(n in by[(p, d)] for p, d in by if p == proto)]
        if proto == "vqa":
            per_q = [n for n in keys if n.rsplit("_", 1)[-1] in VQA_PER_QUESTION and n.count("_") >= 1
                     and n.rsplit("_", 1)[0] not in ("coarse", "fine")]
            keys = [n for n in keys if n not in per_q]
            qtypes = sorted({n.rsplit("_", 1)[0] for n in per_q})
            overall = by.get(("vqa", "overall"), {})
            sec.tables.append(("VQA per question type (overall)", ["question type", *VQA_PER_QUESTION],
                               [[q] + [_fmt(overall.get(f"{q}_{m}")) for m in VQA_PER_QUESTION] for q in qtypes]))
        datasets = [ds for p, ds in sorted(by) if p == proto]
        # one row per metric, one column per dataset: STR runs have about 25 figures per dataset
        table = [[n] + [_fmt(by[(proto, ds)].get(n), count=n.endswith(("_tp", "_fp", "_fn"))) for ds in datasets]
                 for n in keys]
        sec.tables.insert(0 if proto != "vqa" else len(sec.tables) - 1,
                          (f"protocol: {proto}", ["metric", *datasets], table))
    return sec


def score_curves_section(ws: Workspace, run_id: str, out: Path, max_videos: int = 12) -> Section:
    """Per video: spotting score curve, ground-truth micro/macro intervals and predicted intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sec = Section("Spotting score curves")
    _, vids = ws.sql("SELECT DISTINCT dataset, video FROM frame_scores WHERE run_id = ? ORDER BY 1, 2 LIMIT ?",
                     [run_id, max_videos])
    for ds, video in vids:
        _, sc = ws.sql("SELECT frame, score FROM frame_scores WHERE run_id = ? AND dataset = ? AND video = ? "
                       "ORDER BY frame", [run_id, ds, video])
        _, gt = ws.sql("SELECT onset, \"offset\", kind, emotion FROM intervals WHERE dataset = ? AND video = ?",
                       [ds, video])
        _, pr = ws.sql("SELECT onset, \"offset\", emotion FROM predictions WHERE run_id = ? AND dataset = ? "
                       "AND video = ?", [run_id, ds, video])
        frames = np.array([r[0] for r in sc])
        scores = np.array([r[1] for r in sc], dtype=float)
        fig, ax = plt.subplots(figsize=(11, 2.6))
        ymin, ymax = (float(scores.min()), float(scores.max())) if scores.size else (0.0, 1.0)
        span = max(ymax - ymin, 1e-6)
        for on, off, kind, emo in gt:
            colour = MICRO_COLOUR if kind == "micro" else MACRO_COLOUR
            ax.axvspan(on, off, color=colour, alpha=0.25 if kind == "micro" else 0.12, lw=0)
            if kind == "micro":
                ax.text((on + off) / 2, ymax + 0.03 * span, emo[:3], ha="center", fontsize=7, color=colour)
        for on, off, _emo in pr:
            ax.hlines(ymin - 0.08 * span, on, off, color=PRED_COLOUR, lw=4)
        ax.plot(frames, scores, color="black", lw=0.8)
        ax.set_title(f"{ds} / {video}: score (black), GT micro (red), GT macro (blue), predicted (green)",
                     fontsize=9)
        ax.set_xlabel("frame")
        fig.tight_layout()
        name = f"curve_{ds}_{video}.png".replace("/", "_")
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        sec.images.append((f"{ds} / {video}", name))
    if not vids:
        sec.text.append("No frame scores stored for this run.")
    return sec


def confusion_section(ws: Workspace, run_id: str, out: Path) -> Section:
    """Confusion matrices of the emotions of predictions that matched a micro ground truth (IoU >= 0.5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sec = Section("Recognition of spotted micro-expressions")
    _, rows = ws.sql(
        "SELECT p.dataset, g.emotion AS gt, p.emotion AS pred FROM predictions p JOIN intervals g "
        "ON p.dataset = g.dataset AND p.video = g.video AND g.kind = 'micro' "
        "WHERE p.run_id = ? AND (least(p.\"offset\", g.\"offset\") - greatest(p.onset, g.onset) + 1) >= "
        "0.5 * (greatest(p.\"offset\", g.\"offset\") - least(p.onset, g.onset) + 1)", [run_id])
    if not rows:
        sec.text.append("No prediction overlaps a micro-expression with IoU >= 0.5.")
        return sec
    classes = sorted({r[1] for r in rows} | {r[2] for r in rows})
    for ds in sorted({r[0] for r in rows}):
        m = np.zeros((len(classes), len(classes)), int)
        for d, g, p in rows:
            if d == ds:
                m[classes.index(g), classes.index(p)] += 1
        fig, ax = plt.subplots(figsize=(3.6, 3.2))
        ax.imshow(m, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=9)
        ax.set_xticks(range(len(classes)), classes, rotation=45, fontsize=8)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("ground truth")
        ax.set_title(ds, fontsize=9)
        fig.tight_layout()
        name = f"confusion_{ds}.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        sec.images.append((f"confusion {ds}", name))
        sec.tables.append((f"confusion {ds} (rows: ground truth)", ["gt \\ pred"] + classes,
                           [[c] + m[i].tolist() for i, c in enumerate(classes)]))
    return sec


def _markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        lines += [t + "\n" for t in s.text]
        for caption, cols, rows in s.tables:
            lines += [f"**{caption}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(_fmt(v) for v in r) + " |" for r in rows]
            lines.append("")
        for caption, img in s.images:
            lines += [f"![{caption}]({img})", ""]
    return "\n".join(lines)


def _html(title: str, sections: list[Section]) -> str:
    e = html.escape
    parts = [(f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>"
             "body{font-family:sans-serif;max-width:1200px;margin:auto}table{border-collapse:collapse;"
             "margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "th{background:#eee}img{max-width:100%}</style></head><body>"), f"<h1>{e(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{e(s.title)}</h2>")
        parts += [f"<p>{e(t)}</p>" for t in s.text]
        for caption, cols, rows in s.tables:
            parts.append(f"<p><b>{e(caption)}</b></p><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols)
                         + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(_fmt(v))}</td>" for v in r) + "</tr>" for r in rows]
            parts.append("</table>")
        for caption, img in s.images:
            parts.append(f"<figure><img src='{e(img)}' alt='{e(caption)}'><figcaption>{e(caption)}"
                         "</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(ws: Workspace, run_id: str, extra_sections: list[Section] | None = None) -> dict[str, Path]:
    """Write the report of a run (a demo run pulls in its spot and VQA sub-runs); returns file paths."""
    info = _run_info(ws, run_id)
    cfg = info.get("config", {})
    out = ws.root / "reports" / run_id  # the local folder: reports are opened on this machine
    out.mkdir(parents=True, exist_ok=True)
    sub = cfg.get("sub_runs", {}) if isinstance(cfg, dict) else {}
    spot_run = sub.get("spot") or (run_id if info.get("kind") == "spot" else None)
    metric_runs = [r for r in [run_id, *sub.values()] if r]
    several = sum(k.startswith("spot") for k in sub) > 1  # e.g. the demo's spotter beside MEAN
    labels = {r: stage for stage, r in sub.items()} if several else None
    sections = [metrics_section(ws, metric_runs, labels)]
    if spot_run:
        sections += [score_curves_section(ws, spot_run, out), confusion_section(ws, spot_run, out)]
    sections += extra_sections or []
    timings = cfg.get("stage_seconds") if isinstance(cfg, dict) else None
    run_sec = Section("Run")
    run_sec.tables.append(("run", ["key", "value"], [["run_id", run_id], ["kind", info.get("kind")],
                                                     ["created_at", info.get("created_at")],
                                                     ["git revision", info.get("git_revision")]]))
    if timings:
        run_sec.tables.append(("stage wall time (s)", ["stage", "seconds"],
                               [[k, round(float(v), 1)] for k, v in timings.items()]))
    run_sec.text.append("config: " + json.dumps(cfg, sort_keys=True, default=str))
    sections.append(run_sec)
    sections = [sec for sec in sections if sec.tables or sec.images or sec.text]  # e.g. a compare run's metrics
    title = f"megc report: {run_id}"
    md, page = out / "report.md", out / "report.html"
    md.write_text(_markdown(title, sections))
    page.write_text(_html(title, sections))
    return {"markdown": md, "html": page, "folder": out}


def compare_section(ws: Workspace, compare_id: str, columns: list[str], rows: list[tuple], out: Path) -> Section:
    """The spotter comparison: its table and a bar chart of spot F1 and STRS per kind and protocol."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sec = Section("Spotter comparison (cross-validated, same folds)")
    sec.tables.append(("spotters", columns, [[_fmt(v, count=c in ("tp", "fp", "fn")) for c, v in zip(columns, r)]
                                             for r in rows]))
    ix = {c: i for i, c in enumerate(columns)}
    labels = [f"{r[ix['kind']]}\n{r[ix['protocol']]}" for r in rows]
    if rows:
        fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(rows)), 3.0))
        x = np.arange(len(rows))
        for off, name in ((-0.2, "spot_f1"), (0.2, "strs")):
            ax.bar(x + off, [float(r[ix[name]] or 0.0) for r in rows], width=0.4, label=name)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title(f"spot F1 and STRS per spotter ({compare_id})", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "compare.png", dpi=90)
        plt.close(fig)
        sec.images.append(("spot F1 and STRS", "compare.png"))
    sec.text.append("Each kind is trained on the same folds with no final model; every video is spotted by the "
                    "fold that held out its subject. megc2025 = the official scorer's figures, strict = one-to-one.")
    return sec
