"""The studio's compact recipe: its shape follows the image size and channels, it trains, it brings its own
training settings and augmentation, and it is what a new project and the command line start from."""

import numpy as np
import pytest

from core.__main__ import build_parser, config_from_args
from core.config import StudioConfig, apply_preset, apply_recipe, default_config
from core.models import build_model, compact_plan, compile_model
from core.presets import COMPACT, PRESETS


def compact_model(shape, classes=4):
    return build_model(apply_preset(COMPACT), shape, classes, seed=1).model


def kinds(model, kind):
    return [layer for layer in model.layers if layer.__class__.__name__ == kind]


@pytest.mark.parametrize(
    "shape, stems, stages, last_map",
    [
        ((16, 16, 1), 0, 2, 8),
        ((28, 28, 1), 0, 3, 7),
        ((32, 32, 3), 0, 3, 8),
        ((64, 64, 3), 1, 3, 8),
        ((96, 96, 1), 2, 3, 6),
        ((128, 128, 3), 2, 3, 8),
    ],
)
def test_compact_shape_follows_the_image_size_and_channels(shape, stems, stages, last_map):
    config = apply_preset(COMPACT)
    assert compact_plan(config, shape) == (stems, stages)
    model = compact_model(shape)
    assert model.input_shape == (None, *shape)
    assert len(kinds(model, "MaxPooling2D")) == stages - 1
    strided = [c for c in kinds(model, "Conv2D") if c.strides == (2, 2)]
    assert len(strided) == stems
    # one conv at full size, then convs_per_block per stage; each followed by BatchNorm
    assert len(kinds(model, "Conv2D")) == stems + 1 + (stages - 1) * config.convs_per_block
    assert len(kinds(model, "BatchNormalization")) == len(kinds(model, "Conv2D"))
    head = model.get_layer("global_average")
    assert head.input.shape[1:3] == (last_map, last_map)
    assert model.output_shape == (None, 4)
    assert kinds(model, "Conv2D")[0].kernel.shape[2] == shape[-1]  # takes gray or RGB as they come


def test_compact_blocks_cap_the_stages():
    config = apply_preset(COMPACT)
    config.conv_blocks = 2
    assert compact_plan(config, (64, 64, 3)) == (1, 2)
    assert len(kinds(build_model(config, (64, 64, 3), 3).model, "MaxPooling2D")) == 1


@pytest.mark.parametrize("shape", [(20, 20, 1), (48, 48, 3)])
def test_compact_trains_one_epoch_on_tiny_arrays(shape):
    config = apply_recipe(StudioConfig(), COMPACT)
    model = compact_model(shape, classes=3)
    compile_model(model, config.model, config.training, steps_per_epoch=2)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, *shape), dtype=np.uint8)
    y = np.arange(16) % 3
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x[:2], verbose=0).shape == (2, 3)


def test_the_recipe_brings_its_training_and_augmentation_and_the_tutorials_bring_none():
    config = apply_recipe(StudioConfig(), COMPACT)
    assert config.model.architecture == "compact" and config.model.batch_norm and config.model.head == "global_average"
    assert (config.training.optimizer, config.training.schedule) == ("adamw", "cosine")
    assert config.augment.active and config.augment.flip == "none"  # digits and letters must not be mirrored
    before = StudioConfig()
    before.training.epochs, before.augment.rotation = 7, 5.0
    mnist = apply_recipe(before, "mnist")
    assert mnist.training.epochs == 7 and mnist.augment.rotation == 5.0  # a tutorial changes the model only
    assert not PRESETS["mnist"].training and not PRESETS["tutorial-cifar"].augment


def test_new_projects_and_the_cli_start_from_the_compact_recipe():
    assert default_config().model.preset == COMPACT and default_config().training.optimizer == "adamw"
    cli = config_from_args(build_parser().parse_args(["train", "--data", "builtin:digits", "--epochs", "2"]))
    assert cli.model.architecture == "compact" and cli.training.epochs == 2
    tutorial = config_from_args(build_parser().parse_args(["train", "--preset", "mnist"]))
    assert tutorial.model.preset == "mnist" and tutorial.training.optimizer == StudioConfig().training.optimizer
