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
from core.files import DiskFull, atomic_write_bytes
from core.images import BadImage, decode_image
from core.metrics import Evaluation, evaluate_predictions, softmax
from core.runs import CLASSES_FILE, DAMAGED_FIX, TEST_DATA_FILE, RunInfo, read_class_names, read_config_checked

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
            f"The model file {path.name} of run '{run.name}' cannot be read ({type(err).__name__}: "
            f"{_first_line(err, 200)}): {DAMAGED_FIX}."
        ) from None


def _first_line(err: BaseException, limit: int) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else "no detail"


def damaged_run(run: RunInfo, problem: str) -> StudioError:
    """The error for a run whose files cannot be used: what is wrong, in which file, and the fix."""
    return StudioError(f"Run '{run.name}' is damaged: {problem}. {DAMAGED_FIX[0].upper()}{DAMAGED_FIX[1:]}.")


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
    """The run's test images, their labels and the class names, checked to fit together (else a StudioError
    naming the damaged file)."""
    path = run.path / TEST_DATA_FILE
    if not path.is_file():
        raise damaged_run(run, f"{TEST_DATA_FILE} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels = np.asarray(data["images"]), np.asarray(data["labels"])
    except KeyError as err:
        raise damaged_run(run, f"{TEST_DATA_FILE} has no {err} array") from None
    except Exception as err:  # a truncated zip, a bad CRC, pickled objects, not a NumPy file at all
        raise damaged_run(
            run, f"{TEST_DATA_FILE} is truncated or not a NumPy archive ({type(err).__name__}: {_first_line(err, 120)})"
        ) from None
    names, problem = read_class_names(run.path)
    if problem:
        raise damaged_run(run, problem)
    if (
        images.ndim != 4
        or images.shape[-1] not in (1, 3)
        or not np.issubdtype(images.dtype, np.number)
        or labels.ndim != 1
        or len(labels) != len(images)
        or not np.issubdtype(labels.dtype, np.integer)
    ):
        raise damaged_run(
            run,
            f"{TEST_DATA_FILE} holds images of shape {images.shape} ({images.dtype}) and labels of shape "
            f"{labels.shape} ({labels.dtype}), not one whole-number label per image",
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        bad = int(labels.min() if labels.min() < 0 else labels.max())
        raise damaged_run(run, f"{CLASSES_FILE} lists {len(names)} classes but {TEST_DATA_FILE} has label {bad}")
    return images, labels.astype(np.int64), names


def run_config(run: RunInfo) -> StudioConfig:
    """The run's config.json, or a StudioError naming what is wrong with it."""
    data, problem = read_config_checked(run.path)
    if problem:
        raise damaged_run(run, problem)
    return StudioConfig.from_dict(data)


def check_model_fits(run: RunInfo, model, images: np.ndarray, names: list[str]) -> None:
    """The run's model must take its test images and output one score per class name."""
    try:
        outputs, inputs = model.output_shape[-1], tuple(model.input_shape[1:])
    except (AttributeError, TypeError, IndexError):  # several inputs or outputs: not a model this app trains
        raise damaged_run(run, f"{run.model_path().name} is not a one-input, one-output classifier") from None
    if outputs != len(names):
        raise damaged_run(run, f"{CLASSES_FILE} lists {len(names)} classes but the model outputs {outputs}")
    shape = images.shape[1:]
    if len(inputs) != len(shape) or any(m not in (None, d) for m, d in zip(inputs, shape, strict=True)):
        raise damaged_run(run, f"{TEST_DATA_FILE} holds images of shape {shape} but the model takes {inputs}")


def probabilities(model, images: np.ndarray, logits: bool) -> np.ndarray:
    outputs = np.asarray(model.predict(images, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float64)
    return softmax(outputs) if logits else outputs


def _cached(cache: Path, stamp: str, rows: int, classes: int) -> np.ndarray | None:
    """The cached probabilities if the cache is of this model file and sound (shape, values); else None."""
    try:
        with np.load(cache, allow_pickle=False) as data:
            if str(data["stamp"]) != stamp:
                return None
            probs = np.asarray(data["probabilities"], dtype=np.float64)
    except Exception:  # missing, torn or garbage: recomputed
        return None
    sound = probs.shape == (rows, classes) and np.all(np.isfinite(probs)) and np.all((probs >= 0) & (probs <= 1 + 1e-6))
    return probs if sound else None


def cached_probabilities(run: RunInfo, model=None, test_data: tuple | None = None) -> np.ndarray:
    """Class probabilities for the run's test images, computed once per model file and kept in the run; a
    cache that fails to load or does not fit the test split is recomputed."""
    model_path = run.model_path()
    stamp = f"{model_path.name}:{model_path.stat().st_size}:{model_path.stat().st_mtime_ns}"
    images, _, names = test_data if test_data is not None else load_test_data(run)
    cache = run.path / PREDICTIONS_FILE
    if (probs := _cached(cache, stamp, len(images), len(names))) is not None:
        return probs
    logits = run_config(run).model.output == "logits"
    model = model or load_run_model(run)
    check_model_fits(run, model, images, names)
    probs = probabilities(model, images, logits)
    buffer = io.BytesIO()
    np.savez(buffer, probabilities=probs, stamp=np.array(stamp))
    try:
        atomic_write_bytes(cache, buffer.getvalue())
    except DiskFull:
        pass  # the cache only saves time: on a full disk the next visit computes them again
    return probs


def evaluate_run(run: RunInfo) -> Evaluation:
    """The run's evaluation on its own test split (predictions from the cache when the model is unchanged)."""
    test_data = load_test_data(run)
    _, labels, names = test_data
    return evaluate_predictions(labels, cached_probabilities(run, test_data=test_data), names)


# --- Single images ------------------------------------------------------------------------------------


def predict_image(model, data: bytes, image_shape: tuple[int, int, int], logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities for one uploaded or camera image, preprocessed exactly as the training images."""
    size, channels = image_shape[0], image_shape[-1]
    try:
        pixels, _ = decode_image(data, size, channels)
    except BadImage as err:
        raise StudioError(f"That file cannot be used: {err}. Upload a PNG, JPEG, BMP or GIF image.") from None
    return probabilities(model, pixels[None], logits)[0], pixels
