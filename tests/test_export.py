"""Exports reloaded in their real runtimes (TF.js in Node, LiteRT) and compared with Keras."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.config import StudioConfig, apply_preset
from core.evaluation import load_run_model, load_test_data, probabilities
from core.export import EXPORTER_VERSION, export_run, read_manifest
from core.formats import FORMATS, REGISTRY
from core.runs import load_run
from core.runtimes import run_litert, run_tfjs
from core.training import train_run
from tests.conftest import class_zip, make_class_files

ROOT = Path(__file__).resolve().parent.parent
ATOL = 1e-4

pytestmark = pytest.mark.slow


def copy_run(run, tmp_path):
    target = tmp_path / run.run_id
    shutil.copytree(run.path, target)
    return load_run(target)


@pytest.fixture(scope="module")
def digits_export(trained_run, tmp_path_factory):
    run = copy_run(trained_run, tmp_path_factory.mktemp("digits"))
    return run, export_run(run)


@pytest.fixture(scope="module")
def shapes_logits_run(tmp_path_factory):
    """RGB built-in shapes with the cifar-bn preset: BatchNorm, dropout and logits output."""
    config = StudioConfig()
    config.data.shapes_count = 600
    config.model = apply_preset("cifar-bn")
    config.training.epochs = 3
    result = train_run(config, tmp_path_factory.mktemp("shapes"))
    assert result.status == "finished", result.error
    return load_run(Path(result.run_dir))


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
    for fmt in ("savedmodel", "tfjs", "tflite"):
        assert results[fmt].max_abs_diff <= ATOL, fmt
        assert results[fmt].test_accuracy == pytest.approx(keras.test_accuracy)
    for fmt in ("tfjs", "tflite", "tflite-int8"):
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
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["input"]["shape"] == [1, 28, 28, 1] and meta["input"]["pixel_range"] == [0, 255]
    assert (
        meta["class_names"] == [str(i) for i in range(10)] and "Rescaling(1/255)" in meta["preprocessing_inside_model"]
    )
    assert meta["source_run"]["run_id"] == run.run_id and meta["output"]["values"].startswith("probabilities")
    with zipfile.ZipFile(run.path / results["webdemo"].path) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path)
    assert {"webdemo/index.html", "webdemo/tf.min.js", "webdemo/model/model.json", "webdemo/labels.txt"} <= names
    page = (tmp_path / "webdemo" / "index.html").read_text()
    assert '<script src="tf.min.js">' in page and "python3 -m http.server" in page and "__METADATA_JSON__" not in page
    assert not [n for n in names if n.startswith("http")], "nothing fetched from the internet"
    # The demo's own library file loads the demo's own model and predicts what Keras predicts.
    images, _, expected, _ = keras_probs(run, 16)
    outputs, _ = run_tfjs(tmp_path / "webdemo" / "model", images, library=tmp_path / "webdemo" / "tf.min.js")
    np.testing.assert_allclose(outputs, expected, atol=ATOL)


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
    results = export_run(run, ["tflite", "tflite-int8", "keras"])
    assert "calibration" in results["tflite-int8"].error
    assert results["tflite"].error is None and results["keras"].error is None
    assert (run.path / results["tflite"].path).is_file()


def test_rgb_logits_batchnorm_run_exports_match_keras(shapes_logits_run, tmp_path):
    run = copy_run(shapes_logits_run, tmp_path)
    results = export_run(run, ["keras", "tfjs", "tflite", "tflite-int8"])
    assert all(r.error is None for r in results.values()), {k: r.error for k, r in results.items()}
    assert results["tfjs"].max_abs_diff <= ATOL and results["tflite"].max_abs_diff <= ATOL
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
        [sys.executable, "-m", "core", "export", "--run", str(run.path), "--formats", "onnx"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert bad.returncode == 2 and "error: Unknown export format 'onnx'" in bad.stderr
