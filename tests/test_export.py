"""Exports reloaded in their real runtimes (TF.js in Node, LiteRT, MediaPipe Tasks, ONNX Runtime) and compared
with Keras."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import StudioConfig, apply_preset
from core.evaluation import load_run_model, load_test_data, probabilities
from core.export import EXPORTER_VERSION, export_run, read_manifest
from core.formats import FORMATS, REGISTRY
from core.runs import load_run
from core.runtimes import run_litert, run_mediapipe, run_onnx, run_tfjs
from core.tflite_metadata import read_metadata
from core.training import train_run
from tests.conftest import class_zip, make_class_files
from tests.export_fixtures import copy_run

ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-4
TFLITE_FORMATS = [f for f in FORMATS if REGISTRY[f].file.endswith(".tflite")]
MEDIAPIPE_FORMATS = [f for f in FORMATS if f.startswith("mediapipe")]

pytestmark = pytest.mark.slow


def keras_probs(run, count=None):
    images, labels, _ = load_test_data(run)
    model = load_run_model(run)
    from core.evaluation import run_config

    logits = run_config(run).model.output == "logits"
    return images[:count], labels[:count], probabilities(model, images[:count], logits), logits


def test_every_format_is_exported_and_measured(digits_export):
    run, results = digits_export
    assert set(results) == set(FORMATS)
    for fmt, result in results.items():
        assert result.error is None, f"{fmt}: {result.error}"
        assert (run.path / result.path).is_file() and result.size_bytes > 0
        assert Path(result.path).name == REGISTRY[fmt].file, "the registry names the file written"
    keras = results["keras"]
    assert keras.test_accuracy == pytest.approx(run.status.test_accuracy, abs=1e-6) and keras.max_abs_diff == 0
    for fmt in ("savedmodel", "tfjs", "onnx", "tflite", "mediapipe"):
        assert results[fmt].max_abs_diff <= ATOL, fmt
        assert results[fmt].test_accuracy == pytest.approx(keras.test_accuracy)
        assert results[fmt].agreement == 1.0, fmt
    for fmt in ("tfjs", "onnx", "tflite", "tflite-int8", "mediapipe", "mediapipe-int8"):
        assert results[fmt].latency_ms > 0 and results[fmt].compared_images == run.status.test_size


def test_tfjs_graph_model_runs_in_the_real_tfjs_runtime_and_matches_keras(digits_export):
    run, _ = digits_export
    images, _, expected, _ = keras_probs(run, 64)
    outputs, latency = run_tfjs(run.path / "exports" / "tfjs_model", images)
    np.testing.assert_allclose(outputs, expected, atol=ATOL)
    assert latency > 0
    model_json = json.loads((run.path / "exports" / "tfjs_model" / "model.json").read_text())
    assert model_json["format"] == "graph-model"


def test_tflite_float_and_quantized_variants_in_litert(digits_export):
    run, results = digits_export
    images, labels, expected, _ = keras_probs(run)
    outputs, _ = run_litert(run.path / results["tflite"].path, images)
    np.testing.assert_allclose(outputs, expected, atol=ATOL)
    fp16, _ = run_litert(run.path / results["tflite-fp16"].path, images)
    np.testing.assert_allclose(fp16, expected, atol=0.01)
    keras_accuracy = float(np.mean(expected.argmax(1) == labels))
    for fmt in ("tflite-int8", "tflite-int8-io", "tflite-dynamic"):
        assert keras_accuracy - results[fmt].test_accuracy <= 0.01, f"{fmt} loses more than 1 point"
    assert results["tflite-int8"].size_bytes <= 0.30 * results["tflite"].size_bytes
    from ai_edge_litert.interpreter import Interpreter

    io_model = Interpreter(model_path=str(run.path / results["tflite-int8-io"].path))
    assert io_model.get_input_details()[0]["dtype"] == np.int8 and io_model.get_output_details()[0]["dtype"] == np.int8
    float_io = Interpreter(model_path=str(run.path / results["tflite-int8"].path))
    assert float_io.get_input_details()[0]["dtype"] == np.float32


def test_labels_metadata_and_web_demo(digits_export, tmp_path):
    run, results = digits_export
    out = run.path / "exports"
    assert (out / "labels.txt").read_text().splitlines() == [str(i) for i in range(10)]
    assert "## Python (MediaPipe Tasks): `mediapipe_float32.tflite`" in (out / "README.md").read_text()
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["input"]["shape"] == [1, 28, 28, 1] and meta["input"]["pixel_range"] == [0, 255]
    assert (
        meta["class_names"] == [str(i) for i in range(10)] and "Rescaling(1/255)" in meta["preprocessing_inside_model"]
    )
    assert meta["source_run"]["run_id"] == run.run_id and meta["output"]["values"].startswith("probabilities")
    with zipfile.ZipFile(run.path / results["webdemo"].path) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path)
    assert {
        "webdemo/index.html",
        "webdemo/tf.min.js",
        "webdemo/preprocess.js",
        "webdemo/model.js",
        "webdemo/model/model.json",
        "webdemo/labels.txt",
    } <= names
    page = (tmp_path / "webdemo" / "index.html").read_text()
    assert '<script src="tf.min.js">' in page and "python3 -m http.server" in page and "__METADATA_JSON__" not in page
    assert "Pillow's bilinear" in meta["input"]["resize"] and "antialiased" in meta["input"]["resize"]
    assert not [n for n in names if n.startswith("http")], "nothing fetched from the internet"
    # The demo's own library file loads the demo's own model and predicts what Keras predicts.
    images, _, expected, _ = keras_probs(run, 16)
    outputs, _ = run_tfjs(tmp_path / "webdemo" / "model", images, library=tmp_path / "webdemo" / "tf.min.js")
    np.testing.assert_allclose(outputs, expected, atol=ATOL)


def test_every_tflite_file_carries_metadata_with_its_labels(digits_export):
    """Name, description, version, labels associated with the output, normalization and colour space (#14.1)."""
    run, results = digits_export
    for fmt in TFLITE_FORMATS:
        data = (run.path / results[fmt].path).read_bytes()
        meta, packed = read_metadata(data)
        assert meta["name"] == f"CNN Studio: {run.name}" and meta["version"] == run.run_id, fmt
        assert meta["author"] == "CNN Studio" and meta["min_parser_version"] == "1.0.0"
        assert "28x28 grayscale picture into 10 classes" in meta["description"] and run.run_id in meta["description"]
        pixels = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]
        colour = pixels["content"]["content_properties"]["color_space"]
        assert colour == ("RGB" if fmt.startswith("mediapipe") else "GRAYSCALE"), fmt
        assert pixels["process_units"][0]["options"] == {"mean": [0.0], "std": [1.0]}, "raw 0..255 pixels in"
        assert pixels["stats"] == {"max": [255.0], "min": [0.0]} and "Pillow's bilinear" in pixels["description"]
        scores = meta["subgraph_metadata"][0]["output_tensor_metadata"][0]
        assert scores["associated_files"][0] == {
            "name": "labels.txt",
            "description": "The class names, one a line, in the order of the output's class axis.",
            "type": "TENSOR_AXIS_LABELS",
        }
        assert packed["labels.txt"].decode().split("\n") == [str(i) for i in range(10)], fmt


def test_mediapipe_image_classifier_loads_each_file_and_matches_keras(digits_export):
    """MediaPipe Tasks' ImageClassifier runs each metadata file as it is, naming its categories from the packed
    labels; float32 and float16 give Keras's top-1 class on at least 99% of the test images (#14.1)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions
    from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions

    run, results = digits_export
    images, _, expected, _ = keras_probs(run)
    for fmt in MEDIAPIPE_FORMATS:
        path = run.path / results[fmt].path
        options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)), max_results=3)
        with ImageClassifier.create_from_options(options) as classifier:
            picture = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(np.repeat(images[0], 3, -1)))
            categories = classifier.classify(picture).classifications[0].categories
        assert len(categories) == 3 and [c.category_name for c in categories] == [str(c.index) for c in categories]
        scores, _ = run_mediapipe(path, images)
        agreement = float(np.mean(scores.argmax(1) == expected.argmax(1)))
        assert agreement == results[fmt].agreement, "the export measured what MediaPipe gives"
        if fmt in ("mediapipe", "mediapipe-fp16"):
            assert agreement >= 0.99, fmt
        else:
            assert agreement >= 0.95, f"{fmt}: stated in the README, it must not fall far"
    scores, _ = run_mediapipe(run.path / results["mediapipe"].path, images)
    np.testing.assert_allclose(scores, expected, atol=ATOL)
    with pytest.raises(ValueError, match="Only RGB color space"):  # why grayscale models get MediaPipe variants
        run_mediapipe(run.path / results["tflite"].path, images[:1])


def test_the_mediapipe_variants_first_op_converts_rgb_to_gray_as_pillow_does(digits_export):
    """On colour pictures: the RGB-input file gives what Keras gives on Pillow's L of the same pixels."""
    run, results = digits_export
    rgb = np.random.default_rng(5).integers(0, 256, (40, 28, 28, 3), dtype=np.uint8)
    gray = np.stack([np.asarray(Image.fromarray(p, "RGB").convert("L"))[..., None] for p in rgb])
    model = load_run_model(run)
    outputs, _ = run_litert(run.path / results["mediapipe"].path, rgb)
    np.testing.assert_allclose(outputs, probabilities(model, gray, logits=False), atol=ATOL)


def test_onnx_runs_in_onnx_runtime_and_names_its_classes(digits_export):
    import onnxruntime as ort

    run, results = digits_export
    images, _, expected, _ = keras_probs(run)
    path = run.path / results["onnx"].path
    outputs, latency = run_onnx(path, images)
    np.testing.assert_allclose(outputs, expected, atol=ATOL)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["pixels"] and session.get_inputs()[0].shape[1:] == [28, 28, 1]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]
    props = session.get_modelmeta().custom_metadata_map
    assert json.loads(props["class_names"]) == [str(i) for i in range(10)] and props["source_run"] == run.run_id


def test_rgb_logits_run_in_mediapipe_gives_probabilities(shapes_export):
    """A logits model's MediaPipe file ends in softmax, so MediaPipe's scores are Keras's probabilities; the plain
    RGB file (logits out) loads in MediaPipe as it is too, with Keras's top-1 class."""
    run, results = shapes_export
    images, _, expected, logits = keras_probs(run)
    assert logits
    scores, _ = run_mediapipe(run.path / results["mediapipe"].path, images)
    np.testing.assert_allclose(scores, expected, atol=ATOL)
    assert np.allclose(scores.sum(1), 1, atol=1e-5)
    raw, _ = run_mediapipe(run.path / results["tflite"].path, images)
    assert np.mean(raw.argmax(1) == expected.argmax(1)) == 1.0
    meta, _ = read_metadata((run.path / results["tflite"].path).read_bytes())
    scores_meta = meta["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert scores_meta["name"] == "logits" and "stats" not in scores_meta
    outputs, _ = run_onnx(run.path / results["onnx"].path, images)
    np.testing.assert_allclose(outputs, keras_logits(run, images), atol=1e-3)


def keras_logits(run, images):
    return np.asarray(load_run_model(run).predict(images, verbose=0), dtype=np.float64)


def test_the_new_formats_export_in_a_warm_worker_as_the_export_page_asks(trained_run, tmp_path):
    """The page exports through a warm worker under its memory limit (RLIMIT_DATA): tf2onnx, ONNX Runtime and
    MediaPipe load there beside TensorFlow."""
    from core.worker import WARM_MEMORY_MB, WarmPool

    run = copy_run(trained_run, tmp_path)
    formats = ["onnx", "mediapipe", "mediapipe-int8", "webdemo"]
    pool = WarmPool(1, WARM_MEMORY_MB)
    try:
        results = pool.call("core.served:export", str(run.path), formats, True, request="Exporting")
    finally:
        pool.stop()
    assert {fmt: r.error for fmt, r in results.items()} == dict.fromkeys(formats)
    assert results["onnx"].max_abs_diff <= ATOL and results["mediapipe"].max_abs_diff <= ATOL


def test_exports_are_reused_on_a_revisit(digits_export):
    run, results = digits_export
    before = {fmt: (run.path / r.path).stat().st_mtime_ns for fmt, r in results.items()}
    again = export_run(run)
    assert {fmt: (run.path / r.path).stat().st_mtime_ns for fmt, r in again.items()} == before
    assert read_manifest(run)["tflite"].max_abs_diff == results["tflite"].max_abs_diff


def test_exports_of_an_older_exporter_are_made_again(trained_run, tmp_path):
    """A web demo made before #11 ran inline script: a manifest from an older exporter is not reused."""
    import json

    run = copy_run(trained_run, tmp_path)
    first = export_run(run, ["keras"])
    manifest = run.path / "exports" / "manifest.json"
    data = json.loads(manifest.read_text())
    version = f"v{EXPORTER_VERSION}:"
    assert data["model"].startswith(version)
    data["model"] = data["model"].replace(version, f"v{EXPORTER_VERSION - 1}:", 1)
    manifest.write_text(json.dumps(data))
    assert read_manifest(run) == {}
    (run.path / first["keras"].path).write_bytes(b"made by an older studio")
    again = export_run(run, ["keras"])
    assert (run.path / again["keras"].path).read_bytes() == run.model_path().read_bytes()


def test_a_failed_conversion_leaves_the_other_formats(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    (run.path / "calibration.npz").unlink()  # int8 conversion needs the calibration images
    results = export_run(run, ["tflite", "tflite-int8", "mediapipe-int8", "keras"])
    assert "calibration" in results["tflite-int8"].error and "calibration" in results["mediapipe-int8"].error
    assert results["tflite"].error is None and results["keras"].error is None
    assert (run.path / results["tflite"].path).is_file()


def test_rgb_logits_batchnorm_run_exports_match_keras(shapes_export):
    run, results = shapes_export
    assert all(r.error is None for r in results.values()), {k: r.error for k, r in results.items()}
    for fmt in ("tfjs", "onnx", "tflite", "mediapipe"):
        assert results[fmt].max_abs_diff <= ATOL, fmt
    assert results["keras"].test_accuracy - results["tflite-int8"].test_accuracy <= 0.01
    meta = json.loads((run.path / "exports" / "metadata.json").read_text())
    assert meta["input"]["shape"] == [1, 32, 32, 3] and meta["output"]["values"].startswith("logits")


def test_a_run_from_an_uploaded_class_folder_zip_exports(tmp_path):
    config = StudioConfig()
    config.data.source, config.data.path, config.data.image_size = "zip", "pets.zip", 24
    config.model = apply_preset("small-64")
    config.training.epochs = 2
    data = class_zip(make_class_files({"cats": 10, "dogs": 10, "birds": 10}))
    result = train_run(config, tmp_path / "ws", uploads={"zip_bytes": data})
    assert result.status == "finished", result.error
    run = load_run(Path(result.run_dir))
    results = export_run(run, ["tfjs", "tflite", "webdemo"])
    assert results["tfjs"].max_abs_diff <= ATOL and results["tflite"].max_abs_diff <= ATOL
    assert json.loads((run.path / "exports" / "metadata.json").read_text())["class_names"] == ["birds", "cats", "dogs"]


def test_cli_export_prints_paths_sizes_and_fidelity(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "core", "export", "--run", str(run.path), "--formats", "keras,tflite,tflite-int8"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    printed = json.loads(out.stdout.strip().splitlines()[-1])
    summary = printed["formats"]
    assert set(summary) == {"keras", "tflite", "tflite-int8"}
    checks = {c["label"]: c["passed"] for c in printed["checks"]}
    assert checks == {
        "TFLite float32 matches Keras to 0.0001": True,
        "int8 loses at most 1 point of test accuracy": True,
        "int8 file at most 30% of float32": True,
    }
    assert printed["passed"] is True and "ok   int8 file at most 30% of float32" in out.stderr
    for entry in summary.values():
        assert Path(entry["path"]).is_file() and entry["size_bytes"] == Path(entry["path"]).stat().st_size
        assert entry["test_accuracy"] is not None and entry["max_abs_diff"] is not None
    bad = subprocess.run(
        [sys.executable, "-m", "core", "export", "--run", str(run.path), "--formats", "coreml"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert bad.returncode == 2 and "error: Unknown export format 'coreml'" in bad.stderr
