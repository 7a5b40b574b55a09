"""Plotly figures: a dataset's classes, samples and pixels, and training curves. The live page, a reopened run
and the HTML report draw the same figures from the same records, so a run looks the same during and after
training."""

from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from core.i18n import N_, _, number, percent
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
    "accuracy": N_("training accuracy"),
    "loss": N_("training loss"),
    "val_accuracy": N_("validation accuracy"),
    "val_loss": N_("validation loss"),
    "lr": N_("learning rate"),
}
# Chart titles of the known metrics (a title starts with a capital in English).
METRIC_TITLES = {
    "accuracy": N_("Training accuracy by epoch"),
    "loss": N_("Training loss by epoch"),
    "val_accuracy": N_("Validation accuracy by epoch"),
    "val_loss": N_("Validation loss by epoch"),
}
OVERFIT_RISE = 1.10  # the validation loss 10% above its lowest while the training loss still falls: overfitting
OVERFIT_MIN_EPOCHS = 3


def overfitting_note(epochs: list[dict]) -> str | None:
    """A learner's note when the curves show overfitting: the validation loss rose well above its lowest point
    while the training loss kept falling. None when they do not (or too few epochs to tell)."""
    rows = [e for e in epochs if e.get("val_loss") is not None and e.get("loss") is not None]
    if len(rows) < OVERFIT_MIN_EPOCHS:
        return None
    best = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    last = rows[-1]
    if best == len(rows) - 1 or last["val_loss"] <= rows[best]["val_loss"] * OVERFIT_RISE:
        return None
    if last["loss"] >= rows[best]["loss"]:
        return None
    return _(
        "Overfitting: the validation loss was lowest after epoch {best} ({best_loss}) and rose to {last_loss} while "
        "the training loss kept falling. The model is learning the training set by heart: try more data "
        "augmentation, more dropout, or early stopping."
    ).format(
        best=rows[best].get("epoch", best + 1),
        best_loss=number(rows[best]["val_loss"], 3),
        last_loss=number(last["val_loss"], 3),
    )


MAX_EPOCH_TICKS = 12  # whole-epoch ticks on an axis at most: every epoch, or every 2nd, 5th…


def metric_name(metric: str) -> str:
    """A metric as people say it ("validation accuracy"), not as Keras logs it ("val_accuracy"), in their language."""
    if metric in METRIC_NAMES:
        return _(METRIC_NAMES[metric])
    if metric.startswith("val_"):
        return _("validation {metric}").format(metric=metric.removeprefix("val_").replace("_", " "))
    return metric.replace("_", " ")


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
        labels={"x": _("class"), "y": _("images")},
        title=_("Images per class (largest/smallest = {ratio}×)").format(ratio=number(imbalance, 1)),
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
    title = _("Samples, {count} per class").format(count=number(per_row)) if per_row else _("Samples")
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(
        tickvals=[i * row_height + row_height / 2 for i in range(len(row_names))], ticktext=list(row_names)
    )
    return fig


def channel_names(channels: int) -> list[str]:
    return ["gray"] if channels == 1 else ["red", "green", "blue"]


CHANNEL_LABELS = {"gray": N_("gray"), "red": N_("red"), "green": N_("green"), "blue": N_("blue")}


def pixel_histogram_figure(histograms: np.ndarray) -> go.Figure:
    """Pixel value counts (0..255) per channel."""
    fig = go.Figure()
    for histogram, name in zip(histograms, channel_names(len(histograms)), strict=True):
        fig.add_trace(
            go.Scatter(
                x=np.arange(256), y=histogram, name=_(CHANNEL_LABELS[name]), line=dict(color=CHANNEL_COLOURS[name])
            )
        )
    fig.update_layout(
        title=_("Pixel value histogram per channel"),
        xaxis_title=_("pixel value"),
        yaxis_title=_("pixels"),
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
    fig.add_trace(
        go.Scatter(x=steps, y=losses, name=_("batch loss"), mode="lines", line=dict(color="#9ecae1", width=1))
    )
    fig.add_trace(
        go.Scatter(x=steps, y=smoothed, name=_("smoothed"), mode="lines", line=dict(color=TRAIN_COLOUR, width=2))
    )
    return _layout(fig, _("Batch loss"), _("step"), _("loss"))


def epoch_figure(epochs: list[dict], metric: str) -> go.Figure:
    """Training vs validation ``metric`` ("loss" or "accuracy") per epoch."""
    fig = go.Figure()
    x = [e["epoch"] for e in epochs]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=[e.get(metric) for e in epochs],
            name=metric_name(metric),
            mode="lines+markers",
            line=dict(color=TRAIN_COLOUR),
        )
    )
    if any(f"val_{metric}" in e for e in epochs):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[e.get(f"val_{metric}") for e in epochs],
                name=metric_name(f"val_{metric}"),
                mode="lines+markers",
                line=dict(color=VAL_COLOUR),
            )
        )
    whole_epochs(fig, max(x, default=1))
    title = _("Epoch accuracy") if metric == "accuracy" else _("Epoch loss") if metric == "loss" else metric
    axis = _("accuracy") if metric == "accuracy" else _("loss") if metric == "loss" else metric
    return _layout(fig, title, _("epoch"), axis)


def lr_figure(batches: list[dict], epochs: list[dict]) -> go.Figure:
    records, x_key = (thinned(batches), "step") if batches else (epochs, "epoch")
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r[x_key] for r in records],
            y=[r["lr"] for r in records],
            name=_("learning rate"),
            mode="lines" if batches else "lines+markers",
            line=dict(color="#2ca02c"),
        )
    )
    # Schedules span decades: a log axis with one tick per decade, each written one way (1e-3), not the
    # "0.01, 5, 2, 1e-3" of Plotly's default minor labels.
    fig.update_yaxes(type="log", dtick=1, tickformat=".0e")
    if x_key == "epoch":
        whole_epochs(fig, max((r["epoch"] for r in records), default=1))
    return _layout(fig, _("Learning rate"), _("step") if x_key == "step" else _("epoch"), _("learning rate"))


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
    title = (
        _(METRIC_TITLES[metric])
        if metric in METRIC_TITLES
        else _("{metric} by epoch").format(metric=metric_name(metric))
    )
    return _layout(fig, title, _("epoch"), metric_name(metric), height=360)


def confusion_figure(evaluation: Evaluation, normalized: bool = False) -> go.Figure:
    """Heat map of the confusion matrix; hover shows true class, predicted class and count."""
    counts = evaluation.confusion
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    z = rates if normalized else counts
    names = evaluation.class_names
    text = [
        [percent(rates[i, j], 0) if normalized else str(counts[i, j]) for j in range(len(names))]
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
            hovertemplate=_("true: {true}<br>predicted: {predicted}<br>count: {count}<br>rate: {rate}").format(
                true="%{y}", predicted="%{x}", count="%{customdata[0]}", rate="%{customdata[1]:.1%}"
            )
            + "<extra></extra>",
        )
    )
    fig.update_layout(
        title=_("Confusion matrix (row-normalized)") if normalized else _("Confusion matrix"),
        height=520,
        xaxis_title=_("predicted class"),
        yaxis_title=_("true class"),
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
            hovertemplate=_("true: {true}<br>predicted: {predicted}<br>count: {count}").format(
                true="%{y}", predicted="%{x}", count="%{customdata}"
            )
            + "<extra></extra>",
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
        labels={"x": _("probability"), "y": _("class")},
        range_x=[0, 1],
        title=_("Prediction: {name} ({probability})").format(
            name=class_names[best[0]], probability=percent(probs[best[0]])
        ),
    )
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(type="category")  # class names such as "8" are names, not numbers on a scale
    return fig
