"""Evaluating a run on its own held-out test split: its model, its test images, their predictions and scores.

The numbers come from ``core.metrics``, the heat maps from ``core.explain`` and the report from ``core.report``.

Predictions are computed once per model file and cached in the run folder (``predictions.npz``), so a
second visit costs a file read.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from core.config import StudioConfig
from core.errors import StudioError
from core.files import atomic_write_bytes, read_json
from core.images import BadImage, decode_image
from core.metrics import Evaluation, evaluate_predictions, softmax
from core.runs import CLASSES_FILE, CONFIG_FILE, TEST_DATA_FILE, RunInfo

PREDICTIONS_FILE = "predictions.npz"
PREDICT_BATCH = 256


def load_run_model(run: RunInfo):
    """The run's model, loaded with Keras safe_mode (no arbitrary code), or a clear StudioError."""
    import keras

    path = run.model_path()
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # zip, h5 and deserialization errors all mean the same to the user
        raise StudioError(
            f"The model file {path} of run '{run.name}' cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else 'no detail'}). Train the run again."
        ) from None


MAX_UPLOADED_MODEL_BYTES = 500 * 1024 * 1024


def load_uploaded_model(data: bytes, name: str, image_shape: tuple[int, int, int], num_classes: int):
    """A .keras file a user uploaded, loaded only with safe_mode=True (no Lambda bytecode, no arbitrary code)
    from a temporary file that is deleted as soon as it is read, and checked to fit the run's data."""
    import tempfile

    import keras

    if not name.lower().endswith(".keras"):
        raise StudioError(f"'{name}' is not a .keras file: save the model with model.save('model.keras').")
    if len(data) > MAX_UPLOADED_MODEL_BYTES:
        raise StudioError(
            f"'{name}' is {len(data) / 1e6:.0f} MB, over the {MAX_UPLOADED_MODEL_BYTES // 2**20} MB limit."
        )
    with tempfile.TemporaryDirectory(prefix="cnn-studio-upload-") as tmp:
        path = Path(tmp) / "uploaded.keras"
        path.write_bytes(data)
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # safe-mode refusals, corrupt zips, unknown layers
            detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            raise StudioError(
                f"'{name}' cannot be loaded safely: {detail}. Only plain Keras layers are accepted "
                "(safe mode refuses Lambda layers and custom code)."
            ) from None
    expected = (None, *image_shape)
    if tuple(model.input_shape) != expected or model.output_shape[-1] != num_classes:
        raise StudioError(
            f"'{name}' takes {tuple(model.input_shape)} and gives {model.output_shape[-1]} outputs; this "
            f"run's test images need {expected} and {num_classes} classes."
        )
    return model


def load_test_data(run: RunInfo) -> tuple[np.ndarray, np.ndarray, list[str]]:
    try:
        with np.load(run.path / TEST_DATA_FILE) as data:
            images, labels = data["images"], data["labels"]
    except (OSError, KeyError, ValueError) as err:
        raise StudioError(
            f"Run '{run.name}' has no readable test split ({TEST_DATA_FILE}: {err}). Train it again."
        ) from None
    names = read_json(run.path / CLASSES_FILE)
    if not isinstance(names, list):
        raise StudioError(f"Run '{run.name}' has no {CLASSES_FILE}: train it again.")
    return images, labels.astype(np.int64), names


def run_config(run: RunInfo) -> StudioConfig:
    return StudioConfig.from_json((run.path / CONFIG_FILE).read_text())


def probabilities(model, images: np.ndarray, logits: bool) -> np.ndarray:
    outputs = np.asarray(model.predict(images, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float64)
    return softmax(outputs) if logits else outputs


def cached_probabilities(run: RunInfo, model=None) -> np.ndarray:
    """Class probabilities for the run's test images, computed once per model file and kept in the run."""
    model_path = run.model_path()
    stamp = f"{model_path.name}:{model_path.stat().st_size}:{model_path.stat().st_mtime_ns}"
    cache = run.path / PREDICTIONS_FILE
    if cache.is_file():
        try:
            with np.load(cache) as data:
                if str(data["stamp"]) == stamp:
                    return data["probabilities"]
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache is recomputed
    images, _, _ = load_test_data(run)
    model = model or load_run_model(run)
    probs = probabilities(model, images, run_config(run).model.output == "logits")
    buffer = io.BytesIO()
    np.savez(buffer, probabilities=probs, stamp=np.array(stamp))
    atomic_write_bytes(cache, buffer.getvalue())
    return probs


def evaluate_run(run: RunInfo) -> Evaluation:
    """The run's evaluation on its own test split (predictions from the cache when the model is unchanged)."""
    _, labels, names = load_test_data(run)
    return evaluate_predictions(labels, cached_probabilities(run), names)


# --- Single images ------------------------------------------------------------------------------------


def predict_image(model, data: bytes, image_shape: tuple[int, int, int], logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities for one uploaded or camera image, preprocessed exactly as the training images."""
    size, channels = image_shape[0], image_shape[-1]
    try:
        pixels, _ = decode_image(data, size, channels)
    except BadImage as err:
        raise StudioError(f"That file cannot be used: {err}. Upload a PNG, JPEG, BMP or GIF image.") from None
    return probabilities(model, pixels[None], logits)[0], pixels
