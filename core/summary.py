"""What a built model looks like: its layer table, parameter counts, FLOPs, weight memory and a diagram."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.config import apply_preset
from core.models import build_model
from core.presets import PRESET_CLASSES, PRESETS


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: str
    params: int


@dataclass
class ModelSummary:
    layers: list[LayerRow]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    flops: int
    weight_bytes: int
    dot: str


def summarize(model) -> ModelSummary:
    """Layer table, parameter counts, FLOPs per image, float32 weight memory and a Graphviz diagram."""
    rows = []
    for layer in model.layers:
        rows.append(
            LayerRow(layer.name, layer.__class__.__name__, _shape_text(layer.output.shape), layer.count_params())
        )
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    weight_bytes = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    return ModelSummary(
        rows, trainable + non_trainable, trainable, non_trainable, estimate_flops(model), weight_bytes, diagram(model)
    )


def _shape_text(shape) -> str:
    return "×".join("?" if d is None else str(d) for d in tuple(shape)[1:])


def estimate_flops(model) -> int:
    """Floating-point operations for one image (2 per multiply-add) in convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        kind = layer.__class__.__name__
        if hasattr(layer, "layers") and kind in ("Functional", "Sequential", "Model"):
            total += estimate_flops(layer)
            continue
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        out = tuple(layer.output.shape)[1:]
        kernel = layer.kernel.shape
        if kind == "Dense":
            total += 2 * int(kernel[0]) * int(kernel[1])
        elif kind == "Conv2D":
            total += 2 * int(np.prod(kernel)) * int(out[0]) * int(out[1])
        else:  # depthwise: one k×k filter per input channel (times the depth multiplier)
            total += 2 * int(np.prod(kernel)) * int(out[0]) * int(out[1])
    return total


def diagram(model) -> str:
    """A Graphviz DOT graph of the layers and their connections (residual branches included)."""
    config = model.get_config()
    lines = [
        "digraph model {",
        '  rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
        'fontname="Helvetica", fontsize=10];',
    ]
    by_name = {layer.name: layer for layer in model.layers}
    for spec in config["layers"]:
        name = spec["name"]
        layer = by_name.get(name)
        detail = _layer_detail(layer) if layer is not None else ""
        shape = _shape_text(layer.output.shape) if layer is not None else ""
        fill = _FILL.get(spec["class_name"], "#eef3fb")
        lines.append(f'  "{name}" [label="{spec["class_name"]}{detail}\\n{shape}", fillcolor="{fill}"];')
        for source in _inbound(spec.get("inbound_nodes", [])):
            lines.append(f'  "{source}" -> "{name}";')
    lines.append("}")
    return "\n".join(lines)


_FILL = {
    "Conv2D": "#cfe2ff",
    "MaxPooling2D": "#ffe5b4",
    "AveragePooling2D": "#ffe5b4",
    "Dense": "#d4f4dd",
    "Dropout": "#eeeeee",
    "BatchNormalization": "#f8d7da",
    "Add": "#fff3cd",
    "Functional": "#e2d9f3",
}


def _layer_detail(layer) -> str:
    kind = layer.__class__.__name__
    if kind == "Conv2D":
        k = layer.kernel_size
        return f" {layer.filters} {k[0]}×{k[1]} {layer.padding}"
    if kind == "Dense":
        act = getattr(layer.activation, "__name__", "")
        return f" {layer.units}" + (f" {act}" if act and act != "linear" else "")
    if kind == "Dropout":
        return f" {layer.rate:g}"
    if kind == "Functional":
        return f" {layer.name}"
    return ""


def _inbound(nodes) -> list[str]:
    """Names of the layers feeding a layer, from a functional config's inbound_nodes."""
    found: list[str] = []

    def walk(obj):
        if isinstance(obj, dict):
            history = (
                obj.get("config", {}).get("keras_history") if obj.get("class_name") == "__keras_tensor__" else None
            )
            if history:
                found.append(history[0])
                return
            for value in obj.values():
                walk(value)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value)

    walk(nodes)
    return list(dict.fromkeys(found))


def reference_params(preset_id: str) -> int:
    """Parameter count of a preset at its tutorial's input shape and 10 classes."""
    preset = PRESETS[preset_id]
    config = apply_preset(preset_id)
    config.pretrained = False  # the count does not depend on the weights' values
    model = build_model(config, preset.input_shape, PRESET_CLASSES).model
    return int(model.count_params())
