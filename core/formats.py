"""The export formats, one registry entry each: id, a person's label, the file handed over, how it is made,
how it is run to compare with Keras, what it must meet, and how to use it.

Adding a format is one converter function (and, if it runs somewhere, one runner) plus one entry in
``REGISTRY``: the Export page, the CLI's ``--formats``, the comparison table and the checks list formats from it.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.evaluation import run_config
from core.files import atomic_write_bytes
from core.htmlsafe import script_json
from core.i18n import LANGUAGES, N_, _, language
from core.images import RESIZE_METHOD
from core.metrics import softmax
from core.runs import CALIBRATION_FILE, RunInfo
from core.runtimes import LATENCY_IMAGES, ROOT, run_litert, run_mediapipe, run_onnx, run_tfjs
from core.serving import INPUT_NAME, SERVING_VERSION, SIGNATURE, docker_command, output_name, serving_name
from core.tflite_metadata import ModelCard, with_metadata

TFJS_LIBRARY = ROOT / "node_modules" / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
WEBDEMO_TEMPLATE = ROOT / "assets" / "webdemo" / "index.html"
WEBDEMO_FILES = (
    "csp-shim.js",
    "preprocess.js",
    "camera.js",
    "demo.js",
    "demo.css",
)  # copied next to index.html: the page has no inline script or style
SAVEDMODEL_BATCH = 256
FLOAT_TOLERANCE = 1e-4  # max |Δ probability| from Keras for a float32 format
MIN_AGREEMENT = 0.99  # share of test images whose top-1 class is Keras's (MediaPipe float32 and float16)
INT8_MAX_ACCURACY_LOSS = 0.01  # one point of test accuracy
INT8_MAX_SIZE_SHARE = 0.30  # of the float32 file
ONNX_OPSET = 15


@dataclass
class ExportResult:
    format: str
    path: str | None = None  # the downloadable file, relative to the run folder
    size_bytes: int | None = None
    test_accuracy: float | None = None
    max_abs_diff: float | None = None
    latency_ms: float | None = None
    compared_images: int | None = None
    error: str | None = None
    seconds: float | None = None
    agreement: float | None = None  # share of compared images whose top-1 class is Keras's
    language: str | None = None  # the language its words were written in (a format with words people read)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ExportContext:
    """What every converter and runner gets: the run, its model, the compared test images and Keras's answers."""

    run: RunInfo
    out: Path
    model: object
    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    logits: bool
    outputs: np.ndarray  # Keras's own outputs on the compared images: what every format is held to

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    @property
    def reference(self) -> np.ndarray:
        return self.probabilities(self.outputs)

    def probabilities(self, outputs: np.ndarray) -> np.ndarray:
        return softmax(outputs) if self.logits else np.asarray(outputs, dtype=np.float64)


@dataclass(frozen=True)
class Snippet:
    """How to use a format, as a tab of code; ``code`` gets the export's metadata.json content."""

    title: str  # a message id (N_): shown with _()
    language: str
    code: Callable[[dict], str]


@dataclass(frozen=True)
class ExportFormat:
    id: str
    label: str  # for people: a message id (N_) where it has words, shown with _()
    file: str  # written into RUN/exports/ and offered for download
    convert: Callable[[ExportContext, Path], None]  # writes ``file``
    # Runs the written file on the compared images: (raw outputs, ms per image or None). None: not run.
    run: Callable[[ExportContext, Path], tuple[np.ndarray, float | None]] | None = None
    runtime: str = ""  # where ``run`` runs it, for people
    tolerance: float | None = None  # checked: max |Δ probability| from Keras
    max_accuracy_loss: float | None = None  # checked: test accuracy lost against Keras
    max_size_share: tuple[str, float] | None = None  # checked: file size against another format's
    min_agreement: float | None = None  # checked: share of test images with Keras's top-1 class
    gives_probabilities: bool = False  # ``run`` returns probabilities whatever the model outputs
    snippets: tuple[Snippet, ...] = ()
    short: str = ""  # a short name for check labels ("int8"); the label when empty
    localized: bool = False  # its files hold words people read: made again for another language

    @property
    def name(self) -> str:
        return self.short or self.label


# --- Intermediate folders several formats convert from ---------------------------------------------------


def _write_saved_model(ctx: ExportContext, name: str, serve: Callable, channels: int) -> Path:
    """A SavedModel folder ``name`` in the exports with one endpoint, ``serve``, taking float32 NHWC pixels
    (``pixels``); ``serve`` returns a dict, whose keys name the signature's outputs."""
    import keras
    import tensorflow as tf

    path = ctx.out / name
    if (path / "saved_model.pb").is_file():
        return path
    archive = keras.export.ExportArchive()
    archive.track(ctx.model)
    h, w, _channels = ctx.image_shape
    archive.add_endpoint(
        "serve", serve, input_signature=[tf.TensorSpec((None, h, w, channels), tf.float32, name=INPUT_NAME)]
    )
    tmp = ctx.out / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    archive.write_out(str(tmp), verbose=False)
    tmp.rename(path)
    return path


def saved_model_dir(ctx: ExportContext) -> Path:
    """An inference-only SavedModel: the model called with training=False (dropout and BatchNorm frozen), its
    serving_default output named for what it holds (``probabilities`` or ``logits``) for TensorFlow Serving."""
    model, key = ctx.model, output_name(ctx.logits)
    return _write_saved_model(ctx, "saved_model", lambda x: {key: model(x, training=False)}, ctx.image_shape[-1])


def rgb_to_gray(x):
    """Pillow's convert("L"), (19595 R + 38470 G + 7471 B + 2^15) >> 16, as float32 TensorFlow ops. Exact: every
    sum is a whole number below 2^24 and the division is by a power of two."""
    import tensorflow as tf

    weighted = tf.reduce_sum(x * tf.constant([19595.0, 38470.0, 7471.0]), axis=-1, keepdims=True)
    return tf.floor((weighted + 32768.0) / 65536.0)


def mediapipe_saved_model_dir(ctx: ExportContext) -> Path:
    """The SavedModel the MediaPipe files convert from: RGB input (MediaPipe's ImageClassifier gives RGB only;
    a grayscale model's first op converts it to gray as the app does) and probabilities out (softmax added to
    a logits model, since MediaPipe reports the output as scores)."""
    import tensorflow as tf

    model, gray, logits = ctx.model, ctx.image_shape[-1] == 1, ctx.logits

    def serve(x):
        y = model(rgb_to_gray(x) if gray else x, training=False)
        return tf.nn.softmax(y) if logits else y

    return _write_saved_model(ctx, "saved_model_mediapipe", serve, 3)


def tfjs_dir(ctx: ExportContext) -> Path:
    from tensorflowjs.converters import convert_tf_saved_model

    path = ctx.out / "tfjs_model"
    if (path / "model.json").is_file():
        return path
    tmp = ctx.out / ".tfjs_model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    # The SavedModel → graph-model path: tensorflowjs 4.22's Keras 3 → layers-model output does not load in TF.js.
    convert_tf_saved_model(str(saved_model_dir(ctx)), str(tmp))
    tmp.rename(path)
    return path


def _zip_folder(folder: Path, target: Path, prefix: str) -> None:
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".zip.tmp", delete=False) as handle:
        tmp = Path(handle.name)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(file, f"{prefix}/{file.relative_to(folder).as_posix()}")
    tmp.replace(target)


# --- Converters and runners ------------------------------------------------------------------------------


def _convert_keras(ctx: ExportContext, path: Path) -> None:
    shutil.copy2(ctx.run.model_path(), path)


def _run_keras(ctx: ExportContext, path: Path) -> tuple[np.ndarray, float]:
    count = min(LATENCY_IMAGES, len(ctx.images))
    start = time.perf_counter()
    for i in range(count):
        ctx.model(ctx.images[i : i + 1].astype(np.float32), training=False)
    latency = (time.perf_counter() - start) * 1000 / max(count, 1)
    return ctx.outputs, latency  # Keras is the reference: its outputs as computed once


def _convert_savedmodel(ctx: ExportContext, path: Path) -> None:
    """Laid out as TensorFlow Serving loads it: <model name>/<version>/saved_model.pb."""
    _zip_folder(saved_model_dir(ctx), path, f"{serving_name(ctx.run)}/{SERVING_VERSION}")


def _run_savedmodel(ctx: ExportContext, path: Path) -> tuple[np.ndarray, None]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model_dir(ctx))).signatures[SIGNATURE]
    key = output_name(ctx.logits)
    batches = range(0, len(ctx.images), SAVEDMODEL_BATCH)
    outputs = [
        serve(**{INPUT_NAME: tf.constant(ctx.images[i : i + SAVEDMODEL_BATCH], tf.float32)})[key] for i in batches
    ]
    return np.concatenate(outputs), None


def _convert_h5(ctx: ExportContext, path: Path) -> None:
    """Written by tf_keras (Keras 2): such a file loads in Keras 3 too, while a Keras 3 one does not in Keras 2."""
    from core.keras2 import write_h5

    write_h5(ctx.model, path)


def _run_h5(ctx: ExportContext, path: Path) -> tuple[np.ndarray, None]:
    """The .h5 as a Keras 2 user loads it: tf_keras.models.load_model."""
    import tf_keras

    model = tf_keras.models.load_model(str(path), compile=False, safe_mode=True)
    return _predict(model, ctx.images), None


def _convert_weights(ctx: ExportContext, path: Path) -> None:
    ctx.model.save_weights(str(path))  # Keras 3 wants the name to end in .weights.h5; a temporary one does


def fresh_model(ctx: ExportContext):
    """A new, untrained model of the run's config, as the weights-only file is meant to be loaded into. The
    standardization constants (a layer's config, not weights) come from the run's model."""
    from core.models import build_model

    config = run_config(ctx.run).model
    config.pretrained = False  # the weights file brings them; no ImageNet download
    mean = std = None
    if config.normalization == "standardize":
        layer = ctx.model.get_layer("standardize")
        std = 1.0 / np.asarray(layer.scale, dtype=np.float64)
        mean = -np.asarray(layer.offset, dtype=np.float64) * std
    return build_model(config, ctx.image_shape, len(ctx.names), mean, std).model


def _run_weights(ctx: ExportContext, path: Path) -> tuple[np.ndarray, None]:
    model = fresh_model(ctx)
    model.load_weights(str(path))
    return _predict(model, ctx.images), None


def _predict(model, images: np.ndarray) -> np.ndarray:
    batches = range(0, len(images), SAVEDMODEL_BATCH)
    return np.concatenate([np.asarray(model(images[i : i + SAVEDMODEL_BATCH], training=False)) for i in batches])


def _convert_tfjs(ctx: ExportContext, path: Path) -> None:
    _zip_folder(tfjs_dir(ctx), path, "tfjs_model")


def _run_tfjs(ctx: ExportContext, path: Path) -> tuple[np.ndarray, float]:
    return run_tfjs(tfjs_dir(ctx), ctx.images)


def _convert_onnx(ctx: ExportContext, path: Path) -> None:
    """tf2onnx from the inference SavedModel (its from_keras fails on Keras 3 models), as its command line
    converts a SavedModel; the class names and the input's meaning go into the model's metadata_props."""
    import onnx
    import tensorflow as tf
    from tf2onnx import tf_loader
    from tf2onnx.convert import _convert_common

    graph, inputs, outputs, tables, renames = tf_loader.from_saved_model(
        str(saved_model_dir(ctx)),
        None,
        None,
        tag="serve",
        signatures=["serving_default"],
        return_initialized_tables=True,
        return_tensors_to_rename=True,
    )
    renames[outputs[0]] = "logits" if ctx.logits else "probabilities"
    with tf.device("/cpu:0"):
        proto, _external = _convert_common(
            graph,
            name=f"CNN Studio run {ctx.run.run_id}",
            opset=ONNX_OPSET,
            input_names=inputs,
            output_names=outputs,
            tensors_to_rename=renames,
            initialized_tables=tables,
        )
    meta = metadata(ctx)
    onnx.helper.set_model_props(
        proto,
        {
            "class_names": json.dumps(ctx.names),
            "input": f"pixels: float32 {meta['input']['shape']} NHWC, {meta['input']['channel_order']}, 0..255",
            "output": meta["output"]["values"],
            "resize": meta["input"]["resize"],
            "source_run": ctx.run.run_id,
        },
    )
    atomic_write_bytes(path, proto.SerializeToString())


def _run_onnx(ctx: ExportContext, path: Path) -> tuple[np.ndarray, float]:
    return run_onnx(path, ctx.images)


def _calibration_images(ctx: ExportContext) -> np.ndarray:
    try:
        with np.load(ctx.run.path / CALIBRATION_FILE) as data:
            return data["images"]
    except (OSError, KeyError) as err:
        raise StudioError(
            _("The run has no calibration images ({file}: {error}); int8 needs them. Train the run again.").format(
                file=CALIBRATION_FILE, error=err
            )
        ) from None


def model_card(ctx: ExportContext, variant: str, mediapipe: bool = False, int8_io: bool = False) -> ModelCard:
    """The metadata written into a .tflite file of the run (``variant``: "float32", "int8", …)."""
    h, w, c = ctx.image_shape
    status = ctx.run.status
    gray = c == 1 and not mediapipe
    probabilities = mediapipe or not ctx.logits
    shown = ", ".join(ctx.names[:8]) + (", …" if len(ctx.names) > 8 else "")
    accuracy = f", test accuracy {status.test_accuracy:.2%}" if status.test_accuracy is not None else ""
    if mediapipe and c == 1:
        pixels = f"RGB image, {w}x{h}: the model's first op makes it grayscale as in training (Pillow's L)"
    else:
        pixels = f"{'Grayscale' if gray else 'RGB'} image, {w}x{h}"
    if int8_io:
        pixels += "; int8: q = round(pixel / scale + zero_point) with the input tensor's quantization"
    return ModelCard(
        name=f"CNN Studio: {ctx.run.name}",
        description=(
            f"Classifies a {w}x{h} {'grayscale' if c == 1 else 'RGB'} picture into {len(ctx.names)} classes "
            f"({shown}); TFLite {variant}{', for MediaPipe Tasks (RGB input, probabilities)' if mediapipe else ''}. "
            f"Trained with CNN Studio on {status.dataset or 'a dataset'} ({status.preset or 'custom model'}, "
            f"{status.epochs_completed} epochs{accuracy}), run {ctx.run.run_id}."
        ),
        version=ctx.run.run_id,
        author="CNN Studio",
        input_description=f"{pixels}; raw pixel values 0..255 (normalization is inside the model); resize: "
        f"{RESIZE_METHOD}.",
        grayscale=gray,
        output_description="Probability of each class (softmax applied)."
        if probabilities
        else "Logits: apply softmax for probabilities.",
        probabilities=probabilities,
        labels=list(ctx.names),
        output_name="probabilities" if probabilities else "logits",
    )


def _tflite(
    variant: str,
    optimize: bool = False,
    fp16: bool = False,
    int8: bool = False,
    int8_io: bool = False,
    mediapipe: bool = False,
):
    """A converter to .tflite from the SavedModel (or the MediaPipe one): float32, or a quantized variant; the
    file carries metadata (core.tflite_metadata), which LiteRT ignores and MediaPipe and ML Kit read."""

    def convert(ctx: ExportContext, path: Path) -> None:
        import tensorflow as tf

        source = mediapipe_saved_model_dir(ctx) if mediapipe else saved_model_dir(ctx)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
        if optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if fp16:
            converter.target_spec.supported_types = [tf.float16]
        if int8:
            calibration = _calibration_images(ctx).astype(np.float32)
            if mediapipe and calibration.shape[-1] == 1:
                calibration = np.repeat(calibration, 3, axis=-1)
            converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = converter.inference_output_type = tf.int8
        card = model_card(ctx, variant, mediapipe=mediapipe, int8_io=int8_io)
        atomic_write_bytes(path, with_metadata(converter.convert(), card))

    return convert


def _run_tflite(ctx: ExportContext, path: Path) -> tuple[np.ndarray, float]:
    return run_litert(path, ctx.images)


def _run_mediapipe(ctx: ExportContext, path: Path) -> tuple[np.ndarray, float]:
    return run_mediapipe(path, ctx.images)


def metadata(ctx: ExportContext) -> dict:
    """metadata.json: what a developer needs to feed the model and read its answer, and where it came from."""
    config = run_config(ctx.run)
    h, w, c = ctx.image_shape
    normalization = {
        "unit": "Rescaling(1/255): pixels to [0, 1]",
        "symmetric": "Rescaling(1/127.5, offset=-1): pixels to [-1, 1]",
        "standardize": "Rescaling per channel: (pixel - training mean) / training std",
    }
    status = ctx.run.status
    return {
        "format_version": 1,
        "input": {
            "name": "pixels",
            "shape": [1, h, w, c],
            "layout": "NHWC",
            "dtype": "float32",
            "pixel_range": [0, 255],
            "channels": c,
            "channel_order": "RGB" if c == 3 else "grayscale (L = (19595 R + 38470 G + 7471 B + 32768) >> 16)",
            "resize": f"to {w}x{h}: {RESIZE_METHOD}",
        },
        "preprocessing_inside_model": normalization[config.model.normalization],
        "output": {
            "name": output_name(ctx.logits),
            "values": "logits (apply softmax)" if ctx.logits else "probabilities (softmax applied)",
            "classes": len(ctx.names),
        },
        "serving": {
            "model_name": serving_name(ctx.run),
            "version": SERVING_VERSION,
            "signature": SIGNATURE,
            "input": INPUT_NAME,
            "output": output_name(ctx.logits),
            "layout": f"saved_model.zip unzips to {serving_name(ctx.run)}/{SERVING_VERSION}/saved_model.pb, as "
            "TensorFlow Serving loads it",
        },
        "class_names": ctx.names,
        "int8_input_output": "tflite-int8-io: quantize pixels with the input tensor's scale/zero point "
        "(q = round(pixel / scale + zero_point)) and dequantize the output the same way",
        "mediapipe": "mediapipe_*.tflite: RGB input"
        + (" (the first op converts it to gray)" if c == 1 else "")
        + ", probabilities out, labels and normalization in the file's metadata: MediaPipe Tasks ImageClassifier "
        "loads them as they are",
        "source_run": {
            "run_id": ctx.run.run_id,
            "name": ctx.run.name,
            "dataset": status.dataset,
            "preset": status.preset,
            "params": status.params,
            "epochs_completed": status.epochs_completed,
            "best_val_accuracy": status.best_val_accuracy,
            "test_accuracy": status.test_accuracy,
        },
    }


def camera_words() -> dict[str, str]:
    """The words camera.js shows (buttons, camera messages, the prediction line), in the current language.

    camera.js has no words of its own: the web demo carries these in a JSON block made at export time, the
    Live page passes them with the model. ``{name}``-style placeholders are filled in the browser."""
    return {
        "start": _("Start camera"),
        "pause": _("Pause"),
        "resume": _("Resume"),
        "stop": _("Stop camera"),
        "fullscreen": _("Full screen"),
        "loading": _("Loading the model…"),
        "drop": _("Drop a picture here, or click to choose one"),
        "prediction": _("Prediction: {name} ({percent})"),
        "fps": _("{fps} frames/s"),
        "cameraOn": _("Camera on: classifying every frame…"),
        "cameraOff": _("Camera off."),
        "paused": _("Paused: the frame and its prediction are frozen. Press Resume to go on."),
        "readyGray": _(
            "Model ready: {classes} classes, {width}×{height} grayscale input. Start the camera, or drop or choose "
            "a picture."
        ),
        "readyRgb": _(
            "Model ready: {classes} classes, {width}×{height} RGB input. Start the camera, or drop or choose a picture."
        ),
        "loadFailed": _("The model did not load ({error}). {hint}"),
        "noCameraApi": _(
            "This browser offers the camera only to pages opened from file://, https:// or http://localhost, and "
            "this page is {origin}. Open it one of those ways, or drop a picture."
        ),
        "NotAllowedError": _(
            "Camera access was refused. Allow the camera for this page in the browser's site settings (the camera "
            "icon in the address bar) and press Start camera again, or drop a picture."
        ),
        "NotFoundError": _("No camera was found. Connect one and press Start camera again, or drop a picture."),
        "NotReadableError": _(
            "The camera is in use by another program, or the system refused it. Close that program and press "
            "Start camera again, or drop a picture."
        ),
        "OverconstrainedError": _("No camera offers a picture this page can use. Drop a picture instead."),
        "cameraFailed": _("The camera did not start ({error}). Drop a picture instead."),
    }


def webdemo_words() -> dict[str, str]:
    """The web demo's words: the camera's and its own line naming the run."""
    return camera_words() | {
        "source": _("Model of run “{name}” ({run_id})"),
        "loadHint": _("model.js must sit next to this page."),
    }


_WEBDEMO_SLOTS = re.compile(r"__(LANG|TITLE|HELP|WORDS_JSON|METADATA_JSON)__")


def webdemo_page(meta: dict) -> str:
    """The demo's index.html in the current language: the metadata and the words go in as JSON data blocks
    (escaped for <script>), never as script; the title and the help as escaped text.

    The page runs only its own files (demo.js, camera.js, preprocess.js, model.js, tf.min.js) under its
    Content-Security-Policy. The slots are filled in one pass, so no value (a run name) can fill another."""
    template = WEBDEMO_TEMPLATE.read_text(encoding="utf-8")
    values = {
        "LANG": language() if language() in LANGUAGES else "en",
        "TITLE": html.escape(_("CNN Studio web demo")),
        "HELP": html.escape(
            _(
                "Runs entirely in this browser with TensorFlow.js, offline: open index.html directly or from any "
                "static server. Pictures and camera frames are resized as CNN Studio resizes them (Pillow's "
                "bilinear filter), so a picture gets the probabilities the app gives it."
            )
        ),
        "WORDS_JSON": script_json(webdemo_words()),
        "METADATA_JSON": script_json(meta),
    }
    return _WEBDEMO_SLOTS.sub(lambda match: values[match.group(1)], template)


def graph_model_artifacts(model_dir: Path) -> tuple[dict, bytes]:
    """The TF.js graph model of ``model_dir`` (model.json and its weight shards) as ``tf.io.fromMemory`` takes it:
    model.json's fields with the weight specs of all shards, and the shards' bytes joined in that order."""
    spec = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
    weights = b"".join((model_dir / p).read_bytes() for group in spec["weightsManifest"] for p in group["paths"])
    artifacts = {key: spec[key] for key in ("modelTopology", "format", "generatedBy", "convertedBy") if key in spec}
    artifacts["signature"] = spec.get("signature")
    artifacts["userDefinedMetadata"] = spec.get("userDefinedMetadata")
    artifacts["weightSpecs"] = [w for group in spec["weightsManifest"] for w in group["weights"]]
    return artifacts, weights


def model_script(model_dir: Path) -> str:
    """model.js: the TF.js graph model of ``model_dir`` as one script, so the demo opens from file:// too, where a
    browser lets a page load scripts but not fetch files."""
    artifacts, weights = graph_model_artifacts(model_dir)
    artifacts["weightDataBase64"] = base64.b64encode(weights).decode("ascii")
    return (
        "// The demo's TF.js graph model (model/model.json and its weights) as data, for pages opened from file://.\n"
        f"window.cnnStudioModel = {json.dumps(artifacts, ensure_ascii=True)};\n"
    )


def _convert_webdemo(ctx: ExportContext, path: Path) -> None:
    if not TFJS_LIBRARY.is_file():
        raise StudioError(_("The TF.js library file (tf.min.js) is missing: run 'make install' (npm ci)."))
    model_dir = tfjs_dir(ctx)
    meta = metadata(ctx)
    page = webdemo_page(meta)
    with tempfile.NamedTemporaryFile(dir=ctx.out, suffix=".zip.tmp", delete=False) as handle:
        tmp = Path(handle.name)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("webdemo/index.html", page)
        for name in WEBDEMO_FILES:
            zf.write(WEBDEMO_TEMPLATE.parent / name, f"webdemo/{name}")
        zf.write(TFJS_LIBRARY, "webdemo/tf.min.js")
        zf.writestr("webdemo/model.js", model_script(model_dir))
        for file in sorted(model_dir.iterdir()):
            zf.write(file, f"webdemo/model/{file.name}")
        zf.writestr("webdemo/labels.txt", "\n".join(ctx.names) + "\n")
        zf.writestr("webdemo/metadata.json", json.dumps(meta, indent=2))
    tmp.replace(path)


# --- Snippets: each runs as shown (tests/test_export_snippets.py runs the Python ones and the JavaScript one) ---


def _shape(meta: dict) -> tuple[int, int, int]:
    _batch, h, w, c = meta["input"]["shape"]
    return h, w, c


def _logits(meta: dict) -> bool:
    return meta["output"]["values"].startswith("logits")


def _python_picture(meta: dict, rgb: bool = False) -> str:
    """Python lines that turn photo.jpg into the model's picture as the app does (core.images.RESIZE_METHOD);
    ``rgb``: as an RGB picture (MediaPipe) even for a grayscale model, whose first op makes it gray again."""
    h, w, c = _shape(meta)
    lines = [
        f'image = ImageOps.exif_transpose(Image.open("photo.jpg")).convert("{"RGB" if c == 3 else "L"}")',
        f"image = image.resize(({w}, {h}), Image.BILINEAR)  # Pillow bilinear: as the app and the web demo resize",
    ]
    if rgb and c == 1:
        lines.append('image = image.convert("RGB")  # MediaPipe takes RGB: the model\'s first op makes it gray again')
    return "\n".join(lines)


def _python_pixels(meta: dict) -> str:
    h, w, c = _shape(meta)
    shape = f"1, {h}, {w}, {c}"
    return (
        _python_picture(meta)
        + f"\npixels = np.asarray(image, np.float32).reshape({shape})  # raw 0..255: the model normalizes"
    )


def _python_softmax(meta: dict) -> str:
    return (
        "\nscores = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()  # logits → probabilities"
        if _logits(meta)
        else ""
    )


def _js_snippet(meta: dict) -> str:
    h, w, c = _shape(meta)
    scores = "tf.softmax(model.predict(x))" if _logits(meta) else "model.predict(x)"
    return f"""<!-- Next to this page: tf.min.js, preprocess.js, labels.txt and model/ from webdemo.zip, and photo.jpg.
     Serve the folder over HTTP (python3 -m http.server): a page opened from file:// cannot fetch model.json. -->
<img id="photo" src="photo.jpg" alt="">
<p id="answer">Classifying…</p>
<script src="tf.min.js"></script>
<script src="preprocess.js"></script>
<script>
async function classify() {{
  const model = await tf.loadGraphModel("model/model.json");
  const labels = (await (await fetch("labels.txt")).text()).replace(/\\n$/, "").split("\\n");
  const photo = document.getElementById("photo");
  await photo.decode();
  // Raw pixels 0..255, resized as the app does it (Pillow's bilinear filter): the model normalizes them.
  const pixels = cnnStudioPixels(photo, {w}, {h}, {c});
  const scores = tf.tidy(() => {{
    const x = tf.tensor4d(pixels, [1, {h}, {w}, {c}]);
    return {scores};
  }});
  const probabilities = await scores.data();
  const best = probabilities.indexOf(Math.max(...probabilities));
  document.getElementById("answer").textContent = `${{labels[best]}} ${{probabilities[best].toFixed(4)}}`;
}}
classify();
</script>"""


def _kotlin_snippet(meta: dict) -> str:
    h, w, c = _shape(meta)
    return f"""// build.gradle: implementation("com.google.ai.edge.litert:litert:1.0.1")
val interpreter = Interpreter(FileUtil.loadMappedFile(context, "{REGISTRY["tflite"].file}"))
val input = ByteBuffer.allocateDirect(4 * {h} * {w} * {c}).order(ByteOrder.nativeOrder())
// Fill with raw pixel values 0..255 as floats, {"R, G, B" if c == 3 else "gray"} per pixel, row by row ({w}x{h}).
val output = Array(1) {{ FloatArray({meta["output"]["classes"]}) }}
interpreter.run(input, output)
val best = output[0].indices.maxBy {{ output[0][it] }}      // line `best` of labels.txt"""


def _python_snippet(meta: dict) -> str:
    return f"""import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image, ImageOps

{_python_pixels(meta)}
interpreter = Interpreter(model_path="{REGISTRY["tflite"].file}")
interpreter.allocate_tensors()
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
interpreter.invoke()
scores = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]{_python_softmax(meta)}
labels = open("labels.txt").read().splitlines()
print(labels[scores.argmax()], f"{{scores.max():.4f}}")"""


def _onnx_snippet(meta: dict) -> str:
    return f"""import json

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

{_python_pixels(meta)}
session = ort.InferenceSession("{REGISTRY["onnx"].file}")
scores = session.run(None, {{"pixels": pixels}})[0][0]{_python_softmax(meta)}
labels = json.loads(session.get_modelmeta().custom_metadata_map["class_names"])  # also in labels.txt
print(labels[scores.argmax()], f"{{scores.max():.4f}}")"""


def _mediapipe_snippet(meta: dict) -> str:
    return f"""import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions
from PIL import Image, ImageOps

{_python_picture(meta, rgb=True)}
model = BaseOptions(model_asset_path="{REGISTRY["mediapipe"].file}")  # labels and normalization inside
with ImageClassifier.create_from_options(ImageClassifierOptions(base_options=model, max_results=3)) as classifier:
    result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.asarray(image)))
for category in result.classifications[0].categories:  # best first, named from the file's labels
    print(category.category_name, f"{{category.score:.4f}}")"""


def _mediapipe_kotlin_snippet(meta: dict) -> str:
    h, w, c = _shape(meta)
    return f"""// build.gradle: implementation("com.google.mediapipe:tasks-vision:latest.release")
// src/main/assets/{REGISTRY["mediapipe"].file}: its labels and input normalization are inside the file.
val options = ImageClassifier.ImageClassifierOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{REGISTRY["mediapipe"].file}").build())
    .setMaxResults(3)
    .build()
val classifier = ImageClassifier.createFromOptions(context, options)
// RGB input{" (the model's first op makes it gray)" if c == 1 else ""}; scaled first so MediaPipe keeps the size.
val picture = Bitmap.createScaledBitmap(bitmap, {w}, {h}, true)
val result = classifier.classify(BitmapImageBuilder(picture).build())
val best = result.classificationResult().classifications()[0].categories()[0]
Log.i("classifier", "${{best.categoryName()}} ${{best.score()}}")"""


def usage_readme(meta: dict) -> str:
    """README.md of the exports: what each file is for, how a picture becomes input, and every snippet."""
    h, w, c = _shape(meta)
    source = meta.get("source_run", {})
    files = "\n".join(f"- `{entry.file}`: {entry.label}" for entry in REGISTRY.values())
    parts = [
        f"# Exported model of run {source.get('run_id', '')}\n",
        f"A {w}x{h} {'RGB' if c == 3 else 'grayscale'} image classifier with {len(meta.get('class_names', []))} "
        "classes (`labels.txt`, one a line, in the output's order; `metadata.json` says everything below as "
        "data). Every model takes raw pixels 0..255 as float32 NHWC: it normalizes them itself.\n",
        f"{files}\n",
        f"**One picture, one answer:** the app, the web demo and the snippets below make a picture into model "
        f"input one way: {RESIZE_METHOD}.\n",
        "**Web demo:** open `webdemo/index.html` from `webdemo.zip` (double-click it, or serve the folder): it "
        "classifies the camera stream, or a picture you drop or choose, offline.\n",
        _serving_readme(meta),
    ]
    for entry in REGISTRY.values():
        for snippet in entry.snippets:
            parts.append(f"## {snippet.title}: `{entry.file}`\n\n```{snippet.language}\n{snippet.code(meta)}\n```\n")
    return "\n".join(parts)


def _serving_readme(meta: dict) -> str:
    """The exports' README section on TensorFlow Serving (a shell block: the snippet tests run Python ones)."""
    serving = meta.get("serving", {})
    name, output = serving.get("model_name", "model"), serving.get("output", "probabilities")
    return (
        f"## TensorFlow Serving: `saved_model.zip`\n\nIts signature `{SIGNATURE}` takes `{INPUT_NAME}` (float32 "
        f"NHWC, raw 0..255) and answers `{output}`. REST predict: POST "
        f'`{{"instances": [H x W x C pixel arrays]}}` to `/v1/models/{name}:predict`.\n\n'
        f"```bash\n{docker_command(name)}\ncurl http://localhost:8501/v1/models/{name}/metadata\n```\n"
    )


# --- The registry ---------------------------------------------------------------------------------------

LITERT = N_("LiteRT interpreter")
MEDIAPIPE = N_("MediaPipe Tasks ImageClassifier")
_ENTRIES = (
    ExportFormat("keras", "Keras (.keras)", "model.keras", _convert_keras, _run_keras, "Keras (TensorFlow)"),
    ExportFormat(
        "savedmodel",
        N_("TensorFlow SavedModel (TensorFlow Serving layout)"),
        "saved_model.zip",
        _convert_savedmodel,
        _run_savedmodel,
        "TensorFlow",
    ),
    ExportFormat(
        "h5",
        N_("Keras HDF5 (.h5, loads in Keras 3 and tf_keras)"),
        "model.h5",
        _convert_h5,
        _run_h5,
        N_("tf_keras (Keras 2)"),
        tolerance=FLOAT_TOLERANCE,
        short="HDF5",
    ),
    ExportFormat(
        "weights-h5",
        N_("Keras weights only (.weights.h5)"),
        "model.weights.h5",
        _convert_weights,
        _run_weights,
        N_("Keras (a new model of the run's config)"),
        tolerance=FLOAT_TOLERANCE,
        short=N_("weights"),
    ),
    ExportFormat(
        "tfjs",
        N_("TensorFlow.js graph model"),
        "tfjs_model.zip",
        _convert_tfjs,
        _run_tfjs,
        N_("TF.js runtime (CPU backend, Node)"),
        tolerance=FLOAT_TOLERANCE,
        snippets=(Snippet(N_("JavaScript (TF.js, browser)"), "html", _js_snippet),),
    ),
    ExportFormat(
        "onnx",
        "ONNX (opset 15)",
        "model.onnx",
        _convert_onnx,
        _run_onnx,
        N_("ONNX Runtime (CPU)"),
        tolerance=FLOAT_TOLERANCE,
        short="ONNX",
        snippets=(Snippet(N_("Python (ONNX Runtime)"), "python", _onnx_snippet),),
    ),
    ExportFormat(
        "tflite",
        "TFLite float32",
        "model_float32.tflite",
        _tflite("float32"),
        _run_tflite,
        LITERT,
        tolerance=FLOAT_TOLERANCE,
        short="float32",
        snippets=(
            Snippet(N_("Android / Kotlin (LiteRT)"), "kotlin", _kotlin_snippet),
            Snippet(N_("Python (LiteRT)"), "python", _python_snippet),
        ),
    ),
    ExportFormat(
        "tflite-fp16",
        "TFLite float16",
        "model_float16.tflite",
        _tflite("float16", optimize=True, fp16=True),
        _run_tflite,
        LITERT,
    ),
    ExportFormat(
        "tflite-dynamic",
        N_("TFLite dynamic-range"),
        "model_dynamic_range.tflite",
        _tflite("dynamic-range", optimize=True),
        _run_tflite,
        LITERT,
    ),
    ExportFormat(
        "tflite-int8",
        N_("TFLite full-integer int8 (float input/output)"),
        "model_int8.tflite",
        _tflite("int8", optimize=True, int8=True),
        _run_tflite,
        LITERT,
        max_accuracy_loss=INT8_MAX_ACCURACY_LOSS,
        max_size_share=("tflite", INT8_MAX_SIZE_SHARE),
        short="int8",
    ),
    ExportFormat(
        "tflite-int8-io",
        N_("TFLite full-integer int8 (int8 input/output, microcontrollers)"),
        "model_int8_io.tflite",
        _tflite("int8 (int8 input/output)", optimize=True, int8=True, int8_io=True),
        _run_tflite,
        LITERT,
    ),
    ExportFormat(
        "mediapipe",
        N_("MediaPipe TFLite float32 (metadata, RGB in, probabilities out)"),
        "mediapipe_float32.tflite",
        _tflite("float32", mediapipe=True),
        _run_mediapipe,
        MEDIAPIPE,
        gives_probabilities=True,
        tolerance=FLOAT_TOLERANCE,
        min_agreement=MIN_AGREEMENT,
        short="MediaPipe float32",
        snippets=(
            Snippet(N_("Python (MediaPipe Tasks)"), "python", _mediapipe_snippet),
            Snippet(N_("Android / Kotlin (MediaPipe Tasks)"), "kotlin", _mediapipe_kotlin_snippet),
        ),
    ),
    ExportFormat(
        "mediapipe-fp16",
        "MediaPipe TFLite float16",
        "mediapipe_float16.tflite",
        _tflite("float16", optimize=True, fp16=True, mediapipe=True),
        _run_mediapipe,
        MEDIAPIPE,
        gives_probabilities=True,
        min_agreement=MIN_AGREEMENT,
        short="MediaPipe float16",
    ),
    ExportFormat(
        "mediapipe-dynamic",
        N_("MediaPipe TFLite dynamic-range"),
        "mediapipe_dynamic_range.tflite",
        _tflite("dynamic-range", optimize=True, mediapipe=True),
        _run_mediapipe,
        MEDIAPIPE,
        gives_probabilities=True,
        short=N_("MediaPipe dynamic-range"),
    ),
    ExportFormat(
        "mediapipe-int8",
        N_("MediaPipe TFLite int8 (float input/output)"),
        "mediapipe_int8.tflite",
        _tflite("int8", optimize=True, int8=True, mediapipe=True),
        _run_mediapipe,
        MEDIAPIPE,
        gives_probabilities=True,
        short="MediaPipe int8",
    ),
    ExportFormat(
        "webdemo",
        N_("Web demo (index.html + TF.js model + TF.js library)"),  # camera, drop or pick; offline
        "webdemo.zip",
        _convert_webdemo,
        localized=True,  # its page's words are in the language it was made in
    ),
)
REGISTRY: dict[str, ExportFormat] = {entry.id: entry for entry in _ENTRIES}
FORMATS: tuple[str, ...] = tuple(REGISTRY)


def format_help() -> str:
    """The CLI's --formats help, from the registry."""
    return _("comma-separated, from: {formats} (default: all)").format(formats=", ".join(FORMATS))


def parse_formats(text: str) -> list[str]:
    """``all`` or a comma-separated list of ids; an unknown id names the choices."""
    if text.strip() == "all":
        return list(FORMATS)
    chosen = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in REGISTRY]
    if unknown or not chosen:
        raise StudioError(
            _("Unknown export format '{format}': choose from {choices}.").format(
                format=unknown[0] if unknown else text, choices=", ".join(FORMATS)
            )
        )
    return chosen
