"""One dataclass tree for a whole project (data, augmentation, model, training) that round-trips to JSON.

Field paths such as ``"data.image_size"`` are also the Streamlit widget keys, so a page can seed every
widget from a config and write the widgets back into it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from core.errors import StudioError
from core.presets import MAX_BLOCKS, MAX_DENSE, PRESETS

BUILTIN_SOURCES = ("builtin:shapes", "builtin:digits")
KERAS_SOURCES = ("keras:mnist", "keras:fashion_mnist", "keras:cifar10", "keras:cifar100")
USER_SOURCES = ("zip", "folder", "images")
SOURCES = BUILTIN_SOURCES + KERAS_SOURCES + USER_SOURCES
COLOR_MODES = ("auto", "rgb", "grayscale")
FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")

MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 512
# Valid ranges of numeric fields. validate() enforces them and the pages draw their widgets with them, so a
# config that loads always fits its widgets (a widget given a value outside its range raises).
BOUNDS: dict[str, tuple[float, float]] = {
    "data.shapes_count": (20, 20_000),
    "data.val_split": (0.0, 0.5),
    "data.test_split": (0.0, 0.5),
    "data.seed": (0, 2**31 - 1),
    "augment.rotation": (0.0, 180.0),
    "augment.zoom": (0.0, 0.5),
    "augment.translation": (0.0, 0.5),
    "augment.contrast": (0.0, 1.0),
    "model.filters": (0, 1024),
    "model.dense_units": (0, 4096),
    "model.block_dropout": (0.0, 0.9),
    "model.flatten_dropout": (0.0, 0.9),
    "model.dense_dropout": (0.0, 0.9),
    "training.epochs": (1, 500),
    "training.patience": (0, 100),
    "training.step_epochs": (1, 100),
    "training.plateau_patience": (0, 50),
    "training.momentum": (0.0, 0.99),
    "training.step_factor": (0.01, 0.99),
    "training.plateau_factor": (0.01, 0.99),
    "training.label_smoothing": (0.0, 0.5),
}


@dataclass
class DataConfig:
    """Where the images come from and how they are shaped and split."""

    source: str = "builtin:shapes"
    # File or folder for the "zip" and "folder" sources (the uploaded file's name in the app).
    path: str = ""
    # Square side in pixels; 0 means the source's own default (see core.data.default_image_size).
    image_size: int = 0
    color_mode: str = "auto"
    shapes_count: int = 1800
    val_split: float = 0.15
    test_split: float = 0.15
    # Keras sets ship a train/test split; keep their test images as the test split.
    use_official_test: bool = True
    seed: int = 42

    def validate(self) -> None:
        _choice("data.source", self.source, SOURCES)
        _choice("data.color_mode", self.color_mode, COLOR_MODES)
        if self.image_size and not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise StudioError(
                f"data.image_size is {self.image_size}: pick a size from {MIN_IMAGE_SIZE} to "
                f"{MAX_IMAGE_SIZE} pixels, or 0 for the source's default."
            )
        _check_bounds(self, "data")
        if self.val_split + self.test_split >= 0.9:
            raise StudioError(
                f"data.val_split {self.val_split} + data.test_split {self.test_split} leave under 10% "
                "of the images for training: lower one of them."
            )
        if self.source in ("zip", "folder") and not self.path:
            raise StudioError(f"data.path is empty: the '{self.source}' source needs a {self.source} path.")


@dataclass
class AugmentConfig:
    """Random augmentation applied to training batches only (never at inference)."""

    flip: str = "none"
    rotation: float = 0.0  # degrees, both directions
    zoom: float = 0.0  # fraction, in and out
    translation: float = 0.0  # fraction of the image side
    contrast: float = 0.0  # factor, 0 = off

    def validate(self) -> None:
        _choice("augment.flip", self.flip, FLIP_MODES)
        _check_bounds(self, "augment")

    @property
    def active(self) -> bool:
        return self.flip != "none" or any((self.rotation, self.zoom, self.translation, self.contrast))


ARCHITECTURES = ("cnn", "resnet", "mobilenetv2")
PADDINGS = ("valid", "same")
POOLINGS = ("max", "average", "none")
HEADS = ("flatten", "global_average")
ACTIVATIONS = ("relu", "elu", "gelu", "swish", "tanh", "leaky_relu")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal")
OUTPUTS = ("softmax", "logits")
NORMALIZATIONS = ("unit", "symmetric", "standardize")
MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "cosine", "plateau")
MONITORS = ("val_loss", "val_accuracy")


@dataclass
class ModelConfig:
    """The network: a preset's values, then whatever the sliders changed.

    ``filters`` always holds MAX_BLOCKS entries and ``dense_units`` MAX_DENSE; only the first
    ``conv_blocks`` and ``dense_layers`` are used, so a slider moving back and forth loses nothing.
    """

    preset: str = "tutorial-cifar"
    architecture: str = "cnn"
    conv_blocks: int = 3
    filters: list[int] = field(default_factory=lambda: [32, 64, 128, 128, 256, 256])
    convs_per_block: int = 1
    kernel_size: int = 3
    padding: str = "valid"
    pooling: str = "max"
    pool_last: bool = True
    batch_norm: bool = False
    block_dropout: float = 0.0
    head: str = "flatten"
    flatten_dropout: float = 0.0
    dense_layers: int = 1
    dense_units: list[int] = field(default_factory=lambda: [512, 128, 64])
    dense_dropout: float = 0.5
    activation: str = "relu"
    initializer: str = "glorot_uniform"
    l1: float = 0.0
    l2: float = 0.0
    output: str = "softmax"
    normalization: str = "unit"
    mobilenet_alpha: float = 1.0
    pretrained: bool = True

    def validate(self) -> None:
        if self.preset not in PRESETS and self.preset != "custom":
            raise StudioError(f"model.preset is '{self.preset}': choose one of {', '.join(PRESETS)} or custom.")
        _choice("model.architecture", self.architecture, ARCHITECTURES)
        _choice("model.padding", self.padding, PADDINGS)
        _choice("model.pooling", self.pooling, POOLINGS)
        _choice("model.head", self.head, HEADS)
        _choice("model.activation", self.activation, ACTIVATIONS)
        _choice("model.initializer", self.initializer, INITIALIZERS)
        _choice("model.output", self.output, OUTPUTS)
        _choice("model.normalization", self.normalization, NORMALIZATIONS)
        _range("model.conv_blocks", self.conv_blocks, 1, MAX_BLOCKS)
        _range("model.convs_per_block", self.convs_per_block, 1, 3)
        _range("model.kernel_size", self.kernel_size, 1, 11)
        _range("model.dense_layers", self.dense_layers, 0, MAX_DENSE)
        if len(self.filters) != MAX_BLOCKS or len(self.dense_units) != MAX_DENSE:
            raise StudioError(
                f"model.filters needs {MAX_BLOCKS} numbers and model.dense_units {MAX_DENSE} (unused ones are kept "
                f"for the sliders); got {len(self.filters)} and {len(self.dense_units)}."
            )
        for i, n in enumerate(self.filters[: self.conv_blocks]):
            if n < 1:
                raise StudioError(f"Block {i + 1} has {n} filters (model.filters.{i}): give it at least 1 filter.")
        for i, n in enumerate(self.dense_units[: self.dense_layers]):
            if n < 1:
                raise StudioError(f"Dense layer {i + 1} has {n} units (model.dense_units.{i}): give it at least 1.")
        _check_bounds(self, "model")
        for name in ("l1", "l2"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise StudioError(f"model.{name} is {getattr(self, name)}: pick a regularization factor from 0 to 1.")
        if self.mobilenet_alpha not in MOBILENET_ALPHAS:
            raise StudioError(f"model.mobilenet_alpha is {self.mobilenet_alpha}: choose one of {MOBILENET_ALPHAS}.")


@dataclass
class TrainingConfig:
    """How the model is compiled and fitted."""

    optimizer: str = "adam"
    learning_rate: float = 0.001
    momentum: float = 0.9  # SGD and RMSprop
    weight_decay: float = 0.0001  # AdamW
    schedule: str = "constant"
    step_epochs: int = 5  # step decay: every this many epochs…
    step_factor: float = 0.5  # …multiply the learning rate by this
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    batch_size: int = 32
    epochs: int = 10
    early_stopping: bool = False
    monitor: str = "val_loss"
    patience: int = 3
    restore_best: bool = True
    label_smoothing: float = 0.0

    def validate(self) -> None:
        _choice("training.optimizer", self.optimizer, OPTIMIZERS)
        _choice("training.schedule", self.schedule, SCHEDULES)
        _choice("training.monitor", self.monitor, MONITORS)
        if not 0.0 < self.learning_rate <= 10.0:
            raise StudioError(f"training.learning_rate is {self.learning_rate}: pick a value above 0, e.g. 0.001.")
        _range("training.batch_size", self.batch_size, 1, 8192)
        _check_bounds(self, "training")
        if not 0.0 <= self.weight_decay <= 1.0:
            raise StudioError(f"training.weight_decay is {self.weight_decay}: pick a value from 0 to 1.")


@dataclass
class StudioConfig:
    """The whole project: every page reads and writes this one object."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def validate(self) -> StudioConfig:
        for section in dataclasses.fields(self):
            getattr(self, section.name).validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> StudioConfig:
        return _build(cls, data, "config").validate()

    @classmethod
    def from_json(cls, text: str | bytes) -> StudioConfig:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StudioError(
                f"The config file is not valid JSON ({err}). Download a config from the app to see the format."
            ) from None
        return cls.from_dict(data)


def get_field(config: StudioConfig, path: str) -> Any:
    """Value at a dotted path such as ``"data.image_size"`` or ``"model.filters.2"``."""
    obj: Any = config
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else getattr(obj, part)
    return obj


def set_field(config: StudioConfig, path: str, value: Any) -> None:
    """Set the value at a dotted path; the type is checked as when loading JSON."""
    *parents, last = path.split(".")
    container = get_field(config, ".".join(parents))
    if isinstance(container, list):
        owner = get_field(config, ".".join(parents[:-1]))
        item_type = typing.get_args(typing.get_type_hints(type(owner))[parents[-1]])[0]
        container[int(last)] = _coerce(item_type, value, path)
    else:
        setattr(container, last, _coerce(typing.get_type_hints(type(container))[last], value, path))


def field_paths(config: StudioConfig) -> list[str]:
    """Every leaf field's dotted path (list items included), e.g. for seeding widgets."""
    paths = []
    for section in dataclasses.fields(config):
        for leaf in dataclasses.fields(getattr(config, section.name)):
            value = getattr(getattr(config, section.name), leaf.name)
            if isinstance(value, list):
                paths += [f"{section.name}.{leaf.name}.{i}" for i in range(len(value))]
            else:
                paths.append(f"{section.name}.{leaf.name}")
    return paths


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise StudioError(f"{name} is '{value}': choose one of {', '.join(allowed)}.")


def _check_bounds(section: Any, prefix: str) -> None:
    """Every BOUNDS entry of one section (each item of a list field)."""
    for path, (low, high) in BOUNDS.items():
        if not path.startswith(prefix + "."):
            continue
        value = getattr(section, path.split(".", 1)[1])
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if not low <= item <= high:
                where = f"{path}.{i}" if isinstance(value, list) else path
                raise StudioError(f"{where} is {item}: pick a value from {low:g} to {high:g}.")


def _range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise StudioError(f"{name} is {value}: pick a whole number from {low} to {high}.")


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise StudioError(f"{path} must be a JSON object, not {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise StudioError(f"Unknown config field '{path}.{unknown[0]}'. Fields of {path}: {', '.join(sorted(known))}.")
    kwargs = {}
    for name in known & set(data):
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, data[name], f"{path}.{name}")
        else:
            kwargs[name] = _coerce(hint, data[name], f"{path}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, path: str) -> Any:
    """Check a JSON value against a field's type; ints are accepted where floats are expected."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            try:
                return _coerce(option, value, path)
            except StudioError:
                continue
        raise StudioError(f"{path} has the value {value!r}, which is not a {hint}.")
    if origin is list:
        if not isinstance(value, list):
            raise StudioError(f"{path} must be a list, not {value!r}.")
        (item,) = typing.get_args(hint)
        return [_coerce(item, v, f"{path}.{i}") for i, v in enumerate(value)]
    if hint is type(None):
        if value is None:
            return None
        raise StudioError(f"{path} must be null, not {value!r}.")
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise StudioError(f"{path} must be a {hint.__name__}, not {value!r}.")


def apply_preset(preset_id: str, base: ModelConfig | None = None) -> ModelConfig:
    """A ModelConfig with the preset's values; settings a preset does not fix come from ``base`` or defaults."""
    if preset_id not in PRESETS:
        raise StudioError(f"Unknown preset '{preset_id}': choose one of {', '.join(PRESETS)}.")
    fresh = dataclasses.replace(
        ModelConfig(),
        **{k: v for k, v in vars(base or ModelConfig()).items() if k in ("activation", "l1", "l2", "normalization")},
    )
    values = {k: (list(v) if isinstance(v, list) else v) for k, v in PRESETS[preset_id].values.items()}
    return dataclasses.replace(fresh, preset=preset_id, **values)
