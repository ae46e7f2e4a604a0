"""Synthetic data generator: identities, planted signal measured with optical flow, layouts, determinism."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from storage.errors import InputError
from storage.ingest import ingest
from tasks.synth import SynthResult, generate, make_dataset, preset
from tasks.synth.aus import AU_NAMES, build_basis, peak_displacement
from tasks.synth.formats import writer_module
from tasks.synth.identities import detect, make_identity
from storage.vocabulary import FINE_TO_COARSE as COARSE_OF_FINE
from tasks.synth.timeline import CATALOGUE
from tasks.synth.writer import PARTIAL_FILE, _stamp, build_video, video_names

INTERVAL_COLS = ["dataset", "subject", "video", "onset", "apex", "offset", "kind", "emotion", "emotion_fine",
                 "aus", "side"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> SynthResult:
    """The tiny preset written by the real CLI (`megc synth --preset tiny --out DIR --seed 0`)."""
    from typer.testing import CliRunner

    from flows.cli import app

    out = tmp_path_factory.mktemp("synth") / "tiny"
    r = CliRunner().invoke(app, ["synth", "--preset", "tiny", "--out", str(out), "--seed", "0"])
    assert r.exit_code == 0, r.output
    assert "3 videos" in r.output
    return SynthResult.load(out)


def _grey(res: SynthResult, subject: str, code: str, first: int, i: int) -> np.ndarray:
    p = writer_module(res.format).frame_path(res.root, subject, code, first + i)
    img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
    assert img is not None, p
    return img


def _flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(np.ascontiguousarray(a), np.ascontiguousarray(b), None,
                                        0.5, 3, 15, 3, 5, 1.2, 0)


def _canonical(ws, dataset: str) -> tuple[list[dict], list[dict]]:
    got = sorted(({c: r[c] for c in INTERVAL_COLS} for r in ws.read("intervals", dataset=dataset).to_pylist()),
                 key=lambda r: (r["video"], r["onset"]))
    ev = sorted(ws.read("events", dataset=dataset).to_pylist(), key=lambda r: (r["video"], r["onset"], r["kind"]))
    return got, ev


def test_identities_found_by_dlib_and_distinct():
    cfg = preset("tiny")
    ids = [make_identity(i, cfg, 0) for i in range(8)]
    greys = []
    for ident in ids:
        g = cv2.cvtColor(ident.image, cv2.COLOR_RGB2GRAY)
        found = detect(g)
        assert found is not None, f"dlib finds no face on identity {ident.index}"
        box, pts = found
        assert pts.shape == (68, 2)
        assert 0.75 * cfg.face_width < box[2] < 1.3 * cfg.face_width
        assert np.abs(pts - ident.landmarks).max() < 1.0  # the stored landmarks are dlib's
        assert (pts[:, 0] > 0).all() and (pts[:, 0] < cfg.width).all()
        greys.append(g.astype(np.float32))
    diffs = [np.abs(greys[i] - greys[j]).mean() for i in range(8) for j in range(i + 1, 8)]
    assert min(diffs) > 12.0, f"two identities look alike (mean grey difference {min(diffs):.1f})"
    assert {i.photo for i in ids} == {"astronaut", "grace_hopper"}


def test_au_fields_and_catalogue():
    ident = make_identity(0, preset("tiny"), 0)
    basis = build_basis(ident.landmarks, ident.face_width, ident.image.shape[:2])
    for au in AU_NAMES:
        assert peak_displacement(basis.fields[au]) == pytest.approx(basis.scale, rel=1e-4)
    mid = float(ident.landmarks[27:31, 0].mean()) - basis.roi[0]
    for au in ("AU12", "AU14"):
        left = np.hypot(*basis.fields[f"{au}:left"])
        right = np.hypot(*basis.fields[f"{au}:right"])
        # the subject's left is the image's right
        assert left[:, int(mid) + 3:].max() > 0.99 * basis.scale and left[:, :int(mid) - 3].max() < 0.05 * basis.scale
        assert right[:, :int(mid) - 3].max() > 0.99 * basis.scale and right[:, int(mid) + 3:].max() < 0.05 * basis.scale
    from storage.adapters.base import emotion_labels

    for coarse, entries in CATALOGUE.items():
        for fine, aus, _ in entries:
            assert set(aus) <= set(AU_NAMES)
            assert emotion_labels(fine) == (COARSE_OF_FINE[fine], fine)
            assert COARSE_OF_FINE[fine] == coarse or (coarse == "others" and fine == "repression")


def test_cli_tiny_ingests_to_ground_truth(tiny, ws):
    assert len(tiny.videos) == 3
    for v in tiny.videos:
        its = [i for i in tiny.intervals if i["video_code"] == v["video_code"] and i["subject"] == v["subject"]]
        evs = [e for e in tiny.events if e["video_code"] == v["video_code"] and e["subject"] == v["subject"]]
        assert any(i["kind"] == "micro" for i in its) and any(i["kind"] == "macro" for i in its)
        assert any(e["kind"] == "blink" for e in evs)
        spans = sorted((i["onset"], i["offset"]) for i in its)
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), "expressions overlap"
        for i in its:
            fps = v["fps"]
            n = i["offset"] - i["onset"] + 1
            if i["kind"] == "micro":
                assert 0.2 * fps - 1 <= n <= 0.5 * fps + 1
            assert i["onset"] < i["apex"] < i["offset"]
            assert (i["side"] is not None) == (i["emotion_fine"] == "contempt")
    s = ingest(ws, "casme3", tiny.root, dataset="tiny")
    assert s["rejects"] == 0 and s["frames"] == sum(v["n_frames"] for v in tiny.videos)
    got, ev = _canonical(ws, "tiny")
    assert got == tiny.canonical_intervals("tiny")
    assert ev == tiny.canonical_events("tiny")
    vids = {r["video"]: r for r in ws.read("videos", dataset="tiny").to_pylist()}
    assert vids["spNO.1_a"]["width"] == 320 and vids["spNO.1_a"]["n_frames"] == 210


def test_planted_micro_expressions_measured_by_optical_flow(tiny):
    cfg = preset("tiny")
    amps = {(a["subject"], a["onset"]): a["peak_px"] for a in tiny.apex_displacement}
    checked = 0
    for s in range(cfg.subjects):
        subj, code, first = video_names("casme3", s, 0)
        r = build_video(cfg, tiny.seed, s, 0)
        x0, y0, x1, y1 = r.basis.roi
        lo, hi = cfg.micro.amplitude_min_px * r.scale, cfg.micro.amplitude_max_px * r.scale
        for e in r.timeline.expressions:
            d = r.field(e.apex)
            gt = np.hypot(d[0], d[1])
            peak = float(gt.max())
            assert peak == pytest.approx(amps[(subj, e.onset)], rel=1e-4)
            if e.kind == "macro":
                assert 4.0 * r.scale * 0.999 <= peak <= 12.0 * r.scale * 1.001
                continue
            assert lo * 0.999 <= peak <= hi * 1.001, "rendered ME field outside 0.5-2.5 px (x face scale)"
            f = _flow(_grey(tiny, subj, code, first, e.onset)[y0:y1, x0:x1],
                      _grey(tiny, subj, code, first, e.apex)[y0:y1, x0:x1])
            planted, background = gt > 0.5 * peak, gt < 0.02 * peak
            f = f - np.median(f[background], axis=0)  # remove head motion
            mag = np.hypot(f[..., 0], f[..., 1])
            inside, outside = float(np.median(mag[planted])), float(np.median(mag[background]))
            assert inside > 3 * outside and inside > 0.15, (e, inside, outside)
            measured = float(np.percentile(mag[planted], 95))
            assert 0.4 * lo <= measured <= 1.2 * hi, (e, measured)
            assert 0.3 * peak <= measured <= 1.2 * peak, (e, measured, peak)
            # the flow points the way the skin was moved
            cos = (f[..., 0] * d[0] + f[..., 1] * d[1])[planted] / (mag[planted] * gt[planted] + 1e-6)
            assert float(np.median(cos)) > 0.7
            checked += 1
    assert checked >= 4


def test_quiet_frames_move_less_than_a_micro_expression(tiny):
    cfg = preset("tiny")
    for s in range(cfg.subjects):
        subj, code, first = video_names("casme3", s, 0)
        r = build_video(cfg, tiny.seed, s, 0)
        x0, y0, x1, y1 = r.basis.roi
        tl = r.timeline
        busy = np.zeros(tl.n_frames + 8, bool)
        for span in ([(e.onset, e.offset) for e in tl.expressions] + [(b.onset, b.offset) for b in tl.blinks]
                     + [(j.onset, j.offset) for j in tl.jerks]):
            busy[span[0]:span[1] + 1] = True
        k, worst, pairs = 3, 0.0, 0
        for i in range(0, tl.n_frames - k, 4):
            if busy[i:i + k + 1].any():
                continue
            f = _flow(_grey(tiny, subj, code, first, i)[y0:y1, x0:x1],
                      _grey(tiny, subj, code, first, i + k)[y0:y1, x0:x1])
            f = f - np.median(f.reshape(-1, 2), axis=0)
            worst = max(worst, float(np.percentile(np.hypot(f[..., 0], f[..., 1]), 95)))
            pairs += 1
        assert pairs >= 10
        assert worst < cfg.micro.amplitude_min_px * r.scale, (subj, worst)
        # a blink is a large local eyelid motion: full field at its apex, flow well above the quiet level
        b = tl.blinks[0]
        closure = np.hypot(*r.basis.fields["AU45"]) * tl.blink_weight(b.apex)
        assert float(closure.max()) == pytest.approx(b.closure * r.eye_opening, rel=1e-4)
        eyes = r.identity.landmarks[36:48]
        (ex0, ey0), (ex1, ey1) = eyes.min(axis=0).astype(int) - 6, eyes.max(axis=0).astype(int) + 6
        f = _flow(_grey(tiny, subj, code, first, b.onset)[ey0:ey1, ex0:ex1],
                  _grey(tiny, subj, code, first, b.apex)[ey0:ey1, ex0:ex1])
        blink = float(np.percentile(np.hypot(f[..., 0], f[..., 1]), 99))
        assert blink > max(2 * cfg.micro.amplitude_min_px * r.scale, 3 * worst), (subj, blink, worst)


def _small(fmt: str = "casme3", **kw):
    cfg = dataclasses.replace(preset("tiny"), format=fmt, subjects=1, duration_s=2.0, **kw)
    return dataclasses.replace(cfg, macro=dataclasses.replace(cfg.macro, min_count=0, duration_max_s=1.0))


def test_deterministic_by_seed_and_resumes(tmp_path):
    cfg = _small()
    a = generate(cfg, tmp_path / "a", seed=5)
    b = generate(cfg, tmp_path / "b", seed=5)
    c = generate(cfg, tmp_path / "c", seed=6)
    frames = sorted((tmp_path / "a").rglob("*.jpg"))
    assert len(frames) == 60
    for p in frames:
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
    assert (a.intervals, a.events) == (b.intervals, b.events)
    assert a.intervals != c.intervals
    assert any(p.read_bytes() != (tmp_path / "c" / p.relative_to(tmp_path / "a")).read_bytes() for p in frames)
    # finished: a second call returns the stored ground truth without rewriting anything
    before = {p: p.stat().st_mtime_ns for p in frames}
    again = generate(cfg, tmp_path / "a", seed=5)
    assert again.intervals == a.intervals and {p: p.stat().st_mtime_ns for p in frames} == before
    with pytest.raises(InputError, match="another config or seed"):
        generate(cfg, tmp_path / "a", seed=6)
    # unfinished: the missing last frame and ground truth are redone, identical to before
    (tmp_path / "b" / "megc_synth.json").unlink()
    last = max(frames, key=lambda p: int(p.stem))
    (tmp_path / "b" / last.relative_to(tmp_path / "a")).unlink()
    (tmp_path / "b" / PARTIAL_FILE).write_text(json.dumps(_stamp(cfg, 5)))  # as an interrupted run leaves it
    redo = generate(cfg, tmp_path / "b", seed=5)
    assert redo.intervals == a.intervals
    assert (tmp_path / "b" / last.relative_to(tmp_path / "a")).read_bytes() == last.read_bytes()


@pytest.mark.parametrize("fmt,extra", [
    ("samm_lv", {"fps": 200.0, "grey": True, "width": 400, "height": 300, "face_width": 150}),
    ("video", {}),
])
def test_other_layouts_round_trip(tmp_path, ws, fmt, extra):
    res = generate(_small(fmt, **extra), tmp_path / fmt, seed=2)
    assert res.intervals, "no interval planted"
    s = ingest(ws, res.adapter, res.root, dataset=fmt)
    assert s["rejects"] == 0
    got, ev = _canonical(ws, fmt)
    assert got == res.canonical_intervals(fmt)
    assert ev == res.canonical_events(fmt)
    v = ws.read("videos", dataset=fmt).to_pylist()[0]
    assert v["n_frames"] == int(round(2.0 * v["fps"])) and v["fps"] == extra.get("fps", 30.0)
    if fmt == "samm_lv":
        img = cv2.imread(str(Path(v["path"]) / "006_1_0001.jpg"), cv2.IMREAD_UNCHANGED)
        assert img.ndim == 2 and img.shape == (300, 400)
    else:
        assert v["source_kind"] == "video_file" and v["path"].endswith(".avi")


def test_make_dataset_generates_once_and_ingests(tiny, ws):
    name = make_dataset(ws, "tiny", out=tiny.root, seed=0)
    got, _ = _canonical(ws, name)
    assert got == tiny.canonical_intervals(name)
    n_runs = len(ws.read("runs"))
    assert make_dataset(ws, "tiny", out=tiny.root, seed=0) == name
    assert len(ws.read("runs")) == n_runs  # stored already: nothing regenerated or re-ingested


def test_bad_settings_name_the_problem(tmp_path):
    with pytest.raises(InputError, match="unknown synth preset"):
        preset("huge")
    with pytest.raises(InputError, match="face_width"):
        generate(dataclasses.replace(preset("tiny"), face_width=40), tmp_path / "x")
    with pytest.raises(InputError, match="format"):
        generate(dataclasses.replace(preset("tiny"), format="avi"), tmp_path / "y")


def test_process_pool_matches_inline_rendering(tmp_path):
    cfg = dataclasses.replace(_small(), subjects=2, duration_s=1.5)
    seen: list[tuple[int, int]] = []
    pooled = generate(dataclasses.replace(cfg, workers=2), tmp_path / "pool", seed=3,
                      progress=lambda d, t: seen.append((d, t)))
    inline = generate(dataclasses.replace(cfg, workers=1), tmp_path / "inline", seed=3)
    assert pooled.intervals == inline.intervals and pooled.events == inline.events
    assert seen[-1] == (90, 90)
    frames = sorted((tmp_path / "pool").rglob("*.jpg"))
    assert len(frames) == 90
    assert all(p.read_bytes() == (tmp_path / "inline" / p.relative_to(tmp_path / "pool")).read_bytes()
               for p in frames)
