"""A Keras 3 model as a Keras 2 (tf_keras) one, for the ``.h5`` export that both generations load.

Keras 3 writes ``.h5`` files whose config tf_keras cannot read (``batch_shape``, ``optional``, dtype policies as
objects, call arguments as nested tensors). tf_keras's own files load in both, so the export rebuilds the model
in tf_keras from a converted config, copies the weights layer by layer and lets tf_keras write the file.
"""

from __future__ import annotations

import json
from pathlib import Path

# Config keys only Keras 3 knows, dropped from every layer and object config.
KERAS3_ONLY_KEYS = frozenset(
    {"optional", "input_axes", "output_axes", "lora_rank", "lora_alpha", "quantization_config"}
)
RENAMED_KEYS = {"InputLayer": {"batch_shape": "batch_input_shape"}, "LeakyReLU": {"negative_slope": "alpha"}}


def _object(value):
    """An object config (initializer, regularizer, constraint, dtype policy) in Keras 2 terms."""
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        if value["class_name"] in ("DTypePolicy", "FloatDTypePolicy"):
            return value["config"]["name"]
        config = {k: _object(v) for k, v in value["config"].items() if k not in KERAS3_ONLY_KEYS}
        return {"class_name": value["class_name"], "config": config}
    if isinstance(value, dict):
        return {k: _object(v) for k, v in value.items() if k not in KERAS3_ONLY_KEYS}
    if isinstance(value, list):
        return [_object(v) for v in value]
    return value


def _tensor(value, kwargs: dict) -> list:
    """One Keras 3 ``__keras_tensor__`` argument as Keras 2's [layer, node, tensor, kwargs]."""
    layer, node, index = value["config"]["keras_history"]
    return [layer, node, index, kwargs]


def _node(node: dict) -> list:
    """A Keras 3 inbound node ({"args": [...], "kwargs": {...}}) as Keras 2's list of inbound tensors."""
    args = node.get("args", [])
    kwargs = {k: v for k, v in node.get("kwargs", {}).items() if not (k == "mask" and v is None)}
    first = args[0] if len(args) == 1 else args
    tensors = first if isinstance(first, list) else [first]
    return [_tensor(t, kwargs) for t in tensors]


def _is_model(entry: dict) -> bool:
    return entry["class_name"] in ("Functional", "Model", "Sequential") and "layers" in entry["config"]


def _layer(entry: dict) -> dict:
    cls = entry["class_name"]
    if _is_model(entry):
        config = keras2_config(entry["config"])
    else:
        renames = RENAMED_KEYS.get(cls, {})
        config = {renames.get(k, k): _object(v) for k, v in entry["config"].items() if k not in KERAS3_ONLY_KEYS}
    layer = {"class_name": cls, "config": config}
    if "name" in entry:
        layer["name"] = entry["name"]
    if "inbound_nodes" in entry:
        layer["inbound_nodes"] = [_node(n) for n in entry["inbound_nodes"]]
    return layer


def _endpoints(value: list) -> list:
    """input_layers/output_layers: Keras 3 writes one endpoint as a flat [name, 0, 0]."""
    return [value] if value and isinstance(value[0], str) else value


def keras2_config(config: dict) -> dict:
    """A Keras 3 functional model's ``get_config()`` as tf_keras's ``Model.from_config`` reads it."""
    converted = {k: v for k, v in config.items() if k not in ("layers", "input_layers", "output_layers")}
    converted["layers"] = [_layer(entry) for entry in config["layers"]]
    converted["input_layers"] = _endpoints(config["input_layers"])
    converted["output_layers"] = _endpoints(config["output_layers"])
    return _inline_models(converted)


def _inline_models(config: dict) -> dict:
    """A Keras 2 config with each nested model (MobileNetV2's base) replaced by its layers, wired in its place.

    The two generations number a nested model's nodes differently in .h5 files (Keras 2 counts the model's own
    first node, Keras 3 does not), so a file with a nested model loads in one of them only. Inlined, the layers
    keep their names, weights and trainable flags; the nested call's ``training=False`` is what inference does."""
    layers, outputs = [], {}  # outputs: a nested model's name -> its output [layer, node, tensor]
    for layer in config["layers"]:
        layer = {**layer, "inbound_nodes": [[_rewired(t, outputs) for t in n] for n in layer.get("inbound_nodes", [])]}
        if "layers" not in layer["config"]:
            layers.append(layer)
            continue
        inner = _inline_models(layer["config"])
        if len(layer["inbound_nodes"]) != 1 or len(inner["input_layers"]) != 1 or len(inner["output_layers"]) != 1:
            raise ValueError(f"nested model {layer['name']} is called more than once or has several inputs/outputs")
        source = layer["inbound_nodes"][0][0][:3]
        inputs = {inner["input_layers"][0][0]}
        for sub in inner["layers"]:
            if sub["class_name"] == "InputLayer" and sub["name"] in inputs:
                continue
            nodes = [[source + [t[3]] if t[0] in inputs else t for t in n] for n in sub["inbound_nodes"]]
            layers.append({**sub, "inbound_nodes": nodes})
        outputs[layer["name"]] = inner["output_layers"][0][:3]
    rewired = [_rewired(t, outputs)[:3] for t in config["output_layers"]]
    return {**config, "layers": layers, "output_layers": rewired}


def _rewired(tensor: list, outputs: dict) -> list:
    """[layer, node, tensor, kwargs] pointing at an inlined model's output, pointed at its last layer instead."""
    return outputs[tensor[0]] + tensor[3:] if tensor[0] in outputs else tensor


def _copy_weights(source, target) -> None:
    """Layer by layer, by name, into nested models too: the two generations order a model's weights differently."""
    for layer in source.layers:
        if hasattr(layer, "layers"):
            _copy_weights(layer, target)  # inlined: its layers are the target's own
        elif layer.weights:
            twin = target.get_layer(layer.name)
            twin.set_weights(layer.get_weights())


def to_tf_keras(model):
    """``model`` (Keras 3) rebuilt in tf_keras with the same weights."""
    import tf_keras

    twin = tf_keras.Model.from_config(keras2_config(model.get_config()))
    _copy_weights(model, twin)
    return twin


# Keys tf_keras writes that Keras 3 refuses when it loads the file: DepthwiseConv2D (MobileNetV2) gets ``groups``.
KERAS2_ONLY_KEYS = {"DepthwiseConv2D": ("groups",)}


def _drop_keras2_only(config):
    if isinstance(config, dict):
        for key in KERAS2_ONLY_KEYS.get(config.get("class_name"), ()):
            config.get("config", {}).pop(key, None)
        for value in config.values():
            _drop_keras2_only(value)
    elif isinstance(config, list):
        for value in config:
            _drop_keras2_only(value)


def write_h5(model, path: Path) -> None:
    """The full model (architecture and weights, no optimizer) as an HDF5 file written by tf_keras, its config
    without the few keys Keras 3 refuses (tf_keras takes their defaults)."""
    import h5py

    to_tf_keras(model).save(str(path), save_format="h5", include_optimizer=False)
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        _drop_keras2_only(config)
        h5.attrs["model_config"] = json.dumps(config)
