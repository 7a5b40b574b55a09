"""Evaluating a run: its score, Grad-CAM, the standalone report, the prediction cache, bad runs and uploads."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.charts import clickable_confusion_figure, prediction_figure
from core.errors import StudioError
from core.evaluation import (
    PREDICTIONS_FILE,
    cached_probabilities,
    evaluate_run,
    load_run_model,
    load_test_data,
    predict_image,
)
from core.explain import grad_cam, overlay_heatmap
from core.metrics import evaluate_predictions
from core.pictures import labelled_grid
from core.report import html_report
from core.runs import load_run

ROOT = Path(__file__).resolve().parent.parent


def test_run_evaluation_matches_the_score_training_reported(trained_run):
    ev = evaluate_run(trained_run)
    assert ev.accuracy == pytest.approx(trained_run.status.test_accuracy, abs=1e-6)
    assert ev.loss == pytest.approx(trained_run.status.test_loss, abs=1e-4)
    assert ev.confusion.sum() == trained_run.status.test_size and ev.top_k_accuracy >= ev.accuracy


def test_predictions_are_cached_in_the_run_and_renewed_with_the_model(trained_run, tmp_path):
    run_dir = tmp_path / trained_run.run_id
    shutil.copytree(trained_run.path, run_dir)
    run = load_run(run_dir)
    (run_dir / PREDICTIONS_FILE).unlink(missing_ok=True)
    first = cached_probabilities(run)
    stamp = (run_dir / PREDICTIONS_FILE).stat().st_mtime_ns
    again = cached_probabilities(run)
    assert np.array_equal(first, again) and (run_dir / PREDICTIONS_FILE).stat().st_mtime_ns == stamp
    os.utime(run.model_path(), ns=(stamp + 10**9, stamp + 10**9))  # a retrained model file
    cached_probabilities(run)
    assert (run_dir / PREDICTIONS_FILE).stat().st_mtime_ns != stamp


def test_grad_cam_has_the_input_size_and_differs_between_images(trained_run):
    model = load_run_model(trained_run)
    images, labels, _ = load_test_data(trained_run)
    pick = [int(np.flatnonzero(labels == 0)[0]), int(np.flatnonzero(labels == 1)[0])]
    cams = grad_cam(model, images[pick])
    assert cams.shape == (2, 28, 28) and cams.min() >= 0 and cams.max() <= 1
    assert np.abs(cams[0] - cams[1]).mean() > 0.01
    overlay = overlay_heatmap(images[pick[0]], cams[0])
    assert overlay.shape == (28, 28, 3) and overlay.dtype == np.uint8


def test_single_image_prediction_uses_the_training_preprocessing(trained_run):
    model = load_run_model(trained_run)
    images, _, _ = load_test_data(trained_run)
    buffer = io.BytesIO()
    Image.fromarray(images[0][..., 0]).save(buffer, "PNG")
    probs, pixels = predict_image(model, buffer.getvalue(), images.shape[1:], logits=False)
    np.testing.assert_array_equal(pixels, images[0])
    np.testing.assert_allclose(probs, model.predict(images[:1], verbose=0)[0], atol=1e-6)
    big = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(big, "JPEG")
    assert predict_image(model, big.getvalue(), images.shape[1:], logits=False)[1].shape == (28, 28, 1)
    with pytest.raises(StudioError, match="cannot be used: not an image"):
        predict_image(model, b"not an image", images.shape[1:], logits=False)


def test_html_report_is_standalone_and_holds_the_confusion_matrix(trained_run, tmp_path):
    ev = evaluate_run(trained_run)
    images, labels, names = load_test_data(trained_run)
    grid = labelled_grid(images[:6], [names[i] for i in labels[:6]], [True] * 6)
    path = tmp_path / "report.html"
    path.write_text(html_report(trained_run, ev, grid), encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and 'id="confusion-matrix"' in text
    assert not re.search(r'<script[^>]+src="http', text), "no external scripts: it must open offline"
    assert "Plotly" in text and "data:image/png;base64," in text
    data = json.loads(re.search(r'id="evaluation-data">(.*?)</script>', text, re.S).group(1).replace("&quot;", '"'))
    assert data["confusion_matrix"] == ev.confusion.tolist()
    # The heat map's own numbers are in the embedded figure too.
    assert json.dumps(ev.confusion[0].tolist()).replace(" ", "") in text.replace(" ", "")


def test_the_confusion_matrix_is_clickable_through_invisible_markers_that_carry_the_hover():
    labels = np.array([0, 0, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 2, 0]]
    ev = evaluate_predictions(labels, probs, ["a", "b", "c"])
    heat, markers = clickable_confusion_figure(ev, normalized=True).data
    # The heat map skips hover; "skip" on the markers would drop their click events, so they keep it on.
    assert heat.type == "heatmap" and heat.hoverinfo == "skip"
    assert markers.type == "scatter" and markers.hoverinfo is None and markers.marker.opacity == 0
    assert markers.marker.symbol == "square" and markers.marker.size == 40 and not markers.showlegend
    # One marker per cell, row by row, with the cell's count.
    assert list(markers.x) == ["a", "b", "c"] * 3 and list(markers.y) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert list(markers.customdata) == ev.confusion.ravel().tolist() == [1, 1, 0, 0, 1, 0, 1, 0, 1]
    assert markers.hovertemplate == "true: %{y}<br>predicted: %{x}<br>count: %{customdata}<extra></extra>"


def test_the_try_it_chart_shows_the_five_most_likely_classes_best_on_top():
    probs = np.array([0.02, 0.5, 0.03, 0.2, 0.12, 0.05, 0.08])
    fig = prediction_figure(probs, list("abcdefg"))
    bars = fig.data[0]
    assert list(bars.y) == ["f", "g", "e", "d", "b"]  # drawn bottom-up: the best class is the top bar
    assert list(bars.x) == pytest.approx([0.05, 0.08, 0.12, 0.2, 0.5])
    assert fig.layout.title.text == "Prediction: b (50.0%)"
    assert len(prediction_figure(np.array([0.3, 0.7]), ["x", "y"]).data[0].y) == 2


def test_a_missing_or_unreadable_model_file_gets_a_clear_message(trained_run, tmp_path):
    run_dir = tmp_path / trained_run.run_id
    shutil.copytree(trained_run.path, run_dir)
    (run_dir / "best.keras").write_bytes(b"this is not a keras file")
    (run_dir / "final.keras").unlink()
    with pytest.raises(StudioError, match=r"The model file .*best.keras of run .* cannot be read"):
        load_run_model(load_run(run_dir))
    (run_dir / "best.keras").unlink()
    with pytest.raises(StudioError, match=r"has no model file \(best.keras or final.keras\)"):
        load_run(run_dir).model_path()


@pytest.mark.slow
def test_cli_evaluate_prints_the_same_numbers_as_json(trained_run, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "evaluate",
            "--run",
            str(trained_run.path),
            "--report",
            str(tmp_path / "r.html"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    ev = evaluate_run(trained_run)
    assert data["accuracy"] == pytest.approx(ev.accuracy) and data["confusion_matrix"] == ev.confusion.tolist()
    assert [r["f1"] for r in data["per_class"]] == pytest.approx([r["f1"] for r in ev.per_class])
    assert (tmp_path / "r.html").stat().st_size > 100_000
    bad = subprocess.run(
        [sys.executable, "-m", "core", "evaluate", "--run", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2 and "error: No run at" in bad.stderr and "Traceback" not in bad.stderr


def test_uploaded_models_load_only_in_safe_mode_and_must_fit_the_run(trained_run, tmp_path):
    import keras

    from core.evaluation import load_uploaded_model

    own = load_uploaded_model((trained_run.path / "best.keras").read_bytes(), "mine.keras", (28, 28, 1), 10)
    assert own.count_params() == 93_322
    # A Lambda layer carries Python bytecode: safe mode must refuse it rather than run it.
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(StudioError, match=r"'lambda.keras' cannot be loaded safely: .*safe mode refuses Lambda"):
        load_uploaded_model(path.read_bytes(), "lambda.keras", (28, 28, 1), 10)
    with pytest.raises(StudioError, match=r"'mine.keras' takes \(None, 28, 28, 1\) .* need \(None, 32, 32, 3\)"):
        load_uploaded_model((trained_run.path / "best.keras").read_bytes(), "mine.keras", (32, 32, 3), 10)
    with pytest.raises(StudioError, match=r"'model.h5' is not a .keras file"):
        load_uploaded_model(b"x", "model.h5", (28, 28, 1), 10)
    assert not list(Path("/tmp").glob("cnn-studio-upload-*")), "the temporary copy is removed"


def test_every_model_load_in_core_uses_safe_mode():
    import ast

    for path in (ROOT / "core").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load_model":
                safe = [k for k in node.keywords if k.arg == "safe_mode"]
                assert safe and getattr(safe[0].value, "value", None) is True, f"{path.name}:{node.lineno}"
