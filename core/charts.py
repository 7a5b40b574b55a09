"""Plotly figures: a dataset's classes, samples and pixels, and training curves. The live page, a reopened run
and the HTML report draw the same figures from the same records, so a run looks the same during and after
training."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from core.metrics import Evaluation

SMOOTHING = 0.8  # exponential moving average weight, as TensorBoard's default-ish slider
MAX_BATCH_POINTS = 400  # per batch curve: about one point per 2 pixels of a half-page chart
TRAIN_COLOUR, VAL_COLOUR = "#1f77b4", "#ff7f0e"


def smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing)."""
    out, last, norm = [], 0.0, 0.0
    for value in values:
        last = last * weight + (1 - weight) * value
        norm = norm * weight + (1 - weight)
        out.append(last / norm)
    return out


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = 300) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
    )
    return fig


METRIC_NAMES = {
    "accuracy": "training accuracy",
    "loss": "training loss",
    "val_accuracy": "validation accuracy",
    "val_loss": "validation loss",
    "lr": "learning rate",
}
MAX_EPOCH_TICKS = 12  # whole-epoch ticks on an axis at most: every epoch, or every 2nd, 5th…


def metric_name(metric: str) -> str:
    """A metric as people say it ("validation accuracy"), not as Keras logs it ("val_accuracy")."""
    return METRIC_NAMES.get(metric, metric.replace("val_", "validation ").replace("_", " "))


def whole_epochs(fig: go.Figure, last_epoch: int) -> go.Figure:
    """Epoch axes tick whole epochs only (never 1.5), every epoch up to a dozen, then a round step."""
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if last_epoch / s <= MAX_EPOCH_TICKS or s == 1000)
    fig.update_xaxes(tickmode="linear", tick0=0 if step > 1 else 1, dtick=step, tickformat="d")
    return fig


CHANNEL_COLOURS = {"red": "#d62728", "green": "#2ca02c", "blue": "#1f77b4", "gray": "#555555"}


def class_counts_figure(class_names: list[str], counts: np.ndarray) -> go.Figure:
    """Images per class, titled with the imbalance (largest class over smallest)."""
    imbalance = counts.max() / max(counts.min(), 1)
    fig = px.bar(
        x=class_names,
        y=counts,
        labels={"x": "class", "y": "images"},
        title=f"Images per class (largest/smallest = {imbalance:.1f}×)",
    )
    fig.update_layout(height=320, margin=dict(t=40, b=10))
    fig.update_xaxes(type="category")  # every class named, "3" as a name rather than a number on a scale
    return fig


SAMPLE_GRID_MAX_HEIGHT = 480  # pixels: the grid stays within a laptop screen, above the fold


def sample_grid_figure(
    grid: np.ndarray, row_names: list[str], row_height: int, per_row: int | None = None
) -> go.Figure:
    """A mosaic of samples, one row per class, with the class names on the y axis."""
    fig = px.imshow(grid)
    height = max(200, min(60 * len(row_names), SAMPLE_GRID_MAX_HEIGHT))
    title = f"Samples, {per_row} per class" if per_row else "Samples"
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(
        tickvals=[i * row_height + row_height / 2 for i in range(len(row_names))], ticktext=list(row_names)
    )
    return fig


def channel_names(channels: int) -> list[str]:
    return ["gray"] if channels == 1 else ["red", "green", "blue"]


def pixel_histogram_figure(histograms: np.ndarray) -> go.Figure:
    """Pixel value counts (0..255) per channel."""
    fig = go.Figure()
    for histogram, name in zip(histograms, channel_names(len(histograms)), strict=True):
        fig.add_trace(go.Scatter(x=np.arange(256), y=histogram, name=name, line=dict(color=CHANNEL_COLOURS[name])))
    fig.update_layout(
        title="Pixel value histogram per channel",
        xaxis_title="pixel value",
        yaxis_title="pixels",
        height=320,
        margin=dict(t=40, b=10),
    )
    return fig


def thinned(values: list, limit: int = MAX_BATCH_POINTS) -> list:
    """At most about ``limit`` evenly spaced items, the last always kept: a long run's batch curves stay light to
    build, send and draw in every watching tab (#18) and look the same at chart width."""
    if len(values) <= limit:
        return values
    stride = -(-len(values) // limit)
    kept = values[::stride]
    return kept if (len(values) - 1) % stride == 0 else [*kept, values[-1]]


def batch_loss_figure(batches: list[dict]) -> go.Figure:
    steps = thinned([b["step"] for b in batches])
    raw = [b["loss"] for b in batches]
    losses, smoothed = thinned(raw), thinned(smooth(raw))  # smoothed over every batch, then thinned
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=losses, name="batch loss", mode="lines", line=dict(color="#9ecae1", width=1)))
    fig.add_trace(
        go.Scatter(x=steps, y=smoothed, name="smoothed", mode="lines", line=dict(color=TRAIN_COLOUR, width=2))
    )
    return _layout(fig, "Batch loss", "step", "loss")


def epoch_figure(epochs: list[dict], metric: str) -> go.Figure:
    """Training vs validation ``metric`` ("loss" or "accuracy") per epoch."""
    fig = go.Figure()
    x = [e["epoch"] for e in epochs]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[e.get(metric) for e in epochs],
            name=f"training {metric}",
            mode="lines+markers",
            line=dict(color=TRAIN_COLOUR),
        )
    )
    if any(f"val_{metric}" in e for e in epochs):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[e.get(f"val_{metric}") for e in epochs],
                name=f"validation {metric}",
                mode="lines+markers",
                line=dict(color=VAL_COLOUR),
            )
        )
    whole_epochs(fig, max(x, default=1))
    return _layout(fig, f"Epoch {metric}", "epoch", metric)


def lr_figure(batches: list[dict], epochs: list[dict]) -> go.Figure:
    records, x_key = (thinned(batches), "step") if batches else (epochs, "epoch")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r[x_key] for r in records],
            y=[r["lr"] for r in records],
            name="learning rate",
            mode="lines" if batches else "lines+markers",
            line=dict(color="#2ca02c"),
        )
    )
    # Schedules span decades: a log axis with one tick per decade, each written one way (1e-3), not the
    # "0.01, 5, 2, 1e-3" of Plotly's default minor labels.
    fig.update_yaxes(type="log", dtick=1, tickformat=".0e")
    if x_key == "epoch":
        whole_epochs(fig, max((r["epoch"] for r in records), default=1))
    return _layout(fig, "Learning rate", x_key, "learning rate")


def overlay_figure(curves: dict[str, list[dict]], metric: str) -> go.Figure:
    """One line per run: ``metric`` per epoch (e.g. "val_accuracy", titled "validation accuracy")."""
    fig = go.Figure()
    last = 1
    for name, epochs in curves.items():
        points = [(e["epoch"], e[metric]) for e in epochs if metric in e]
        if points:
            last = max(last, *(p[0] for p in points))
            fig.add_trace(
                go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name, mode="lines+markers")
            )
    whole_epochs(fig, last)
    return _layout(fig, f"{metric_name(metric).capitalize()} by epoch", "epoch", metric_name(metric), height=360)


def confusion_figure(evaluation: Evaluation, normalized: bool = False) -> go.Figure:
    """Heat map of the confusion matrix; hover shows true class, predicted class and count."""
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


def clickable_confusion_figure(
    evaluation: Evaluation, normalized: bool = False, selected: tuple[int, int] | None = None
) -> go.Figure:
    """The confusion matrix with an invisible square marker on every cell centre, so a click selects a cell
    (heat maps have no point selection), and the ``selected`` cell (true, predicted class index) outlined.
    The markers carry the hover text; hover must stay on for them, as "skip" also drops click events."""
    fig = confusion_figure(evaluation, normalized)
    names = evaluation.class_names
    fig.update_xaxes(type="category")  # class names such as "3" stay names, and cell i sits at position i
    fig.update_yaxes(type="category")
    if selected is not None:
        t, p = selected
        fig.add_shape(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5, line=dict(color="#f97316", width=4))
    rows, cols = np.meshgrid(range(len(names)), range(len(names)), indexing="ij")
    fig.data[0].hoverinfo = "skip"
    fig.add_trace(
        go.Scatter(
            x=[names[j] for j in cols.ravel()],
            y=[names[i] for i in rows.ravel()],
            mode="markers",
            marker=dict(size=max(8, min(40, 400 // len(names))), symbol="square", opacity=0),
            customdata=evaluation.confusion.ravel(),
            hovertemplate="true: %{y}<br>predicted: %{x}<br>count: %{customdata}<extra></extra>",
            showlegend=False,
        )
    )
    return fig


def prediction_figure(probs: np.ndarray, class_names: list[str], top: int = 5) -> go.Figure:
    """The most likely classes of one image as horizontal bars, titled with the prediction."""
    best = np.argsort(-probs)[: min(top, len(class_names))]
    fig = px.bar(
        x=probs[best][::-1],
        y=[class_names[i] for i in best][::-1],
        orientation="h",
        labels={"x": "probability", "y": "class"},
        range_x=[0, 1],
        title=f"Prediction: {class_names[best[0]]} ({probs[best[0]]:.1%})",
    )
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(type="category")  # class names such as "8" are names, not numbers on a scale
    return fig
