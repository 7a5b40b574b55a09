"""Building CNNs from a ModelConfig (a preset's values with the sliders on top), and compiling them.

Every model takes raw 0..255 pixels: normalization is its first layer. Augmentation is not part of the
model (it runs in the training input pipeline), so the inference graph that gets exported never has it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.config import MAX_IMAGE_SIZE, ModelConfig, TrainingConfig
from core.errors import StudioError
from core.i18n import _, ngettext

# --- Checks before building --------------------------------------------------------------------------


def check_config(config: ModelConfig, input_shape: tuple[int, int, int]) -> None:
    """Raise StudioError for configurations that cannot be built, naming the layer, the value and the fix."""
    config.validate()
    size = min(input_shape[:2])
    if config.architecture == "mobilenetv2":
        if size < 32:
            raise StudioError(
                _(
                    "Image size {size} is too small for MobileNetV2, which needs at least 32×32: pick an image size "
                    "of 32 or more on the Dataset page (96 or more works best)."
                ).format(size=size)
            )
        return
    if config.architecture in ("resnet", "compact"):
        return  # 'same' padding and strided convolutions shrink any size down to at least 1×1
    current = size
    k = config.kernel_size
    pools_so_far = 0
    for block in range(config.conv_blocks):
        for conv in range(config.convs_per_block):
            if k > current and config.padding == "valid":
                problem = ngettext(
                    "Block {block}, conv {conv}: the {kernel} kernel is larger than the {map} feature map left after "
                    "{pools} pooling layer at image size {size}.",
                    "Block {block}, conv {conv}: the {kernel} kernel is larger than the {map} feature map left after "
                    "{pools} pooling layers at image size {size}.",
                    pools_so_far,
                ).format(
                    block=block + 1,
                    conv=conv + 1,
                    kernel=f"{k}×{k}",
                    map=f"{current}×{current}",
                    pools=pools_so_far,
                    size=size,
                )
                fix = _size_fix(config, _("'same' padding"), _("a smaller kernel"), _("fewer blocks"))
                raise StudioError(f"{problem} {fix}")
            if config.padding == "valid":
                current -= k - 1
        pools = config.pooling != "none" and (block < config.conv_blocks - 1 or config.pool_last)
        if pools:
            if current < 2:
                n_pools = sum(1 for b in range(config.conv_blocks) if b < config.conv_blocks - 1 or config.pool_last)
                problem = _(
                    "Image size {size} is too small for {pools} pooling layers: block {block}'s pooling gets a {map} "
                    "feature map."
                ).format(size=size, pools=n_pools, block=block + 1, map=f"{current}×{current}")
                fix = _size_fix(
                    config,
                    _("fewer blocks"),
                    _("'same' padding"),
                    _("a smaller kernel"),
                    _("no pooling in the last block"),
                )
                raise StudioError(f"{problem} {fix}")
            current //= 2
            pools_so_far += 1


def _size_fix(config: ModelConfig, *changes: str) -> str:
    """The fix for a CNN too deep for its images: the model ``changes``, or the smallest image size that works
    when the image size field allows one."""
    smallest = _smallest_size(config)
    if smallest is None:
        return _(
            "No allowed image size works (the largest is {largest}): change the model instead, with {changes} "
            "or {last}."
        ).format(largest=MAX_IMAGE_SIZE, changes=_(", ").join(changes[:-1]), last=changes[-1])
    return _("Use {changes}, or an image size of at least {size}.").format(changes=_(", ").join(changes), size=smallest)


def _smallest_size(config: ModelConfig) -> int | None:
    """The smallest square image size the CNN configuration can take, or None when no allowed size does."""
    for size in range(1, MAX_IMAGE_SIZE + 1):
        try:
            _walk_sizes(config, size)
            return size
        except ValueError:
            continue
    return None


def _walk_sizes(config: ModelConfig, size: int) -> None:
    current = size
    for block in range(config.conv_blocks):
        for _conv in range(config.convs_per_block):
            if config.padding == "valid":
                if config.kernel_size > current:
                    raise ValueError
                current -= config.kernel_size - 1
        if config.pooling != "none" and (block < config.conv_blocks - 1 or config.pool_last):
            if current < 2:
                raise ValueError
            current //= 2


# --- Building ----------------------------------------------------------------------------------------


@dataclass
class BuiltModel:
    model: object  # keras.Model
    notes: list[str] = field(default_factory=list)


def build_model(
    config: ModelConfig,
    input_shape: tuple[int, int, int],
    num_classes: int,
    channel_mean: np.ndarray | None = None,
    channel_std: np.ndarray | None = None,
    seed: int | None = None,
) -> BuiltModel:
    """The Keras model for ``config`` (uncompiled). ``channel_mean``/``channel_std`` (0..255) feed standardization."""
    import keras

    if num_classes < 2:
        raise StudioError(
            ngettext(
                "The dataset has {count} class: a classifier needs at least two.",
                "The dataset has {count} classes: a classifier needs at least two.",
                num_classes,
            ).format(count=num_classes)
        )
    check_config(config, input_shape)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    notes: list[str] = []
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = _normalization(config, input_shape, channel_mean, channel_std, notes)(inputs)
    if config.architecture == "cnn":
        x = _cnn_body(config, x)
    elif config.architecture == "resnet":
        x = _resnet_body(config, x)
    elif config.architecture == "compact":
        x = _compact_body(config, x, input_shape)
    else:
        x = _mobilenet_body(config, x, input_shape, notes)
    x = _head(config, x, num_classes)
    name = config.preset if config.preset != "custom" else "custom-cnn"
    try:
        model = keras.Model(inputs, x, name=name.replace("-", "_"))
    except ValueError as err:  # a shape problem the checks above did not foresee
        raise StudioError(
            _("The model cannot be built: {reason}. Change the last slider you moved back.").format(reason=err)
        ) from None
    return BuiltModel(model, notes)


def _normalization(config, input_shape, mean, std, notes):
    import keras

    if config.normalization == "unit":
        return keras.layers.Rescaling(1.0 / 255, name="normalize_0_1")
    if config.normalization == "symmetric":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize_minus1_1")
    channels = input_shape[-1]
    if mean is None or std is None:
        mean, std = np.full(channels, 127.5), np.full(channels, 127.5)
        notes.append(_("Standardization uses 127.5 ± 127.5 until dataset statistics are given."))
    std = np.maximum(np.asarray(std, dtype=np.float64), 1e-3)
    scale = [float(v) for v in 1.0 / std]
    offset = [float(v) for v in -np.asarray(mean, dtype=np.float64) / std]
    # Rescaling with per-channel constants: no weights, and a plain multiply-add in every export format.
    return keras.layers.Rescaling(scale, offset=offset, name="standardize")


def _regularizer(config):
    import keras

    if config.l1 or config.l2:
        return keras.regularizers.L1L2(l1=config.l1, l2=config.l2)
    return None


def _activation(config, name):
    import keras

    if config.activation == "leaky_relu":
        # The slope positionally: Keras 3 calls it negative_slope, tf_keras (the multi-worker path) alpha.
        return keras.layers.LeakyReLU(0.1, name=name)
    return keras.layers.Activation(config.activation, name=name)


def _cnn_body(config, x):
    import keras

    for block in range(config.conv_blocks):
        for conv in range(config.convs_per_block):
            suffix = f"{block + 1}" if config.convs_per_block == 1 else f"{block + 1}_{conv + 1}"
            # Keras layers take the activation inline, as the tutorials write them; leaky ReLU is a layer.
            inline = None if config.activation == "leaky_relu" else config.activation
            x = keras.layers.Conv2D(
                config.filters[block],
                config.kernel_size,
                padding=config.padding,
                activation=inline,
                kernel_initializer=config.initializer,
                kernel_regularizer=_regularizer(config),
                name=f"conv{suffix}",
            )(x)
            if inline is None:
                x = _activation(config, f"act{suffix}")(x)
        if config.batch_norm:
            x = keras.layers.BatchNormalization(name=f"bn{block + 1}")(x)
        if config.pooling != "none" and (block < config.conv_blocks - 1 or config.pool_last):
            layer = keras.layers.MaxPooling2D if config.pooling == "max" else keras.layers.AveragePooling2D
            x = layer(2, name=f"pool{block + 1}")(x)
        if config.block_dropout:
            x = keras.layers.Dropout(config.block_dropout, name=f"block_dropout{block + 1}")(x)
    return x


def _resnet_body(config, x):
    import keras

    k, init, reg = config.kernel_size, config.initializer, _regularizer(config)
    x = keras.layers.Conv2D(
        config.filters[0],
        k,
        padding="same",
        use_bias=False,
        kernel_initializer=init,
        kernel_regularizer=reg,
        name="stem_conv",
    )(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = _activation(config, "stem_act")(x)
    for stage in range(config.conv_blocks):
        filters = config.filters[stage]
        for block in range(config.convs_per_block):
            stride = 2 if stage > 0 and block == 0 else 1
            tag = f"s{stage + 1}b{block + 1}"
            shortcut = x
            y = keras.layers.Conv2D(
                filters,
                k,
                strides=stride,
                padding="same",
                use_bias=False,
                kernel_initializer=init,
                kernel_regularizer=reg,
                name=f"{tag}_conv1",
            )(x)
            y = keras.layers.BatchNormalization(name=f"{tag}_bn1")(y)
            y = _activation(config, f"{tag}_act1")(y)
            y = keras.layers.Conv2D(
                filters,
                k,
                padding="same",
                use_bias=False,
                kernel_initializer=init,
                kernel_regularizer=reg,
                name=f"{tag}_conv2",
            )(y)
            y = keras.layers.BatchNormalization(name=f"{tag}_bn2")(y)
            if stride != 1 or shortcut.shape[-1] != filters:
                shortcut = keras.layers.Conv2D(
                    filters, 1, strides=stride, use_bias=False, kernel_initializer=init, name=f"{tag}_proj"
                )(shortcut)
                shortcut = keras.layers.BatchNormalization(name=f"{tag}_proj_bn")(shortcut)
            x = keras.layers.Add(name=f"{tag}_add")([y, shortcut])
            x = _activation(config, f"{tag}_out")(x)
        if config.block_dropout:
            x = keras.layers.Dropout(config.block_dropout, name=f"stage_dropout{stage + 1}")(x)
    return x


# The compact CNN: strided stem convolutions bring large images down to at most STEM_TARGET pixels, then each
# stage halves the map until it is at most LAST_MAP pixels (never more stages than model.conv_blocks).
COMPACT_STEM_TARGET = 40
COMPACT_LAST_MAP = 8
# Small sets give few steps per epoch: BatchNorm's moving statistics must follow within tens of steps, or the
# validation score lags far behind training (Keras's default momentum, 0.99, needs hundreds).
COMPACT_BN_MOMENTUM = 0.9


def compact_plan(config, input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(stem convolutions, stages) of the compact CNN for this image size: its shape follows the images."""
    size = min(input_shape[:2])
    stems = 0
    while size > COMPACT_STEM_TARGET:
        size = -(-size // 2)
        stems += 1
    stages = 1
    while size > COMPACT_LAST_MAP and stages < config.conv_blocks:
        size //= 2
        stages += 1
    return stems, stages


def _conv_bn(config, x, filters: int, name: str, strides: int = 1):
    """3×3 (kernel_size) same-padded convolution without bias, BatchNorm, activation."""
    import keras

    x = keras.layers.Conv2D(
        filters,
        config.kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,  # BatchNorm's offset replaces the bias
        kernel_initializer=config.initializer,
        kernel_regularizer=_regularizer(config),
        name=f"{name}_conv",
    )(x)
    x = keras.layers.BatchNormalization(momentum=COMPACT_BN_MOMENTUM, name=f"{name}_bn")(x)
    return _activation(config, f"{name}_act")(x)


def _compact_body(config, x, input_shape):
    """The studio's small modern CNN. At full resolution one convolution only (where a conv costs most),
    then ``convs_per_block`` convolutions per stage at each halved size; max pooling between stages."""
    import keras

    stems, stages = compact_plan(config, input_shape)
    for i in range(stems):
        x = _conv_bn(config, x, config.filters[0], f"stem{i + 1}", strides=2)
    for stage in range(stages):
        convs = 1 if stage == 0 else config.convs_per_block
        for conv in range(convs):
            x = _conv_bn(config, x, config.filters[stage], f"stage{stage + 1}_{conv + 1}")
        if config.block_dropout:
            x = keras.layers.Dropout(config.block_dropout, name=f"stage_dropout{stage + 1}")(x)
        if stage < stages - 1:
            x = keras.layers.MaxPooling2D(2, name=f"pool{stage + 1}")(x)
    return x


MOBILENET_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"


def mobilenet_weights_path(alpha: float, size: int) -> Path:
    """Where keras.applications caches MobileNetV2's ImageNet weights (no top) for this width and size."""
    rows = size if size in (96, 128, 160, 192, 224) else 224
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}_no_top.h5"


def _mobilenet_weights(alpha: float, size: int, notes: list[str]) -> str | None:
    """The cached ImageNet weights file, downloaded into the cache when online; None (and a note) otherwise."""
    import keras

    path = mobilenet_weights_path(alpha, size)
    if not path.is_file():
        try:
            keras.utils.get_file(
                path.name, MOBILENET_WEIGHTS_URL + path.name, cache_dir=str(path.parent.parent), cache_subdir="models"
            )
        except Exception as err:  # keras raises bare Exception for URL failures
            notes.append(
                _(
                    "ImageNet weights are not in the Keras cache ({path}) and could not be downloaded ({reason}), so "
                    "the base starts from random initialisation. Put that file there to use them, or untick 'Use "
                    "ImageNet weights' for random initialisation on purpose."
                ).format(path=path, reason=str(err).splitlines()[0][-80:])
            )
            return None
    return str(path)


def _mobilenet_body(config, x, input_shape, notes):
    import keras

    size = input_shape[0]
    if input_shape[-1] == 1:
        # MobileNetV2 takes three channels: repeat the gray one (a plain concatenation, exportable everywhere).
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    weights = None
    if config.pretrained:
        weights = _mobilenet_weights(config.mobilenet_alpha, size, notes)
    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=config.mobilenet_alpha, include_top=False, weights=weights
    )
    base.trainable = False
    if weights is None and config.pretrained:
        notes.append(_("With random weights a frozen base cannot learn much: consider a CNN preset instead."))
    # training=False keeps the frozen base's BatchNorm in inference mode, as transfer learning needs.
    return base(x, training=False)


def _head(config, x, num_classes):
    import keras

    if config.head == "flatten":
        x = keras.layers.Flatten(name="flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="global_average")(x)
    if config.flatten_dropout:
        x = keras.layers.Dropout(config.flatten_dropout, name="head_dropout")(x)
    inline = None if config.activation == "leaky_relu" else config.activation
    for i in range(config.dense_layers):
        x = keras.layers.Dense(
            config.dense_units[i],
            activation=inline,
            kernel_initializer=config.initializer,
            kernel_regularizer=_regularizer(config),
            name=f"dense{i + 1}",
        )(x)
        if inline is None:
            x = _activation(config, f"dense{i + 1}_act")(x)
        if config.dense_dropout:
            x = keras.layers.Dropout(config.dense_dropout, name=f"dense{i + 1}_dropout")(x)
    activation = "softmax" if config.output == "softmax" else None
    return keras.layers.Dense(num_classes, activation=activation, name="predictions")(x)


# --- Compiling ---------------------------------------------------------------------------------------


def uses_one_hot(training: TrainingConfig) -> bool:
    """Label smoothing needs one-hot labels: Keras's sparse cross-entropy has no smoothing."""
    return training.label_smoothing > 0


def make_loss(model_config: ModelConfig, training: TrainingConfig):
    import keras

    logits = model_config.output == "logits"
    if uses_one_hot(training):
        return keras.losses.CategoricalCrossentropy(from_logits=logits, label_smoothing=training.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)


def make_optimizer(training: TrainingConfig, steps_per_epoch: int = 1):
    """The optimizer with its learning-rate schedule (reduce-on-plateau is a callback, so constant here)."""
    import keras

    lr = training.learning_rate
    if training.schedule == "step":
        lr = keras.optimizers.schedules.ExponentialDecay(
            lr,
            decay_steps=max(1, steps_per_epoch * training.step_epochs),
            decay_rate=training.step_factor,
            staircase=True,
        )
    elif training.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, steps_per_epoch * training.epochs))
    if training.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if training.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=training.weight_decay)
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=training.momentum)
    if training.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr, momentum=training.momentum)
    return keras.optimizers.Adagrad(lr)


def compile_model(
    model, model_config: ModelConfig, training: TrainingConfig, steps_per_epoch: int = 1, steps_per_execution: int = 1
) -> None:
    import keras

    # One metric name ("accuracy") in charts and history, whatever the label format.
    if uses_one_hot(training):
        metric = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=make_optimizer(training, steps_per_epoch),
        loss=make_loss(model_config, training),
        metrics=[metric],
        steps_per_execution=steps_per_execution,
    )
