"""Import the MEAN release's Keras HDF5 checkpoints (MEAN_Weights/ of genbing99/MEAN_Spot-then-recognize,
PROTOCOL sections 4 and 9) into the registry as a megc MEAN model; read with h5py, no TensorFlow.

What is read: `MEAN_Weights/<DATASET>/{spot_recog,spot,recog}/s<N>.hdf5` (one file per LOSO fold), one of
those folders, or a single s<N>.hdf5. Both HDF5 forms of the release: Keras `save_weights` files (layer groups
and `layer_names` at the root) and whole-model `model.save` files (the same under `model_weights`). Layer
names are auto-numbered, so layers are mapped by kind (conv: 4-D kernel + bias; BatchNorm: gamma, beta,
moving mean, moving variance; Dense: 2-D kernel + bias) and order: the first three convs and the three
BatchNorms are the u, v and strain streams, further convs are head convs paired in order with the Dense
layers; a Dense is the spotting head when it is named `spot` or has one output, the recognition head when
named `recog` or has C outputs. Every shape is then checked against its role.

Layouts: conv kernels HWIO -> OIHW; a head Dense's 392 inputs are Keras' channels-last flatten of 7x7x8
(index (y, x, c)), reordered to megc's channels-first flatten (c, y, x).

A fold takes each part (shared streams, spotting head, recognition head) from the first of its files that
holds it, in the order spot_recog, spot, recog. A part no file holds is zeros (spotting score 0, uniform class
probabilities) and the card lists the heads that were imported. Fold sN held out the release's N-th subject:
the N-th (1-based, natural order) subject with a micro-expression of the dataset the release was trained on.
`subjects_from` applies that rule to a dataset in the workspace, `subject_map` maps folds by hand; without
either a fold holds out no named subject and spotting uses the final model for every video. The release has
no all-subject model: model.safetensors is a chosen fold (default the lowest sN).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from storage.errors import InputError
from storage.vocabulary import STR_CLASSES
from storage.workspace import Workspace

FORMS = ("spot_recog", "spot", "recog")  # the release's sub-folders, in the order a fold takes its parts from
PARTS = ("shared", "spot", "recog")
_FOLD_FILE = re.compile(r"^s(\d+)\.(hdf5|h5)$", re.IGNORECASE)
STREAMS = (("u", "stream_u", 3), ("v", "stream_v", 3), ("strain", "stream_e", 8))


@dataclasses.dataclass(frozen=True)
class Release:
    """What the release used for one dataset: its folder, frame rate, flow step k, k' and class order."""

    folder: str
    fps: float
    k: int
    k_prime: int
    classes: tuple[str, ...]
    k_prime_note: str


# k: the release's set_k (round(0.1 s x fps); 3 at 25 fps). k': published for CAS(ME)^2 and SAMM-LV (PROTOCOL
# section 4, int((mean ME length + 1) / 2)); the release publishes none for CASME II and SMIC, whose default is
# the published ones' duration, about 0.19 s (6 / 30 fps, 37 / 200 fps), at the dataset's fps.
RELEASES: dict[str, Release] = {
    "casme_sq": Release("CASME_sq", 30.0, 3, 6, STR_CLASSES, "published (CAS(ME)^2)"),
    "samm_lv": Release("SAMMLV", 200.0, 20, 37, STR_CLASSES, "published (SAMM-LV)"),
    "casme2": Release("CASME2", 200.0, 20, 37, ("disgust", "happiness", "others", "surprise", "repression"),
                      "default: about 0.19 s at 200 fps (not published; set --k-prime)"),
    "smic": Release("SMIC_HS", 100.0, 10, 19, STR_CLASSES,
                    "default: about 0.19 s at 100 fps (not published; set --k-prime)"),
    "smic_vis": Release("SMIC_VIS", 25.0, 3, 5, STR_CLASSES,
                        "default: about 0.19 s at 25 fps (not published; set --k-prime)"),
    "smic_nir": Release("SMIC_NIR", 25.0, 3, 5, STR_CLASSES,
                        "default: about 0.19 s at 25 fps (not published; set --k-prime)"),
}

Layer = tuple[str, list[tuple[str, np.ndarray]]]  # (layer name, [(weight name, array)] in weight_names order)


def _text(v: object) -> str:
    return v.decode("utf8") if isinstance(v, bytes) else str(v)


def _attr_list(group, name: str) -> list[str] | None:
    """A Keras list attribute (also split into name0, name1, ... as Keras does for long lists); None if absent."""
    if name in group.attrs:
        return [_text(v) for v in np.asarray(group.attrs[name]).reshape(-1)]
    if f"{name}0" not in group.attrs:
        return None
    out, i = [], 0
    while f"{name}{i}" in group.attrs:
        out += [_text(v) for v in np.asarray(group.attrs[f"{name}{i}"]).reshape(-1)]
        i += 1
    return out


def read_keras_weights(path: Path) -> list[Layer]:
    """The layers with weights of a Keras HDF5 file (save_weights or whole-model form), in layer_names order."""
    import h5py

    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"not an HDF5 file ({exc})", file=path) from None
    with fh:
        group = fh["model_weights"] if isinstance(fh.get("model_weights"), h5py.Group) else fh
        names = _attr_list(group, "layer_names")
        if names is None:
            raise InputError("not a Keras weights file: no layer_names attribute at the root or in model_weights",
                             file=path)
        layers = []
        for name in names:
            lg = group.get(name)
            if not isinstance(lg, h5py.Group):
                raise InputError(f"layer {name!r} is listed in layer_names but has no group", file=path)
            weights = []
            for wn in _attr_list(lg, "weight_names") or []:
                ds = lg.get(wn)
                if not isinstance(ds, h5py.Dataset):
                    raise InputError(f"layer {name!r}: weight {wn!r} is listed in weight_names but missing", file=path)
                weights.append((wn, np.asarray(ds[()])))
            if weights:
                layers.append((name, weights))
    return layers


def _base(weight_name: str) -> str:
    """'conv2d_96/kernel:0' -> 'kernel'."""
    return re.sub(r":\d+$", "", weight_name.rsplit("/", 1)[-1])


def _kind(layer: Layer) -> str | None:
    shapes = [a.ndim for _, a in layer[1]]
    if shapes == [4, 1]:
        return "conv"
    if shapes == [2, 1]:
        return "dense"
    if shapes == [1, 1, 1, 1]:
        return "bn"
    return None


def _describe(layer: Layer) -> str:
    return ", ".join(f"{wn} {tuple(a.shape)}" for wn, a in layer[1])


def _ordered(layer: Layer, names: tuple[str, ...]) -> list[np.ndarray]:
    """A layer's arrays in the order `names` (by their names when they are exactly these, else as stored)."""
    by_name = {_base(wn): a for wn, a in layer[1]}
    if set(by_name) == set(names) and len(by_name) == len(layer[1]):
        return [by_name[n] for n in names]
    return [a for _, a in layer[1]]


def _check(path: Path, layer: Layer, role: str, arrays: list[np.ndarray], shapes: list[tuple]) -> None:
    for (wn, _), a, shape in zip(layer[1], arrays, shapes):
        if tuple(a.shape) != shape:
            raise InputError(f"layer {layer[0]!r} (the {role}, by its order) has {_base(wn)} of shape "
                             f"{tuple(a.shape)}, expected {shape}", file=path)


def _conv(path: Path, layer: Layer, role: str, cin: int, cout: int) -> dict[str, np.ndarray]:
    kernel, bias = _ordered(layer, ("kernel", "bias"))
    _check(path, layer, role, [kernel, bias], [(5, 5, cin, cout), (cout,)])
    return {"weight": np.ascontiguousarray(kernel.transpose(3, 2, 0, 1), np.float32),
            "bias": np.asarray(bias, np.float32)}


def _bn(path: Path, layer: Layer, role: str, n: int) -> dict[str, np.ndarray]:
    arrays = _ordered(layer, ("gamma", "beta", "moving_mean", "moving_variance"))
    _check(path, layer, role, arrays, [(n,)] * 4)
    gamma, beta, mean, var = (np.asarray(a, np.float32) for a in arrays)
    return {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var,
            "num_batches_tracked": np.array(0, np.int64)}


def _dense(path: Path, layer: Layer, role: str, out: int) -> dict[str, np.ndarray]:
    kernel, bias = _ordered(layer, ("kernel", "bias"))
    _check(path, layer, role, [kernel, bias], [(392, out), (out,)])
    # Keras flattens the 7x7x8 map as (y, x, c); megc flattens (c, y, x)
    weight = kernel.reshape(7, 7, 8, out).transpose(3, 2, 0, 1).reshape(out, 392)
    return {"weight": np.ascontiguousarray(weight, np.float32), "bias": np.asarray(bias, np.float32)}


def mean_parts(path: Path, layers: list[Layer], classes: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """megc state-dict entries of a release file, by part: shared (always), spot and/or recog."""
    for layer in layers:
        if _kind(layer) is None:
            raise InputError(f"layer {layer[0]!r} ({_describe(layer)}) fits no MEAN layer (conv: 4-D kernel + bias, "
                             "BatchNorm: 4 vectors, Dense: 2-D kernel + bias)", file=path)
    convs = [la for la in layers if _kind(la) == "conv"]
    bns = [la for la in layers if _kind(la) == "bn"]
    denses = [la for la in layers if _kind(la) == "dense"]
    if len(bns) != 3 or len(denses) not in (1, 2) or len(convs) != 3 + len(denses):
        raise InputError(f"{len(convs)} conv, {len(bns)} BatchNorm and {len(denses)} Dense layers: not a MEAN file "
                         "(3 stream convs, 3 BatchNorms, then one conv and one Dense per head, 1 or 2 heads)",
                         file=path)
    shared: dict[str, np.ndarray] = {}
    for (sname, prefix, n), conv, bn in zip(STREAMS, convs, bns):
        shared |= {f"{prefix}.conv.{k}": v for k, v in _conv(path, conv, f"{sname}-stream conv", 1, n).items()}
        shared |= {f"{prefix}.bn.{k}": v for k, v in _bn(path, bn, f"{sname}-stream BatchNorm", n).items()}
    out = {"shared": shared}
    for conv, dense in zip(convs[3:], denses):
        name, n_out = dense[0], dense[1][0][1].shape[-1]
        head = name if name in ("spot", "recog") else ("spot" if n_out == 1 else "recog")
        if head in out:
            raise InputError(f"layer {name!r}: a second {head} head (Dense {_describe(dense)})", file=path)
        prefix, n = ("spot", 1) if head == "spot" else ("rec", len(classes))
        role = "spotting" if head == "spot" else f"recognition ({len(classes)} classes: {', '.join(classes)})"
        out[head] = {f"{prefix}.conv.{k}": v for k, v in _conv(path, conv, f"{role} head conv", 14, 8).items()}
        out[head] |= {f"{prefix}.dense.{k}": v for k, v in _dense(path, dense, f"{role} head Dense", n).items()}
    return out


def _kind_named(name: str) -> str | None:
    """'casme_sq' or the release folder 'CASME_sq' -> 'casme_sq'; None for anything else."""
    by_folder = {r.folder.lower(): kind for kind, r in RELEASES.items()}
    return name.lower() if name.lower() in RELEASES else by_folder.get(name.lower())


def release_kind(path: Path) -> str | None:
    """The dataset kind named by the release folder in `path` (e.g. .../MEAN_Weights/CASME_sq/spot_recog)."""
    for part in reversed(Path(path).resolve().parts):
        if (kind := _kind_named(part)) is not None:
            return kind
    return None


def fold_files(path: Path) -> dict[int, list[tuple[str, Path]]]:
    """N -> [(form, file)] for every s<N>.hdf5 under `path` (a release folder, one of its sub-folders, or a
    file), each fold's files in the order spot_recog, spot, recog, other."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such file or folder", file=path)
    found: dict[int, list[tuple[str, Path]]] = {}

    def add(form: str, f: Path) -> None:
        m = _FOLD_FILE.match(f.name)
        if m:
            found.setdefault(int(m.group(1)), []).append((form, f))

    if path.is_file():
        if not _FOLD_FILE.match(path.name):
            raise InputError("a release file is named s<N>.hdf5 (N: the held-out subject's number in the release)",
                             file=path)
        add(path.parent.name if path.parent.name in FORMS else "", path)
    elif any((path / form).is_dir() for form in FORMS):
        for form in FORMS:
            for f in sorted((path / form).glob("*")) if (path / form).is_dir() else []:
                add(form, f)
    else:
        for f in sorted(path.glob("*")):
            add(path.name if path.name in FORMS else "", f)
    if not found:
        raise InputError(f"no s<N>.hdf5 files here or in its {', '.join(f + '/' for f in FORMS)} folders", file=path)
    rank = {form: i for i, form in enumerate(FORMS)}
    return {n: sorted(files, key=lambda t: rank.get(t[0], len(FORMS))) for n, files in sorted(found.items())}


def _natural(s: str) -> list:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", s) if t]


def release_subjects(ws: Workspace, dataset: str) -> list[str]:
    """The dataset's subjects with at least one micro-expression, in natural order: subject i+1 is fold s<i+1>."""
    rows = ws.read("intervals", columns=["subject", "kind"], dataset=dataset).to_pylist()
    subjects = sorted({r["subject"] for r in rows if r["kind"] == "micro"}, key=_natural)
    if not subjects:
        raise InputError(f"dataset {dataset!r} has no micro-expression intervals in the workspace; ingest it first")
    return subjects


def parse_subject_map(items: list[str]) -> dict[str, str]:
    """['s1=15,s2=16', 's3=17'] -> {'s1': '15', 's2': '16', 's3': '17'}."""
    out = {}
    for item in items:
        for pair in filter(None, (p.strip() for p in item.split(","))):
            fold, eq, subject = pair.partition("=")
            if not eq or not _FOLD_FILE.match(f"{fold.strip()}.hdf5") or not subject.strip():
                raise InputError(f"subject map entry {pair!r} must be sN=SUBJECT (e.g. s1=15)")
            out[fold.strip().lower()] = subject.strip()
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _empty_head(prefix: str, n: int) -> dict[str, np.ndarray]:
    z = lambda *shape: np.zeros(shape, np.float32)
    return {f"{prefix}.conv.weight": z(8, 14, 5, 5), f"{prefix}.conv.bias": z(8),
            f"{prefix}.dense.weight": z(n, 392), f"{prefix}.dense.bias": z(n)}


def _fold(path: Path, n: int, files: list[tuple[str, Path]], classes: list[str]
          ) -> tuple[dict[str, np.ndarray], list[str], list[str], list[dict]]:
    """(megc weights, imported heads, notes, source records) of fold s<n>: each part from the first file holding
    it, zeros for a head no file holds."""
    parts: dict[str, dict[str, np.ndarray]] = {}
    notes, sources = [], []
    for form, f in files:
        got = mean_parts(f, read_keras_weights(f), classes)
        used = [p for p in PARTS if p in got and p not in parts]
        for p in used:
            parts[p] = got[p]
        if "shared" not in used and any(not np.allclose(parts["shared"][k], v, atol=1e-6)
                                        for k, v in got["shared"].items()):
            notes.append(f"{f.name} in {form or f.parent.name}/: shared layers differ from the ones used")
        sources.append({"file": str(f.relative_to(path)) if f != path else f.name, "sha256": _sha256(f),
                        "fold": f"s{n}", "holds": [p for p in PARTS if p in got], "used": used})
    if "recog" in parts and (path / "recog").is_dir() and "recog" not in {form for form, _ in files}:
        notes.append(f"no recog/s{n}.hdf5: the recognition head is spot_recog's, which the release left untrained "
                     "when the subject had no recognition samples")
    weights = dict(parts["shared"])
    weights |= parts.get("spot") or _empty_head("spot", 1)
    weights |= parts.get("recog") or _empty_head("rec", len(classes))
    return weights, [h for h in ("spot", "recog") if h in parts], notes, sources


def import_mean_keras(ws: Workspace, path: str | Path, name: str | None = None, dataset_kind: str | None = None,
                      fold: str = "all", final: str | None = None, k_prime: int | None = None,
                      subjects_from: str | None = None, subject_map: dict[str, str] | None = None) -> dict:
    """Read the release's HDF5 files under `path` and register them as one MEAN model (folds s<N>); every file
    is read and checked before anything is written. Returns a summary."""
    from models.registry import check_name, save_model
    from storage.config import git_revision

    path = Path(path)
    files = fold_files(path)
    kind = _kind_named(dataset_kind) if dataset_kind else release_kind(path)
    if kind is None:
        raise InputError(f"dataset kind {dataset_kind!r} unknown; give --dataset-kind, one of {sorted(RELEASES)}"
                         if dataset_kind else "cannot tell the release dataset from the path; give --dataset-kind, "
                                              f"one of {sorted(RELEASES)}", file=path)
    rel = RELEASES[kind]
    classes = list(rel.classes)
    name = check_name(name or f"mean-{kind}-official")
    if fold.lower() != "all":
        m = _FOLD_FILE.match(f"{fold}.hdf5")
        if not m or int(m.group(1)) not in files:
            raise InputError(f"fold {fold!r} not found; folds here: {', '.join(f's{n}' for n in files)}", file=path)
        chosen = [int(m.group(1))]
    else:
        chosen = list(files)
    mapping = {k.lower(): v for k, v in (subject_map or {}).items()}
    if subjects_from and not mapping:
        subjects = release_subjects(ws, subjects_from)
        if len(files) != len(subjects) or max(files) > len(subjects):
            raise InputError(f"the release has {len(files)} folds (s{min(files)}..s{max(files)}) but dataset "
                             f"{subjects_from!r} has {len(subjects)} subjects with micro-expressions; the fold order "
                             "cannot be matched: give --subject-map sN=SUBJECT", file=path)
        mapping = {f"s{i + 1}": s for i, s in enumerate(subjects)}
    unknown = sorted(set(mapping) - {f"s{n}" for n in files})
    if unknown:
        raise InputError(f"subject map names folds {unknown} that have no file; folds here: "
                         f"{', '.join(f's{n}' for n in files)}", file=path)
    final_fold = (final or f"s{chosen[0]}").lower()
    if final_fold not in {f"s{n}" for n in chosen}:
        raise InputError(f"final fold {final!r} is not among the imported folds {[f's{n}' for n in chosen]}")
    kp = int(k_prime) if k_prime is not None else rel.k_prime
    if kp < 1:
        raise InputError(f"k' must be at least 1 frame, not {kp}")

    fold_weights: dict[str, dict[str, np.ndarray]] = {}
    folds, sources = [], []
    for n in chosen:
        fold_weights[f"s{n}"], heads, notes, fold_sources = _fold(path, n, files[n], classes)
        sources += fold_sources
        subject = mapping.get(f"s{n}")
        folds.append({"fold": f"s{n}", "heldout_subjects": [subject] if subject else [], "k_prime": kp,
                      "release_subject": n, "heads": heads, "notes": notes})
    heads = sorted({h for f in folds for h in f["heads"]}, key=("spot", "recog").index)
    card = {
        "kind": "mean", "classes": classes, "k": rel.k, "k_prime": kp, "fps": [rel.fps],
        "k_seconds": round(rel.k / rel.fps, 6), "k_prime_seconds": round(kp / rel.fps, 6),
        "k_prime_source": "given (--k-prime)" if k_prime is not None else rel.k_prime_note,
        "heads": heads, "split": "loso", "folds": folds,
        "final": final_fold, "final_note": "the release has no all-subject model; model.safetensors is this fold",
        "subject_map": {f["fold"]: f["heldout_subjects"][0] for f in folds if f["heldout_subjects"]} or None,
        "subjects_from": subjects_from if subjects_from and not subject_map else None,
        "training_data": {"dataset": f"MEAN release {rel.folder}", "subjects": [f["fold"] for f in folds]},
        "source": {"format": "keras-hdf5", "release": f"genbing99/MEAN_Spot-then-recognize MEAN_Weights/{rel.folder}",
                   "dataset_kind": kind, "path": str(path.resolve()), "files": sources},
        "created_at": datetime.now(UTC).isoformat(), "git_revision": git_revision(),
    }
    save_model(ws, name, fold_weights[final_fold], card, fold_weights)
    return {"model": name, "dataset_kind": kind, "folds": [f["fold"] for f in folds], "final": final_fold,
            "heads": heads, "classes": classes, "k": rel.k, "k_prime": kp, "fps": rel.fps,
            "subject_map": card["subject_map"], "files": len(sources),
            **({} if card["subject_map"] else {"note": "no fold names a subject (give --subjects-from or "
                                                      "--subject-map): spot scores every video with the final "
                                                      "model"})}
