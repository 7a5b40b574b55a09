"""An uploaded .keras model cannot take the server down (#11.2): its archive and parameter count are checked
before anything is built, and it is loaded and scored in a worker child under a memory and a time limit."""

import io
import json
import re
import shutil
import zipfile

import numpy as np
import pytest

from core.errors import StudioError
from core.evaluation import (
    check_uploaded_model,
    count_config_parameters,
    load_run_model,
    load_test_data,
    probabilities,
    score_uploaded_model,
)
from core.worker import run_in_worker

BOMB_UNITS = 2_000_000  # Dense(2000000) after a 784 flatten: 1.57 billion parameters, 6.3 GB of float32


def small_keras(tmp_path, name: str = "small.keras") -> bytes:
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    path = tmp_path / name
    model.save(path)
    return path.read_bytes()


def with_config(archive: bytes, change) -> bytes:
    """The same .keras archive with its config.json changed by ``change`` (a 25 KB file, whatever it asks)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                change(config)
                data = json.dumps(config).encode()
            dst.writestr(info.filename, data)
    return out.getvalue()


def bomb(tmp_path) -> bytes:
    def grow(config):
        dense = next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")
        dense["config"]["units"] = BOMB_UNITS

    return with_config(small_keras(tmp_path), grow)


def test_the_bomb_is_refused_by_its_declared_size_before_anything_is_built(tmp_path):
    data = bomb(tmp_path)
    assert len(data) < 50_000  # a small upload
    with pytest.raises(StudioError) as err:
        check_uploaded_model(data, "bomb.keras")
    message = str(err.value)
    assert "'bomb.keras' declares 1,570,000,000 parameters (6.3 GB of float32 weights)" in message
    assert "over the 50,000,000" in message and "CNN_STUDIO_UPLOAD_MAX_PARAMS" in message


@pytest.mark.slow
def test_a_model_too_big_for_memory_fails_in_its_worker_and_the_server_goes_on(tmp_path):
    data = bomb(tmp_path)
    images = np.zeros((4, 28, 28, 1), np.uint8)
    with pytest.raises(StudioError) as err:
        score_uploaded_model(data, "bomb.keras", images, 10, max_params=10**12, memory_mb=1536)
    message = str(err.value)
    assert message.startswith("The uploaded model 'bomb.keras' needs more memory than the 1.5 GB")
    assert "CNN_STUDIO_REQUEST_MEMORY_MB" in message and "/tmp" not in message
    # This process (the server) is alive and can still run a request.
    assert run_in_worker(sum, [1, 2, 3], request="A sum", memory_mb=1024) == 6


def test_files_that_are_not_keras_archives_get_messages_about_the_file(tmp_path):
    cases = {
        b"": "'m.keras' is empty (0 bytes)",
        b"\x89HDF\r\n\x1a\n" + bytes(100): "'m.keras' is an HDF5 file, not a Keras 3 .keras archive",
        b"just some text": "'m.keras' is not a Keras 3 .keras archive",
    }
    for data, expected in cases.items():
        with pytest.raises(StudioError, match=re.escape(expected)) as err:
            check_uploaded_model(data, "m.keras")
        assert "save it with model.save('m.keras') in Keras 3" in str(err.value)
    no_config = io.BytesIO()
    with zipfile.ZipFile(no_config, "w") as zf:
        zf.writestr("weights.bin", b"0")
    with pytest.raises(StudioError, match=r"'m.keras' is a ZIP without config.json \(it holds weights.bin\)"):
        check_uploaded_model(no_config.getvalue(), "m.keras")
    with pytest.raises(StudioError, match=r"'m.keras' has a damaged config.json"):
        check_uploaded_model(with_config_text(small_keras(tmp_path), b"{not json"), "m.keras")


def with_config_text(archive: bytes, text: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, text if info.filename == "config.json" else src.read(info))
    return out.getvalue()


def test_a_safe_mode_refusal_in_the_worker_comes_back_as_the_same_message(tmp_path):
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    images = np.zeros((2, 28, 28, 1), np.uint8)
    with pytest.raises(StudioError, match=r"'lambda.keras' cannot be loaded safely: .*safe mode refuses Lambda"):
        score_uploaded_model(path.read_bytes(), "lambda.keras", images, 10)


def test_a_good_upload_scores_in_the_worker_as_it_does_in_the_server(trained_run):
    images, _, names = load_test_data(trained_run)
    own = load_run_model(trained_run)
    logits = own.layers[-1].get_config().get("activation") != "softmax"
    expected = probabilities(own, images, logits)
    got = score_uploaded_model((trained_run.path / "best.keras").read_bytes(), "mine.keras", images, len(names))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(StudioError, match=r"'mine.keras' takes \(None, 28, 28, 1\)"):
        score_uploaded_model(
            (trained_run.path / "best.keras").read_bytes(),
            "mine.keras",
            np.zeros((2, 32, 32, 3), np.uint8),
            len(names),
        )


def test_the_declared_parameter_count_matches_keras_for_every_preset_and_common_layers(tmp_path):
    """The cap is only as good as the count: it must equal Keras's own count for the models people bring."""
    import keras

    from core.config import apply_preset
    from core.models import build_model
    from core.presets import PRESETS

    models = {}
    for preset_id, preset in PRESETS.items():
        try:
            models[preset_id] = build_model(apply_preset(preset_id), preset.input_shape, 10).model
        except StudioError:  # a preset that needs pretrained weights it cannot download here
            continue
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = keras.layers.SeparableConv2D(16, 3, padding="same")(x)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2)(x)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(33)(x)
    models["layers"] = keras.Model(inputs, keras.layers.Dense(5, use_bias=False)(x))
    assert len(models) >= 4
    for name, model in models.items():
        path = tmp_path / f"{name}.keras"
        model.save(path)
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
        assert count_config_parameters(config) == model.count_params(), name


@pytest.mark.slow
def test_browser_a_bomb_upload_fails_for_its_visitor_and_the_server_serves_the_next(trained_run, tmp_path):
    """The issue's reproduction, in the app: the Dense(2000000) upload on Evaluate, with the parameter cap
    raised so that it really reaches the worker's memory limit. The server answers a second visitor after."""
    from playwright.sync_api import sync_playwright

    from tests import browser as b

    workspace = tmp_path / "runs"
    shutil.copytree(trained_run.path, workspace / trained_run.path.name)
    upload = tmp_path / "bomb.keras"
    upload.write_bytes(bomb(tmp_path))
    limits = {"CNN_STUDIO_UPLOAD_MAX_PARAMS": str(10**12), "CNN_STUDIO_REQUEST_MEMORY_MB": "1536"}
    with b.streamlit_server(workspace, tmp_path / "streamlit.log", env=limits) as url, sync_playwright() as pw:
        chromium = b.launch(pw)
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(b.TIMEOUT_MS)
        b.goto(page, url)
        b.navigate(page, "Evaluate")
        page.get_by_text("Score another Keras model on this test split").click()
        page.locator('[data-testid="stFileUploader"]').filter(has_text="Keras model").locator(
            'input[type="file"]'
        ).set_input_files(str(upload))
        error = page.locator('[data-testid="stAlertContentError"]').filter(has_text="bomb.keras")
        error.wait_for(timeout=3 * b.TIMEOUT_MS)
        text = error.inner_text()
        assert "needs more memory than the 1.5 GB a request may use on this server" in text
        assert "/tmp" not in text and "Traceback" not in text
        page.context.close()
        # A second visitor: the server is the same process and draws the run.
        other = chromium.new_page(viewport={"width": 1400, "height": 900})
        other.set_default_timeout(b.TIMEOUT_MS)
        b.goto(other, url)
        b.navigate(other, "Evaluate")
        other.get_by_text("Confusion matrix").first.wait_for()
        chromium.close()
    assert "Killed" not in (tmp_path / "streamlit.log").read_text()
