"""Presets reproduce their sources, every slider changes the built model as it should, and impossible
configurations are refused with a message that names the layer, the value and the fix."""

import dataclasses

import h5py
import keras
import numpy as np
import pytest

from core.config import StudioConfig, TrainingConfig, apply_preset
from core.errors import StudioError
from core.models import build_model, compile_model, make_loss, make_optimizer, mobilenet_weights_path
from core.presets import PRESETS
from core.summary import diagram, summarize


def build(config, shape=(32, 32, 3), classes=10, **kwargs):
    return build_model(config, shape, classes, **kwargs).model


def layers_of(model, kind):
    return [layer for layer in model.layers if layer.__class__.__name__ == kind]


def cifar(**changes):
    return dataclasses.replace(apply_preset("tutorial-cifar"), **changes)


# --- Presets -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset, shape, total, non_trainable",
    [
        ("tutorial-cifar", (32, 32, 3), 361_034, 0),
        ("cifar-bn", (32, 32, 3), 159_018, 512),
        ("mnist", (28, 28, 1), 93_322, 0),
        ("small-64", (64, 64, 3), 1_626_442, 0),
    ],
)
def test_tutorial_presets_have_their_sources_parameter_counts(preset, shape, total, non_trainable):
    assert PRESETS[preset].input_shape == shape
    model = build(apply_preset(preset), shape, 10)
    summary = summarize(model)
    assert summary.total_params == total
    assert summary.non_trainable_params == non_trainable


def test_readme_presets_table_states_each_presets_parameter_count():
    """The README's presets table lists every preset of core/presets.py with the count its builder gives."""
    from pathlib import Path

    from core.summary import reference_params

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line.split("|")[3] for line in readme.splitlines() if line.startswith("| `")
    }
    for preset_id in PRESETS:
        assert preset_id in rows, f"README's presets table has no row for {preset_id}"
        assert rows[preset_id].strip().startswith(f"{reference_params(preset_id):,}"), preset_id


def test_cifar_bn_layers_in_the_sources_order():
    model = build(apply_preset("cifar-bn"))
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Rescaling"] + ["Conv2D", "BatchNormalization", "MaxPooling2D"] * 3 + [
        "Flatten",
        "Dropout",
        "Dense",
        "Dense",
    ]
    assert [c.filters for c in layers_of(model, "Conv2D")] == [64, 128, 64]
    assert model.layers[-1].activation.__name__ == "linear", "cifar-bn outputs logits"


def test_mnist_preset_does_not_pool_after_its_last_conv():
    model = build(apply_preset("mnist"), (28, 28, 1))
    assert len(layers_of(model, "MaxPooling2D")) == 2
    assert tuple(model.get_layer("flatten").output.shape) == (None, 3 * 3 * 64)


def test_resnet_small_has_residual_connections_batchnorm_and_global_pooling():
    model = build(apply_preset("resnet-small"))
    assert len(layers_of(model, "Add")) == 6
    assert len(layers_of(model, "GlobalAveragePooling2D")) == 1
    assert len(layers_of(model, "BatchNormalization")) >= 13
    dot = diagram(model)
    assert '"s1b1_act1" -> "s1b1_conv2"' in dot and '"stem_act" -> "s1b1_add"' in dot, "the skip edge is drawn"


@pytest.mark.slow
def test_mobilenetv2_transfer_freezes_the_base_and_adds_a_head(keras_home):
    built = build_model(apply_preset("mobilenetv2-transfer"), (96, 96, 3), 10)
    summary = summarize(built.model)
    assert summary.non_trainable_params == 2_257_984, "the whole MobileNetV2 base is frozen"
    assert summary.trainable_params == 1280 * 10 + 10
    assert any("not in the Keras cache" in n and str(keras_home.parent / "models") in n for n in built.notes)
    gray = build_model(apply_preset("mobilenetv2-transfer"), (64, 64, 1), 3).model
    assert gray.get_layer("gray_to_rgb").output.shape[-1] == 3


@pytest.mark.slow
def test_mobilenetv2_uses_imagenet_weights_from_the_keras_cache(keras_home):
    from keras.src.legacy.saving import legacy_h5_format

    # Write a weights file in the legacy HDF5 format keras.applications downloads, where Keras caches it.
    donor = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights=None)
    path = mobilenet_weights_path(1.0, 96)
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    built = build_model(apply_preset("mobilenetv2-transfer"), (96, 96, 3), 5)
    assert not built.notes
    base = next(layer for layer in built.model.layers if layer.__class__.__name__ == "Functional")
    np.testing.assert_array_equal(base.get_weights()[0], donor.get_weights()[0])


def test_presets_adapt_to_the_dataset_shape_and_classes():
    model = build(apply_preset("tutorial-cifar"), (64, 64, 1), 4)
    assert tuple(model.input.shape) == (None, 64, 64, 1) and tuple(model.output.shape) == (None, 4)


# --- Each slider changes the model -------------------------------------------------------------------


def test_conv_blocks_filters_convs_per_block_and_kernel_size():
    assert len(layers_of(build(cifar(conv_blocks=2)), "Conv2D")) == 2
    filters = [8, 16, 24, 24, 24, 24]
    assert [c.filters for c in layers_of(build(cifar(filters=filters)), "Conv2D")] == [8, 16, 24]
    assert len(layers_of(build(cifar(convs_per_block=2, padding="same")), "Conv2D")) == 6
    assert layers_of(build(cifar(kernel_size=5, padding="same")), "Conv2D")[0].kernel_size == (5, 5)


def test_padding_pooling_and_pool_last():
    assert tuple(build(cifar(padding="same")).get_layer("conv1").output.shape) == (None, 32, 32, 32)
    assert tuple(build(cifar(padding="valid")).get_layer("conv1").output.shape) == (None, 30, 30, 32)
    assert len(layers_of(build(cifar(pooling="average")), "AveragePooling2D")) == 3
    assert not layers_of(build(cifar(pooling="none", conv_blocks=2)), "MaxPooling2D")
    assert len(layers_of(build(cifar(pool_last=False)), "MaxPooling2D")) == 2


def test_batchnorm_and_dropouts():
    assert len(layers_of(build(cifar(batch_norm=True)), "BatchNormalization")) == 3
    model = build(cifar(block_dropout=0.25, flatten_dropout=0.3, dense_dropout=0.4))
    rates = sorted(d.rate for d in layers_of(model, "Dropout"))
    assert rates == [0.25, 0.25, 0.25, 0.3, 0.4]
    assert not layers_of(build(cifar(dense_dropout=0.0)), "Dropout")


def test_head_dense_layers_and_units():
    assert layers_of(build(cifar(head="global_average")), "GlobalAveragePooling2D")
    model = build(cifar(dense_layers=3, dense_units=[100, 50, 25]))
    assert [d.units for d in layers_of(model, "Dense")] == [100, 50, 25, 10]
    assert [d.units for d in layers_of(build(cifar(dense_layers=0)), "Dense")] == [10]


def test_activation_initializer_and_regularization():
    assert build(cifar(activation="gelu")).get_layer("conv1").activation.__name__ == "gelu"
    leaky = build(cifar(activation="leaky_relu"))
    assert leaky.get_layer("act1").__class__.__name__ == "LeakyReLU"
    init = build(cifar(initializer="he_normal")).get_layer("conv1").kernel_initializer
    assert init.__class__.__name__ == "HeNormal"
    reg = build(cifar(l2=1e-3)).get_layer("conv1").kernel_regularizer
    assert reg.get_config()["l2"] == pytest.approx(1e-3) and reg.get_config()["l1"] == 0
    assert build(cifar(l1=1e-4)).get_layer("dense1").kernel_regularizer.get_config()["l1"] == pytest.approx(1e-4)


def test_output_and_normalization_layers():
    assert build(cifar(output="logits")).get_layer("predictions").activation.__name__ == "linear"
    assert build(cifar(output="softmax")).get_layer("predictions").activation.__name__ == "softmax"
    pixels = np.array([[[[0, 255, 127.5]]]], dtype=np.float32)
    unit = build(cifar(normalization="unit")).get_layer("normalize_0_1")
    np.testing.assert_allclose(unit(pixels), pixels / 255, rtol=1e-6)
    sym = build(cifar(normalization="symmetric")).get_layer("normalize_minus1_1")
    np.testing.assert_allclose(sym(pixels), [[[[-1, 1, 0]]]], atol=1e-6)
    std = build(
        cifar(normalization="standardize"), channel_mean=np.array([10.0, 20, 30]), channel_std=np.array([2.0, 4, 5])
    ).get_layer("standardize")
    np.testing.assert_allclose(std(np.array([[[[12, 24, 35]]]], dtype=np.float32)), [[[[1, 1, 1]]]], atol=1e-6)
    assert std.count_params() == 0


@pytest.mark.slow
def test_mobilenet_width_changes_the_base():
    small = build(
        dataclasses.replace(apply_preset("mobilenetv2-transfer"), mobilenet_alpha=0.35, pretrained=False), (96, 96, 3)
    )
    assert summarize(small).total_params < 600_000


def test_training_settings_reach_the_optimizer_schedule_and_loss():
    assert isinstance(make_optimizer(TrainingConfig(optimizer="sgd", momentum=0.8)), keras.optimizers.SGD)
    assert make_optimizer(TrainingConfig(optimizer="sgd", momentum=0.8)).momentum == pytest.approx(0.8)
    assert make_optimizer(TrainingConfig(optimizer="adamw", weight_decay=0.01)).weight_decay == pytest.approx(0.01)
    for name, cls in [("adam", "Adam"), ("rmsprop", "RMSprop"), ("adagrad", "Adagrad")]:
        assert make_optimizer(TrainingConfig(optimizer=name)).__class__.__name__ == cls
    assert float(make_optimizer(TrainingConfig(learning_rate=0.003)).learning_rate) == pytest.approx(0.003)
    step = make_optimizer(TrainingConfig(schedule="step", step_epochs=2, step_factor=0.5), steps_per_epoch=10)
    # 0.001 halves every 2 epochs of 10 steps: 0.001 up to step 19, 0.0005 from 20, 0.00025 from 40.
    assert float(step._learning_rate(19.0)) == pytest.approx(0.001)
    assert float(step._learning_rate(20.0)) == pytest.approx(0.0005)
    assert float(step._learning_rate(40.0)) == pytest.approx(0.00025)
    cosine = make_optimizer(TrainingConfig(schedule="cosine", epochs=4), steps_per_epoch=10)
    assert float(cosine._learning_rate(40.0)) == pytest.approx(0.0, abs=1e-9)
    smooth = make_loss(apply_preset("cifar-bn"), TrainingConfig(label_smoothing=0.1))
    assert smooth.__class__.__name__ == "CategoricalCrossentropy" and smooth.get_config()["label_smoothing"] == 0.1
    assert smooth.get_config()["from_logits"] is True
    plain = make_loss(apply_preset("tutorial-cifar"), TrainingConfig())
    assert plain.__class__.__name__ == "SparseCategoricalCrossentropy" and not plain.get_config()["from_logits"]


def test_a_compiled_model_trains_one_epoch_on_tiny_arrays():
    model = build(apply_preset("mnist"), (28, 28, 1), 3)
    compile_model(model, apply_preset("mnist"), TrainingConfig(label_smoothing=0.1))
    x = np.random.default_rng(0).integers(0, 256, (24, 28, 28, 1)).astype("uint8")
    y = keras.utils.to_categorical(np.arange(24) % 3, 3)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert set(history.history) == {"loss", "accuracy"} and len(history.history["loss"]) == 1


# --- Impossible configurations -----------------------------------------------------------------------


def test_too_many_pooling_layers_for_the_image_size():
    config = cifar(padding="same", kernel_size=3)
    with pytest.raises(
        StudioError,
        match=r"Image size 7 is too small for 3 pooling layers: block 3's pooling gets a "
        r"1×1 feature map.*image size of at least 8",
    ):
        build(config, (7, 7, 3))


def test_kernel_larger_than_the_feature_map_names_the_block():
    with pytest.raises(
        StudioError,
        match=r"Block 3, conv 1: the 7×7 kernel is larger than the 3×3 feature map left "
        r"after 2 pooling layers at image size 32.*image size of at least 50",
    ):
        build(cifar(kernel_size=7))


def test_zero_filters_or_units_name_the_field():
    with pytest.raises(StudioError, match=r"Block 2 has 0 filters \(model.filters.1\): give it at least 1 filter"):
        build(cifar(filters=[32, 0, 64, 64, 64, 64]))
    with pytest.raises(StudioError, match=r"Dense layer 1 has 0 units \(model.dense_units.0\)"):
        build(cifar(dense_units=[0, 1, 1]))


def test_mobilenet_needs_32_pixels():
    with pytest.raises(StudioError, match=r"Image size 28 is too small for MobileNetV2, which needs at least 32×32"):
        build(apply_preset("mobilenetv2-transfer"), (28, 28, 1))


# --- Configs are data --------------------------------------------------------------------------------


def test_config_round_trips_through_json_to_an_identical_model():
    config = StudioConfig()
    config.model = cifar(batch_norm=True, dense_layers=2, activation="elu", l2=1e-4, output="logits")
    config.training.optimizer = "rmsprop"
    again = StudioConfig.from_json(config.to_json())
    assert again == config
    a = build(config.model, seed=3)
    b = build(again.model, seed=3)
    assert a.to_json() == b.to_json()
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_unknown_or_invalid_model_fields_are_named():
    with pytest.raises(StudioError, match=r"Unknown config field 'config.model.layers'"):
        StudioConfig.from_json('{"model": {"layers": 3}}')
    with pytest.raises(StudioError, match=r"model.preset is 'vgg99': choose one of compact, tutorial-cifar"):
        StudioConfig.from_json('{"model": {"preset": "vgg99"}}')
    with pytest.raises(StudioError, match=r"model.filters.2 must be a int, not 'many'"):
        StudioConfig.from_json('{"model": {"filters": [1, 2, "many", 4, 5, 6]}}')
    with pytest.raises(StudioError, match=r"training.optimizer is 'adam2': choose one of adam"):
        StudioConfig.from_json('{"training": {"optimizer": "adam2"}}')
