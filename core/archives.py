"""Reading archives that users bring: class-folder ZIPs (safely) and the Keras datasets' own files.

Nothing here extracts to disk: ZIP entries are read in memory one by one, so an entry named
``../x`` or ``/etc/x`` can never be written anywhere.
"""

from __future__ import annotations

import gzip
import io
import pickle
import posixpath
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core.errors import StudioError
from core.i18n import _, number
from core.images import is_system_file

MAX_ZIP_ENTRIES = 200_000
MAX_ZIP_TOTAL_BYTES = 4 * 1024**3
MAX_ZIP_ENTRY_BYTES = 256 * 1024**2
# Image formats are compressed already; deflate gains little on them, so a large ratio means a bomb.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_MIN_BYTES = 1024 * 1024
ENCRYPTED_FLAG = 0x1  # general purpose bit 0: the entry is encrypted (needs a password)


@dataclass
class ZipEntry:
    class_name: str
    name: str
    info: zipfile.ZipInfo


def open_zip(source: str | Path | bytes | BinaryIO, label: str) -> zipfile.ZipFile:
    """Open a ZIP from a path, bytes or a file object; ``label`` names it in messages."""
    try:
        if isinstance(source, bytes):
            source = io.BytesIO(source)
        return zipfile.ZipFile(source)
    except FileNotFoundError:
        raise StudioError(_("ZIP file '{name}' does not exist. Check the path.").format(name=label)) from None
    except (zipfile.BadZipFile, OSError) as err:
        raise StudioError(
            _("'{name}' is not a readable ZIP archive ({reason}). Zip the class folders again.").format(
                name=label, reason=err
            )
        ) from None


def scan_class_zip(zf: zipfile.ZipFile, label: str) -> tuple[list[ZipEntry], list[tuple[str, str]]]:
    """Entries grouped by class folder, and (name, reason) for every entry that is skipped.

    Refuses the whole archive when its entry count or total size marks it as a ZIP bomb, or when every file in
    it is encrypted; a single encrypted entry is skipped with its reason.
    """
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_ENTRIES:
        raise StudioError(
            _("ZIP '{name}' has {count} entries, over the limit of {limit}: split it into smaller archives.").format(
                name=label, count=len(infos), limit=MAX_ZIP_ENTRIES
            )
        )
    total = sum(i.file_size for i in infos)
    if total > MAX_ZIP_TOTAL_BYTES:
        raise StudioError(
            _(
                "ZIP '{name}' expands to {size} GiB, over the limit of {limit} GiB: split it or resize the images "
                "first."
            ).format(name=label, size=f"{total / 1024**3:.1f}", limit=f"{MAX_ZIP_TOTAL_BYTES / 1024**3:.0f}")
        )
    encrypted = sum(bool(i.flag_bits & ENCRYPTED_FLAG) for i in infos)
    if infos and encrypted == len(infos):
        raise StudioError(
            _(
                "ZIP '{name}' is password-protected: all {count} of its files are encrypted, and CNN Studio reads no "
                "passwords. Zip the class folders again without a password."
            ).format(name=label, count=number(len(infos)))
        )
    skipped: list[tuple[str, str]] = []
    kept: list[tuple[list[str], zipfile.ZipInfo]] = []
    for info in infos:
        name = info.filename.replace("\\", "/")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts:
            skipped.append((info.filename, _("unsafe path (absolute or with '..'); not read")))
        elif is_system_file(name):
            skipped.append((info.filename, _("system file, not an image")))
        elif info.flag_bits & ENCRYPTED_FLAG:
            skipped.append((info.filename, _("encrypted (password-protected); add it to the ZIP without a password")))
        elif info.file_size > MAX_ZIP_ENTRY_BYTES:
            reason = _("{size} bytes, over the per-file limit of {limit}").format(
                size=info.file_size, limit=MAX_ZIP_ENTRY_BYTES
            )
            skipped.append((info.filename, reason))
        elif info.file_size >= RATIO_CHECK_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(
            info.compress_size, 1
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            skipped.append(
                (
                    info.filename,
                    _("compression ratio {ratio}:1 over {limit}:1, refused as a ZIP bomb").format(
                        ratio=f"{ratio:.0f}", limit=MAX_COMPRESSION_RATIO
                    ),
                )
            )
        else:
            kept.append((parts, info))
    # A ZIP of a folder holds root/class/file: drop a root folder that every entry shares.
    while kept and all(len(p) >= 3 for p, _i in kept) and len({p[0] for p, _i in kept}) == 1:
        kept = [(p[1:], i) for p, i in kept]
    entries = []
    for parts, info in kept:
        if len(parts) < 2:
            skipped.append(
                (info.filename, _("not inside a class folder; put each image in a folder named after its class"))
            )
        else:
            entries.append(ZipEntry(parts[0], posixpath.join(*parts), info))
    return entries, skipped


def read_entry(zf: zipfile.ZipFile, entry: ZipEntry) -> bytes:
    """An entry's bytes; BadZipFile (a skip reason) for what zipfile cannot read (a password, a method)."""
    # ZipExtFile never returns more than the declared size, which the caps above have checked.
    try:
        with zf.open(entry.info) as handle:
            return handle.read(MAX_ZIP_ENTRY_BYTES + 1)
    except (RuntimeError, NotImplementedError) as err:  # zipfile's "password required", unsupported methods
        raise zipfile.BadZipFile(str(err)) from None


# --- Keras standard datasets, in the files keras.datasets downloads -------------------------------------

_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        # Protocol-2 pickles written by Python 3 store bytes as latin-1 text re-encoded by this call.
        ("_codecs", "encode"),
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles: allow numpy array reconstruction and nothing else."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load '{module}.{name}' from a dataset file")


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def read_mnist_npz(source: str | Path | bytes, label: str = "mnist.npz") -> Arrays:
    """``mnist.npz`` as keras.datasets.mnist caches it: x_train, y_train, x_test, y_test."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        with np.load(handle, allow_pickle=False) as f:
            arrays = tuple(np.asarray(f[k]) for k in ("x_train", "y_train", "x_test", "y_test"))
    except KeyError as err:
        raise StudioError(
            _("'{name}' has no array {array}: expected x_train, y_train, x_test, y_test as in mnist.npz.").format(
                name=label, array=err
            )
        ) from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise StudioError(
            _("'{name}' is not a readable .npz archive ({reason}). Use the original mnist.npz.").format(
                name=label, reason=err
            )
        ) from None
    x_train, y_train, x_test, y_test = arrays
    _check_pairs(label, x_train, y_train, x_test, y_test, ndim=3)
    return x_train.astype(np.uint8), y_train, x_test.astype(np.uint8), y_test


FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)


def read_fashion_mnist(files: dict[str, bytes]) -> Arrays:
    """Fashion-MNIST's four gzipped IDX files, keyed by their standard names."""
    missing = [name for name in FASHION_FILES if name not in files]
    if missing:
        raise StudioError(
            _("Fashion-MNIST needs the four files {files}; missing: {missing}.").format(
                files=", ".join(FASHION_FILES), missing=", ".join(missing)
            )
        )
    try:
        y_train, x_train, y_test, x_test = (_read_idx(name, files[name]) for name in FASHION_FILES)
    except (OSError, EOFError, ValueError) as err:
        raise StudioError(
            _("A Fashion-MNIST file is not a gzipped IDX file ({reason}). Use the original downloads.").format(
                reason=err
            )
        ) from None
    _check_pairs("Fashion-MNIST", x_train, y_train, x_test, y_test, ndim=3)
    return x_train, y_train, x_test, y_test


def _read_idx(name: str, data: bytes) -> np.ndarray:
    raw = gzip.decompress(data)
    # IDX header: magic (0, 0, dtype 0x08 = ubyte, ndim), then ndim big-endian int32 sizes.
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{name}: bad IDX magic number")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">i4", count=ndim, offset=4)
    offset = 4 + 4 * ndim
    if len(raw) - offset != int(np.prod(dims)):
        raise ValueError(f"{name}: header says {tuple(dims)} but the file holds {len(raw) - offset} bytes")
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(tuple(int(d) for d in dims))


def read_cifar_tar(source: str | Path | bytes, fine: bool = True, label: str = "CIFAR archive") -> Arrays:
    """``cifar-10-python.tar.gz`` or ``cifar-100-python.tar.gz`` (the files keras.datasets extracts)."""
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")
        with handle, tarfile.open(fileobj=handle, mode="r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def load(name: str) -> dict:
                if name not in members:
                    raise StudioError(
                        _("'{archive}' has no member '{name}': it is not a CIFAR python archive.").format(
                            archive=label, name=name
                        )
                    )
                return _unpickle(tar.extractfile(members[name]).read())

            return _cifar_arrays(load, fine, label)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise StudioError(
            _("'{name}' is not a readable .tar.gz archive ({reason}). Use the original CIFAR python archive.").format(
                name=label, reason=err
            )
        ) from None


def read_cifar_dir(folder: Path, fine: bool = True) -> Arrays:
    """The folder keras.datasets extracts (``cifar-10-batches-py`` or ``cifar-100-python``)."""

    def load(name: str) -> dict:
        path = folder / name
        if not path.is_file():
            raise StudioError(
                _("'{path}' is missing: the CIFAR folder is incomplete. Delete it and download again.").format(
                    path=path
                )
            )
        return _unpickle(path.read_bytes())

    return _cifar_arrays(load, fine, str(folder))


def _cifar_arrays(load, fine: bool, label: str) -> Arrays:
    try:
        try:
            batches = [load("data_batch_1")]
        except StudioError:
            batches = []
        if batches:  # CIFAR-10: five training batches
            batches += [load(f"data_batch_{i}") for i in range(2, 6)]
            test = load("test_batch")
            key = b"labels"
        else:  # CIFAR-100: one training file, fine and coarse labels
            batches = [load("train")]
            test = load("test")
            key = b"fine_labels" if fine else b"coarse_labels"
        x_train = np.concatenate([_cifar_images(b) for b in batches])
        y_train = np.concatenate([np.asarray(b[key]) for b in batches])
        x_test, y_test = _cifar_images(test), np.asarray(test[key])
    except (KeyError, TypeError, ValueError, pickle.UnpicklingError) as err:
        raise StudioError(
            _("'{name}' holds batches that are not CIFAR data ({reason}).").format(name=label, reason=err)
        ) from None
    _check_pairs(label, x_train, y_train, x_test, y_test, ndim=4)
    return x_train, y_train, x_test, y_test


def _cifar_images(batch: dict) -> np.ndarray:
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    return data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _unpickle(raw: bytes) -> dict:
    return _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()


def _check_pairs(label: str, x_train, y_train, x_test, y_test, ndim: int) -> None:
    for x, y, part in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if x.ndim != ndim or len(x) != len(y) or len(x) == 0:
            message = (
                _("'{name}' training arrays do not fit: images {images}, labels {labels}. Use the original file.")
                if part == "train"
                else _("'{name}' test arrays do not fit: images {images}, labels {labels}. Use the original file.")
            )
            raise StudioError(message.format(name=label, images=x.shape, labels=y.shape))
