"""Test helper: MEAN release files in the exact HDF5 layout of the Keras 2.4 files in MEAN_Weights/ (PROTOCOL
section 9), written with h5py: every layer of the Keras graph in layer order (auto-numbered Keras 2 names, empty
weight_names for layers without weights), weights as `<layer>/<weight>:0`, in either the save_weights form
(root) or the whole-model form (`model_weights` group, model_config and training_config attributes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# A layer as written: (name, Keras class, [(weight base name, array)]) in the Keras graph's layer order.
Layer = tuple[str, str, list[tuple[str, np.ndarray]]]
_AUTO = {"InputLayer": "input", "Conv2D": "conv2d", "BatchNormalization": "batch_normalization",
         "MaxPooling2D": "max_pooling2d", "Dropout": "dropout", "Concatenate": "concatenate", "Flatten": "flatten",
         "Dense": "dense"}


def keras2_names(classes: list[str], first: int = 96) -> list[str]:
    """Keras 2 auto-numbered layer names (conv2d_96, conv2d_97, ...); layers named 'spot' / 'recog' keep them."""
    seen: dict[str, int] = {}
    out = []
    for cls in classes:
        base = _AUTO[cls]
        seen[base] = seen.get(base, first - 1) + 1
        out.append(f"{base}_{seen[base]}")
    return out


def random_layers(rng: np.random.Generator, n_classes: int = 3, heads: tuple[str, ...] = ("spot", "recog"),
                  first: int = 96) -> list[Layer]:
    """A MEAN graph's layers in Keras order with random weights (BatchNorm moving statistics included)."""
    conv = lambda cin, cout: [("kernel", rng.normal(0, 0.3, (5, 5, cin, cout)).astype(np.float32)),
                              ("bias", rng.normal(0, 0.1, cout).astype(np.float32))]
    bn = lambda n: [("gamma", rng.uniform(0.5, 1.5, n).astype(np.float32)),
                    ("beta", rng.normal(0, 0.1, n).astype(np.float32)),
                    ("moving_mean", rng.normal(0, 0.2, n).astype(np.float32)),
                    ("moving_variance", rng.uniform(0.5, 2.0, n).astype(np.float32))]
    outs = {"spot": 1, "recog": n_classes}
    spec: list[tuple[str, str | None, list]] = [("InputLayer", None, [])] * 3
    spec += [("Conv2D", None, conv(1, f)) for f in (3, 3, 8)] + [("BatchNormalization", None, bn(f)) for f in (3, 3, 8)]
    spec += [("MaxPooling2D", None, [])] * 3 + [("Dropout", None, [])] * 3 + [("Concatenate", None, [])]
    spec += [("Conv2D", None, conv(14, 8)) for _ in heads] + [("MaxPooling2D", None, []) for _ in heads]
    spec += [("Flatten", None, []) for _ in heads] + [("Dropout", None, []) for _ in heads]
    spec += [("Dense", h, [("kernel", rng.normal(0, 0.05, (392, outs[h])).astype(np.float32)),
                           ("bias", rng.normal(0, 0.1, outs[h]).astype(np.float32))]) for h in heads]
    names = keras2_names([cls for cls, _, _ in spec], first)
    return [(given or auto, cls, w) for (cls, given, w), auto in zip(spec, names)]


def keras_model_layers(model, first: int = 96) -> list[Layer]:
    """A Keras 3 model's layers (in its order) with Keras 2 auto-numbered names and their weights."""
    layers = model.layers
    names = keras2_names([la.__class__.__name__ for la in layers], first)
    out = []
    for layer, auto in zip(layers, names):
        name = layer.name if layer.name in ("spot", "recog") else auto
        weights = [(w.name, np.asarray(w.numpy())) for w in [*layer.trainable_weights, *layer.non_trainable_weights]]
        out.append((name, layer.__class__.__name__, weights))
    return out


def write_release_h5(path: Path, layers: list[Layer], whole_model: bool = False) -> Path:
    """Write `layers` as a Keras 2.4 HDF5 file (save_weights form, or model.save form when whole_model)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        if whole_model:
            config = {"class_name": "Functional", "config": {"name": "model", "layers": [
                {"class_name": cls, "name": name, "config": {"name": name}} for name, cls, _ in layers]}}
            f.attrs["keras_version"] = b"2.4.0"
            f.attrs["backend"] = b"tensorflow"
            f.attrs["model_config"] = json.dumps(config).encode()
            f.attrs["training_config"] = json.dumps({"loss": {"spot": "mse"}}).encode()
            opt = f.create_group("optimizer_weights")
            opt.attrs["weight_names"] = np.asarray([b"Adam/iter:0"])
            opt.create_dataset("Adam/iter:0", data=np.int64(10))
            group = f.create_group("model_weights")
        else:
            group = f
        group.attrs["layer_names"] = np.asarray([name.encode() for name, _, _ in layers])
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.4.0"
        for name, _, weights in layers:
            g = group.create_group(name)
            g.attrs["weight_names"] = np.asarray([f"{name}/{w}:0".encode() for w, _ in weights])
            for w, a in weights:
                g.create_dataset(f"{name}/{w}:0", data=a)
    return path
