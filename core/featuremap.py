"""The feature map: the test images placed in 2-D by what the model's penultimate layer makes of them (the
features its last Dense layer classifies), by PCA and by t-SNE. Computed once per model file and cached in the
run folder (``feature_map.npz``) like the predictions; at most :data:`MAX_POINTS` test images, a fixed sample."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from core.errors import StudioError
from core.evaluation import PREDICT_BATCH, load_test_data, model_file_stamp
from core.files import DiskFull, atomic_write_bytes
from core.i18n import _, ngettext
from core.runs import RunInfo

FEATURE_MAP_FILE = "feature_map.npz"
MAX_POINTS = 1000  # t-SNE's time grows about with the square of the points; a map this full is readable
TSNE_PERPLEXITY = 30.0  # scikit-learn's default; smaller for small test splits (it must stay below the count)
SEED = 0  # the same sample and the same t-SNE layout on every computation
THUMBNAIL = 40  # pixels: the largest side of the hover thumbnails the page gets


@dataclass
class FeatureMap:
    """Per shown test image (``indices`` into the test split) its PCA and t-SNE coordinates."""

    indices: np.ndarray
    pca: np.ndarray
    tsne: np.ndarray
    layer: str  # the layer whose output the features are
    explained: np.ndarray  # the share of the features' variance each PCA axis holds


def sample_indices(count: int, limit: int = MAX_POINTS) -> np.ndarray:
    """All test images, or a fixed random sample of ``limit`` of them, in test-split order."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(SEED).choice(count, size=limit, replace=False))


def feature_layer(model):
    """The last Dense layer (the classifier head): its input is the penultimate features."""
    import keras

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise StudioError(_("This model has no Dense layer at its end, so it has no penultimate features to map."))
    return dense[-1]


def penultimate_features(model, images: np.ndarray) -> tuple[np.ndarray, str]:
    """The features the last Dense layer receives for each image, and the name of the layer that makes them."""
    import keras

    head = feature_layer(model)
    extractor = keras.Model(model.inputs, head.input)
    features = extractor.predict(images, batch_size=PREDICT_BATCH, verbose=0)
    source = head.input._keras_history[0].name if hasattr(head.input, "_keras_history") else "features"
    return np.asarray(features, dtype=np.float32).reshape(len(images), -1), source


def project(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(PCA coordinates, t-SNE coordinates, PCA explained-variance shares) of the feature rows."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    count = len(features)
    if count < 3:
        raise StudioError(
            ngettext(
                "The test split has {count} image: a feature map needs at least 3.",
                "The test split has {count} images: a feature map needs at least 3.",
                count,
            ).format(count=count)
        )
    perplexity = min(TSNE_PERPLEXITY, (count - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=SEED)
    # One thread: t-SNE's OpenMP threads fight for a busy server's cores (measured 16x slower at load 8 on two
    # cores: 269 images 35 s with all threads, 2 s with one).
    with threadpool_limits(limits=1):
        pca = PCA(n_components=2, random_state=SEED).fit(features)
        return pca.transform(features), tsne.fit_transform(features), pca.explained_variance_ratio_


def _cached(cache, stamp: str, count: int) -> FeatureMap | None:
    try:
        with np.load(cache, allow_pickle=False) as data:
            if str(data["stamp"]) != stamp:
                return None
            found = FeatureMap(
                data["indices"], data["pca"], data["tsne"], str(data["layer"]), np.asarray(data["explained"])
            )
    except Exception:  # missing, torn or garbage: computed again
        return None
    n = len(found.indices)
    sound = (
        found.pca.shape == (n, 2)
        and found.tsne.shape == (n, 2)
        and np.array_equal(found.indices, sample_indices(count))
        and np.all(np.isfinite(found.pca))
        and np.all(np.isfinite(found.tsne))
    )
    return found if sound else None


def feature_map(run: RunInfo, model) -> FeatureMap:
    """The run's feature map for its current model file: from the run folder's cache, else computed and kept."""
    stamp = model_file_stamp(run)
    images, _labels, _names = load_test_data(run)
    cache = run.path / FEATURE_MAP_FILE
    if (found := _cached(cache, stamp, len(images))) is not None:
        return found
    indices = sample_indices(len(images))
    features, layer = penultimate_features(model, images[indices])
    pca, tsne, explained = project(features)
    found = FeatureMap(indices, pca, tsne, layer, explained)
    buffer = io.BytesIO()
    np.savez(
        buffer, indices=indices, pca=pca, tsne=tsne, layer=np.array(layer), explained=explained, stamp=np.array(stamp)
    )
    try:
        atomic_write_bytes(cache, buffer.getvalue())
    except DiskFull:
        pass  # the cache only saves time
    return found


def thumbnails(images: np.ndarray, largest: int = THUMBNAIL) -> np.ndarray:
    """The images shrunk (Pillow's bilinear filter, as everywhere in the app) so that their larger side is at
    most ``largest`` pixels; uint8, the channels kept. The hover thumbnails cost the page this little."""
    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    h, w = images.shape[1:3]
    scale = min(1.0, largest / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if scale == 1.0:
        return images
    small = [
        np.asarray(Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).resize(size, Image.BILINEAR))
        for im in images
    ]
    return np.stack(small).reshape(len(images), size[1], size[0], images.shape[-1])
