"""Datasets larger than memory: a server folder whose decoded array would exceed the memory budget streams from
disk instead of being refused.

The file list (paths and labels: a few bytes per image) is all that stays in memory. Training and validation read
through a ``tf.data`` pipeline: the list is shuffled (a buffer as large as the list, so every epoch is a full
shuffle at the cost of the list alone), each file is decoded and resized by the app's own :func:`decode_image`
(the same Pillow steps, so the very pixels the in-memory path gives) in parallel, and undecodable files are
dropped. The test split and the calibration set are decoded into the run folder as for any run (evaluation and
exports read them there); the standardization statistics come from a sample of the training images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.i18n import _, number
from core.images import decode_image, decode_in_parallel

STATS_SAMPLE = 2000  # training images decoded for the channel mean and std of a streamed set
SAMPLE_PER_CLASS = 100  # images per class the Dataset page explores of a streamed set
CHANNEL_PROBE = 32  # files decoded to decide between grayscale and colour when the colour is automatic


@dataclass
class StreamedDataset:
    """A folder of class folders kept on disk: the same attributes as :class:`core.data.Dataset` but ``images``,
    which :meth:`take` decodes on demand."""

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]
    source: str
    size: int
    channels: int
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    official_test: np.ndarray | None = None
    streamed: bool = True

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.channels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.num_classes)

    def take(self, indices: np.ndarray) -> np.ndarray:
        """The images at ``indices`` decoded into one array (a file that no longer decodes becomes white)."""
        out = np.full((len(indices), self.size, self.size, self.channels), 255, dtype=np.uint8)
        items = [("", self.paths[i], Path(self.paths[i]).read_bytes) for i in indices]
        for row, (_c, _n, decoded) in enumerate(decode_in_parallel(items, self.size, self.channels)):
            if not isinstance(decoded, Exception):
                out[row] = _as_channels(decoded[0], self.channels)
        return out

    def elements(self, indices: np.ndarray, shuffle_seed: int | None = None):
        """An unbatched tf.data pipeline of (uint8 image, int32 label) for ``indices``, shuffled per epoch when
        ``shuffle_seed`` is given, decoded in parallel."""
        import tensorflow as tf

        size, channels = self.size, self.channels

        def decode(path: bytes) -> np.ndarray:
            data = Path(path.decode()).read_bytes()
            return _as_channels(decode_image(data, size, channels)[0], channels)

        def load(path, label):
            image = tf.numpy_function(decode, [path], tf.uint8, stateful=False)
            image.set_shape((size, size, channels))
            return image, label

        paths = tf.constant([self.paths[i] for i in indices])
        ds = tf.data.Dataset.from_tensor_slices((paths, self.labels[indices].astype(np.int32)))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(indices), seed=shuffle_seed, reshuffle_each_iteration=True)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.ignore_errors()  # a file that became unreadable since the listing is dropped, not fatal


def _as_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    return np.repeat(pixels, 3, axis=2) if pixels.shape[-1] == 1 and channels == 3 else pixels


def stream_folder(
    files: list[tuple[str, str]], skipped: list[tuple[str, str]], label: str, size: int, channels: int | None
) -> StreamedDataset:
    """A StreamedDataset of a folder's (relative name, full path) image files, the class being the first folder
    of the name. The colour, when automatic, is decided from the first files: colour if any of them is."""
    class_names = sorted({rel.split("/")[0] for rel, _full in files})
    if len(class_names) < 2:
        if class_names:
            message = _(
                "Only one class ('{name}') has images in {label}: a classifier needs at least two. "
                "Add a folder of images for each other class."
            )
        else:
            message = _(
                "No class has images in {label}: a classifier needs at least two. "
                "Add a folder of images for each class."
            )
        raise StudioError(message.format(name=class_names[0] if class_names else "", label=label))
    index = {c: i for i, c in enumerate(class_names)}
    if channels is None:
        probe = [("", rel, Path(full).read_bytes) for rel, full in files[:CHANNEL_PROBE]]
        decoded = [d for _c, _n, d in decode_in_parallel(probe, size, None) if not isinstance(d, Exception)]
        channels = 3 if any(pixels.shape[-1] == 3 for pixels, _info in decoded) else 1
    return StreamedDataset(
        paths=[full for _rel, full in files],
        labels=np.array([index[rel.split("/")[0]] for rel, _full in files], dtype=np.int32),
        class_names=class_names,
        source="folder",
        size=size,
        channels=channels,
        files=[rel for rel, _full in files],
        skipped=skipped,
    )


def is_streamed(dataset) -> bool:
    return bool(getattr(dataset, "streamed", False))


def take(dataset, indices: np.ndarray) -> np.ndarray:
    """The images at ``indices``: a slice of an in-memory set, decoded from disk for a streamed one."""
    return dataset.take(indices) if is_streamed(dataset) else dataset.images[indices]


def stats_images(dataset, train: np.ndarray, seed: int) -> np.ndarray:
    """The training images the channel statistics are computed on: all of an in-memory set, a sample of
    STATS_SAMPLE of a streamed one."""
    if not is_streamed(dataset) or len(train) <= STATS_SAMPLE:
        return take(dataset, train)
    sample = np.random.default_rng(seed).choice(train, size=STATS_SAMPLE, replace=False)
    return dataset.take(np.sort(sample))


def explore_sample(streamed: StreamedDataset, budget, seed: int) -> dict:
    """A decoded, stratified sample of a streamed set for the Dataset page (SAMPLE_PER_CLASS per class): the
    fields of a core.data.Dataset, with the whole set's class counts and a sentence saying it is streamed."""
    from core.budget import decoded_bytes, human_bytes

    rng = np.random.default_rng(seed)
    picks = []
    for c in range(streamed.num_classes):
        members = np.flatnonzero(streamed.labels == c)
        picks.append(rng.choice(members, size=min(SAMPLE_PER_CLASS, len(members)), replace=False))
    idx = np.sort(np.concatenate(picks))
    total = len(streamed.labels)
    need = human_bytes(decoded_bytes(total, streamed.size, streamed.channels))
    note = _(
        "Streamed from disk: decoded, these {count} images would need {need}, over the {budget}. "
        "Training reads them from disk as it goes; this page explores a sample of {sample}."
    ).format(count=number(total), need=need, budget=budget.name, sample=number(len(idx)))
    return {
        "images": streamed.take(idx),
        "labels": streamed.labels[idx],
        "class_names": streamed.class_names,
        "source": streamed.source,
        "skipped": streamed.skipped,
        "files": [streamed.files[i] for i in idx],
        "streamed_counts": streamed.class_counts(),
        "streamed_note": note,
    }
