"""Expert VQA engine: small logistic heads (coarse, fine, multi-label AUs, side) on onset->apex flow features.

The coarse class comes from a registered MEAN model's recognition head when one is given, else from the
expert's own coarse head; the fine label is constrained to the fine labels of the predicted coarse class.
Weights are saved as safetensors + a JSON card in the model registry (<home>/models/<name>/).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from models.registry import load_card, load_weights, save_model
from storage.errors import InputError
from storage.vocabulary import FINE, FINE_TO_COARSE
from storage.workspace import Workspace

DEFAULT_FINE = {"positive": "happiness", "surprise": "surprise", "negative": "disgust", "others": "repression"}


@dataclasses.dataclass
class ExpertSettings:
    """Training settings of the logistic heads."""

    steps: int = 300
    lr: float = 0.05
    weight_decay: float = 1e-3
    seed: int = 0
    au_threshold: float = 0.5


def feature_vector(mean_input: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Expert features of one interval: region means (u, v, magnitude) + the MEAN input pooled to 3x7x7."""
    pooled = np.asarray(mean_input, np.float32).reshape(3, 7, 6, 7, 6).mean(axis=(2, 4)).ravel()
    return np.concatenate([np.asarray(roi, np.float32).ravel(), pooled]).astype(np.float32)


def _fit_linear(x: np.ndarray, y: np.ndarray, n_out: int, multilabel: bool, s: ExpertSettings
                ) -> tuple[np.ndarray, np.ndarray]:
    import torch

    torch.manual_seed(s.seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    w = torch.zeros(x.shape[1], n_out, requires_grad=True)
    b = torch.zeros(n_out, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=s.lr)
    if multilabel:
        yt = torch.as_tensor(y, dtype=torch.float32)
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        yt = torch.as_tensor(y, dtype=torch.long)
        counts = torch.bincount(yt, minlength=n_out).float().clamp(min=1)
        loss_fn = torch.nn.CrossEntropyLoss(weight=counts.sum() / counts / n_out)  # balanced classes
    for _ in range(s.steps):
        opt.zero_grad()
        loss = loss_fn(xt @ w + b, yt) + s.weight_decay * w.pow(2).sum()
        loss.backward()
        opt.step()
    return w.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


@dataclasses.dataclass
class Expert:
    """Trained heads plus their label lists and feature standardisation."""

    weights: dict[str, np.ndarray]
    card: dict
    mean_model: object | None = None

    def _logits(self, head: str, z: np.ndarray) -> np.ndarray:
        return z @ self.weights[f"{head}.w"] + self.weights[f"{head}.b"]

    def predict(self, feats: np.ndarray, mean_inputs: np.ndarray | None = None) -> list[dict]:
        """Structured predictions {coarse, fine, aus, side} for (n, d) feature rows."""
        feats = np.atleast_2d(np.asarray(feats, np.float32))
        z = (feats - self.weights["x.mean"]) / self.weights["x.std"]
        coarse_classes = self.card["coarse"]
        if self.mean_model is not None and mean_inputs is not None:
            from models.mean import predict as mean_predict

            _, probs = mean_predict(self.mean_model, np.asarray(mean_inputs, np.float32))
            mean_classes = self.card["mean_classes"]
            coarse = [mean_classes[i] for i in probs.argmax(1)]
        elif coarse_classes:
            coarse = [coarse_classes[i] for i in self._logits("coarse", z).argmax(1)]
        else:
            coarse = ["negative"] * len(z)
        fine_classes = self.card["fine"]
        fine_logits = self._logits("fine", z) if fine_classes else np.zeros((len(z), 0))
        au_codes = self.card["aus"]
        au_p = 1 / (1 + np.exp(-self._logits("aus", z))) if au_codes else np.zeros((len(z), 0))
        side_p = 1 / (1 + np.exp(-self._logits("side", z)))[:, 0] if self.card["has_side"] else None
        out = []
        for i, c in enumerate(coarse):
            allowed = [j for j, f in enumerate(fine_classes) if f in FINE and FINE_TO_COARSE[f] == c]
            fine = fine_classes[max(allowed, key=lambda j: fine_logits[i, j])] if allowed else DEFAULT_FINE.get(
                c, "others")
            aus = [a for j, a in enumerate(au_codes) if au_p[i, j] >= self.card["au_threshold"]]
            if not aus and au_codes:
                aus = [au_codes[int(au_p[i].argmax())]]
            side = ("right" if side_p[i] >= 0.5 else "left") if side_p is not None else "left"
            out.append({"coarse": c, "fine": fine, "aus": aus, "side": side})
        return out


def train_expert(feats: np.ndarray, labels: Sequence[dict], settings: ExpertSettings | None = None) -> Expert:
    """Fit the heads on (n, d) features and label dicts {coarse, fine, aus, side} (fine/side may be None)."""
    s = settings or ExpertSettings()
    x = np.asarray(feats, np.float32)
    if len(x) == 0 or len(x) != len(labels):
        raise InputError(f"expert training needs one label row per feature row (got {len(x)} and {len(labels)})")
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    weights = {"x.mean": mu.astype(np.float32), "x.std": sd.astype(np.float32)}
    card: dict = {"kind": "vqa_expert", "settings": dataclasses.asdict(s), "au_threshold": s.au_threshold,
                  "n_train": int(len(x)), "n_features": int(x.shape[1])}
    for head in ("coarse", "fine"):  # single-label softmax heads over the rows that carry the label
        classes = sorted({lab[head] for lab in labels if lab.get(head)})
        card[head] = classes
        if classes:
            idx = [i for i, lab in enumerate(labels) if lab.get(head)]
            y = np.array([classes.index(labels[i][head]) for i in idx])
            weights[f"{head}.w"], weights[f"{head}.b"] = _fit_linear(z[idx], y, len(classes), False, s)
    aus = sorted({a for lab in labels for a in lab.get("aus") or []}, key=lambda a: int(a[2:]) if a[2:].isdigit()
                 else 999)
    card["aus"] = aus
    if aus:
        y = np.array([[a in (lab.get("aus") or []) for a in aus] for lab in labels], np.float32)
        weights["aus.w"], weights["aus.b"] = _fit_linear(z, y, len(aus), True, s)
    sided = [i for i, lab in enumerate(labels) if lab.get("side") in ("left", "right")]
    card["has_side"] = bool(sided)
    if sided:
        y = np.array([[labels[i]["side"] == "right"] for i in sided], np.float32)
        weights["side.w"], weights["side.b"] = _fit_linear(z[sided], y, 1, True, s)
    return Expert(weights, card)


def save_expert(ws: Workspace, name: str, expert: Expert) -> None:
    """Register the expert's heads (safetensors) and card under <home>/models/<name>/."""
    save_model(ws, name, expert.weights, expert.card)


def load_expert(ws: Workspace, name: str, mean_name: str | None = None) -> Expert:
    """A registered expert; with `mean_name`, the coarse class comes from that MEAN model."""
    card = load_card(ws, name)
    if card.get("kind") != "vqa_expert":
        raise InputError(f"model {name!r} is not a VQA expert (kind {card.get('kind')!r})")
    expert = Expert(load_weights(ws, name), card)
    if mean_name:
        from models.registry import load_mean

        model, mean_card = load_mean(ws, mean_name)
        expert.mean_model = model
        expert.card = {**card, "mean_classes": list(mean_card["classes"]), "mean_model": mean_name}
    return expert
