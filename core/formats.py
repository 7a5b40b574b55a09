"""The export formats, one registry entry each: id, a person's label, the file handed over, how it is made,
how it is run to compare with Keras, what it must meet, and how to use it.

Adding a format is one converter function (and, if it runs somewhere, one runner) plus one entry in
``REGISTRY``: the Export page, the CLI's ``--formats``, the comparison table and the checks list formats from it.
"""

from __future__ import annotations

import json
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
from core.metrics import softmax
from core.runs import CALIBRATION_FILE, RunInfo
from core.runtimes import LATENCY_IMAGES, ROOT, run_litert, run_tfjs

TFJS_LIBRARY = ROOT / "node_modules" / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
WEBDEMO_TEMPLATE = ROOT / "assets" / "webdemo" / "index.html"
WEBDEMO_FILES = (
    "csp-shim.js",
    "demo.js",
    "demo.css",
)  # copied next to index.html: the page has no inline script or style
SAVEDMODEL_BATCH = 256
FLOAT_TOLERANCE = 1e-4  # max |Δ probability| from Keras for a float32 format
INT8_MAX_ACCURACY_LOSS = 0.01  # one point of test accuracy
INT8_MAX_SIZE_SHARE = 0.30  # of the float32 file


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

    title: str
    language: str
    code: Callable[[dict], str]


@dataclass(frozen=True)
class ExportFormat:
    id: str
    label: str
    file: str  # written into RUN/exports/ and offered for download
    convert: Callable[[ExportContext, Path], None]  # writes ``file``
    # Runs the written file on the compared images: (raw outputs, ms per image or None). None: not run.
    run: Callable[[ExportContext, Path], tuple[np.ndarray, float | None]] | None = None
    runtime: str = ""  # where ``run`` runs it, for people
    tolerance: float | None = None  # checked: max |Δ probability| from Keras
    max_accuracy_loss: float | None = None  # checked: test accuracy lost against Keras
    max_size_share: tuple[str, float] | None = None  # checked: file size against another format's
    snippets: tuple[Snippet, ...] = ()
    short: str = ""  # a short name for check labels ("int8"); the label when empty

    @property
    def name(self) -> str:
        return self.short or self.label


# --- Intermediate folders several formats convert from ---------------------------------------------------


def saved_model_dir(ctx: ExportContext) -> Path:
    """An inference-only SavedModel: the model called with training=False (dropout and BatchNorm frozen)."""
    import keras
    import tensorflow as tf

    path = ctx.out / "saved_model"
    if (path / "saved_model.pb").is_file():
        return path
    archive = keras.export.ExportArchive()
    archive.track(ctx.model)
    model = ctx.model
    archive.add_endpoint(
        "serve",
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, *ctx.image_shape), tf.float32, name="pixels")],
    )
    tmp = ctx.out / ".saved_model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    archive.write_out(str(tmp), verbose=False)
    tmp.rename(path)
    return path


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
    _zip_folder(saved_model_dir(ctx), path, "saved_model")


def _run_savedmodel(ctx: ExportContext, path: Path) -> tuple[np.ndarray, None]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model_dir(ctx))).signatures["serving_default"]
    batches = range(0, len(ctx.images), SAVEDMODEL_BATCH)
    outputs = [
        list(serve(pixels=tf.constant(ctx.images[i : i + SAVEDMODEL_BATCH], tf.float32)).values())[0] for i in batches
    ]
    return np.concatenate(outputs), None


def _convert_tfjs(ctx: ExportContext, path: Path) -> None:
    _zip_folder(tfjs_dir(ctx), path, "tfjs_model")


def _run_tfjs(ctx: ExportContext, path: Path) -> tuple[np.ndarray, float]:
    return run_tfjs(tfjs_dir(ctx), ctx.images)


def _calibration_images(ctx: ExportContext) -> np.ndarray:
    try:
        with np.load(ctx.run.path / CALIBRATION_FILE) as data:
            return data["images"]
    except (OSError, KeyError) as err:
        raise StudioError(
            f"The run has no calibration images ({CALIBRATION_FILE}: {err}); int8 needs them. Train the run again."
        ) from None


def _tflite(optimize: bool = False, fp16: bool = False, int8: bool = False, int8_io: bool = False):
    """A converter to .tflite from the SavedModel: float32, or one of the quantized variants."""

    def convert(ctx: ExportContext, path: Path) -> None:
        import tensorflow as tf

        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir(ctx)))
        if optimize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if fp16:
            converter.target_spec.supported_types = [tf.float16]
        if int8:
            calibration = _calibration_images(ctx).astype(np.float32)
            converter.representative_dataset = lambda: ([calibration[i : i + 1]] for i in range(len(calibration)))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = converter.inference_output_type = tf.int8
        atomic_write_bytes(path, converter.convert())

    return convert


def _run_tflite(ctx: ExportContext, path: Path) -> tuple[np.ndarray, float]:
    return run_litert(path, ctx.images)


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
            "channel_order": "RGB" if c == 3 else "grayscale (L = 0.299 R + 0.587 G + 0.114 B)",
            "resize": f"bilinear to {w}x{h}, aspect ratio not kept (as in training)",
        },
        "preprocessing_inside_model": normalization[config.model.normalization],
        "output": {
            "values": "logits (apply softmax)" if ctx.logits else "probabilities (softmax applied)",
            "classes": len(ctx.names),
        },
        "class_names": ctx.names,
        "int8_input_output": "tflite-int8-io: quantize pixels with the input tensor's scale/zero point "
        "(q = round(pixel / scale + zero_point)) and dequantize the output the same way",
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


def webdemo_page(meta: dict) -> str:
    """The demo's index.html: the metadata goes in as a JSON data block (escaped for <script>), never as script.

    The page runs only its own files (demo.js, tf.min.js) under its Content-Security-Policy."""
    template = WEBDEMO_TEMPLATE.read_text(encoding="utf-8")
    return template.replace("__METADATA_JSON__", script_json(meta))


def _convert_webdemo(ctx: ExportContext, path: Path) -> None:
    if not TFJS_LIBRARY.is_file():
        raise StudioError("The TF.js library file (tf.min.js) is missing: run 'make install' (npm ci).")
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
        for file in sorted(model_dir.iterdir()):
            zf.write(file, f"webdemo/model/{file.name}")
        zf.writestr("webdemo/labels.txt", "\n".join(ctx.names) + "\n")
        zf.writestr("webdemo/metadata.json", json.dumps(meta, indent=2))
    tmp.replace(path)


# --- Snippets ------------------------------------------------------------------------------------------


def _shape(meta: dict) -> tuple[int, int, int]:
    _, h, w, c = meta["input"]["shape"]
    return h, w, c


def _js_snippet(meta: dict) -> str:
    h, w, c = _shape(meta)
    logits = meta["output"]["values"].startswith("logits")
    gray = (
        "\n  .mul([0.299, 0.587, 0.114]).sum(2, true)                  // grayscale, as in training" if c == 1 else ""
    )
    return f"""<script src="tf.min.js"></script>
<script>
// Serve model/ (from tfjs_model.zip or the web demo) over HTTP next to this page.
const model = await tf.loadGraphModel("model/model.json");
const pixels = tf.browser.fromPixels(imageElement, 3)      // 0..255, HxWx3
  .resizeBilinear([{h}, {w}]).toFloat(){gray}
  .expandDims(0);                                           // [1, {h}, {w}, {c}], raw pixels: the model normalizes
const probs = {"tf.softmax(model.predict(pixels))" if logits else "model.predict(pixels)"};
const best = (await probs.argMax(1).data())[0];             // index into labels.txt
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
    h, w, c = _shape(meta)
    return f"""import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="{REGISTRY["tflite"].file}")
interpreter.allocate_tensors()
image = Image.open("photo.jpg").convert("{"RGB" if c == 3 else "L"}").resize(({w}, {h}), Image.BILINEAR)
pixels = np.asarray(image, dtype=np.float32).reshape(1, {h}, {w}, {c})   # raw 0..255
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], pixels)
interpreter.invoke()
scores = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
labels = open("labels.txt").read().splitlines()
print(labels[int(scores.argmax())])"""


# --- The registry ---------------------------------------------------------------------------------------

LITERT = "LiteRT interpreter"
_ENTRIES = (
    ExportFormat("keras", "Keras (.keras)", "model.keras", _convert_keras, _run_keras, "Keras (TensorFlow)"),
    ExportFormat(
        "savedmodel", "TensorFlow SavedModel", "saved_model.zip", _convert_savedmodel, _run_savedmodel, "TensorFlow"
    ),
    ExportFormat(
        "tfjs",
        "TensorFlow.js graph model",
        "tfjs_model.zip",
        _convert_tfjs,
        _run_tfjs,
        "TF.js runtime (CPU backend, Node)",
        tolerance=FLOAT_TOLERANCE,
        snippets=(Snippet("JavaScript (TF.js)", "html", _js_snippet),),
    ),
    ExportFormat(
        "tflite",
        "TFLite float32",
        "model_float32.tflite",
        _tflite(),
        _run_tflite,
        LITERT,
        tolerance=FLOAT_TOLERANCE,
        short="float32",
        snippets=(
            Snippet("Android / Kotlin (LiteRT)", "kotlin", _kotlin_snippet),
            Snippet("Python (LiteRT)", "python", _python_snippet),
        ),
    ),
    ExportFormat(
        "tflite-fp16", "TFLite float16", "model_float16.tflite", _tflite(optimize=True, fp16=True), _run_tflite, LITERT
    ),
    ExportFormat(
        "tflite-dynamic",
        "TFLite dynamic-range",
        "model_dynamic_range.tflite",
        _tflite(optimize=True),
        _run_tflite,
        LITERT,
    ),
    ExportFormat(
        "tflite-int8",
        "TFLite full-integer int8 (float input/output)",
        "model_int8.tflite",
        _tflite(optimize=True, int8=True),
        _run_tflite,
        LITERT,
        max_accuracy_loss=INT8_MAX_ACCURACY_LOSS,
        max_size_share=("tflite", INT8_MAX_SIZE_SHARE),
        short="int8",
    ),
    ExportFormat(
        "tflite-int8-io",
        "TFLite full-integer int8 (int8 input/output, microcontrollers)",
        "model_int8_io.tflite",
        _tflite(optimize=True, int8=True, int8_io=True),
        _run_tflite,
        LITERT,
    ),
    ExportFormat("webdemo", "Web demo (index.html + TF.js model + TF.js library)", "webdemo.zip", _convert_webdemo),
)
REGISTRY: dict[str, ExportFormat] = {entry.id: entry for entry in _ENTRIES}
FORMATS: tuple[str, ...] = tuple(REGISTRY)


def format_help() -> str:
    """The CLI's --formats help, from the registry."""
    return "comma-separated, from: " + ", ".join(FORMATS) + " (default: all)"


def parse_formats(text: str) -> list[str]:
    """``all`` or a comma-separated list of ids; an unknown id names the choices."""
    if text.strip() == "all":
        return list(FORMATS)
    chosen = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in REGISTRY]
    if unknown or not chosen:
        raise StudioError(
            f"Unknown export format '{unknown[0] if unknown else text}': choose from {', '.join(FORMATS)}."
        )
    return chosen
