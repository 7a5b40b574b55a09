"""Larger than memory: a folder over the memory budget streams from disk through tf.data, with the app's pixels."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import core.images
from core.config import DataConfig, StudioConfig, apply_preset
from core.data import load_dataset, load_folder
from core.images import decode_in_parallel
from core.runs import TEST_DATA_FILE
from core.status import read_status
from core.streaming import SAMPLE_PER_CLASS, StreamedDataset, is_streamed
from core.training import train_run

CLASSES = ("circle", "square", "bar")
SIZE = 48  # 180 images × 48 × 48 × 3 = 1.24 MB decoded: over a 1 MB budget


def shapes_folder(root: Path, per_class: int = 60) -> Path:
    """JPEGs of three easy classes (a disc, a square, a bar) on random dark backgrounds, 56 px."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGB", (56, 56), tuple(int(v) for v in rng.integers(0, 80, 3)))
            draw = ImageDraw.Draw(img)
            x, y = (int(v) for v in rng.integers(4, 24, 2))
            if c == 0:
                draw.ellipse([x, y, x + 26, y + 26], fill=(250, 200, 40))
            elif c == 1:
                draw.rectangle([x, y, x + 24, y + 24], fill=(40, 200, 250))
            else:
                draw.rectangle([2, y, 53, y + 9], fill=(200, 60, 220))
            img.save(root / name / f"{i}.jpg", quality=90)
    (root / "bar" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # listed; fails only when decoded
    return root


def test_a_folder_over_the_budget_streams_with_the_same_pixels_as_in_memory(tmp_path, monkeypatch):
    folder = shapes_folder(tmp_path / "shapes")
    monkeypatch.setenv("CNN_STUDIO_MEMORY_BUDGET_MB", "1")
    streamed = load_folder(folder, SIZE, None, stream=True)
    assert isinstance(streamed, StreamedDataset) and streamed.image_shape == (SIZE, SIZE, 3)
    monkeypatch.setenv("CNN_STUDIO_MEMORY_BUDGET_MB", "100")
    in_memory = load_folder(folder, SIZE, None, stream=True)
    assert not is_streamed(in_memory) and len(in_memory.labels) == 180 and len(streamed.labels) == 181
    # Same files, same pixels: through take() and through the tf.data elements alike (the broken file dropped).
    index = {name: i for i, name in enumerate(streamed.files)}
    picks = np.array([index[name] for name in in_memory.files[::17]])
    expected = in_memory.images[::17]
    assert np.array_equal(streamed.take(picks), expected)
    elements = list(streamed.elements(np.array([*picks, index["bar/broken.jpg"]])).as_numpy_iterator())
    assert len(elements) == len(picks)
    assert np.array_equal(np.stack([image for image, _ in elements]), expected)
    assert [int(label) for _, label in elements] == in_memory.labels[::17].tolist()


def test_the_dataset_page_explores_a_streamed_folder_from_a_sample_that_says_so(tmp_path, monkeypatch):
    config = DataConfig(source="folder", path=str(shapes_folder(tmp_path / "shapes", per_class=120)), image_size=SIZE)
    monkeypatch.setenv("CNN_STUDIO_MEMORY_BUDGET_MB", "1")
    sample = load_dataset(config, sample_streamed=True)
    assert sample.images.shape == (3 * SAMPLE_PER_CLASS, SIZE, SIZE, 3)
    assert sample.class_counts().tolist() == [121, 120, 120]  # bar, circle, square: all listed files
    assert sample.streamed_note.startswith("Streamed from disk: decoded, these 361 images would need 2.5 MB, over")
    assert sample.streamed_note.endswith("this page explores a sample of 300.")


def test_parallel_decoding_gives_the_sequential_result(tmp_path, monkeypatch):
    folder = shapes_folder(tmp_path / "shapes", per_class=10)
    items = [("", p.name, p.read_bytes) for p in sorted(folder.rglob("*.jpg"))]
    parallel = list(decode_in_parallel(items, 20, None))
    monkeypatch.setattr(core.images, "DECODE_THREADS", 1)
    sequential = list(decode_in_parallel(items, 20, None))
    assert len(parallel) == len(sequential) == 31
    for (_, name, a), (_, name_b, b) in zip(parallel, sequential, strict=True):
        assert name == name_b
        if isinstance(a, Exception):
            assert type(a) is type(b) and name == "broken.jpg"
        else:
            assert np.array_equal(a[0], b[0]) and a[1] == b[1]


@pytest.mark.slow
def test_training_streams_a_folder_over_the_memory_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_MEMORY_BUDGET_MB", "1")
    config = StudioConfig()
    config.data.source, config.data.path, config.data.image_size = "folder", str(shapes_folder(tmp_path / "d")), SIZE
    config.model = apply_preset("small-64")
    config.training.epochs = 3
    result = train_run(config, tmp_path / "ws")
    assert result.status == "finished", result.error
    status = read_status(Path(result.run_dir))
    assert status.streamed is True and status.test_size and result.test_accuracy > 0.6
    with np.load(Path(result.run_dir) / TEST_DATA_FILE) as data:  # the test split is kept in the run as ever
        assert data["images"].shape == (status.test_size, SIZE, SIZE, 3) and data["images"].dtype == np.uint8
