"""One dataclass tree for a whole project (data, augmentation, model, training) that round-trips to JSON.

Each field is declared once with ``setting(default, label, help, range or choices…)``; ``FIELDS`` collects
them, and validation, the page widgets, the CLI flags and the README's settings table all come from it.
Field paths such as ``"data.image_size"`` are also the Streamlit widget keys and the CLI flags
(``--data.image_size 64``).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import StudioError
from core.fields import FieldInfo, check, collect, markdown_table, setting
from core.i18n import N_, _, number, percent
from core.presets import COMPACT, MAX_BLOCKS, MAX_DENSE, PRESETS

BUILTIN_SOURCES = ("builtin:shapes", "builtin:digits")
KERAS_SOURCES = ("keras:mnist", "keras:fashion_mnist", "keras:cifar10", "keras:cifar100")
USER_SOURCES = ("zip", "folder", "images")
SOURCES = BUILTIN_SOURCES + KERAS_SOURCES + USER_SOURCES
SOURCE_NAMES = {
    "builtin:shapes": N_("Shapes — built-in, generated (RGB)"),
    "builtin:digits": N_("Digits — built-in, scikit-learn (8×8 handwriting)"),
    "keras:mnist": N_("MNIST — Keras dataset"),
    "keras:fashion_mnist": N_("Fashion-MNIST — Keras dataset"),
    "keras:cifar10": N_("CIFAR-10 — Keras dataset"),
    "keras:cifar100": N_("CIFAR-100 — Keras dataset"),
    "zip": N_("ZIP of class folders — upload"),
    "folder": N_("Folder of class folders — on the server"),
    "images": N_("Your own images per class — upload or camera"),
}


def source_title(source: str) -> str:
    """A dataset source as people name it ("Digits", "CIFAR-10"), not its id ("builtin:digits")."""
    return _(SOURCE_NAMES[source]).split(" — ")[0] if source in SOURCE_NAMES else source


COLOR_MODES = ("auto", "rgb", "grayscale")
COLOR_MODE_NAMES = {
    "auto": N_("auto (as the source)"),
    "rgb": N_("RGB (3 channels)"),
    "grayscale": N_("grayscale (1 channel)"),
}
FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")
FLIP_NAMES = {
    "none": N_("no flip"),
    "horizontal": N_("horizontal (left–right)"),
    "vertical": N_("vertical (upside down)"),
    "horizontal_and_vertical": N_("horizontal and vertical"),
}
MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 512
MIN_TRAIN_SHARE = 0.1  # validation + test may not leave less than this for training
# A config file is a few KB, nested three deep (sections, fields, lists): refuse what is far beyond.
MAX_CONFIG_BYTES = 1_000_000
MAX_CONFIG_DEPTH = 8


@dataclass
class DataConfig:
    """Where the images come from and how they are shaped and split."""

    source: str = setting(
        "builtin:shapes", N_("Source"), N_("Where the images come from."), choices=SOURCES, names=SOURCE_NAMES
    )
    # File or folder for the "zip" and "folder" sources (the uploaded file's name in the app).
    path: str = setting(
        "", N_("Folder or ZIP path"), N_("The folder of class folders, or the ZIP, for those two sources.")
    )
    image_size: int = setting(
        0,
        N_("Image size (pixels, square)"),
        N_("Images are resized to this square side."),
        low=MIN_IMAGE_SIZE,
        high=MAX_IMAGE_SIZE,
        unit=N_("pixels"),
        step=1,
        zero=N_("the source's default"),
        aliases=("--image-size",),
    )
    color_mode: str = setting(
        "auto",
        N_("Colour"),
        N_("Auto keeps grayscale sources at one channel and colour sources at three."),
        choices=COLOR_MODES,
        names=COLOR_MODE_NAMES,
        widget="radio",
    )
    shapes_count: int = setting(
        1800, N_("Number of generated images"), N_("Size of the built-in Shapes set."), low=20, high=20_000, step=20
    )
    val_split: float = setting(
        0.15,
        N_("Validation fraction"),
        N_("Share of images held out to watch training."),
        low=0.0,
        high=0.5,
        step=0.05,
        aliases=("--val-split",),
    )
    test_split: float = setting(
        0.15,
        N_("Test fraction"),
        N_("Share of images held out for the final score."),
        low=0.0,
        high=0.5,
        step=0.05,
        aliases=("--test-split",),
    )
    use_official_test: bool = setting(
        True, N_("Use the official test set"), N_("Keras sets ship a test split: keep it as the test split.")
    )
    seed: int = setting(
        42,
        N_("Seed (split, shapes and augmentation)"),
        N_("The same seed gives the same split, shapes, augmentation and initial weights."),
        low=0,
        high=2**31 - 1,
        step=1,
        widget="number",
        aliases=("--seed",),
    )

    def validate(self) -> None:
        _check_section(self, "data")
        if self.val_split + self.test_split >= 1 - MIN_TRAIN_SHARE:
            raise StudioError(
                _(
                    "data.val_split {val} + data.test_split {test} leave under {share} of the images for training: "
                    "lower one of them."
                ).format(val=self.val_split, test=self.test_split, share=percent(MIN_TRAIN_SHARE, 0))
            )
        if self.source in ("zip", "folder") and not self.path:
            raise StudioError(
                _("data.path is empty: the '{source}' source needs a {source} path.").format(source=self.source)
            )


@dataclass
class AugmentConfig:
    """Random augmentation applied to training batches only (never at inference)."""

    flip: str = setting(
        "none",
        N_("Flip"),
        N_("Random mirror images."),
        choices=FLIP_MODES,
        names=FLIP_NAMES,
        widget="select",
        group="augment",
    )
    rotation: float = setting(
        0.0,
        N_("Rotation (±degrees)"),
        N_("Random rotation, both directions."),
        low=0.0,
        high=180.0,
        unit=N_("degrees"),
        step=5.0,
        group="augment",
    )
    zoom: float = setting(
        0.0, N_("Zoom (±fraction)"), N_("Random zoom in and out."), low=0.0, high=0.5, step=0.05, group="augment"
    )
    translation: float = setting(
        0.0,
        N_("Translation (±fraction)"),
        N_("Random shift, as a fraction of the image side."),
        low=0.0,
        high=0.5,
        step=0.05,
        group="augment",
    )
    contrast: float = setting(
        0.0,
        N_("Contrast (±factor)"),
        N_("Random contrast change; 0 is off."),
        low=0.0,
        high=1.0,
        step=0.05,
        group="augment",
    )

    def validate(self) -> None:
        _check_section(self, "augment")

    @property
    def active(self) -> bool:
        return self.flip != "none" or any((self.rotation, self.zoom, self.translation, self.contrast))


ARCHITECTURES = ("compact", "cnn", "resnet", "mobilenetv2")
ARCHITECTURE_NAMES = {
    "compact": N_("compact — the studio's CNN"),
    "cnn": N_("cnn — plain CNN"),
    "resnet": N_("resnet — residual network"),
    "mobilenetv2": N_("mobilenetv2 — MobileNetV2 base"),
}
PADDINGS = ("valid", "same")
POOLINGS = ("max", "average", "none")
HEADS = ("flatten", "global_average")
ACTIVATIONS = ("relu", "elu", "gelu", "swish", "tanh", "leaky_relu")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal")
OUTPUTS = ("softmax", "logits")
PADDING_NAMES = {"valid": N_("valid (no padding)"), "same": N_("same (zero padding)")}
POOLING_NAMES = {"max": N_("max pooling"), "average": N_("average pooling"), "none": N_("no pooling")}
HEAD_NAMES = {"flatten": N_("flatten to a vector"), "global_average": N_("global average pooling")}
OUTPUT_NAMES = {"softmax": N_("softmax (probabilities)"), "logits": N_("logits (raw scores)")}
NORMALIZATIONS = ("unit", "symmetric", "standardize")
NORMALIZATION_NAMES = {
    "unit": N_("to [0, 1]"),
    "symmetric": N_("to [-1, 1]"),
    "standardize": N_("standardize (training-set mean/std)"),
}
MOBILENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
PRESET_CHOICES = (*PRESETS, "custom")
DEFAULT_PRESET = COMPACT  # what a new project and the command line start from


class _PresetNames(Mapping):
    """A preset's name as the Model page lists it: its id and its title, the title in the reader's language
    (looked up when shown, as the field table's names are)."""

    def __getitem__(self, key: str) -> str:
        if key == "custom":
            return _("custom — your own CNN")
        return f"{key} — {_(PRESETS[key].title)}"  # the id, then the title (presets.py marks it)

    def __iter__(self) -> Iterator[str]:
        return iter(PRESET_CHOICES)

    def __len__(self) -> int:
        return len(PRESET_CHOICES)


PRESET_NAMES = _PresetNames()
REGULARIZATION_STEPS = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "cosine", "plateau")
MONITOR_NAMES = {"val_loss": N_("val_loss (validation loss)"), "val_accuracy": N_("val_accuracy (validation accuracy)")}
SCHEDULE_NAMES = {
    "constant": N_("constant"),
    "step": N_("step decay"),
    "cosine": N_("cosine decay"),
    "plateau": N_("reduce on plateau"),
}
MONITORS = ("val_loss", "val_accuracy")
LEARNING_RATES = (1e-5, 3e-5, 1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 1e-1)
BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512)
KERNEL_SIZES = (1, 3, 5, 7)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.05)
DROPOUT = dict(low=0.0, high=0.9, step=0.05)


@dataclass
class ModelConfig:
    """The network: a preset's values, then whatever the sliders changed.

    ``filters`` always holds MAX_BLOCKS entries and ``dense_units`` MAX_DENSE; only the first
    ``conv_blocks`` and ``dense_layers`` are used, so a slider moving back and forth loses nothing.
    """

    preset: str = setting(
        "tutorial-cifar",
        N_("Start from"),
        N_("A tutorial's recipe (on the CLI its values are applied, then the other flags)."),
        choices=PRESET_CHOICES,
        names=PRESET_NAMES,
        widget="select",
        aliases=("--preset",),
    )
    architecture: str = setting(
        "cnn",
        N_("Architecture"),
        N_(
            "The studio's compact CNN (its depth follows the image size), plain CNN, residual network or a MobileNetV2 base."  # noqa: E501
        ),
        choices=ARCHITECTURES,
        names=ARCHITECTURE_NAMES,
        widget="select",
    )
    conv_blocks: int = setting(
        3,
        N_("Blocks (stages for ResNet, at most this many for compact)"),
        N_("Conv blocks, or residual stages for resnet; compact halves the map until it is 8 pixels or less."),
        low=1,
        high=MAX_BLOCKS,
        group="blocks",
        when={"model.architecture": ("compact", "cnn", "resnet")},
    )
    filters: list[int] = setting(
        [32, 64, 128, 128, 256, 256],
        N_("Filters per block"),
        N_("Filters of each block; only the first conv_blocks are used."),
        low=0,
        high=1024,
        step=8,
        item=N_("Filters, block {i}"),
        group="blocks",
        count="model.conv_blocks",
        when={"model.architecture": ("compact", "cnn", "resnet")},
    )
    convs_per_block: int = setting(
        1,
        N_("Convolutions per block (blocks per stage for ResNet)"),
        N_("Conv layers per block, or residual blocks per stage for resnet."),
        low=1,
        high=3,
        group="blocks",
        when={"model.architecture": ("compact", "cnn", "resnet")},
    )
    kernel_size: int = setting(
        3,
        N_("Kernel size"),
        N_("Side of each square convolution kernel."),
        low=1,
        high=11,
        unit=N_("pixels"),
        options=KERNEL_SIZES,
        group="blocks",
        when={"model.architecture": ("compact", "cnn", "resnet")},
    )
    padding: str = setting(
        "valid",
        N_("Padding"),
        N_("Valid shrinks each feature map, same keeps its size."),
        choices=PADDINGS,
        names=PADDING_NAMES,
        group="blocks",
        when={"model.architecture": ("cnn",)},
    )
    pooling: str = setting(
        "max",
        N_("Pooling"),
        N_("2×2 pooling after each block."),
        choices=POOLINGS,
        names=POOLING_NAMES,
        group="blocks",
        when={"model.architecture": ("cnn",)},
    )
    pool_last: bool = setting(
        True,
        N_("Pool after the last block too"),
        N_("Pool after the last block as well."),
        group="blocks",
        when={"model.architecture": ("cnn",)},
    )
    batch_norm: bool = setting(
        False,
        N_("BatchNormalization in each block"),
        N_("Normalize each block's output."),
        group="blocks",
        when={"model.architecture": ("cnn",)},
    )
    block_dropout: float = setting(
        0.0,
        N_("Dropout after each block"),
        N_("Dropout rate after each block."),
        **DROPOUT,
        group="blocks",
        when={"model.architecture": ("compact", "cnn", "resnet")},
    )
    head: str = setting(
        "flatten",
        N_("Feature maps to vector"),
        N_("How the last feature maps become a vector."),
        choices=HEADS,
        names=HEAD_NAMES,
        group="head",
    )
    flatten_dropout: float = setting(
        0.0, N_("Dropout before the dense layers"), N_("Dropout rate on that vector."), **DROPOUT, group="head"
    )
    dense_layers: int = setting(
        1, N_("Dense layers"), N_("Hidden dense layers before the output."), low=0, high=MAX_DENSE, group="head"
    )
    dense_units: list[int] = setting(
        [512, 128, 64],
        N_("Units per dense layer"),
        N_("Units of each dense layer; only the first dense_layers are used."),
        low=0,
        high=4096,
        step=16,
        item=N_("Units, dense {i}"),
        group="head",
        count="model.dense_layers",
    )
    dense_dropout: float = setting(
        0.5, N_("Dropout after each dense layer"), N_("Dropout rate after each dense layer."), **DROPOUT, group="head"
    )
    output: str = setting(
        "softmax",
        N_("Output"),
        N_("The loss follows: sparse categorical cross-entropy on probabilities or on logits."),
        choices=OUTPUTS,
        names=OUTPUT_NAMES,
        group="head",
    )
    activation: str = setting(
        "relu", N_("Activation"), N_("Activation of every hidden layer."), choices=ACTIVATIONS, group="layers"
    )
    initializer: str = setting(
        "glorot_uniform",
        N_("Kernel initializer"),
        N_("Initial weights of conv and dense layers."),
        choices=INITIALIZERS,
        group="layers",
    )
    l1: float = setting(
        0.0,
        N_("L1 regularization"),
        N_("L1 penalty on the kernels."),
        low=0.0,
        high=1.0,
        options=REGULARIZATION_STEPS,
        group="layers",
    )
    l2: float = setting(
        0.0,
        N_("L2 regularization"),
        N_("L2 penalty on the kernels."),
        low=0.0,
        high=1.0,
        options=REGULARIZATION_STEPS,
        group="layers",
    )
    normalization: str = setting(
        "unit",
        N_("Normalization (first layer of the model)"),
        N_("The model takes raw 0–255 pixels; this layer scales them, in training and after export."),
        choices=NORMALIZATIONS,
        names=NORMALIZATION_NAMES,
        group="layers",
    )
    mobilenet_alpha: float = setting(
        1.0,
        N_("Width multiplier (alpha)"),
        N_("MobileNetV2's width multiplier."),
        choices=MOBILENET_ALPHAS,
        widget="select_slider",
        group="base",
        when={"model.architecture": ("mobilenetv2",)},
    )
    pretrained: bool = setting(
        True,
        N_("Use ImageNet weights (from the Keras cache)"),
        N_("Start MobileNetV2 from ImageNet weights."),
        group="base",
        when={"model.architecture": ("mobilenetv2",)},
    )

    def validate(self) -> None:
        _check_section(self, "model")
        for i, n in enumerate(self.filters[: self.conv_blocks]):
            if n < 1:
                raise StudioError(
                    _("Block {block} has {count} filters (model.filters.{index}): give it at least 1 filter.").format(
                        block=i + 1, count=n, index=i
                    )
                )
        for i, n in enumerate(self.dense_units[: self.dense_layers]):
            if n < 1:
                raise StudioError(
                    _("Dense layer {layer} has {count} units (model.dense_units.{index}): give it at least 1.").format(
                        layer=i + 1, count=n, index=i
                    )
                )


@dataclass
class TrainingConfig:
    """How the model is compiled and fitted."""

    optimizer: str = setting(
        "adam", N_("Optimizer"), N_("The weight update rule."), choices=OPTIMIZERS, group="training"
    )
    learning_rate: float = setting(
        0.001,
        N_("Learning rate"),
        N_("Step size of the optimizer."),
        low=0.0,
        high=10.0,
        low_open=True,
        options=LEARNING_RATES,
        aliases=("--learning-rate",),
        group="training",
    )
    momentum: float = setting(
        0.9,
        N_("Momentum"),
        N_("SGD and RMSprop only."),
        low=0.0,
        high=0.99,
        step=0.01,
        group="training",
        when={"training.optimizer": ("sgd", "rmsprop")},
    )
    weight_decay: float = setting(
        0.0001,
        N_("Weight decay"),
        N_("AdamW only."),
        low=0.0,
        high=1.0,
        options=WEIGHT_DECAYS,
        group="training",
        when={"training.optimizer": ("adamw",)},
    )
    schedule: str = setting(
        "constant",
        N_("Learning-rate schedule"),
        N_("How the learning rate changes."),
        choices=SCHEDULES,
        names=SCHEDULE_NAMES,
        widget="select",
        group="training",
    )
    step_epochs: int = setting(
        5,
        N_("Decay every N epochs"),
        N_("Step decay: every this many epochs…."),
        low=1,
        high=100,
        unit=N_("epochs"),
        group="training",
        when={"training.schedule": ("step",)},
    )
    step_factor: float = setting(
        0.5,
        N_("Decay factor"),
        N_("…multiply the learning rate by this."),
        low=0.01,
        high=0.99,
        step=0.05,
        group="training",
        when={"training.schedule": ("step",)},
    )
    plateau_patience: int = setting(
        2,
        N_("Plateau patience (epochs)"),
        N_("Reduce on plateau after this many epochs without gain."),
        low=0,
        high=50,
        unit=N_("epochs"),
        group="training",
        when={"training.schedule": ("plateau",)},
    )
    plateau_factor: float = setting(
        0.5,
        N_("Plateau factor"),
        N_("Reduce on plateau: multiply the learning rate by this."),
        low=0.01,
        high=0.99,
        step=0.05,
        group="training",
        when={"training.schedule": ("plateau",)},
    )
    batch_size: int = setting(
        32,
        N_("Batch size"),
        N_("Images per training step."),
        low=1,
        high=8192,
        options=BATCH_SIZES,
        aliases=("--batch-size",),
        group="training",
    )
    epochs: int = setting(
        10,
        N_("Epochs"),
        N_("Passes over the training images."),
        low=1,
        high=500,
        aliases=("--epochs",),
        group="training",
    )
    label_smoothing: float = setting(
        0.0,
        N_("Label smoothing"),
        N_("Soften the one-hot targets by this much."),
        low=0.0,
        high=0.5,
        step=0.05,
        group="training",
    )
    early_stopping: bool = setting(
        False, N_("Early stopping"), N_("Stop when the monitored value stops improving."), group="training"
    )
    monitor: str = setting(
        "val_loss",
        N_("Monitor"),
        N_("The value early stopping and the best checkpoint watch."),
        choices=MONITORS,
        names=MONITOR_NAMES,
        widget="select",
        group="training",
        when={"training.early_stopping": (True,)},
    )
    patience: int = setting(
        3,
        N_("Patience (epochs)"),
        N_("Early stopping waits this many epochs without gain."),
        low=0,
        high=100,
        unit=N_("epochs"),
        group="training",
        when={"training.early_stopping": (True,)},
    )
    restore_best: bool = setting(
        True,
        N_("Restore the best weights"),
        N_("Early stopping keeps the best epoch's weights."),
        group="training",
        when={"training.early_stopping": (True,)},
    )

    tensorboard: bool = setting(
        False,
        N_("TensorBoard logs"),
        N_(
            "Also write TensorBoard logs (scalars per epoch, the graph) into the run folder's tensorboard/ (tensorboard --logdir <workspace>)."  # noqa: E501
        ),
        group="training",
    )

    def validate(self) -> None:
        _check_section(self, "training")


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
        depth = _depth(data, MAX_CONFIG_DEPTH)
        if depth > MAX_CONFIG_DEPTH:
            raise StudioError(
                _(
                    "The config is nested more than {limit} levels deep; a CNN Studio config has 3 (sections, fields, "
                    "lists). Download a config from the app to see the format."
                ).format(limit=MAX_CONFIG_DEPTH)
            )
        try:
            return _build(cls, data, "config").validate()
        except RecursionError:
            raise StudioError(
                _("The config is nested too deeply to read. Download a config from the app to see the format.")
            ) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> StudioConfig:
        if len(text) > MAX_CONFIG_BYTES:
            raise StudioError(
                _(
                    "The config file has {size} bytes, over the limit of {limit}; a config downloaded from the app "
                    "has a few thousand. Download a config from the app to see the format."
                ).format(size=number(len(text)), limit=number(MAX_CONFIG_BYTES))
            )
        try:
            data = json.loads(text)
        except RecursionError:
            raise StudioError(
                _(
                    "The config file is nested too deeply to read (JSON arrays or objects inside each other thousands "
                    "of times). Download a config from the app to see the format."
                )
            ) from None
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, and numbers too long to convert
            plain = isinstance(err, (json.JSONDecodeError, UnicodeDecodeError))
            reason = " ".join(str(err).split())[:200] if plain else _("a number with too many digits")
            raise StudioError(
                _(
                    "The config file is not valid JSON ({reason}). Download a config from the app to see the format."
                ).format(reason=reason)
            ) from None
        return cls.from_dict(data)


def _depth(value: Any, limit: int) -> int:
    """How deeply JSON objects and arrays nest in ``value`` (a scalar is 0), counted without recursion and
    no further than ``limit + 1``."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= limit:
                level += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


# Every field of the config, by dotted path: the one table validation, widgets, CLI flags and README use.
FIELDS: dict[str, FieldInfo] = collect(StudioConfig)


def field_info(path: str) -> FieldInfo:
    """The field of a path; list items (``model.filters.2``) belong to their list's field."""
    head, _dot, last = path.rpartition(".")
    return FIELDS[head] if last.isdigit() else FIELDS[path]


def settings_table(lang: str = "en") -> str:
    """The README's settings table (README.zh-CN.md's in zh-CN), generated from FIELDS."""
    return markdown_table(FIELDS, lang)


def _check_section(section: Any, name: str) -> None:
    for info in FIELDS.values():
        if info.section == name:
            check(info, getattr(section, info.path.split(".", 1)[1]))


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


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise StudioError(_("{path} must be a JSON object, not {kind}.").format(path=path, kind=type(data).__name__))
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise StudioError(
            _("Unknown config field '{path}.{name}'. Fields of {path}: {fields}.").format(
                path=path, name=unknown[0], fields=", ".join(sorted(known))
            )
        )
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
        raise StudioError(
            _("{path} has the value {value}, which is not a {kind}.").format(path=path, value=repr(value), kind=hint)
        )
    if origin is list:
        if not isinstance(value, list):
            raise StudioError(_("{path} must be a list, not {value}.").format(path=path, value=repr(value)))
        (item,) = typing.get_args(hint)
        return [_coerce(item, v, f"{path}.{i}") for i, v in enumerate(value)]
    if hint is type(None):
        if value is None:
            return None
        raise StudioError(_("{path} must be null, not {value}.").format(path=path, value=repr(value)))
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
    raise StudioError(
        _("{path} must be a {kind}, not {value}.").format(path=path, kind=hint.__name__, value=repr(value))
    )


def apply_preset(preset_id: str, base: ModelConfig | None = None) -> ModelConfig:
    """A ModelConfig with the preset's values; settings a preset does not fix come from ``base`` or defaults."""
    if preset_id not in PRESETS:
        raise StudioError(
            _("Unknown preset '{preset}': choose one of {presets}.").format(
                preset=preset_id, presets=", ".join(PRESETS)
            )
        )
    fresh = dataclasses.replace(
        ModelConfig(),
        **{k: v for k, v in vars(base or ModelConfig()).items() if k in ("activation", "l1", "l2", "normalization")},
    )
    values = {k: (list(v) if isinstance(v, list) else v) for k, v in PRESETS[preset_id].values.items()}
    return dataclasses.replace(fresh, preset=preset_id, **values)


def apply_recipe(config: StudioConfig, preset_id: str) -> StudioConfig:
    """``config`` with a preset's model, and the training settings and augmentation a recipe brings (the
    tutorials' presets bring none, so those stay as they were). Changes ``config`` in place and returns it."""
    config.model = apply_preset(preset_id, config.model)
    preset = PRESETS[preset_id]
    for section, values in (("training", preset.training), ("augment", preset.augment)):
        for name, value in values.items():
            setattr(getattr(config, section), name, value)
    return config


def default_config() -> StudioConfig:
    """A new project: the default dataset with the studio's compact recipe."""
    return apply_recipe(StudioConfig(), DEFAULT_PRESET)
