"""Independent pure-Python reference of STR scoring, written from PROTOCOL.md section 2; tests only.

Rows are dicts with subject, video, onset, offset, emotion, in file order. Returns the same shape as
tasks.score_str.score_str (None for NaN) so the SQL implementation can be checked against it.
"""

from __future__ import annotations


def iou(a: dict, b: dict) -> float:
    """Inclusive-frame IoU of two intervals, computed on frame sets."""
    fa = set(range(a["onset"], a["offset"] + 1))
    fb = set(range(b["onset"], b["offset"] + 1))
    union = fa | fb
    return len(fa & fb) / len(union) if union else 0.0


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def _match_official(pred: list[dict], gt: list[dict]) -> tuple[list[tuple[dict, dict]], int, int]:
    subjects = list(dict.fromkeys(r["subject"] for r in pred))
    pairs, fp, fn = [], 0, 0
    for s in subjects:
        videos = list(dict.fromkeys(g["video"] for g in gt if g["subject"] == s))
        for v in videos:
            vp = [r for r in pred if r["subject"] == s and r["video"] == v]
            vg = [g for g in gt if g["subject"] == s and g["video"] == v]
            taken = [False] * len(vg)
            for r in vp:
                hit = False
                for j, g in enumerate(vg):
                    if not taken[j] and iou(r, g) >= 0.5:
                        taken[j] = True
                        hit = True
                        pairs.append((r, g))
                if not hit:
                    fp += 1
            fn += taken.count(False)
    return pairs, fp, fn


def _match_strict(pred: list[dict], gt: list[dict]) -> tuple[list[tuple[dict, dict]], int, int]:
    pairs, fp = [], 0
    taken: set[int] = set()
    for r in pred:
        best, best_iou = None, -1.0
        for j, g in enumerate(gt):
            if j in taken or g["subject"] != r["subject"] or g["video"] != r["video"]:
                continue
            x = iou(r, g)
            if x >= 0.5 and x > best_iou:
                best, best_iou = j, x
        if best is None:
            fp += 1
        else:
            taken.add(best)
            pairs.append((r, gt[best]))
    return pairs, fp, len(gt) - len(taken)


def reference_score(pred: list[dict], gt: list[dict], protocol: str = "megc2025",
                    classes: list[str] | None = None) -> dict:
    """STR figures as PROTOCOL.md describes them for `protocol` (megc2025 or strict)."""
    official = protocol == "megc2025"
    if classes is None:
        classes = ["negative", "positive", "surprise"]
    elif classes == ["all"]:
        classes = sorted({g["emotion"] for g in gt})
    pairs, fp, fn = (_match_official if official else _match_strict)(pred, gt)
    tp = len(pairs)
    sp, sr, sf = _prf(tp, fp, fn)
    spotting = {"tp": tp, "fp": fp, "fn": fn, "precision": sp, "recall": sr, "f1": sf}
    if official and tp == 0:
        zero = {"tp": 0, "fp": 0, "fn": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "uf1": 0.0, "uar": 0.0}
        return {"protocol": protocol, "classes": classes, "spotting": spotting, "analysis": zero, "strs": 0.0}
    kept = [(r["emotion"], g["emotion"]) for r, g in pairs if g["emotion"] in classes]
    ps, rs, fs, tps, fps, fns = [], [], [], 0, 0, 0
    for c in classes:
        truth = [g == c for _, g in kept]
        guess = [p == c for p, _ in kept]
        ctp = sum(t and q for t, q in zip(truth, guess))
        cfp = sum((not t) and q for t, q in zip(truth, guess))
        cfn = sum(t and not q for t, q in zip(truth, guess))
        if official and len(set(truth) | set(guess)) != 2:
            ctp = cfp = cfn = 0
        p, r, f = _prf(ctp, cfp, cfn)
        ps.append(p)
        rs.append(r)
        fs.append(f)
        tps, fps, fns = tps + ctp, fps + cfp, fns + cfn
    n = len(classes)
    P = sum(ps) / n if n else 0.0
    R = sum(rs) / n if n else 0.0
    if P + R:
        F = 2 * P * R / (P + R)
    else:
        F = None if official else 0.0
    if official:
        # the official scorer prints correct TPs, and wrong predictions of a class in the set as both FP and FN
        tps = sum(p == g and p in classes for p, g in kept)
        fps = fns = sum(p != g and p in classes for p, g in kept)
    analysis = {"tp": tps, "fp": fps, "fn": fns, "precision": P, "recall": R, "f1": F,
                "uf1": sum(fs) / n if n else 0.0, "uar": P if official else R}
    strs = None if F is None else sf * F
    return {"protocol": protocol, "classes": classes, "spotting": spotting, "analysis": analysis, "strs": strs}
