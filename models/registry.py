"""Model registry in the workspace: <home>/models/<name>/model.safetensors + card.json (+ folds/<fold>.safetensors).

Weights are stored and loaded with safetensors only; nothing is ever unpickled. For a LOSO model,
model.safetensors holds the final model trained on all subjects (or, with train_final off, the first fold's
weights) and folds/<fold>.safetensors the per-fold models; the card maps each fold to its held-out subjects.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import numpy as np

from storage.errors import InputError, MegcError
from storage.workspace import Workspace

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    """A model or fold name usable as a folder name, else InputError."""
    if not _NAME.match(name or ""):
        raise InputError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (no slashes)")
    return name


def model_dir(ws: Workspace, name: str) -> Path:
    """Folder of a registered model."""
    return ws.root / "models" / check_name(name)


def save_model(ws: Workspace, name: str, weights: dict[str, np.ndarray], card: dict,
               folds: dict[str, dict[str, np.ndarray]] | None = None) -> Path:
    """Atomically (re)place a model: weights, per-fold weights and card are written together."""
    from safetensors.numpy import save_file

    final = model_dir(ws, name)
    staging = ws.ensure().tmp_dir / f"model-{name}-{uuid.uuid4().hex}"
    (staging / "folds").mkdir(parents=True)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(staging / "model.safetensors"))
        for fold, w in (folds or {}).items():
            save_file({k: np.ascontiguousarray(v) for k, v in w.items()},
                      str(staging / "folds" / f"{check_name(fold)}.safetensors"))
        (staging / "card.json").write_text(json.dumps({**card, "name": name}, indent=2, default=str))
        ws.swap_in(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def load_card(ws: Workspace, name: str) -> dict:
    """The JSON card of a registered model."""
    p = model_dir(ws, name) / "card.json"
    if not p.is_file():
        known = [c["name"] for c in list_models(ws)]
        raise MegcError(f"no model named {name!r} in {ws.root / 'models'}; known: {known}")
    return json.loads(p.read_text())


def list_models(ws: Workspace) -> list[dict]:
    """Cards of every registered model, by name."""
    root = ws.root / "models"
    cards = []
    for p in sorted(root.glob("*/card.json")) if root.is_dir() else []:
        try:
            cards.append(json.loads(p.read_text()))
        except json.JSONDecodeError:
            continue
    return cards


def load_weights(ws: Workspace, name: str, fold: str | None = None) -> dict[str, np.ndarray]:
    """Weights of a model (or of one of its folds) as numpy arrays, via safetensors."""
    from safetensors.numpy import load_file

    d = model_dir(ws, name)
    p = d / "folds" / f"{check_name(fold)}.safetensors" if fold else d / "model.safetensors"
    if not p.is_file():
        raise MegcError(f"model {name!r} has no weights file {p.name}" + (f" for fold {fold!r}" if fold else ""))
    return load_file(str(p))


def fold_for_subject(card: dict, subject: str) -> str | None:
    """The fold whose model never saw `subject` (cross-validated inference), if any."""
    for fold in card.get("folds", []):
        if subject in fold.get("heldout_subjects", []):
            return fold["fold"]
    return None


def load_mean(ws: Workspace, name: str, fold: str | None = None, device: str | None = None):
    """(MEAN in inference mode, card) for a registered model or one of its folds."""
    from models.mean import from_state_arrays

    card = load_card(ws, name)
    return from_state_arrays(load_weights(ws, name, fold), len(card["classes"]), device), card
