"""Importing the MEAN release's Keras HDF5 weights: megc's forward equals Keras' (Keras 3 on the torch backend) for
both heads and both HDF5 forms; bad files stop the import naming the file and layer, with nothing registered;
an imported release model spots a preprocessed dataset through the CLI."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from tests.helpers.mean_release import keras_model_layers, random_layers, write_release_h5

N_SAMPLES = 16
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # keras internals


@pytest.fixture(scope="module")
def keras_models():
    """MEAN built in Keras 3 from PROTOCOL section 4 with random weights (BatchNorm moving statistics too), for
    C = 3 and C = 5: {C: (spot_recog model, spot model, recog model)}."""
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras was imported with another backend")
    absl_logging = sys.modules.get("absl.logging")
    if absl_logging:  # keras' absl handler keeps the stderr of now (pytest's capture file) and closes it when
        # Prefect's dictConfig later closes every handler: point it at the real stderr, which it never closes
        absl_logging.get_absl_handler().python_handler.stream = sys.__stderr__
    from keras import layers, regularizers

    def build(n_classes: int, rng: np.random.Generator):
        ins = [layers.Input((42, 42, 1)) for _ in range(3)]
        streams = []
        for x, filters in zip(ins, (3, 3, 8)):
            x = layers.Conv2D(filters, 5, padding="same", activation="relu",
                              kernel_regularizer=regularizers.l2(1e-3))(x)
            x = layers.BatchNormalization()(x)
            x = layers.MaxPooling2D(3, 3, padding="same")(x)
            streams.append(layers.Dropout(0.3)(x))
        shared = layers.Concatenate()(streams)

        def head(out: int, activation: str, name: str):
            x = layers.Conv2D(8, 5, padding="same", activation="relu", kernel_regularizer=regularizers.l2(0.1))(shared)
            x = layers.Dropout(0.2)(layers.Flatten()(layers.MaxPooling2D(2, 2, padding="same")(x)))
            return layers.Dense(out, activation=activation, name=name)(x)

        spot, recog = head(1, "linear", "spot"), head(n_classes, "softmax", "recog")
        both = keras.Model(ins, [spot, recog])
        for layer in both.layers:
            values = []
            for w in [*layer.trainable_weights, *layer.non_trainable_weights]:
                shape = tuple(w.shape)
                if w.name == "moving_variance" or w.name == "gamma":
                    values.append(rng.uniform(0.5, 2.0, shape))
                elif w.name == "kernel":
                    values.append(rng.normal(0, 0.05 if len(shape) == 2 else 0.3, shape))
                else:  # bias, beta, moving_mean
                    values.append(rng.normal(0, 0.2, shape))
            layer.set_weights([v.astype(np.float32) for v in values])
        return both, keras.Model(ins, spot), keras.Model(ins, recog)

    rng = np.random.default_rng(7)
    return keras, {3: build(3, rng), 5: build(5, rng)}


def _inputs() -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (N_SAMPLES, 3, 42, 42)).astype(np.float32)


def _keras_forward(keras, model, x: np.ndarray) -> list[np.ndarray]:
    outs = model([x[:, i, :, :, None] for i in range(3)], training=False)
    return [keras.ops.convert_to_numpy(o) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]


def _megc_forward(ws, name: str, fold: str, n_classes: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from models.mean import from_state_arrays, predict
    from models.registry import load_weights

    return predict(from_state_arrays(load_weights(ws, name, fold), n_classes, "cpu"), x)


def _write(keras, model, path, writer: str):
    from keras.src.legacy.saving import legacy_h5_format

    path.parent.mkdir(parents=True, exist_ok=True)
    if writer == "keras3-save_weights":
        import h5py

        with h5py.File(path, "w") as f:
            legacy_h5_format.save_weights_to_hdf5_group(f, model)
    elif writer == "keras3-model":
        legacy_h5_format.save_model_to_hdf5(model, str(path), include_optimizer=False)
    else:
        write_release_h5(path, keras_model_layers(model), whole_model=writer == "keras2-model")


@pytest.mark.parametrize("writer", ["keras2-save_weights", "keras2-model", "keras3-save_weights", "keras3-model"])
@pytest.mark.parametrize("kind,folder,n_classes", [("casme_sq", "CASME_sq", 3), ("casme2", "CASME2", 5)])
def test_imported_release_equals_keras(keras_models, ws, tmp_path, writer, kind, folder, n_classes):
    from models.mean_keras import import_mean_keras
    from models.registry import load_card

    keras, models = keras_models
    both = models[n_classes][0]
    _write(keras, both, tmp_path / "MEAN_Weights" / folder / "spot_recog" / "s1.hdf5", writer)
    out = import_mean_keras(ws, tmp_path / "MEAN_Weights" / folder)  # kind from the folder name
    assert out["model"] == f"mean-{kind}-official" and out["folds"] == ["s1"] and out["heads"] == ["spot", "recog"]
    x = _inputs()
    k_spot, k_probs = _keras_forward(keras, both, x)
    scores, probs = _megc_forward(ws, out["model"], "s1", n_classes, x)
    np.testing.assert_allclose(scores, k_spot[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, k_probs, rtol=1e-5, atol=1e-5)
    assert np.ptp(scores) > 0.1 and np.ptp(probs[:, 0]) > 0.01  # outputs that a wrong layout would change
    card = load_card(ws, out["model"])
    assert len(card["classes"]) == n_classes and card["classes"][0] == ("negative" if n_classes == 3 else "disgust")
    assert card["final"] == "s1" and card["folds"][0]["heldout_subjects"] == []
    source = card["source"]["files"][0]
    assert source["file"] == "spot_recog/s1.hdf5" and len(source["sha256"]) == 64


def test_spot_and_recog_files_fill_their_halves(keras_models, ws, tmp_path):
    from models.mean_keras import import_mean_keras
    from models.registry import load_card, load_weights

    keras, models = keras_models
    both, spot_only, recog_only = models[3]
    root = tmp_path / "MEAN_Weights" / "SAMMLV"
    write_release_h5(root / "spot" / "s1.hdf5", keras_model_layers(spot_only, first=3))
    write_release_h5(root / "recog" / "s1.hdf5", keras_model_layers(recog_only, first=40), whole_model=True)
    write_release_h5(root / "spot" / "s2.hdf5", keras_model_layers(spot_only))  # no recognition file: spot only
    out = import_mean_keras(ws, root, subject_map={"s1": "006", "s2": "007"}, final="s2")
    x = _inputs()
    k_spot, k_probs = _keras_forward(keras, both, x)
    scores, probs = _megc_forward(ws, out["model"], "s1", 3, x)
    np.testing.assert_allclose(scores, k_spot[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, k_probs, rtol=1e-5, atol=1e-5)
    scores2, probs2 = _megc_forward(ws, out["model"], "s2", 3, x)
    np.testing.assert_allclose(scores2, k_spot[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs2, 1 / 3, rtol=1e-6)  # no recognition head: uniform
    card = load_card(ws, "mean-samm_lv-official")
    assert [(f["fold"], f["heldout_subjects"], f["heads"]) for f in card["folds"]] == [
        ("s1", ["006"], ["spot", "recog"]), ("s2", ["007"], ["spot"])]
    assert (card["fps"], card["k"], card["k_prime"], card["k_seconds"], card["k_prime_seconds"]) == (
        [200.0], 20, 37, 0.1, 0.185)
    assert card["final"] == "s2" and card["subject_map"] == {"s1": "006", "s2": "007"}
    final = load_weights(ws, "mean-samm_lv-official")
    assert all(np.array_equal(v, load_weights(ws, "mean-samm_lv-official", "s2")[k]) for k, v in final.items())
    used = {(s["file"], tuple(s["used"])) for s in card["source"]["files"]}
    assert used == {("spot/s1.hdf5", ("shared", "spot")), ("recog/s1.hdf5", ("recog",)),
                    ("spot/s2.hdf5", ("shared", "spot"))}


def _nothing_registered(ws) -> None:
    from models.registry import list_models

    assert list_models(ws) == []
    models_dir = ws.root / "models"
    assert not models_dir.exists() or not any(models_dir.rglob("*.safetensors"))


@pytest.mark.parametrize("whole_model", [False, True])
def test_wrong_shape_names_file_and_layer_and_registers_nothing(ws, tmp_path, whole_model):
    from models.mean_keras import import_mean_keras
    from storage.errors import InputError

    rng = np.random.default_rng(0)
    root = tmp_path / "MEAN_Weights" / "CASME_sq" / "spot_recog"
    write_release_h5(root / "s1.hdf5", random_layers(rng), whole_model)
    bad = random_layers(rng)
    name, cls, weights = bad[4]  # the second stream conv, conv2d_97: the v stream
    bad[4] = (name, cls, [("kernel", np.zeros((5, 5, 1, 4), np.float32)), ("bias", np.zeros(4, np.float32))])
    write_release_h5(root / "s2.hdf5", bad, whole_model)
    with pytest.raises(InputError) as err:
        import_mean_keras(ws, root)
    msg = str(err.value)
    assert str(root / "s2.hdf5") in msg and "layer 'conv2d_97' (the v-stream conv" in msg
    assert "(5, 5, 1, 4), expected (5, 5, 1, 3)" in msg
    _nothing_registered(ws)

    wrong_classes = random_layers(rng, n_classes=4)  # a 4-class recognition Dense for a 3-class dataset
    write_release_h5(root / "s2.hdf5", wrong_classes, whole_model)
    with pytest.raises(InputError, match=r"s2\.hdf5: layer 'recog' \(the recognition \(3 classes: negative, "
                                         r"positive, surprise\) head Dense.*\(392, 4\), expected \(392, 3\)"):
        import_mean_keras(ws, root)
    _nothing_registered(ws)


def test_files_that_are_not_mean_are_refused(ws, tmp_path):
    import h5py

    from models.mean_keras import import_mean_keras
    from storage.errors import InputError

    with pytest.raises(InputError, match="no such file or folder"):
        import_mean_keras(ws, tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"no s<N>\.hdf5 files"):
        import_mean_keras(ws, empty, dataset_kind="casme_sq")
    text = tmp_path / "text" / "s1.hdf5"
    text.parent.mkdir()
    text.write_text("not hdf5")
    with pytest.raises(InputError, match=f"{text}: not an HDF5 file"):
        import_mean_keras(ws, text, dataset_kind="casme_sq")
    plain = tmp_path / "plain" / "s1.hdf5"
    plain.parent.mkdir()
    with h5py.File(plain, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(InputError, match=f"{plain}: not a Keras weights file"):
        import_mean_keras(ws, plain, dataset_kind="casme_sq")
    layers = random_layers(np.random.default_rng(0))
    name, cls, weights = layers[7]  # a BatchNorm with a fifth vector
    layers[7] = (name, cls, [*weights, ("extra", np.zeros(3, np.float32))])
    odd = write_release_h5(tmp_path / "odd" / "s1.hdf5", layers)
    with pytest.raises(InputError, match=f"{odd}: layer 'batch_normalization_97' .* fits no MEAN layer"):
        import_mean_keras(ws, odd, dataset_kind="casme_sq")
    with pytest.raises(InputError, match="cannot tell the release dataset"):
        import_mean_keras(ws, odd)
    _nothing_registered(ws)


def test_fold_choice_and_subject_rules(ws, tmp_path):
    from models.mean_keras import import_mean_keras, parse_subject_map, release_subjects
    from models.registry import load_card
    from storage.errors import InputError
    from tasks.synth.planted import plant_dataset

    plant_dataset(ws, subjects=2, n_frames=40, mes_per_video=1)
    ws.replace("intervals", [*ws.read("intervals", dataset="planted").to_pylist(),
                             {**ws.read("intervals", dataset="planted").to_pylist()[0], "subject": "s10",
                              "interval_id": "x", "kind": "macro"}], dataset="planted")
    assert release_subjects(ws, "planted") == ["s01", "s02"]  # subjects with a micro-expression only
    root = tmp_path / "smic" / "spot_recog"
    rng = np.random.default_rng(5)
    for n in (1, 2, 10):
        write_release_h5(root / f"s{n}.hdf5", random_layers(rng))
    with pytest.raises(InputError, match=r"3 folds \(s1\.\.s10\) but dataset 'planted' has 2 subjects"):
        import_mean_keras(ws, root, dataset_kind="smic", subjects_from="planted")
    with pytest.raises(InputError, match=r"fold 's3' not found; folds here: s1, s2, s10"):
        import_mean_keras(ws, root, dataset_kind="smic", fold="s3")
    with pytest.raises(InputError, match="must be sN=SUBJECT"):
        parse_subject_map(["s1=a,x2=b"])
    out = import_mean_keras(ws, root, dataset_kind="smic", fold="s10", k_prime=12,
                            subject_map=parse_subject_map(["s10=s20,s1=s01"]))
    card = load_card(ws, "mean-smic-official")
    assert out["folds"] == ["s10"] and card["final"] == "s10" and card["folds"][0]["heldout_subjects"] == ["s20"]
    assert (card["k"], card["k_prime"], card["fps"], card["k_prime_seconds"]) == (10, 12, [100.0], 0.12)
    assert card["k_prime_source"].startswith("given")
    assert import_mean_keras(ws, root, dataset_kind="SMIC_HS", fold="s1", name="by-folder")["dataset_kind"] == "smic"


def test_release_model_spots_a_dataset_through_the_cli(ws, tmp_path, ray_local):
    from typer.testing import CliRunner

    from flows.cli import app
    from models.mean_actors import score_shard
    from models.registry import load_card, load_mean
    from tasks.mean_data import iter_shard, shard_index
    from tasks.synth.planted import plant_dataset

    plant_dataset(ws, subjects=2, n_frames=120, mes_per_video=2)  # subjects s01, s02 at 30 fps, k = 3
    root = tmp_path / "MEAN_Weights" / "CASME_sq"
    rng = np.random.default_rng(3)
    for n in (1, 2):
        write_release_h5(root / "spot_recog" / f"s{n}.hdf5", random_layers(rng), whole_model=n == 2)
    runner = CliRunner()
    home = ["--home", str(ws.root)]
    res = runner.invoke(app, [*home, "models", "import", "mean-keras", str(root), "--subjects-from", "planted"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["model"] == "mean-casme_sq-official" and out["subject_map"] == {"s1": "s01", "s2": "s02"}
    res = runner.invoke(app, [*home, "models", "--format", "json"])
    assert res.exit_code == 0 and '"name": "mean-casme_sq-official"' in res.output and '"kind": "mean"' in res.output
    card = load_card(ws, "mean-casme_sq-official")
    assert (card["k"], card["k_prime"], card["fps"], card["final"]) == (3, 6, [30.0], "s1")

    res = runner.invoke(app, [*home, "spot", "planted", "--model", "mean-casme_sq-official", "--run-id", "official",
                              "--set", "n_actors=1"])
    assert res.exit_code == 0, res.output
    spot = json.loads(res.output[res.output.index("{"):])
    assert spot["n_videos"] == 2 and spot["n_predictions"] > 0 and spot["scores"] is not None
    for shard in shard_index(ws, "planted"):  # each subject scored by the fold that held it out
        model, _ = load_mean(ws, "mean-casme_sq-official", fold="s1" if shard.subject == "s01" else "s2",
                             device="cpu")
        frames, scores, _ = score_shard(model, shard.path, iter_shard)
        t = ws.read("frame_scores", run_id="official", dataset="planted", video=shard.video).sort_by("frame")
        np.testing.assert_allclose(t.column("score").to_numpy(), scores, rtol=1e-5, atol=1e-6)

    res = runner.invoke(app, [*home, "models", "import", "mean-keras", str(root / "spot_recog" / "s2.hdf5"),
                              "--name", "bad", "--subject-map", "s2=s02", "--final", "s1"])
    assert res.exit_code == 2 and "final fold 's1' is not among the imported folds ['s2']" in res.output
    from models.registry import find_card

    assert find_card(ws, "bad") is None
