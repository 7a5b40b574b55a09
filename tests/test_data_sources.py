"""Every dataset source loads real files the test writes, and every bad input gets its message."""

import gzip
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import archives
from core.config import DataConfig
from core.data import load_class_images, load_dataset, load_folder, load_keras, load_zip, split_dataset
from core.errors import StudioError
from tests.conftest import class_zip, image_bytes, make_class_files

# --- ZIP of class folders ---------------------------------------------------------------------------


def test_zip_of_class_folders_loads_with_sorted_class_names():
    data = class_zip(make_class_files({"dogs": 4, "cats": 3}))
    ds = load_zip(data, "pets.zip", 24, None)
    assert ds.class_names == ["cats", "dogs"]
    assert ds.images.shape == (7, 24, 24, 3) and ds.images.dtype == np.uint8
    assert list(ds.class_counts()) == [3, 4]
    assert ds.skipped == []


def test_zip_with_a_single_root_folder_is_unwrapped():
    data = class_zip(make_class_files({"a": 2, "b": 2}, prefix="my_photos/"))
    assert load_zip(data, "x.zip", 16, None).class_names == ["a", "b"]


def test_zip_through_load_dataset_from_a_path(tmp_path):
    path = tmp_path / "set.zip"
    path.write_bytes(class_zip(make_class_files({"a": 3, "b": 3})))
    ds = load_dataset(DataConfig(source="zip", path=str(path), image_size=20))
    assert ds.images.shape == (6, 20, 20, 3)


def test_bad_entries_are_skipped_with_reasons_and_good_files_still_load(tmp_path):
    files = make_class_files({"cats": 3, "dogs": 3})
    files.update(
        {
            "cats/broken.png": image_bytes("RGB", size=(64, 64))[:3000],
            "cats/notes.txt": b"not an image",
            "dogs/.DS_Store": b"\x00\x00\x00\x01Bud1",
            "dogs/Thumbs.db": b"\xd0\xcf\x11\xe0",
            "__MACOSX/dogs/._img_0.png": b"\x00\x05\x16\x07",
            "loose.png": image_bytes("RGB"),
            "../escape.png": image_bytes("RGB"),
            "/abs/evil.png": image_bytes("RGB"),
        }
    )
    ds = load_zip(class_zip(files), "mixed.zip", 16, None)
    reasons = dict(ds.skipped)
    assert len(ds.labels) == 6 and ds.class_names == ["cats", "dogs"]
    assert "corrupt or truncated" in reasons["cats/broken.png"]
    assert "not an image" in reasons["cats/notes.txt"]
    assert "system file" in reasons["dogs/.DS_Store"]
    assert "system file" in reasons["dogs/Thumbs.db"]
    assert "system file" in reasons["__MACOSX/dogs/._img_0.png"]
    assert "not inside a class folder" in reasons["loose.png"]
    assert "unsafe path" in reasons["../escape.png"]
    assert "unsafe path" in reasons["/abs/evil.png"]
    # Nothing was extracted anywhere, let alone outside a temporary folder.
    assert not (tmp_path.parent / "escape.png").exists() and not Path("/abs/evil.png").exists()


def test_mixed_modes_in_one_zip_become_one_channel_count():
    files = {
        "gray/a.png": image_bytes("L"),
        "gray/b.png": image_bytes("LA"),
        "gray/c.tif": image_bytes("I;16", fmt="TIFF"),
        "colour/a.png": image_bytes("RGBA"),
        "colour/b.png": image_bytes("P"),
        "colour/c.jpg": image_bytes("CMYK", fmt="JPEG"),
    }
    ds = load_zip(class_zip(files), "modes.zip", 16, None)
    assert ds.images.shape == (6, 16, 16, 3), "one colour image makes the set RGB"
    assert set(ds.original_modes) >= {"L", "LA", "RGBA", "P", "CMYK"}
    gray_only = {k: v for k, v in files.items() if k.startswith("gray")}
    gray_only.update({"other/a.png": image_bytes("L", seed=3), "other/b.png": image_bytes("1")})
    assert load_zip(class_zip(gray_only), "g.zip", 16, None).images.shape[-1] == 1, "grayscale stays one channel"
    assert load_zip(class_zip(gray_only), "g.zip", 16, 3).images.shape[-1] == 3, "unless RGB is chosen"


def test_zip_bomb_entry_is_refused_by_compression_ratio():
    files = make_class_files({"a": 2, "b": 2})
    files["a/bomb.bmp"] = b"\x00" * (20 * 1024 * 1024)  # 20 MiB of zeros deflates ~1000:1
    ds = load_zip(class_zip(files), "bomb.zip", 16, None)
    assert "ZIP bomb" in dict(ds.skipped)["a/bomb.bmp"]
    assert len(ds.labels) == 4


def test_zip_with_too_many_entries_or_too_many_bytes_is_refused(monkeypatch):
    data = class_zip(make_class_files({"a": 6, "b": 6}))
    monkeypatch.setattr(archives, "MAX_ZIP_ENTRIES", 10)
    with pytest.raises(StudioError, match=r"ZIP 'many.zip' has 12 entries, over the limit of 10"):
        load_zip(data, "many.zip", 16, None)
    monkeypatch.setattr(archives, "MAX_ZIP_ENTRIES", 1000)
    monkeypatch.setattr(archives, "MAX_ZIP_TOTAL_BYTES", 1000)
    with pytest.raises(StudioError, match=r"ZIP 'big.zip' expands to .* over the limit"):
        load_zip(data, "big.zip", 16, None)


def test_empty_archive_not_a_zip_and_single_class_messages():
    with pytest.raises(StudioError, match=r"No images could be loaded from ZIP 'empty.zip' \(it is empty\)"):
        load_zip(class_zip({}), "empty.zip", 16, None)
    with pytest.raises(StudioError, match=r"'fake.zip' is not a readable ZIP archive"):
        load_zip(b"PK-but-not-really", "fake.zip", 16, None)
    with pytest.raises(StudioError, match=r"Only one class \('cats'\) has images .* at least two"):
        load_zip(class_zip(make_class_files({"cats": 3})), "one.zip", 16, None)
    only_junk = {"a/x.txt": b"text", "b/y.txt": b"text"}
    with pytest.raises(
        StudioError, match=r"No images could be loaded from ZIP 'junk.zip' \(2 files skipped.*not an image"
    ):
        load_zip(class_zip(only_junk), "junk.zip", 16, None)


def test_class_whose_files_are_all_bad_is_dropped_and_labels_stay_dense():
    files = make_class_files({"a": 2, "c": 2})
    files["b/only.txt"] = b"nope"
    ds = load_zip(class_zip(files), "x.zip", 16, None)
    assert ds.class_names == ["a", "c"] and sorted(set(ds.labels.tolist())) == [0, 1]


# --- Folders and per-class uploads -------------------------------------------------------------------


def test_server_folder_loads_recursively_and_skips_litter(tmp_path):
    for name, data in make_class_files({"roses": 3, "tulips": 2}).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "roses" / "nested").mkdir()
    (tmp_path / "roses" / "nested" / "x.jpg").write_bytes(image_bytes("RGB", fmt="JPEG"))
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    ds = load_folder(tmp_path, 32, None)
    assert ds.class_names == ["roses", "tulips"] and list(ds.class_counts()) == [4, 2]
    assert dict(ds.skipped) == {".DS_Store": "system file, not an image"}
    with pytest.raises(StudioError, match=r"Folder '/no/such/dir' does not exist"):
        load_folder("/no/such/dir", 32, None)


def test_per_class_uploads_and_camera_pictures_load():
    uploads = {
        "thumbs up": [("a.png", image_bytes("RGB", seed=1)), ("camera.jpg", image_bytes("RGB", fmt="JPEG"))],
        "thumbs down": [("b.png", image_bytes("RGB", seed=2)), ("c.png", image_bytes("RGBA", seed=3))],
    }
    ds = load_class_images(uploads, 48, 1)
    assert ds.images.shape == (4, 48, 48, 1)
    assert ds.class_names == ["thumbs down", "thumbs up"]
    with pytest.raises(StudioError, match="empty name"):
        load_class_images({"  ": [("a.png", image_bytes())]}, 48, None)


# --- Keras datasets in their real file formats -------------------------------------------------------


def _mnist_npz(path: Path, n_train=30, n_test=10) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        path,
        x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        y_train=np.arange(n_train) % 10,
        x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        y_test=np.arange(n_test) % 10,
    )


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def _fashion_files(n_train=20, n_test=10) -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    return {
        "train-labels-idx1-ubyte.gz": _idx(np.arange(n_train) % 10),
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (n_train, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(n_test) % 10),
        "t10k-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (n_test, 28, 28))),
    }


def _cifar_batches(hundred: bool, per_batch=20) -> dict[str, bytes]:
    rng = np.random.default_rng(2)

    def batch(n):
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"batch_label": b"x"}
        if hundred:
            d[b"fine_labels"], d[b"coarse_labels"] = (np.arange(n) % 100).tolist(), (np.arange(n) % 20).tolist()
        else:
            d[b"labels"] = (np.arange(n) % 10).tolist()
        return pickle.dumps(d, protocol=2)

    if hundred:
        return {"train": batch(per_batch * 5), "test": batch(per_batch), "meta": pickle.dumps({})}
    files = {f"data_batch_{i}": batch(per_batch) for i in range(1, 6)}
    files["test_batch"] = batch(per_batch)
    return files


def _tar_gz(folder: str, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_mnist_from_the_keras_cache_keeps_the_official_test_split(keras_home):
    _mnist_npz(keras_home / "mnist.npz")
    ds = load_dataset(DataConfig(source="keras:mnist", val_split=0.2))
    assert ds.images.shape == (40, 28, 28, 1) and ds.num_classes == 10
    split = split_dataset(ds, 0.2, 0.15, seed=0, use_official_test=True)
    assert list(split.test) == list(range(30, 40))
    assert len(split.val) == 10 and len(split.train) == 20  # one validation image per class


def test_fashion_mnist_from_cache_and_from_upload(keras_home):
    files = _fashion_files()
    (keras_home / "fashion-mnist").mkdir()
    for name, data in files.items():
        (keras_home / "fashion-mnist" / name).write_bytes(data)
    ds = load_dataset(DataConfig(source="keras:fashion_mnist", image_size=14))
    assert ds.images.shape == (30, 14, 14, 1) and ds.class_names[9] == "Ankle boot"
    uploaded = load_keras("keras:fashion_mnist", 28, 3, files)
    assert uploaded.images.shape == (30, 28, 28, 3)
    with pytest.raises(StudioError, match="missing: t10k-images-idx3-ubyte.gz"):
        load_keras("keras:fashion_mnist", 28, None, {k: v for k, v in files.items() if "t10k-images" not in k})


def test_cifar10_archive_upload_and_extracted_cache(keras_home):
    batches = _cifar_batches(hundred=False)
    ds = load_keras("keras:cifar10", 32, None, {"cifar-10-python.tar.gz": _tar_gz("cifar-10-batches-py", batches)})
    assert ds.images.shape == (120, 32, 32, 3) and len(ds.official_test) == 20
    # The first image's red plane is the first 1024 bytes of its row, as in the CIFAR format.
    first = pickle.loads(batches["data_batch_1"])[b"data"][0]
    assert np.array_equal(ds.images[0, :, :, 0].ravel(), first[:1024])
    folder = keras_home / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, data in batches.items():
        (folder / name).write_bytes(data)
    assert load_dataset(DataConfig(source="keras:cifar10", color_mode="grayscale")).images.shape == (120, 32, 32, 1)


def test_cifar100_archive_in_the_cache_folder(keras_home):
    (keras_home / "cifar-100-python.tar.gz").write_bytes(_tar_gz("cifar-100-python", _cifar_batches(hundred=True)))
    ds = load_dataset(DataConfig(source="keras:cifar100"))
    assert ds.images.shape == (120, 32, 32, 3) and ds.num_classes == 100 and ds.labels.max() == 99


def test_a_pickle_that_runs_code_is_refused():
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    files = _cifar_batches(hundred=False)
    files["data_batch_1"] = pickle.dumps({b"data": Evil()})
    with pytest.raises(StudioError, match="not CIFAR data.*refusing to load 'builtins.print'"):
        load_keras("keras:cifar10", 32, None, {"c.tar.gz": _tar_gz("cifar-10-batches-py", files)})


def test_bad_keras_archives_name_the_file():
    with pytest.raises(StudioError, match=r"'mnist.npz' is not a readable .npz archive"):
        load_keras("keras:mnist", 28, None, {"mnist.npz": b"garbage"})
    with pytest.raises(StudioError, match=r"'c10.tar.gz' is not a readable .tar.gz archive"):
        load_keras("keras:cifar10", 32, None, {"c10.tar.gz": b"garbage"})


@pytest.mark.slow
def test_offline_and_not_cached_says_where_to_put_the_archive(keras_home):
    # The real keras.datasets download runs and fails (no network here); the message says what to do.
    with pytest.raises(StudioError) as info:
        load_dataset(DataConfig(source="keras:mnist"))
    message = str(info.value)
    assert str(keras_home / "mnist.npz") in message
    assert "upload mnist.npz on the Dataset page" in message


# --- Splits ------------------------------------------------------------------------------------------


def test_class_with_too_few_images_for_the_split_is_named():
    ds = load_zip(class_zip(make_class_files({"many": 10, "few": 2})), "x.zip", 16, None)
    with pytest.raises(
        StudioError, match=r"Class 'few' has 2 images, too few for a validation split of 0.2 and a test"
    ):
        split_dataset(ds, 0.2, 0.2, seed=0)
    split = split_dataset(ds, 0.2, 0.0, seed=0)
    assert len(split.test) == 0 and len(split.val) == 3


def test_split_is_stratified_seeded_and_disjoint():
    ds = load_dataset(DataConfig(source="builtin:shapes", shapes_count=600, image_size=16))
    a = split_dataset(ds, 0.2, 0.1, seed=7)
    b = split_dataset(ds, 0.2, 0.1, seed=7)
    c = split_dataset(ds, 0.2, 0.1, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a.parts().values(), b.parts().values(), strict=True))
    assert not np.array_equal(a.test, c.test)
    everything = np.concatenate(list(a.parts().values()))
    assert len(everything) == 600 and len(np.unique(everything)) == 600
    counts = a.counts(ds.labels, ds.num_classes)
    assert list(counts["test"]) == [10] * 6 and list(counts["validation"]) == [20] * 6


def test_zip_member_with_a_bad_checksum_does_not_drop_the_set():
    data = bytearray(class_zip(make_class_files({"a": 2, "b": 2}), compression=zipfile.ZIP_STORED))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("a/img_0.png")
    # Local header is 30 bytes + name + extra; flip a byte in the middle of the stored PNG.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.file_size // 2] ^= 0xFF
    ds = load_zip(bytes(data), "crc.zip", 16, None)
    assert len(ds.labels) == 3
    assert "Bad CRC-32" in dict(ds.skipped)["a/img_0.png"]
