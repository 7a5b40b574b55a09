"""Built-in datasets, statistics, sample grids and the augmentation preview."""

import numpy as np
import pytest

from core.config import AugmentConfig, DataConfig
from core.data import channel_stats, load_dataset, mosaic, preview_augmentation, sample_indices
from core.shapes import SHAPE_CLASSES, generate_shapes


def test_digits_are_scikit_learns_1797_images_in_10_classes():
    ds = load_dataset(DataConfig(source="builtin:digits"))
    assert ds.images.shape == (1797, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.images.max() == 255 and ds.images.min() == 0
    native = load_dataset(DataConfig(source="builtin:digits", image_size=8, color_mode="rgb"))
    assert native.images.shape == (1797, 8, 8, 3)


def test_shapes_are_deterministic_for_a_seed_any_count_and_size():
    a_images, a_labels, names = generate_shapes(60, 24, seed=3)
    b_images, b_labels, _ = generate_shapes(60, 24, seed=3)
    c_images, _, _ = generate_shapes(60, 24, seed=4)
    assert names == list(SHAPE_CLASSES) and len(names) >= 4
    assert a_images.shape == (60, 24, 24, 3) and a_images.dtype == np.uint8
    assert np.array_equal(a_images, b_images) and np.array_equal(a_labels, b_labels)
    assert not np.array_equal(a_images, c_images)
    assert list(np.bincount(a_labels)) == [10] * 6
    big = load_dataset(DataConfig(source="builtin:shapes", shapes_count=120, image_size=96, color_mode="grayscale"))
    assert big.images.shape == (120, 96, 96, 1)


def test_shapes_classes_differ_on_average():
    images, labels, _ = generate_shapes(600, 32, seed=0)
    # Foreground coverage differs by shape (a cross covers less than a square), so per-class mean
    # edge energy must differ: a crude check that the classes are learnable, not noise.
    edges = np.abs(np.diff(images.astype(np.int16), axis=2)).mean(axis=(1, 2, 3))
    per_class = [edges[labels == c].mean() for c in range(6)]
    assert max(per_class) - min(per_class) > 0.5


def test_channel_stats_match_numpy_exactly():
    images = np.random.default_rng(0).integers(0, 256, (50, 9, 9, 3), dtype=np.uint8)
    stats = channel_stats(images, chunk=7)
    flat = images.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats.mean, flat.mean(0))
    np.testing.assert_allclose(stats.std, flat.std(0))
    assert stats.histograms.shape == (3, 256) and stats.histograms.sum() == flat.size


def test_sample_grid_has_one_row_per_class():
    images, labels, _ = generate_shapes(60, 16, seed=0)
    picks = sample_indices(labels, 6, per_class=4, seed=0)
    assert all(len(p) == 4 and (labels[p] == c).all() for c, p in enumerate(picks))
    grid = mosaic([images[p] for p in picks], gap=2)
    assert grid.shape == (6 * 18, 4 * 18, 3)


@pytest.mark.slow
def test_augmentation_preview_changes_real_samples_and_keeps_uint8():
    images, _, _ = generate_shapes(4, 32, seed=0)
    config = AugmentConfig(flip="horizontal", rotation=30.0, zoom=0.2, translation=0.1, contrast=0.3)
    out = preview_augmentation(images, config, variants=3, seed=1)
    assert out.shape == (4, 3, 32, 32, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[:, 0], images)
    assert not np.array_equal(out[:, 0], out[:, 1]), "each variant is a new random draw"
    unchanged = preview_augmentation(images, AugmentConfig(), variants=2, seed=1)
    assert np.array_equal(unchanged[:, 1], images)
