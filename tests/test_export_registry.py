"""The format registry is the one list of formats: page, CLI, comparison table and checks come from it."""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.__main__ import build_parser
from core.errors import StudioError
from core.export import comparison_rows, fidelity_checks
from core.formats import FORMATS, REGISTRY, ExportResult, format_help, parse_formats
from core.serving import serving_name

ROOT = Path(__file__).resolve().parent.parent


def test_ids_and_files_are_unique_and_every_entry_is_complete():
    assert len(set(FORMATS)) == len(FORMATS) == len(REGISTRY)
    assert len({e.file for e in REGISTRY.values()}) == len(REGISTRY), "each format writes its own file"
    for fmt, entry in REGISTRY.items():
        assert entry.id == fmt and entry.label and entry.file and callable(entry.convert)
        assert (entry.run is None) == (entry.runtime == ""), f"{fmt}: a format that runs says where"
        if entry.max_size_share:
            assert entry.max_size_share[0] in REGISTRY


def test_cli_lists_and_validates_formats_from_the_registry():
    export = build_parser()._subparsers._group_actions[0].choices["export"]
    text = "".join(export.format_help().split())  # argparse wraps the help, at hyphens too
    assert "".join(format_help().split()) in text
    assert all(fmt in text for fmt in FORMATS)
    assert parse_formats("all") == list(FORMATS) and parse_formats(" tfjs, tflite ") == ["tfjs", "tflite"]
    with pytest.raises(StudioError, match=re.escape("Unknown export format 'coreml': choose from keras, savedmodel")):
        parse_formats("tfjs,coreml")


@pytest.mark.parametrize("channels", [1, 3])
def test_every_snippet_is_filled_from_the_metadata(channels):
    meta = {"input": {"shape": [1, 28, 32, channels]}, "output": {"values": "logits (apply softmax)", "classes": 7}}
    snippets = [s for fmt in FORMATS for s in REGISTRY[fmt].snippets]
    assert {s.title for s in snippets} == {
        "JavaScript (TF.js, browser)",
        "Python (ONNX Runtime)",
        "Android / Kotlin (LiteRT)",
        "Python (LiteRT)",
        "Python (MediaPipe Tasks)",
        "Android / Kotlin (MediaPipe Tasks)",
    }
    for snippet in snippets:
        code = snippet.code(meta)
        assert snippet.language and "28" in code and "32" in code, snippet.title
        if snippet.language == "python":
            compile(code, snippet.title, "exec")  # they are run on real exports in tests/test_export_snippets.py
            assert ("logits → probabilities" in code) == (snippet.title != "Python (MediaPipe Tasks)")
    assert REGISTRY["tflite"].file in REGISTRY["tflite"].snippets[1].code(meta)
    assert REGISTRY["mediapipe"].file in REGISTRY["mediapipe"].snippets[0].code(meta)
    assert "async function classify()" in REGISTRY["tfjs"].snippets[0].code(meta), "no top-level await"


def _results(**changes) -> dict[str, ExportResult]:
    results = {
        "keras": ExportResult("keras", "exports/model.keras", 400_000, 0.95, 0.0, 0.5, 100),
        "tfjs": ExportResult("tfjs", "exports/tfjs_model.zip", 380_000, 0.95, 3e-7, 1.0, 100),
        "tflite": ExportResult("tflite", "exports/model_float32.tflite", 380_000, 0.95, 8e-7, 0.1, 100),
        "tflite-int8": ExportResult("tflite-int8", "exports/model_int8.tflite", 100_000, 0.945, 0.02, 0.1, 100),
    }
    for fmt, values in changes.items():
        results[fmt].__dict__.update(values)
    return results


def test_fidelity_checks_pass_on_good_exports():
    checks = fidelity_checks(_results())
    assert {c.label for c in checks} == {
        "TensorFlow.js graph model matches Keras to 0.0001",
        "TFLite float32 matches Keras to 0.0001",
        "int8 loses at most 1 point of test accuracy",
        "int8 file at most 30% of float32",
    }
    assert all(c.passed for c in checks)


def test_fidelity_checks_fail_with_the_measured_detail():
    checks = {
        c.label: c
        for c in fidelity_checks(
            _results(tfjs={"max_abs_diff": 0.003}, **{"tflite-int8": {"test_accuracy": 0.90, "size_bytes": 200_000}})
        )
    }
    tfjs = checks["TensorFlow.js graph model matches Keras to 0.0001"]
    assert not tfjs.passed and tfjs.detail == "max difference 3.0e-03"
    loss = checks["int8 loses at most 1 point of test accuracy"]
    assert not loss.passed and loss.detail == "+5.00 points"
    size = checks["int8 file at most 30% of float32"]
    assert not size.passed and size.detail == "53%"


def test_mediapipe_checks_top1_agreement():
    results = _results()
    results["mediapipe"] = ExportResult("mediapipe", "exports/mediapipe_float32.tflite", 380_000, 0.95, 2e-6, 0.5, 100)
    results["mediapipe"].agreement = 0.985
    checks = {c.label: c for c in fidelity_checks(results)}
    agree = checks["MediaPipe float32 gives Keras's top-1 class on at least 99% of test images"]
    assert not agree.passed and agree.detail == "98.50%"
    row = next(r for r in comparison_rows(results) if r["format"] == REGISTRY["mediapipe"].label)
    assert row["top-1 = Keras"] == 0.985 and row["runtime"] == "MediaPipe Tasks ImageClassifier"


def test_a_failed_format_gets_no_check_and_a_failed_row():
    results = _results(tfjs={"error": "StudioError: no node", "max_abs_diff": None})
    assert not any("TensorFlow.js" in c.label for c in fidelity_checks(results))
    row = next(r for r in comparison_rows(results) if r["format"] == REGISTRY["tfjs"].label)
    assert row["status"] == "failed: StudioError: no node"
    int8 = next(r for r in comparison_rows(results) if r["format"] == REGISTRY["tflite-int8"].label)
    assert int8["vs Keras (points)"] == -0.5 and int8["runtime"] == "LiteRT interpreter"


def test_the_export_page_offers_every_registry_format(tmp_path, monkeypatch, trained_run):
    import shutil

    workspace = tmp_path / "runs"
    shutil.copytree(trained_run.path, workspace / trained_run.run_id)
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(workspace))
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    app.run()
    app.switch_page("app_pages/export.py").run()
    assert not app.exception
    chooser = app.multiselect(key="export_formats")
    assert list(chooser.options) == [REGISTRY[f].label for f in FORMATS]
    assert list(chooser.value) == list(FORMATS)
    # Serving needs the run's model only: the commands show before anything is exported (#17).
    codes = [code.value for code in app.code]
    assert any(f"python -m core serve --run {trained_run.run_id} --port 8502" in code for code in codes)
    assert any(f"-e MODEL_NAME={serving_name(trained_run)} tensorflow/serving" in code for code in codes)
