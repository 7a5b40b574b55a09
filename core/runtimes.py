"""Running exported files in their real runtimes: TF.js (npm) in Node for graph models, LiteRT for .tflite,
MediaPipe Tasks' ImageClassifier for the .tflite files with metadata, ONNX Runtime for .onnx.

Each returns the model's outputs on a batch of raw 0..255 images and the latency of one image at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.i18n import _

ROOT = Path(__file__).resolve().parent.parent
TFJS_SCRIPT = ROOT / "tools" / "tfjs_predict.js"
TFJS_PACKAGE = ROOT / "node_modules" / "@tensorflow" / "tfjs"
LATENCY_IMAGES = 20
LITERT_BATCH = 256
ONNX_BATCH = 256
TFJS_TIMEOUT_SECONDS = 1800


def run_tfjs(
    model_dir: Path, images: np.ndarray, latency_images: int = LATENCY_IMAGES, library: Path | None = None
) -> tuple[np.ndarray, float]:
    """Outputs of the TF.js graph model on ``images``, computed by the real TF.js runtime in Node
    (``library``: a tf.min.js bundle to use instead of the npm package)."""

    node = shutil.which("node")
    if node is None or not TFJS_PACKAGE.is_dir():
        raise StudioError(
            _(
                "The TF.js runtime is not installed (Node.js and node_modules/@tensorflow/tfjs): run "
                "'make install' so the TF.js model can be checked."
            )
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
            timeout=TFJS_TIMEOUT_SECONDS,
            env={**os.environ, **({"TFJS_LIBRARY": str(library)} if library else {})},
            cwd=ROOT,
        )
        if done.returncode != 0:
            raise StudioError(_("TF.js could not run the model: {error}").format(error=done.stderr.strip()[-400:]))
        info = json.loads(done.stdout.strip().splitlines()[-1])
        outputs = np.frombuffer(target.read_bytes(), dtype="<f4").reshape(n, info["classes"])
    return outputs.astype(np.float64), info["latency_ms"]


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

    return _outputs_and_latency(run, images, LITERT_BATCH, latency_images)


def _outputs_and_latency(run, images: np.ndarray, batch: int, latency_images: int) -> tuple[np.ndarray, float]:
    """``run`` over all images in batches, and its milliseconds per image one at a time (after one warm-up)."""
    outputs = np.concatenate([run(images[i : i + batch]) for i in range(0, len(images), batch)])
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


def run_mediapipe(path: Path, images: np.ndarray, latency_images: int = LATENCY_IMAGES) -> tuple[np.ndarray, float]:
    """Scores of a .tflite file with metadata on ``images`` from MediaPipe Tasks' ImageClassifier, one image at
    a time as an app calls it: each image's categories (all of them, by index) put back into one row.

    MediaPipe takes RGB pictures: grayscale images are given as R = G = B (the model's first op makes them
    gray again, exactly). The images are at the model's size, so MediaPipe's own resize leaves them as they are."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions

    rgb = np.ascontiguousarray(np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images, dtype=np.uint8)
    options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)))
    scores, seconds = None, []
    with ImageClassifier.create_from_options(options) as classifier:
        for i, image in enumerate(rgb):
            start = time.perf_counter()
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
            seconds.append(time.perf_counter() - start)
            categories = result.classifications[0].categories
            if scores is None:
                scores = np.zeros((len(images), len(categories)))
            for category in categories:
                scores[i, category.index] = category.score
    timed = seconds[1 : latency_images + 1] or seconds  # the first call warms up
    return scores, 1000 * float(np.mean(timed))


def run_onnx(path: Path, images: np.ndarray, latency_images: int = LATENCY_IMAGES) -> tuple[np.ndarray, float]:
    """Outputs of an .onnx model on ``images`` from ONNX Runtime (CPU)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch.astype(np.float32)})[0]

    return _outputs_and_latency(run, images, ONNX_BATCH, latency_images)
