"""The feature map's numbers (#15.2): the penultimate-layer features are what the model's last layer
classifies, PCA and t-SNE place every shown test image, and the result is cached in the run folder per model
file like the predictions."""

from __future__ import annotations

import os

import numpy as np
import pytest

from core.evaluation import load_run_model, load_test_data, probabilities
from core.featuremap import (
    FEATURE_MAP_FILE,
    feature_layer,
    feature_map,
    penultimate_features,
    sample_indices,
    thumbnails,
)
from tests.export_fixtures import copy_run


@pytest.fixture(scope="module")
def run_and_model(trained_run, tmp_path_factory):
    run = copy_run(trained_run, tmp_path_factory.mktemp("featuremap"))
    return run, load_run_model(run)


def test_the_features_are_what_the_last_layer_classifies(run_and_model):
    run, model = run_and_model
    images = load_test_data(run)[0][:16]
    features, layer = penultimate_features(model, images)
    head = feature_layer(model)
    kernel, bias = (np.asarray(w) for w in head.get_weights())
    assert features.shape == (16, kernel.shape[0]) and layer != head.name
    recomputed = head.activation(features @ kernel + bias)
    np.testing.assert_allclose(np.asarray(recomputed), probabilities(model, images, logits=False), atol=1e-5)


def test_the_map_places_every_test_image_and_is_cached_per_model_file(run_and_model):
    run, model = run_and_model
    count = len(load_test_data(run)[0])
    first = feature_map(run, model)
    assert np.array_equal(first.indices, np.arange(count))
    assert first.pca.shape == first.tsne.shape == (count, 2)
    assert np.all(np.isfinite(first.tsne)) and first.explained[0] >= first.explained[1] > 0
    cache = run.path / FEATURE_MAP_FILE
    written = cache.stat().st_mtime_ns
    again = feature_map(run, model)
    assert cache.stat().st_mtime_ns == written, "the second call reads the cache"
    np.testing.assert_array_equal(again.tsne, first.tsne)
    model_file = run.model_path()
    os.utime(model_file, ns=(written, model_file.stat().st_mtime_ns + 1))  # a new model file: computed anew
    feature_map(run, model)
    assert cache.stat().st_mtime_ns != written


def test_a_large_test_split_is_sampled_and_thumbnails_stay_small():
    shown = sample_indices(5000, limit=1000)
    assert len(shown) == 1000 and np.all(np.diff(shown) > 0) and np.array_equal(shown, sample_indices(5000, 1000))
    rgb = np.random.default_rng(0).integers(0, 256, (3, 96, 64, 3), dtype=np.uint8)
    assert thumbnails(rgb, largest=40).shape == (3, 40, 27, 3)
    gray = np.zeros((2, 28, 28, 1), np.uint8)
    assert thumbnails(gray, largest=40).shape == (2, 28, 28, 1)
