"""The tutorials' own deployment files (#17): the HDF5 model reloaded in Keras 3 and in tf_keras (Keras 2), the
weights-only file loaded into a freshly built model of the run's config, and the SavedModel laid out for
TensorFlow Serving, called by its signature's names. Each matches the .keras model to 1e-5."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from core.evaluation import load_run_model, load_test_data, run_config
from core.models import build_model

ATOL = 1e-5
EXPORTS = ("digits_export", "shapes_export")  # grayscale softmax; RGB BatchNorm dropout logits


def keras_outputs(run) -> tuple[np.ndarray, np.ndarray]:
    """(test images, the .keras model's raw outputs on them)."""
    images, _, _ = load_test_data(run)
    model = load_run_model(run)
    return images, np.asarray(model.predict(images.astype(np.float32), verbose=0))


def outputs(model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(images.astype(np.float32), training=False))


@pytest.mark.slow
@pytest.mark.parametrize("export", EXPORTS)
def test_h5_loads_in_keras_3_and_tf_keras_and_weights_in_a_fresh_model(export, request):
    import keras
    import tf_keras

    run, results = request.getfixturevalue(export)
    images, expected = keras_outputs(run)
    h5 = run.path / results["h5"].path
    np.testing.assert_allclose(outputs(keras.models.load_model(h5, compile=False), images), expected, atol=ATOL)
    np.testing.assert_allclose(outputs(tf_keras.models.load_model(h5, compile=False), images), expected, atol=ATOL)

    config = run_config(run).model  # both runs normalize without dataset statistics: the config is all it takes
    assert config.normalization != "standardize"
    fresh = build_model(config, tuple(images.shape[1:]), expected.shape[1]).model
    assert np.abs(outputs(fresh, images) - expected).max() > ATOL, "an untrained model answers otherwise"
    weights = run.path / results["weights-h5"].path
    assert weights.name.endswith(".weights.h5")
    fresh.load_weights(weights)
    np.testing.assert_allclose(outputs(fresh, images), expected, atol=ATOL)
    for fmt in ("h5", "weights-h5"):  # the comparison table measured them the same way
        assert results[fmt].max_abs_diff <= ATOL and results[fmt].agreement == 1.0, fmt


@pytest.mark.slow
@pytest.mark.parametrize("export", EXPORTS)
def test_saved_model_is_laid_out_for_tensorflow_serving_and_called_by_names(export, request, tmp_path):
    import tensorflow as tf

    run, results = request.getfixturevalue(export)
    meta = json.loads((run.path / "exports" / "metadata.json").read_text())
    serving = meta["serving"]
    logits = run_config(run).model.output == "logits"
    assert serving["output"] == meta["output"]["name"] == ("logits" if logits else "probabilities")
    with zipfile.ZipFile(run.path / results["savedmodel"].path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path)
    top = f"{serving['model_name']}/1/"
    assert all(name.startswith(top) for name in names) and f"{top}saved_model.pb" in names
    assert f"{top}variables/variables.index" in names

    signature = tf.saved_model.load(str(tmp_path / top)).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["pixels"]
    assert list(signature.structured_outputs) == [serving["output"]]
    images, expected = keras_outputs(run)
    answer = signature(pixels=tf.constant(images, tf.float32))[serving["output"]].numpy()
    np.testing.assert_allclose(answer, expected, atol=ATOL)
    readme = (run.path / "exports" / "README.md").read_text()
    assert f"-e MODEL_NAME={serving['model_name']} tensorflow/serving" in readme


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, activation, normalization, channels",
    [
        ("resnet-small", "leaky_relu", "standardize", 3),
        ("cifar-bn", "elu", "unit", 3),
        ("mobilenetv2-transfer", "relu", "symmetric", 1),
    ],
)
def test_tf_keras_rebuild_keeps_every_layer_kind(preset, activation, normalization, channels, tmp_path):
    """Residual adds, leaky ReLU (Keras 2 calls its slope alpha), BatchNorm statistics, per-channel
    standardization and MobileNetV2's nested base (inlined: the generations number its nodes differently) survive
    the Keras 3 → tf_keras rebuild, untrained, without a run; the .h5 loads in both."""
    import keras
    import tf_keras

    from core.config import apply_preset
    from core.keras2 import write_h5

    config = apply_preset(preset)
    config.activation, config.normalization = activation, normalization
    config.filters = [4, 8, 8, *config.filters[3:]]
    config.pretrained, config.mobilenet_alpha = False, 0.35
    size = 32
    mean, std = np.array([120.0, 110.0, 100.0][:channels]), np.array([60.0, 50.0, 40.0][:channels])
    model = build_model(config, (size, size, channels), 3, mean, std).model
    rng = np.random.default_rng(0)
    for layer in model._flatten_layers():  # BatchNorm statistics other than 0/1, so that a lost one shows
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0, 1, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape))
    images = rng.integers(0, 256, (6, size, size, channels)).astype(np.float32)
    expected = outputs(model, images)
    path = tmp_path / "model.h5"
    write_h5(model, path)
    np.testing.assert_allclose(outputs(tf_keras.models.load_model(path, compile=False), images), expected, atol=ATOL)
    np.testing.assert_allclose(outputs(keras.models.load_model(path, compile=False), images), expected, atol=ATOL)
