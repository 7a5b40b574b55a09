"""Exporting a run's model for the web (TensorFlow.js) and mobile (TFLite/LiteRT), with fidelity measured in
the real runtimes: LiteRT's interpreter for TFLite, the TF.js runtime in Node for the graph model.

Everything lands in ``RUN/exports/`` with a ``manifest.json``; a revisit reuses what is there for the same
model file. One failed format records its error and leaves the others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.evaluation import load_run_model, load_test_data, probabilities, run_config
from core.files import atomic_write_bytes, atomic_write_json, read_json
from core.runs import CALIBRATION_FILE, RunInfo

ROOT = Path(__file__).resolve().parent.parent
TFJS_SCRIPT = ROOT / "tools" / "tfjs_predict.js"
TFJS_LIBRARY = ROOT / "node_modules" / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
WEBDEMO_TEMPLATE = ROOT / "assets" / "webdemo" / "index.html"
EXPORT_DIR = "exports"
MANIFEST = "manifest.json"
FORMATS = (
    "keras",
    "savedmodel",
    "tfjs",
    "tflite",
    "tflite-fp16",
    "tflite-dynamic",
    "tflite-int8",
    "tflite-int8-io",
    "webdemo",
)
FORMAT_TITLES = {
    "keras": "Keras (.keras)",
    "savedmodel": "TensorFlow SavedModel",
    "tfjs": "TensorFlow.js graph model",
    "tflite": "TFLite float32",
    "tflite-fp16": "TFLite float16",
    "tflite-dynamic": "TFLite dynamic-range",
    "tflite-int8": "TFLite full-integer int8 (float input/output)",
    "tflite-int8-io": "TFLite full-integer int8 (int8 input/output, microcontrollers)",
    "webdemo": "Web demo (index.html + TF.js model + TF.js library)",
}
MAX_COMPARE_IMAGES = 2000
LATENCY_IMAGES = 20
LITERT_BATCH = 256


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
class _Context:
    run: RunInfo
    out: Path
    model: object
    images: np.ndarray
    labels: np.ndarray
    names: list[str]
    logits: bool
    reference: np.ndarray  # Keras probabilities on the compared images

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def score(self, probs: np.ndarray) -> tuple[float, float]:
        accuracy = float(np.mean(probs.argmax(axis=1) == self.labels))
        return accuracy, float(np.max(np.abs(probs - self.reference)))


def model_stamp(run: RunInfo) -> str:
    path = run.model_path()
    return f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"


def read_manifest(run: RunInfo) -> dict[str, ExportResult]:
    """Exports already made for the run's current model file."""
    data = read_json(run.path / EXPORT_DIR / MANIFEST, {}) or {}
    try:
        if data.get("model") != model_stamp(run):
            return {}
    except StudioError:
        return {}
    return {fmt: ExportResult(**result) for fmt, result in data.get("formats", {}).items()}


def export_run(
    run: RunInfo,
    formats: list[str] | tuple[str, ...] = FORMATS,
    compare: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, ExportResult]:
    """Write the formats into RUN/exports (reusing the ones already there) and measure each against Keras."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise StudioError(f"Unknown export format '{unknown[0]}': choose from {', '.join(FORMATS)}.")
    out = run.path / EXPORT_DIR
    stamp = model_stamp(run)
    done = read_manifest(run)
    if not done and out.exists():
        shutil.rmtree(out)  # exports of an older model file
    out.mkdir(parents=True, exist_ok=True)
    model = load_run_model(run)
    images, labels, names = load_test_data(run)
    images, labels = images[:MAX_COMPARE_IMAGES], labels[:MAX_COMPARE_IMAGES]
    logits = run_config(run).model.output == "logits"
    context = _Context(run, out, model, images, labels, names, logits, probabilities(model, images, logits))
    _write_labels_and_metadata(context)
    for fmt in formats:
        previous = done.get(fmt)
        if previous and not previous.error and previous.path and (run.path / previous.path).exists():
            continue
        if progress:
            progress(f"Exporting {FORMAT_TITLES[fmt]}…")
        start = time.perf_counter()
        try:
            result = EXPORTERS[fmt](context, compare)
        except Exception as err:  # one format failing must leave the others
            message = str(err).strip().splitlines()[-1][:400] if str(err).strip() else "no message"
            result = ExportResult(fmt, error=f"{type(err).__name__}: {message}")
        result.seconds = time.perf_counter() - start
        done[fmt] = result
        atomic_write_json(out / MANIFEST, {"model": stamp, "formats": {k: v.to_dict() for k, v in done.items()}})
    return {fmt: done[fmt] for fmt in formats}


# --- Formats ------------------------------------------------------------------------------------------


def _relative(ctx: _Context, path: Path) -> str:
    return str(path.relative_to(ctx.run.path))


def _export_keras(ctx: _Context, compare: bool) -> ExportResult:
    path = ctx.out / "model.keras"
    shutil.copy2(ctx.run.model_path(), path)
    result = ExportResult("keras", _relative(ctx, path), path.stat().st_size)
    if compare:
        result.test_accuracy, result.max_abs_diff = ctx.score(ctx.reference)
        result.compared_images = len(ctx.labels)
        start = time.perf_counter()
        for i in range(min(LATENCY_IMAGES, len(ctx.images))):
            ctx.model(ctx.images[i : i + 1].astype(np.float32), training=False)
        result.latency_ms = (time.perf_counter() - start) * 1000 / max(min(LATENCY_IMAGES, len(ctx.images)), 1)
    return result


def saved_model_dir(ctx: _Context) -> Path:
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


def _zip_folder(folder: Path, target: Path, prefix: str) -> Path:
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".zip.tmp", delete=False) as handle:
        tmp = Path(handle.name)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(file, f"{prefix}/{file.relative_to(folder).as_posix()}")
    tmp.replace(target)
    return target


def _export_savedmodel(ctx: _Context, compare: bool) -> ExportResult:
    import tensorflow as tf

    folder = saved_model_dir(ctx)
    target = _zip_folder(folder, ctx.out / "saved_model.zip", "saved_model")
    result = ExportResult("savedmodel", _relative(ctx, target), target.stat().st_size)
    if compare:
        serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
        outputs = np.concatenate(
            [
                list(serve(pixels=tf.constant(ctx.images[i : i + 256], tf.float32)).values())[0]
                for i in range(0, len(ctx.images), 256)
            ]
        )
        result.test_accuracy, result.max_abs_diff = ctx.score(_to_probs(outputs, ctx.logits))
        result.compared_images = len(ctx.labels)
    return result


def tfjs_dir(ctx: _Context) -> Path:
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


def _export_tfjs(ctx: _Context, compare: bool) -> ExportResult:
    folder = tfjs_dir(ctx)
    target = _zip_folder(folder, ctx.out / "tfjs_model.zip", "tfjs_model")
    result = ExportResult("tfjs", _relative(ctx, target), target.stat().st_size)
    if compare:
        outputs, latency = run_tfjs(folder, ctx.images)
        result.test_accuracy, result.max_abs_diff = ctx.score(_to_probs(outputs, ctx.logits))
        result.latency_ms, result.compared_images = latency, len(ctx.labels)
    return result


def run_tfjs(
    model_dir: Path, images: np.ndarray, latency_images: int = LATENCY_IMAGES, library: Path | None = None
) -> tuple[np.ndarray, float]:
    """Outputs of the TF.js graph model on ``images``, computed by the real TF.js runtime in Node
    (``library``: a tf.min.js bundle to use instead of the npm package)."""

    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        raise StudioError(
            "The TF.js runtime is not installed (Node.js and node_modules/@tensorflow/tfjs): run "
            "'make install' so the TF.js model can be checked."
        )
    n, h, w, c = images.shape
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.f32", Path(tmp) / "out.f32"
        source.write_bytes(np.ascontiguousarray(images, dtype="<f4").tobytes())
        done = subprocess.run(
            [
                node,
                str(TFJS_SCRIPT),
                str(model_dir),
                str(source),
                str(n),
                str(h),
                str(w),
                str(c),
                str(target),
                str(latency_images),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, **({"TFJS_LIBRARY": str(library)} if library else {})},
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise StudioError(f"TF.js could not run the model: {done.stderr.strip()[-400:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        outputs = np.frombuffer(target.read_bytes(), dtype="<f4").reshape(n, info["classes"])
    return outputs.astype(np.float64), info["latency_ms"]


TFLITE_FILES = {
    "tflite": "model_float32.tflite",
    "tflite-fp16": "model_float16.tflite",
    "tflite-dynamic": "model_dynamic_range.tflite",
    "tflite-int8": "model_int8.tflite",
    "tflite-int8-io": "model_int8_io.tflite",
}


def _calibration_images(ctx: _Context) -> np.ndarray:
    try:
        with np.load(ctx.run.path / CALIBRATION_FILE) as data:
            return data["images"]
    except (OSError, KeyError) as err:
        raise StudioError(
            f"The run has no calibration images ({CALIBRATION_FILE}: {err}); int8 needs them. Train the run again."
        ) from None


def _convert_tflite(ctx: _Context, fmt: str) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir(ctx)))
    if fmt != "tflite":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fmt == "tflite-fp16":
        converter.target_spec.supported_types = [tf.float16]
    if fmt in ("tflite-int8", "tflite-int8-io"):
        calibration = _calibration_images(ctx).astype(np.float32)

        def representative():
            for i in range(len(calibration)):
                yield [calibration[i : i + 1]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if fmt == "tflite-int8-io":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return converter.convert()


def _export_tflite(fmt: str):
    def export(ctx: _Context, compare: bool) -> ExportResult:
        path = ctx.out / TFLITE_FILES[fmt]
        atomic_write_bytes(path, _convert_tflite(ctx, fmt))
        result = ExportResult(fmt, _relative(ctx, path), path.stat().st_size)
        if compare:
            outputs, latency = run_litert(path, ctx.images)
            result.test_accuracy, result.max_abs_diff = ctx.score(_to_probs(outputs, ctx.logits))
            result.latency_ms, result.compared_images = latency, len(ctx.labels)
        return result

    return export


def run_litert(path: Path, images: np.ndarray, latency_images: int = LATENCY_IMAGES) -> tuple[np.ndarray, float]:
    """Outputs of a .tflite file on ``images`` from LiteRT's interpreter (quantized input/output handled)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(batch: np.ndarray) -> np.ndarray:
        if interpreter.get_input_details()[0]["shape"][0] != len(batch):
            interpreter.resize_tensor_input(inp["index"], [len(batch), *images.shape[1:]])
            interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], _quantize(batch.astype(np.float32), inp))
        interpreter.invoke()
        return _dequantize(interpreter.get_tensor(out["index"]), out)

    outputs = np.concatenate([run(images[i : i + LITERT_BATCH]) for i in range(0, len(images), LITERT_BATCH)])
    count = min(latency_images, len(images))
    run(images[:1])
    start = time.perf_counter()
    for i in range(count):
        run(images[i : i + 1])
    latency = (time.perf_counter() - start) * 1000 / max(count, 1)
    return outputs.astype(np.float64), latency


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if dtype == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.rint(x / scale + zero), info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y.astype(np.float64)
    scale, zero = detail["quantization"]
    return (y.astype(np.float64) - zero) * scale


def _to_probs(outputs: np.ndarray, logits: bool) -> np.ndarray:
    outputs = np.asarray(outputs, dtype=np.float64)
    if logits:
        outputs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs /= outputs.sum(axis=1, keepdims=True)
    return outputs


# --- Labels, metadata and the web demo ----------------------------------------------------------------


def metadata(ctx: _Context) -> dict:
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


def _write_labels_and_metadata(ctx: _Context) -> None:
    atomic_write_bytes(ctx.out / "labels.txt", ("\n".join(ctx.names) + "\n").encode())
    atomic_write_json(ctx.out / "metadata.json", metadata(ctx))


def _export_webdemo(ctx: _Context, compare: bool) -> ExportResult:
    if not TFJS_LIBRARY.is_file():
        raise StudioError(f"The TF.js library file {TFJS_LIBRARY} is missing: run 'make install' (npm ci).")
    model_dir = tfjs_dir(ctx)
    meta = metadata(ctx)
    page = WEBDEMO_TEMPLATE.read_text(encoding="utf-8").replace("__METADATA_JSON__", json.dumps(meta))
    target = ctx.out / "webdemo.zip"
    with tempfile.NamedTemporaryFile(dir=ctx.out, suffix=".zip.tmp", delete=False) as handle:
        tmp = Path(handle.name)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("webdemo/index.html", page)
        zf.write(TFJS_LIBRARY, "webdemo/tf.min.js")
        for file in sorted(model_dir.iterdir()):
            zf.write(file, f"webdemo/model/{file.name}")
        zf.writestr("webdemo/labels.txt", "\n".join(ctx.names) + "\n")
        zf.writestr("webdemo/metadata.json", json.dumps(meta, indent=2))
    tmp.replace(target)
    return ExportResult("webdemo", _relative(ctx, target), target.stat().st_size)


EXPORTERS: dict[str, Callable[[_Context, bool], ExportResult]] = {
    "keras": _export_keras,
    "savedmodel": _export_savedmodel,
    "tfjs": _export_tfjs,
    **{fmt: _export_tflite(fmt) for fmt in TFLITE_FILES},
    "webdemo": _export_webdemo,
}
