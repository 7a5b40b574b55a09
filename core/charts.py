"""Plotly figures of training curves. The live page, a reopened run and the HTML report draw the same
figures from the same records, so a run looks the same during and after training."""

from __future__ import annotations

import plotly.graph_objects as go

SMOOTHING = 0.8  # exponential moving average weight, as TensorBoard's default-ish slider
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


def batch_loss_figure(batches: list[dict]) -> go.Figure:
    steps = [b["step"] for b in batches]
    losses = [b["loss"] for b in batches]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=losses, name="batch loss", mode="lines", line=dict(color="#9ecae1", width=1)))
    fig.add_trace(
        go.Scatter(x=steps, y=smooth(losses), name="smoothed", mode="lines", line=dict(color=TRAIN_COLOUR, width=2))
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
    fig.update_xaxes(dtick=1 if len(x) <= 20 else None)
    return _layout(fig, f"Epoch {metric}", "epoch", metric)


def lr_figure(batches: list[dict], epochs: list[dict]) -> go.Figure:
    records, x_key = (batches, "step") if batches else (epochs, "epoch")
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
    fig.update_yaxes(type="log", exponentformat="e")  # schedules span decades; a flat rate stays readable
    return _layout(fig, "Learning rate", x_key, "learning rate")


def overlay_figure(curves: dict[str, list[dict]], metric: str) -> go.Figure:
    """One line per run: ``metric`` per epoch (e.g. "val_accuracy")."""
    fig = go.Figure()
    for name, epochs in curves.items():
        points = [(e["epoch"], e[metric]) for e in epochs if metric in e]
        if points:
            fig.add_trace(
                go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name, mode="lines+markers")
            )
    return _layout(fig, f"{metric} by epoch", "epoch", metric, height=360)
