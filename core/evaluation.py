"""Evaluating a run on its own held-out test split: its model, its test images, their predictions and scores.

The numbers come from ``core.metrics``, the heat maps from ``core.explain`` and the report from ``core.report``.

Predictions are computed once per model file and cached in the run folder (``predictions.npz``), so a
second visit costs a file read.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from core.config import StudioConfig
from core.errors import StudioError
from core.files import DiskFull, atomic_write_bytes
from core.i18n import _, number
from core.images import BadImage, decode_image
from core.metrics import Evaluation, evaluate_predictions, softmax
from core.runs import CLASSES_FILE, TEST_DATA_FILE, RunInfo, read_class_names, read_config_checked
from core.worker import is_out_of_memory, run_in_worker

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
            _(
                "The model file {file} of run '{name}' cannot be read ({error}): delete the run or train it again."
            ).format(file=path.name, name=run.name, error=f"{type(err).__name__}: {_first_line(err, 200)}")
        ) from None


def _first_line(err: BaseException, limit: int) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else _("no detail")


def damaged_run(run: RunInfo, problem: str) -> StudioError:
    """The error for a run whose files cannot be used: what is wrong, in which file, and the fix."""
    return StudioError(
        _("Run '{name}' is damaged: {problem}. Delete the run or train it again.").format(
            name=run.name, problem=problem
        )
    )


MAX_UPLOADED_MODEL_BYTES = 500 * 1024 * 1024
MAX_UPLOADED_PARAMS = 50_000_000  # 200 MB of float32 weights: loads, with TensorFlow, well inside a 2 GB request
MAX_UPLOADED_PARAMS_ENV = "CNN_STUDIO_UPLOAD_MAX_PARAMS"
MAX_UPLOADED_CONFIG_BYTES = 16 * 1024 * 1024  # config.json, read by the server itself to count the parameters
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def max_uploaded_params() -> int:
    """The parameter cap of an uploaded model: CNN_STUDIO_UPLOAD_MAX_PARAMS, else MAX_UPLOADED_PARAMS."""
    raw = os.environ.get(MAX_UPLOADED_PARAMS_ENV, "").strip()
    if not raw:
        return MAX_UPLOADED_PARAMS
    if not raw.isdigit() or int(raw) < 1:
        raise StudioError(
            _(
                "The server setting {variable}={value} is not a whole number ≥ 1: fix it or unset it "
                "(the default is {default})."
            ).format(variable=MAX_UPLOADED_PARAMS_ENV, value=repr(raw), default=number(MAX_UPLOADED_PARAMS))
        )
    return int(raw)


def check_uploaded_model(data: bytes, name: str, max_params: int | None = None) -> int:
    """The parameter count an uploaded .keras declares, read from its config.json without building anything.

    Refuses, with a message about the file, what is not a Keras 3 ``.keras`` archive (empty, HDF5, not a ZIP,
    no config.json) and a model above the parameter cap (``max_params``, default :func:`max_uploaded_params`)."""
    stem = Path(name).stem
    if not name.lower().endswith(".keras"):
        raise StudioError(
            _("'{name}' is not a .keras file: save the model with model.save('model.keras').").format(name=name)
        )
    if len(data) > MAX_UPLOADED_MODEL_BYTES:
        raise StudioError(
            _("'{name}' is {size} MB, over the {limit} MB limit.").format(
                name=name, size=number(len(data) / 1e6, 0), limit=number(MAX_UPLOADED_MODEL_BYTES // 2**20)
            )
        )
    if not data:
        raise StudioError(
            _(
                "'{name}' is empty (0 bytes): upload the file again, or "
                "save it with model.save('{stem}.keras') in Keras 3."
            ).format(name=name, stem=stem)
        )
    if data.startswith(HDF5_SIGNATURE):
        raise StudioError(
            _(
                "'{name}' is an HDF5 file, not a Keras 3 .keras archive: "
                "save it with model.save('{stem}.keras') in Keras 3."
            ).format(name=name, stem=stem)
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = {info.filename: info for info in zf.infolist()}
            if "config.json" not in members:
                found = ", ".join(sorted(members)[:5]) or _("nothing")
                raise StudioError(
                    _(
                        "'{name}' is a ZIP without config.json (it holds {found}), not a ZIP archive with config.json, "
                        "metadata.json and model.weights.h5: save it with model.save('{stem}.keras') in Keras 3."
                    ).format(name=name, found=found, stem=stem)
                )
            with zf.open("config.json") as member:
                text = member.read(MAX_UPLOADED_CONFIG_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError):
        raise StudioError(
            _(
                "'{name}' is not a Keras 3 .keras archive (a ZIP archive with config.json, metadata.json and "
                "model.weights.h5): save it with model.save('{stem}.keras') in Keras 3."
            ).format(name=name, stem=stem)
        ) from None
    if len(text) > MAX_UPLOADED_CONFIG_BYTES:
        raise StudioError(
            _("'{name}' has a config.json over {limit} MB: that is no plain Keras model.").format(
                name=name, limit=number(MAX_UPLOADED_CONFIG_BYTES // 2**20)
            )
        )
    try:
        config = json.loads(text)
    except (ValueError, RecursionError):
        raise StudioError(
            _(
                "'{name}' has a damaged config.json (not JSON): save it with model.save('{stem}.keras') in Keras 3."
            ).format(name=name, stem=stem)
        ) from None
    if not isinstance(config, dict):
        raise StudioError(
            _(
                "'{name}' has a config.json that describes no model: "
                "save it with model.save('{stem}.keras') in Keras 3."
            ).format(name=name, stem=stem)
        )
    params = count_config_parameters(config)
    cap = max_params if max_params is not None else max_uploaded_params()
    if params > cap:
        raise StudioError(
            _(
                "'{name}' declares {params} parameters ({gigabytes} GB of float32 weights), over the {cap} "
                "({megabytes} MB) an uploaded model may have on this server. Upload a smaller model, or ask the "
                "administrator to raise {variable}."
            ).format(
                name=name,
                params=number(params),
                gigabytes=number(params * 4 / 1e9, 1),
                cap=number(cap),
                megabytes=number(cap * 4 / 1e6, 0),
                variable=MAX_UPLOADED_PARAMS_ENV,
            )
        )
    return params


def load_uploaded_model(
    data: bytes, name: str, image_shape: tuple[int, int, int], num_classes: int, max_params: int | None = None
):
    """A .keras file a user uploaded, loaded only with safe_mode=True (no Lambda bytecode, no arbitrary code)
    from a temporary file that is deleted as soon as it is read, and checked to fit the run's data.

    This builds the model in the calling process: the server calls :func:`score_uploaded_model`, which runs
    it in a worker child under a memory limit. Running out of memory is re-raised unchanged (for the worker)."""
    import tempfile

    import keras

    check_uploaded_model(data, name, max_params)
    with tempfile.TemporaryDirectory(prefix="cnn-studio-upload-") as tmp:
        path = Path(tmp) / "uploaded.keras"
        path.write_bytes(data)
        try:
            model = keras.saving.load_model(path, safe_mode=True, compile=False)
        except Exception as err:  # safe-mode refusals, corrupt zips, unknown layers
            if is_out_of_memory(err):
                raise
            detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            detail = detail.replace(str(path), name).replace(tmp, "")
            raise StudioError(
                _(
                    "'{name}' cannot be loaded safely: {detail}. Only plain Keras layers are accepted "
                    "(safe mode refuses Lambda layers and custom code)."
                ).format(name=name, detail=detail)
            ) from None
    expected = (None, *image_shape)
    if tuple(model.input_shape) != expected or model.output_shape[-1] != num_classes:
        raise StudioError(
            _(
                "'{name}' takes {shape} and gives {outputs} outputs; this run's test images need {expected} and "
                "{classes} classes."
            ).format(
                name=name,
                shape=tuple(model.input_shape),
                outputs=model.output_shape[-1],
                expected=expected,
                classes=num_classes,
            )
        )
    return model


def _score_uploaded_model_here(
    data: bytes, name: str, images: np.ndarray, num_classes: int, max_params: int | None
) -> np.ndarray:
    """In the worker child: load the upload and return only its class probabilities for ``images``."""
    model = load_uploaded_model(data, name, tuple(images.shape[1:]), num_classes, max_params)
    logits = model.layers[-1].get_config().get("activation") != "softmax"
    return probabilities(model, images, logits)


def score_uploaded_model(
    data: bytes,
    name: str,
    images: np.ndarray,
    num_classes: int,
    *,
    max_params: int | None = None,
    memory_mb: int | None = None,
    timeout: float | None = None,
) -> np.ndarray:
    """Class probabilities of an uploaded .keras model for ``images``, or a StudioError about the file.

    The archive and its parameter count are checked here, without building anything; the model is then loaded
    (safe mode) and run in a worker child (``core.worker``) under the request memory and time limits, so a
    model too big for the server fails only this request. Only the probabilities come back."""
    check_uploaded_model(data, name, max_params)
    return run_in_worker(
        _score_uploaded_model_here,
        data,
        name,
        images,
        num_classes,
        max_params,
        request=_("The uploaded model '{name}'").format(name=name),
        memory_mb=memory_mb,
        timeout=timeout,
    )


# --- Counting a Keras config's parameters without building it ---------------------------------------------

_CONV = ("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D", "Convolution3D")
_CONV_TRANSPOSE = ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
_DEPTHWISE = ("DepthwiseConv1D", "DepthwiseConv2D")
_SEPARABLE = ("SeparableConv1D", "SeparableConv2D", "SeparableConvolution1D", "SeparableConvolution2D")
_POOL = tuple(f"{kind}Pooling{d}D" for kind in ("Max", "Average") for d in (1, 2, 3))
_GLOBAL_POOL = tuple(f"Global{kind}Pooling{d}D" for kind in ("Max", "Average") for d in (1, 2, 3))
_RNN_GATES = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}
_SAME_SHAPE = {
    "Activation", "ActivityRegularization", "AlphaDropout", "BatchNormalization", "Dropout", "ELU",
    "GaussianDropout", "GaussianNoise", "GroupNormalization", "LayerNormalization", "LeakyReLU", "Masking",
    "Normalization", "PReLU", "ReLU", "Rescaling", "Softmax", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "UnitNormalization", "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast",
    "RandomBrightness", "RandomTranslation",
}  # fmt: skip


def _whole(value) -> int:
    """A positive whole number from a config value, else 0 (Keras itself refuses the model later)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 1 or value > 2**62:
        return 0
    return int(value)


def _shape(value) -> list[int | None] | None:
    if not isinstance(value, list) or not value or isinstance(value[0], list):
        return None
    return [_whole(v) or None for v in value]


def _tuple(value, rank: int) -> list[int]:
    values = value if isinstance(value, list) else [value] * rank
    return [_whole(v) or 1 for v in values[:rank]] + [1] * (rank - len(values))


def _product(values) -> int:
    total = 1
    for v in values:
        total *= v or 1
    return total


def _channels(config: dict, shape: list) -> int:
    return _whole(shape[1] if config.get("data_format") == "channels_first" else shape[-1])


def _spatial(config: dict, shape: list) -> list:
    return shape[2:] if config.get("data_format") == "channels_first" else shape[1:-1]


def _with_spatial(config: dict, shape: list, spatial: list, channels) -> list:
    if config.get("data_format") == "channels_first":
        return [None, channels, *spatial]
    return [None, *spatial, channels]


def _window_output(size, kernel: int, stride: int, dilation: int, padding: str, transpose: bool = False):
    if size is None:
        return None
    if transpose:
        return size * stride + (max(kernel - stride, 0) if padding == "valid" else 0)
    if padding == "valid":
        return max(-(-(size - dilation * (kernel - 1)) // stride), 0)
    return -(-size // stride)


def _count_layer(layer: dict, shape: list | None) -> tuple[int, list | None]:
    """(parameters, output shape) of one layer config given its input shape (None where unknown)."""
    kind = layer.get("class_name")
    config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
    if isinstance(config.get("layers"), list):
        return _count_model(layer, shape)
    if kind in ("Bidirectional", "TimeDistributed") and isinstance(config.get("layer"), dict):
        inner_shape = [None, *shape[2:]] if shape and kind == "TimeDistributed" else shape
        params, out = _count_layer(config["layer"], inner_shape)
        if kind == "Bidirectional":
            return 2 * params, None
        return params, ([None, shape[1], *out[1:]] if shape and out else None)
    if shape is None:
        return 0, None
    bias = 0 if config.get("use_bias") is False else 1
    if kind == "Dense":
        units = _whole(config.get("units"))
        return _whole(shape[-1]) * units + units * bias, [*shape[:-1], units]
    if kind == "Embedding":
        return _whole(config.get("input_dim")) * _whole(config.get("output_dim")), None
    if kind in _RNN_GATES:
        units, inputs = _whole(config.get("units")), _whole(shape[-1])
        params = _RNN_GATES[kind] * (inputs * units + units * units + units * bias)
        if kind == "GRU" and config.get("reset_after", True):
            params += 3 * units * bias
        return params, None
    if kind == "MultiHeadAttention":
        width = _whole(config.get("num_heads")) * _whole(config.get("key_dim"))
        return 4 * _whole(shape[-1]) * width + 4 * width * bias, None
    if kind in _CONV + _CONV_TRANSPOSE + _DEPTHWISE + _SEPARABLE + _POOL:
        spatial = _spatial(config, shape)
        rank = len(spatial)
        channels = _channels(config, shape)
        window = _tuple(config.get("pool_size" if kind in _POOL else "kernel_size"), rank)
        strides = _tuple((config.get("strides") or window) if kind in _POOL else config.get("strides", 1), rank)
        dilation = _tuple(config.get("dilation_rate", 1), rank)
        padding = str(config.get("padding", "valid")).lower()
        out_spatial = [
            _window_output(n, k, s, d, padding, kind in _CONV_TRANSPOSE)
            for n, k, s, d in zip(spatial, window, strides, dilation, strict=False)
        ]
        filters = _whole(config.get("filters"))
        multiplier = _whole(config.get("depth_multiplier")) or 1
        if kind in _POOL:
            params, out_channels = 0, channels
        elif kind in _DEPTHWISE:
            params = _product(window) * channels * multiplier + channels * multiplier * bias
            out_channels = channels * multiplier
        elif kind in _SEPARABLE:
            params = _product(window) * channels * multiplier + channels * multiplier * filters + filters * bias
            out_channels = filters
        else:
            groups = _whole(config.get("groups")) or 1
            params = _product(window) * (channels // groups or channels) * filters + filters * bias
            out_channels = filters
        return params, _with_spatial(config, shape, out_spatial, out_channels or None)
    if kind in _GLOBAL_POOL:
        channels = _channels(config, shape)
        return 0, ([None, channels] if not config.get("keepdims") else None)
    if kind == "Flatten":
        rest = shape[1:]
        return 0, [None, _product(rest)] if all(rest) else None
    if kind == "Reshape":
        target = _shape(config.get("target_shape"))
        return 0, [None, *target] if target and all(target) else None
    if kind in ("UpSampling1D", "UpSampling2D", "UpSampling3D"):
        spatial = _spatial(config, shape)
        size = _tuple(config.get("size", 2), len(spatial))
        return 0, _with_spatial(
            config, shape, [n * f if n else None for n, f in zip(spatial, size, strict=False)], _channels(config, shape)
        )
    if kind in ("BatchNormalization",):
        return 4 * _channels({"data_format": "channels_first"} if config.get("axis") == 1 else {}, shape), shape
    if kind in ("LayerNormalization", "GroupNormalization"):
        return 2 * _whole(shape[-1]), shape
    if kind == "PReLU":
        return _product(shape[1:]), shape
    return 0, (shape if kind in _SAME_SHAPE else None)


def _declared_input(layer: dict) -> list | None:
    """A layer's input shape as its config records it: build_config, else its first inbound tensor."""
    build = layer.get("build_config")
    if isinstance(build, dict) and (shape := _shape(build.get("input_shape"))):
        return shape
    nodes = layer.get("inbound_nodes")
    if isinstance(nodes, list) and nodes and isinstance(nodes[0], dict):
        args = nodes[0].get("args")
        first = args[0] if isinstance(args, list) and args else None
        first = first[0] if isinstance(first, list) and first else first
        if isinstance(first, dict) and isinstance(first.get("config"), dict):
            return _shape(first["config"].get("shape"))
    return None


def _count_model(model: dict, shape: list | None = None) -> tuple[int, list | None]:
    """A (nested) model's parameters. Each layer counts with the larger of its declared input shape and the
    one carried from the previous layer (for a Sequential), so a forged build_config cannot hide a big layer."""
    config = model.get("config") if isinstance(model.get("config"), dict) else {}
    layers = config.get("layers") if isinstance(config.get("layers"), list) else []
    sequential = model.get("class_name") == "Sequential"
    if sequential:
        build = model.get("build_config")
        shape = (
            _shape(config.get("build_input_shape"))
            or (_shape(build.get("input_shape")) if isinstance(build, dict) else None)
            or shape
        )
    total = 0
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        layer_config = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        if layer.get("class_name") == "InputLayer":
            shape = _shape(layer_config.get("batch_shape") or layer_config.get("batch_input_shape")) or shape
            continue
        declared = _declared_input(layer)
        candidates = [s for s in (declared, shape if sequential else None) if s]
        counts = [_count_layer(layer, s) for s in candidates] or [_count_layer(layer, None)]
        params, out = max(counts, key=lambda c: c[0])
        total += params
        shape = out if sequential else None
    return total, shape


def count_config_parameters(config: dict) -> int:
    """The parameters a Keras 3 model config.json declares, counted from the layer configs without building a
    layer: Dense units × inputs, convolution kernels × channels × filters, normalization, RNNs, attention.
    Layers it does not know count 0; the worker's memory limit still stops anything it misses."""
    return _count_model(config)[0]


def load_test_data(run: RunInfo) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The run's test images, their labels and the class names, checked to fit together (else a StudioError
    naming the damaged file)."""
    path = run.path / TEST_DATA_FILE
    if not path.is_file():
        raise damaged_run(run, _("{file} is missing").format(file=TEST_DATA_FILE))
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels = np.asarray(data["images"]), np.asarray(data["labels"])
    except KeyError as err:
        raise damaged_run(run, _("{file} has no {array} array").format(file=TEST_DATA_FILE, array=err)) from None
    except Exception as err:  # a truncated zip, a bad CRC, pickled objects, not a NumPy file at all
        raise damaged_run(
            run,
            _("{file} is truncated or not a NumPy archive ({error})").format(
                file=TEST_DATA_FILE, error=f"{type(err).__name__}: {_first_line(err, 120)}"
            ),
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
            _(
                "{file} holds images of shape {images} ({image_type}) and labels of shape {labels} ({label_type}), "
                "not one whole-number label per image"
            ).format(
                file=TEST_DATA_FILE,
                images=images.shape,
                image_type=images.dtype,
                labels=labels.shape,
                label_type=labels.dtype,
            ),
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
        bad = int(labels.min() if labels.min() < 0 else labels.max())
        raise damaged_run(
            run,
            _("{classes_file} lists {count} classes but {file} has label {label}").format(
                classes_file=CLASSES_FILE, count=len(names), file=TEST_DATA_FILE, label=bad
            ),
        )
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
        raise damaged_run(
            run, _("{file} is not a one-input, one-output classifier").format(file=run.model_path().name)
        ) from None
    if outputs != len(names):
        raise damaged_run(
            run,
            _("{classes_file} lists {count} classes but the model outputs {outputs}").format(
                classes_file=CLASSES_FILE, count=len(names), outputs=outputs
            ),
        )
    shape = images.shape[1:]
    if len(inputs) != len(shape) or any(m not in (None, d) for m, d in zip(inputs, shape, strict=True)):
        raise damaged_run(
            run,
            _("{file} holds images of shape {shape} but the model takes {inputs}").format(
                file=TEST_DATA_FILE, shape=shape, inputs=inputs
            ),
        )


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


def model_file_stamp(run: RunInfo) -> str:
    """Changes whenever the run's model file does: what is cached in the run folder is kept with it."""
    model_path = run.model_path()
    return f"{model_path.name}:{model_path.stat().st_size}:{model_path.stat().st_mtime_ns}"


def cached_probabilities(run: RunInfo, model=None, test_data: tuple | None = None) -> np.ndarray:
    """Class probabilities for the run's test images, computed once per model file and kept in the run; a
    cache that fails to load or does not fit the test split is recomputed."""
    stamp = model_file_stamp(run)
    images, _labels, names = test_data if test_data is not None else load_test_data(run)
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
    _images, labels, names = test_data
    return evaluate_predictions(labels, cached_probabilities(run, test_data=test_data), names)


# --- Single images ------------------------------------------------------------------------------------


def predict_image(model, data: bytes, image_shape: tuple[int, int, int], logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities for one uploaded or camera image, preprocessed as the training images were and as
    the exports' web demo and snippets do it (decoded in full, then core.images.RESIZE_METHOD)."""
    size, channels = image_shape[0], image_shape[-1]
    try:
        pixels, _info = decode_image(data, size, channels, draft=False)
    except BadImage as err:
        raise StudioError(
            _("That file cannot be used: {problem}. Upload a PNG, JPEG, BMP or GIF image.").format(problem=err)
        ) from None
    return probabilities(model, pixels[None], logits)[0], pixels
