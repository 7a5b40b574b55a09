"""The recipes: each preset's slider values, its source and the input it was written for.

The tutorials' presets set the model only, as their sources wrote it; the studio's own ``compact`` recipe also
brings its training settings and augmentation. Plain data: the config validates preset ids against this table,
``core.config.apply_preset`` applies a model and ``core.config.apply_recipe`` a whole recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.i18n import N_

MAX_BLOCKS = 6
MAX_DENSE = 3


@dataclass(frozen=True)
class Preset:
    title: str
    source: str
    input_shape: tuple[int, int, int]
    values: dict
    training: dict = field(default_factory=dict)  # training settings the recipe sets (the tutorials: none)
    augment: dict = field(default_factory=dict)  # augmentation the recipe sets (the tutorials: none)


def _filters(*first: int) -> list[int]:
    values = list(first)
    while len(values) < MAX_BLOCKS:
        values.append(values[-1])
    return values


def _dense(*first: int) -> list[int]:
    return (list(first) + [128, 64, 32])[:MAX_DENSE]


def _cnn(filters: tuple[int, ...], dense: int, **changes) -> dict:
    """Slider values of a plain tutorial CNN: 3×3 valid convs, max pooling, Flatten, one Dense, softmax."""
    values = dict(
        architecture="cnn",
        conv_blocks=len(filters),
        filters=_filters(*filters),
        convs_per_block=1,
        kernel_size=3,
        padding="valid",
        pooling="max",
        pool_last=True,
        batch_norm=False,
        block_dropout=0.0,
        head="flatten",
        flatten_dropout=0.0,
        dense_layers=1,
        dense_units=_dense(dense),
        dense_dropout=0.0,
        output="softmax",
    )
    values.update(changes)
    return values


COMPACT = "compact"

PRESETS: dict[str, Preset] = {
    COMPACT: Preset(
        N_("Compact CNN (the studio's recipe)"),
        N_(
            "3×3 conv-BatchNorm-ReLU stages (one conv at full size, then two per stage; 24/48/96 filters), a strided "
            "stem for images over 40 px, global average pooling, logits; AdamW with cosine decay, batch 32, 15 "
            "epochs and a light ±10° rotation"
        ),
        (28, 28, 1),
        _cnn(
            (24, 48, 96, 96),
            128,
            architecture="compact",
            conv_blocks=4,
            convs_per_block=2,
            padding="same",
            batch_norm=True,
            head="global_average",
            dense_layers=0,
            output="logits",
            initializer="he_normal",
        ),
        training=dict(
            optimizer="adamw",
            learning_rate=3e-3,
            weight_decay=1e-4,
            schedule="cosine",
            batch_size=32,
            epochs=15,
            label_smoothing=0.0,
        ),
        augment=dict(flip="none", rotation=10.0, zoom=0.0, translation=0.0, contrast=0.0),
    ),
    "tutorial-cifar": Preset(
        N_("CIFAR tutorial CNN"),
        N_("Conv32-Pool-Conv64-Pool-Conv128-Pool, Dense 512, Dropout 0.5 (the classic Keras/TensorFlow CIFAR recipe)"),
        (32, 32, 3),
        _cnn((32, 64, 128), 512, dense_dropout=0.5),
    ),
    "cifar-bn": Preset(
        N_("CIFAR CNN with BatchNorm"),
        N_("Conv(64,128,64)-BatchNorm-MaxPool blocks, Flatten, Dropout 0.5, Dense 32, logits"),
        (32, 32, 3),
        _cnn((64, 128, 64), 32, batch_norm=True, flatten_dropout=0.5, output="logits"),
    ),
    "mnist": Preset(
        N_("MNIST tutorial CNN"),
        N_("Conv32-Pool-Conv64-Pool-Conv64, Dense 64 (the TensorFlow CNN tutorial)"),
        (28, 28, 1),
        _cnn((32, 64, 64), 64, pool_last=False),
    ),
    "small-64": Preset(
        N_("Small CNN for 64×64 images"), N_("Conv32-Pool-Conv64-Pool, Dense 128"), (64, 64, 3), _cnn((32, 64), 128)
    ),
    "resnet-small": Preset(
        N_("Small ResNet"),
        N_("3 residual stages (16, 32, 64 filters; 2 blocks each) with BatchNorm, global average pooling"),
        (32, 32, 3),
        _cnn(
            (16, 32, 64),
            128,
            architecture="resnet",
            convs_per_block=2,
            padding="same",
            pooling="none",
            batch_norm=True,
            head="global_average",
            dense_layers=0,
            initializer="he_normal",
        ),
    ),
    "mobilenetv2-transfer": Preset(
        N_("MobileNetV2 transfer learning"),
        N_("keras.applications MobileNetV2 base (frozen) with a new head: global average pooling, Dropout 0.2, Dense"),
        (96, 96, 3),
        dict(
            architecture="mobilenetv2",
            head="global_average",
            flatten_dropout=0.2,
            dense_layers=0,
            dense_units=_dense(128),
            dense_dropout=0.0,
            output="softmax",
            normalization="symmetric",
            mobilenet_alpha=1.0,
            pretrained=True,
        ),
    ),
}
PRESET_CLASSES = 10
