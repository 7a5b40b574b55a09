"""Evaluating a run on its own held-out test split: metrics, confusion, mistakes, Grad-CAM, a report.

Predictions are computed once per model file and cached in the run folder (``predictions.npz``), so a
second visit costs a file read.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.config import StudioConfig
from core.errors import StudioError
from core.files import atomic_write_bytes, read_json
from core.images import BadImage, decode_image
from core.runs import CLASSES_FILE, CONFIG_FILE, TEST_DATA_FILE, RunInfo, read_metrics

PREDICTIONS_FILE = "predictions.npz"
PREDICT_BATCH = 256
TOP_K = 3


def load_run_model(run: RunInfo):
    """The run's model, loaded with Keras safe_mode (no arbitrary code), or a clear StudioError."""
    import keras

    path = run.model_path()
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as err:  # zip, h5 and deserialization errors all mean the same to the user
        raise StudioError(
            f"The model file {path} of run '{run.name}' cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200] if str(err) else 'no detail'}). Train the run again."
        ) from None


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
    try:
        with np.load(run.path / TEST_DATA_FILE) as data:
            images, labels = data["images"], data["labels"]
    except (OSError, KeyError, ValueError) as err:
        raise StudioError(
            f"Run '{run.name}' has no readable test split ({TEST_DATA_FILE}: {err}). Train it again."
        ) from None
    names = read_json(run.path / CLASSES_FILE)
    if not isinstance(names, list):
        raise StudioError(f"Run '{run.name}' has no {CLASSES_FILE}: train it again.")
    return images, labels.astype(np.int64), names


def run_config(run: RunInfo) -> StudioConfig:
    return StudioConfig.from_json((run.path / CONFIG_FILE).read_text())


def probabilities(model, images: np.ndarray, logits: bool) -> np.ndarray:
    outputs = np.asarray(model.predict(images, batch_size=PREDICT_BATCH, verbose=0), dtype=np.float64)
    if logits:
        outputs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs /= outputs.sum(axis=1, keepdims=True)
    return outputs


def cached_probabilities(run: RunInfo, model=None) -> np.ndarray:
    """Class probabilities for the run's test images, computed once per model file and kept in the run."""
    model_path = run.model_path()
    stamp = f"{model_path.name}:{model_path.stat().st_size}:{model_path.stat().st_mtime_ns}"
    cache = run.path / PREDICTIONS_FILE
    if cache.is_file():
        try:
            with np.load(cache) as data:
                if str(data["stamp"]) == stamp:
                    return data["probabilities"]
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache is recomputed
    images, _, _ = load_test_data(run)
    model = model or load_run_model(run)
    probs = probabilities(model, images, run_config(run).model.output == "logits")
    buffer = io.BytesIO()
    np.savez(buffer, probabilities=probs, stamp=np.array(stamp))
    atomic_write_bytes(cache, buffer.getvalue())
    return probs


@dataclass
class Evaluation:
    class_names: list[str]
    labels: np.ndarray
    probabilities: np.ndarray
    accuracy: float
    loss: float
    top_k_accuracy: float | None
    confusion: np.ndarray  # rows: true class, columns: predicted class
    per_class: list[dict]
    macro: dict
    weighted: dict

    @property
    def predicted(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probabilities.max(axis=1)

    def confused_pairs(self, limit: int = 10) -> list[dict]:
        """Off-diagonal cells, largest first: (true, predicted, count, share of the true class)."""
        pairs = []
        support = self.confusion.sum(axis=1)
        for t, p in zip(*np.nonzero(self.confusion), strict=True):
            if t != p:
                count = int(self.confusion[t, p])
                pairs.append(
                    {
                        "true": self.class_names[t],
                        "predicted": self.class_names[p],
                        "count": count,
                        "share of true class": count / max(int(support[t]), 1),
                    }
                )
        return sorted(pairs, key=lambda r: (-r["count"], r["true"], r["predicted"]))[:limit]

    def mistakes(self) -> np.ndarray:
        """Indices of misclassified test images, most confident mistakes first."""
        wrong = np.flatnonzero(self.predicted != self.labels)
        return wrong[np.argsort(-self.confidence[wrong], kind="stable")]

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            f"top_{TOP_K}_accuracy": self.top_k_accuracy,
            "test_images": int(len(self.labels)),
            "class_names": self.class_names,
            "confusion_matrix": self.confusion.tolist(),
            "per_class": self.per_class,
            "macro_avg": self.macro,
            "weighted_avg": self.weighted,
        }


def evaluate_predictions(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> Evaluation:
    """All the numbers from true labels and class probabilities (pure numpy, checked by hand in the tests)."""
    n_classes = len(class_names)
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probs.argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    accuracy = float(np.trace(confusion) / max(len(labels), 1))
    eps = 1e-7  # Keras clips probabilities the same way in its cross-entropy
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], eps, 1.0)))) if len(labels) else 0.0
    top_k = None
    if n_classes > TOP_K:
        top = np.argsort(-probs, axis=1)[:, :TOP_K]
        top_k = float(np.mean((top == labels[:, None]).any(axis=1)))
    per_class = []
    for c, name in enumerate(class_names):
        tp = int(confusion[c, c])
        predicted_c, support = int(confusion[:, c].sum()), int(confusion[c].sum())
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support})
    supports = np.array([r["support"] for r in per_class], dtype=np.float64)
    macro, weighted = {}, {}
    for key in ("precision", "recall", "f1"):
        values = np.array([r[key] for r in per_class])
        macro[key] = float(values.mean())
        weighted[key] = float((values * supports).sum() / max(supports.sum(), 1))
    macro["support"] = weighted["support"] = int(supports.sum())
    return Evaluation(class_names, labels, probs, accuracy, loss, top_k, confusion, per_class, macro, weighted)


def evaluate_run(run: RunInfo) -> Evaluation:
    """The run's evaluation on its own test split (predictions from the cache when the model is unchanged)."""
    _, labels, names = load_test_data(run)
    return evaluate_predictions(labels, cached_probabilities(run), names)


# --- Single images ------------------------------------------------------------------------------------


def predict_image(model, data: bytes, image_shape: tuple[int, int, int], logits: bool) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities for one uploaded or camera image, preprocessed exactly as the training images."""
    size, channels = image_shape[0], image_shape[-1]
    try:
        pixels, _ = decode_image(data, size, channels)
    except BadImage as err:
        raise StudioError(f"That file cannot be used: {err}. Upload a PNG, JPEG, BMP or GIF image.") from None
    return probabilities(model, pixels[None], logits)[0], pixels


# --- Grad-CAM -----------------------------------------------------------------------------------------


def last_conv_layer(model):
    """The last top-level layer with a 4-D output (a conv layer, or a whole pretrained base)."""
    for layer in reversed(model.layers):
        shape = getattr(layer, "output", None)
        if shape is not None and len(shape.shape) == 4 and layer.__class__.__name__ not in ("InputLayer", "Rescaling"):
            return layer
    raise StudioError("This model has no convolutional layer, so Grad-CAM has nothing to show.")


def grad_cam(model, images: np.ndarray, class_index: np.ndarray | None = None) -> np.ndarray:
    """Grad-CAM maps (N×H×W, 0..1) for ``class_index`` (default: the predicted class) at the input's size."""
    import keras
    import tensorflow as tf

    layer = last_conv_layer(model)
    grad_model = keras.Model(model.inputs, [layer.output, model.outputs[0]])
    x = tf.convert_to_tensor(images.astype(np.float32))
    with tf.GradientTape() as tape:
        features, outputs = grad_model(x, training=False)
        if class_index is None:
            class_index = tf.argmax(outputs, axis=1).numpy()
        scores = tf.gather(outputs, class_index, axis=1, batch_dims=1)
    grads = tape.gradient(scores, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))[..., None]
    cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0.0)


_JET = np.array([[0, 0, 0.5], [0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0], [0.5, 0, 0]])


def overlay_heatmap(image: np.ndarray, cam: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image (H×W×C uint8) with a jet-coloured heat map blended on top, as RGB uint8."""
    stops = np.linspace(0, 1, len(_JET))
    colours = np.stack([np.interp(cam, stops, _JET[:, i]) for i in range(3)], axis=-1) * 255
    base = image if image.shape[-1] == 3 else np.repeat(image, 3, axis=-1)
    return np.clip((1 - alpha) * base + alpha * colours, 0, 255).astype(np.uint8)


# --- Pictures -----------------------------------------------------------------------------------------

RIGHT, WRONG = (22, 163, 74), (220, 38, 38)


def labelled_grid(
    images: np.ndarray, captions: list[str], correct: list[bool], columns: int = 6, tile: int = 112
) -> np.ndarray:
    """The tutorials' prediction grid: each image scaled to ``tile`` px with a caption, green if right, red if wrong."""
    font = ImageFont.load_default(size=12)
    caption_h, pad = 30, 6
    rows = max(1, -(-len(images) // columns))
    canvas = Image.new("RGB", (columns * (tile + pad) + pad, rows * (tile + caption_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (img, caption, ok) in enumerate(zip(images, captions, correct, strict=True)):
        x = pad + (i % columns) * (tile + pad)
        y = pad + (i // columns) * (tile + caption_h + pad)
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).convert("RGB")
        canvas.paste(pil.resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        colour = RIGHT if ok else WRONG
        draw.rectangle((x - 2, y - 2, x + tile + 1, y + tile + 1), outline=colour, width=3)
        for line_no, line in enumerate(caption.split("\n")[:2]):
            draw.text((x, y + tile + 3 + 13 * line_no), line[:22], fill=colour, font=font)
    return np.asarray(canvas)


def png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


# --- Figures and the report ---------------------------------------------------------------------------


def confusion_figure(evaluation: Evaluation, normalized: bool = False):
    """Heat map of the confusion matrix; hover shows true class, predicted class and count."""
    import plotly.graph_objects as go

    counts = evaluation.confusion
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    z = rates if normalized else counts
    names = evaluation.class_names
    text = [
        [f"{rates[i, j]:.0%}" if normalized else str(counts[i, j]) for j in range(len(names))]
        for i in range(len(names))
    ]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}" if len(names) <= 20 else None,
            customdata=np.dstack([counts, rates]),
            hovertemplate="true: %{y}<br>predicted: %{x}<br>count: %{customdata[0]}<br>rate: %{customdata[1]:.1%}"
            "<extra></extra>",
        )
    )
    fig.update_layout(
        title="Confusion matrix" + (" (row-normalized)" if normalized else ""),
        height=520,
        xaxis_title="predicted class",
        yaxis_title="true class",
        margin=dict(l=10, r=10, t=40, b=10),
    )
    fig.update_yaxes(autorange="reversed")
    if len(names) <= 30:  # label every class, not every other one
        fig.update_xaxes(tickmode="array", tickvals=names, type="category")
        fig.update_yaxes(tickmode="array", tickvals=names, type="category")
    return fig


def html_report(run: RunInfo, evaluation: Evaluation, samples: np.ndarray | None = None) -> str:
    """A standalone HTML page (Plotly inlined, images embedded) with config, curves, confusion, per-class table."""
    import plotly.io as pio

    from core.charts import epoch_figure

    _, epochs = read_metrics(run.path)
    config = (run.path / CONFIG_FILE).read_text()
    figures = [confusion_figure(evaluation), confusion_figure(evaluation, normalized=True)]
    if epochs:
        figures += [epoch_figure(epochs, "accuracy"), epoch_figure(epochs, "loss")]
    parts = [
        pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False)
        for i, fig in enumerate(figures)
    ]
    rows = "".join(
        f"<tr><td>{html.escape(r['class'])}</td><td>{r['precision']:.3f}</td><td>{r['recall']:.3f}</td>"
        f"<td>{r['f1']:.3f}</td><td>{r['support']}</td></tr>"
        for r in evaluation.per_class
    )
    for label, avg in (("macro avg", evaluation.macro), ("weighted avg", evaluation.weighted)):
        rows += (
            f"<tr class='avg'><td>{label}</td><td>{avg['precision']:.3f}</td><td>{avg['recall']:.3f}</td>"
            f"<td>{avg['f1']:.3f}</td><td>{avg['support']}</td></tr>"
        )
    status = run.status
    top = (
        f"<li>top-{TOP_K} accuracy: {evaluation.top_k_accuracy:.4f}</li>"
        if evaluation.top_k_accuracy is not None
        else ""
    )
    grid = (
        f'<h2>Sample predictions</h2><img alt="sample predictions" src="data:image/png;base64,{png_base64(samples)}">'
        if samples is not None
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CNN Studio report: {html.escape(run.name)}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}tr.avg{{font-weight:bold}}pre{{background:#f5f5f5;padding:1em;overflow:auto}}</style>
</head><body>
<h1>{html.escape(run.name)}</h1>
<p>Run <code>{html.escape(run.run_id)}</code> · dataset {html.escape(str(status.dataset or ""))} · preset
{html.escape(str(status.preset or ""))} · {status.params or "?"} parameters ·
{status.epochs_completed}
epochs · status {html.escape(run.state)}</p>
<h2>Test results</h2><ul><li>test images: {len(evaluation.labels)}</li><li>accuracy: {evaluation.accuracy:.4f}</li>
<li>loss: {evaluation.loss:.4f}</li>{top}</ul>
<div id="confusion-matrix">{parts[0]}{parts[1]}</div>
<h2>Per-class metrics</h2><table id="per-class"><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>
<th>support</th></tr>{rows}</table>
<h2>Learning curves</h2>{"".join(parts[2:]) or "<p>No stored metrics.</p>"}
{grid}
<h2>Config</h2><pre>{html.escape(config)}</pre>
<script type="application/json" id="evaluation-data">{html.escape(json.dumps(evaluation.to_dict()))}</script>
</body></html>"""
