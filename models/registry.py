"""Model registry in the workspace: <home>/models/<name>/model.safetensors + card.json (+ folds/<fold>.safetensors).

Models are stored with the tables (in the bucket for a URL workspace), so every machine that opens the same
workspace sees them.

Weights are stored and loaded with safetensors only; nothing is ever unpickled. For a LOSO model,
model.safetensors holds the final model trained on all subjects (or, with train_final off, the first fold's
weights) and folds/<fold>.safetensors the per-fold models; the card maps each fold to its held-out subjects.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from storage.errors import InputError, MegcError
from storage.workspace import Url, Workspace

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    """A model or fold name usable as a folder name, else InputError."""
    if not _NAME.match(name or ""):
        raise InputError(f"model name {name!r} must be letters, digits, '.', '_' or '-' (no slashes)")
    return name


def model_dir(ws: Workspace, name: str) -> Path | Url:
    """Where a registered model is stored (a local folder, or a URL in a URL workspace)."""
    return ws.location("models", check_name(name))


def save_model(ws: Workspace, name: str, weights: dict[str, np.ndarray], card: dict,
               folds: dict[str, dict[str, np.ndarray]] | None = None) -> Path | Url:
    """(Re)place a model: weights, per-fold weights and card are written together (atomically in a local
    workspace; in an object store the card goes last)."""
    from safetensors.numpy import save

    arrays = lambda w: {k: np.ascontiguousarray(v) for k, v in w.items()}
    files = {"model.safetensors": save(arrays(weights))}
    for fold, w in (folds or {}).items():
        files[f"folds/{check_name(fold)}.safetensors"] = save(arrays(w))
    files["card.json"] = json.dumps({**card, "name": name}, indent=2, default=str).encode()
    return ws.replace_dir(files, "models", check_name(name))


def find_card(ws: Workspace, name: str) -> dict | None:
    """The JSON card of a registered model, None when there is no such model."""
    data = ws.read_bytes("models", check_name(name), "card.json")
    if data is None:
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(f"model card is not valid JSON ({exc})", file=model_dir(ws, name) / "card.json") from None


def load_card(ws: Workspace, name: str) -> dict:
    """The JSON card of a registered model."""
    card = find_card(ws, name)
    if card is None:
        known = [c["name"] for c in list_models(ws)]
        raise MegcError(f"no model named {name!r} in {ws.location('models')}; known: {known}")
    return card


def list_models(ws: Workspace) -> list[dict]:
    """Cards of every registered model, by name."""
    cards = []
    for name in ws.listdir("models"):
        data = ws.read_bytes("models", name, "card.json")
        if data is None:
            continue
        try:
            cards.append(json.loads(data))
        except json.JSONDecodeError:
            continue
    return cards


def load_weights(ws: Workspace, name: str, fold: str | None = None) -> dict[str, np.ndarray]:
    """Weights of a model (or of one of its folds) as numpy arrays, via safetensors."""
    from safetensors.numpy import load

    parts = ("folds", f"{check_name(fold)}.safetensors") if fold else ("model.safetensors",)
    data = ws.read_bytes("models", check_name(name), *parts)
    if data is None:
        raise MegcError(f"model {name!r} has no weights file {parts[-1]}" + (f" for fold {fold!r}" if fold else ""))
    return load(data)


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
