"""Datasets: one interface over the built-in, Keras and user image sources, plus splits and statistics.

Every source returns uint8 images (N×H×W×C), integer labels and class names. Images stay uint8:
normalization and augmentation happen later, inside the model or the tf.data pipeline.
"""

from __future__ import annotations

import os
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core import archives
from core.budget import MemoryBudget, check_decoded_size, decoded_bytes, human_bytes, memory_budget
from core.config import AugmentConfig, DataConfig
from core.errors import StudioError
from core.i18n import N_, _, ngettext, number
from core.images import SYSTEM_FILES, BadImage, decode_in_parallel, is_system_file
from core.shapes import generate_shapes

DEFAULT_IMAGE_SIZES = {
    "builtin:shapes": 32,
    "builtin:digits": 28,
    "keras:mnist": 28,
    "keras:fashion_mnist": 28,
    "keras:cifar10": 32,
    "keras:cifar100": 32,
}
USER_IMAGE_SIZE = 64
DIGITS_NATIVE_MAX = 16  # scikit-learn's digits hold 0..16 per pixel

KERAS_CLASS_NAMES = {
    "keras:mnist": [str(i) for i in range(10)],
    "keras:fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
    "keras:cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
    "keras:cifar100": [f"class {i}" for i in range(100)],
}
# The file (or folder) keras.datasets leaves in its cache, and the file a user can upload instead.
KERAS_ARCHIVES = {
    "keras:mnist": ("mnist.npz", "mnist.npz"),
    "keras:fashion_mnist": ("fashion-mnist", N_("the four fashion-mnist .gz files")),
    "keras:cifar10": ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-python.tar.gz"),
    "keras:cifar100": ("cifar-100-python-target/cifar-100-python", "cifar-100-python.tar.gz"),
}


@dataclass
class Dataset:
    """Images as uint8 N×H×W×C, integer labels, class names, and what was skipped on the way."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Indices of a test split that ships with the source (Keras sets), or None.
    official_test: np.ndarray | None = None
    # Width and height of each source file before resizing, and the count of Pillow modes seen.
    original_sizes: np.ndarray | None = None
    original_modes: dict[str, int] = field(default_factory=dict)
    files: list[str] | None = None
    # A sample of a set streamed from disk (core.streaming.explore_sample): the whole set's class counts, and
    # the sentence that says so.
    streamed_counts: np.ndarray | None = None
    streamed_note: str | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def class_counts(self) -> np.ndarray:
        if self.streamed_counts is not None:
            return self.streamed_counts
        return np.bincount(self.labels, minlength=self.num_classes)


def channels_for(color_mode: str) -> int | None:
    return {"auto": None, "rgb": 3, "grayscale": 1}[color_mode]


def default_image_size(source: str) -> int:
    return DEFAULT_IMAGE_SIZES.get(source, USER_IMAGE_SIZE)


def load_dataset(
    config: DataConfig,
    zip_bytes: bytes | None = None,
    class_images: dict[str, list[tuple[str, bytes]]] | None = None,
    keras_files: dict[str, bytes] | None = None,
    allowed_roots: Iterable[str] | None = None,
    budget: MemoryBudget | None = None,
    stream: bool = False,
    sample_streamed: bool = False,
) -> Dataset:
    """Load the dataset a DataConfig describes; uploads are passed as bytes (they never enter the config).
    ``stream`` (training): a server folder over the budget streams from disk (:mod:`core.streaming`);
    ``sample_streamed`` (the Dataset page): such a folder comes back as a decoded sample that says so.

    ``allowed_roots`` is for loading on behalf of the app's visitors: a server folder (or a ZIP path) is read
    only inside those folders, within :func:`folder_limits`. None (the CLI, scripts) reads any path.
    ``budget`` bounds the decoded array (default: the machine's, :func:`core.budget.memory_budget`); a set
    over it is refused with the numbers before anything is decoded.
    """
    config.validate()
    size = config.image_size or default_image_size(config.source)
    channels = channels_for(config.color_mode)
    roots = None if allowed_roots is None else list(allowed_roots)
    budget = budget or memory_budget()
    if config.source == "builtin:shapes":
        # Generated in RGB (then converted): the RGB array is what must fit.
        check_decoded_size(config.shapes_count, size, 3, _("The Shapes set"), budget)
        images, labels, names = generate_shapes(config.shapes_count, size, config.seed)
        dataset = Dataset(images, labels, names, config.source)
        if channels == 1:
            dataset.images = convert_images(images, size, 1)
    elif config.source == "builtin:digits":
        dataset = load_digits(size, channels, budget)
    elif config.source in KERAS_CLASS_NAMES:
        dataset = load_keras(config.source, size, channels, keras_files, budget)
    elif config.source == "folder":
        limits = None if roots is None else folder_limits()
        dataset = load_folder(config.path, size, channels, roots, limits, budget, stream or sample_streamed)
        if sample_streamed and getattr(dataset, "streamed", False):
            from core.streaming import explore_sample

            dataset = Dataset(**explore_sample(dataset, budget, config.seed))
    elif config.source == "zip":
        if zip_bytes is None and roots is not None:
            check_allowed(config.path, roots, "ZIP")
        dataset = load_zip(zip_bytes if zip_bytes is not None else config.path, config.path, size, channels, budget)
    else:
        dataset = load_class_images(class_images or {}, size, channels, budget)
    return dataset


def check_source(config: DataConfig, budget: MemoryBudget | None = None) -> None:
    """The cheap checks of a source before a run folder exists (the CLI): a ZIP path must open, its directory
    must pass the ZIP checks (caps, not all encrypted), and what it decodes to must fit the memory budget.
    StudioError when it does not."""
    check_planned_size(config, budget=budget)


# Images and channels of the sources whose size is known without reading them.
KNOWN_SOURCE_SIZES = {
    "builtin:digits": (1797, 1),
    "keras:mnist": (70_000, 1),
    "keras:fashion_mnist": (70_000, 1),
    "keras:cifar10": (60_000, 3),
    "keras:cifar100": (60_000, 3),
}


@dataclass(frozen=True)
class PlannedSize:
    """What a source will decode to, known before decoding. ``channels`` is None when the files decide."""

    label: str
    images: int
    size: int
    channels: int | None

    def bytes(self, channels: int | None = None) -> int:
        return decoded_bytes(self.images, self.size, channels or self.channels or 1)

    def text(self, budget: MemoryBudget) -> str:
        """'60,000 images at 224×224×3: 9.0 GB decoded (budget 2.0 GB)', both colour cases when automatic."""
        count, side, limit = number(self.images), f"{self.size}×{self.size}", human_bytes(budget.bytes)
        if self.channels:
            return _("{count} images at {shape}: {need} decoded (budget {budget})").format(
                count=count, shape=f"{side}×{self.channels}", need=human_bytes(self.bytes()), budget=limit
            )
        return _("{count} images at {shape}: {gray} decoded in grayscale, {colour} in colour (budget {budget})").format(
            count=count, shape=side, gray=human_bytes(self.bytes(1)), colour=human_bytes(self.bytes(3)), budget=limit
        )

    def check(self, budget: MemoryBudget) -> None:
        check_decoded_size(self.images, self.size, self.channels or 1, self.label, budget)


def planned_size(
    config: DataConfig,
    zip_bytes: bytes | None = None,
    class_images: dict[str, list[tuple[str, bytes]]] | None = None,
) -> PlannedSize | None:
    """The images, size and channels a source will decode to, from its ZIP directory, its file count or its
    known size, without decoding; None when it cannot be known without listing (a server folder) or the
    source is not there yet. A ZIP that fails its checks raises the same StudioError as loading it."""
    size = config.image_size or default_image_size(config.source)
    channels = channels_for(config.color_mode)
    if config.source == "builtin:shapes":
        return PlannedSize(_("The Shapes set"), config.shapes_count, size, channels or 3)
    if config.source in KNOWN_SOURCE_SIZES:
        count, native = KNOWN_SOURCE_SIZES[config.source]
        return PlannedSize(_("The {source} set").format(source=config.source), count, size, channels or native)
    if config.source == "zip" and (zip_bytes is not None or config.path):
        with archives.open_zip(zip_bytes if zip_bytes is not None else config.path, config.path) as zf:
            entries, _skipped = archives.scan_class_zip(zf, config.path)
        return PlannedSize(_("ZIP '{name}'").format(name=config.path), len(entries), size, channels)
    if config.source == "images" and class_images:
        count = sum(len(files) for files in class_images.values())
        return PlannedSize(_("The uploaded images"), count, size, channels) if count else None
    return None


def check_planned_size(
    config: DataConfig,
    zip_bytes: bytes | None = None,
    class_images: dict[str, list[tuple[str, bytes]]] | None = None,
    budget: MemoryBudget | None = None,
) -> PlannedSize | None:
    """:func:`planned_size`, refused with the numbers and the fix when it is over ``budget``."""
    planned = planned_size(config, zip_bytes, class_images)
    if planned is not None:
        planned.check(budget or memory_budget())
    return planned


def load_digits(size: int, channels: int | None, budget: MemoryBudget | None = None) -> Dataset:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images), scaled to 0..255 and resized."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    check_decoded_size(len(bunch.images), size, channels or 1, _("The Digits set"), budget or memory_budget())
    raw = np.rint(bunch.images * (255.0 / DIGITS_NATIVE_MAX)).astype(np.uint8)[..., None]
    images = convert_images(raw, size, channels or 1)
    return Dataset(
        images,
        bunch.target.astype(np.int32),
        [str(c) for c in bunch.target_names],
        "builtin:digits",
        original_sizes=np.tile([8, 8], (len(raw), 1)),
        original_modes={"L": len(raw)},
    )


def keras_cache_dir() -> Path:
    """Where keras.datasets caches its downloads: ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def load_keras(
    source: str,
    size: int,
    channels: int | None,
    files: dict[str, bytes] | None = None,
    budget: MemoryBudget | None = None,
) -> Dataset:
    """A Keras standard dataset from uploaded files, the Keras cache, or keras.datasets (downloads when online)."""
    if files:
        arrays = _read_keras_upload(source, files)
    else:
        arrays = _read_keras_cache(source)
        if arrays is None:
            arrays = _download_keras(source)
    x_train, y_train, x_test, y_test = arrays
    raw = np.concatenate([x_train, x_test])
    if raw.ndim == 3:
        raw = raw[..., None]
    labels = np.concatenate([y_train.reshape(-1), y_test.reshape(-1)]).astype(np.int32)
    native_channels = raw.shape[-1]
    label = _("The {source} set").format(source=source)
    check_decoded_size(len(raw), size, channels or native_channels, label, budget or memory_budget())
    images = convert_images(raw, size, channels or native_channels)
    names = KERAS_CLASS_NAMES[source]
    return Dataset(
        images,
        labels,
        names,
        source,
        official_test=np.arange(len(x_train), len(raw)),
        original_modes={"L" if native_channels == 1 else "RGB": len(raw)},
    )


def keras_missing_message(source: str, reason: str) -> str:
    cached, upload = KERAS_ARCHIVES[source]
    return _(
        "The Keras dataset '{source}' is not in the Keras cache ({cache}) and could not be downloaded ({reason}). "
        "Put {upload} there (keras.datasets' own download), or upload {upload} on the Dataset page."
    ).format(source=source, cache=keras_cache_dir() / cached, reason=reason, upload=_(upload))


def _read_keras_cache(source: str) -> archives.Arrays | None:
    cache = keras_cache_dir()
    cached, upload = KERAS_ARCHIVES[source]
    if source == "keras:mnist":
        path = cache / cached
        return archives.read_mnist_npz(path, str(path)) if path.is_file() else None
    if source == "keras:fashion_mnist":
        folder = cache / cached
        if all((folder / name).is_file() for name in archives.FASHION_FILES):
            return archives.read_fashion_mnist({n: (folder / n).read_bytes() for n in archives.FASHION_FILES})
        return None
    fine = True
    if (cache / cached).is_dir():
        return archives.read_cifar_dir(cache / cached, fine)
    if (cache / upload).is_file():  # a user may drop the archive itself into the cache folder
        return archives.read_cifar_tar(cache / upload, fine, str(cache / upload))
    return None


def _download_keras(source: str) -> archives.Arrays:
    import keras

    module = getattr(keras.datasets, source.split(":")[1])
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as err:  # keras raises bare Exception for URL failures
        raise StudioError(keras_missing_message(source, str(err).splitlines()[0][:200])) from None
    return x_train, y_train, x_test, y_test


def _read_keras_upload(source: str, files: dict[str, bytes]) -> archives.Arrays:
    names = {Path(n).name: data for n, data in files.items()}
    if source == "keras:mnist":
        (name, data), *_rest = names.items()
        return archives.read_mnist_npz(data, name)
    if source == "keras:fashion_mnist":
        return archives.read_fashion_mnist(names)
    (name, data), *_rest = names.items()
    return archives.read_cifar_tar(data, True, name)


def convert_images(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize/convert a uint8 N×H×W×C set image by image into one new array (no float copy of the set)."""
    n, height, width, have = images.shape
    if (height, width, have) == (size, size, channels):
        return images
    out = np.empty((n, size, size, channels), dtype=np.uint8)
    mode = "L" if channels == 1 else "RGB"
    for i in range(n):
        img = Image.fromarray(images[i, :, :, 0] if have == 1 else images[i])
        if img.mode != mode:
            img = img.convert(mode)
        if (height, width) != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(img)
        out[i] = pixels[..., None] if channels == 1 else pixels
    return out


# --- User images --------------------------------------------------------------------------------------


Reader = Callable[[], bytes]


# Loading server folders for the app's visitors: only inside the allowed folders, and within these caps per load
# (each can be changed with the environment variable of the same name; the CLI has no caps).
DATA_ROOTS_ENV = "CNN_STUDIO_DATA_ROOTS"
DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent / "data"  # a data/ folder beside the app
MAX_FOLDER_FILES = 100_000
MAX_FOLDER_BYTES = 2 * 1024**3
MAX_FOLDER_SECONDS = 120.0
FOLDER_LIMIT_ENVS = {
    "files": "CNN_STUDIO_MAX_FOLDER_FILES",
    "bytes": "CNN_STUDIO_MAX_FOLDER_BYTES",
    "seconds": "CNN_STUDIO_MAX_FOLDER_SECONDS",
}
TIME_CHECK_EVERY = 256  # entries between two looks at the clock while listing


@dataclass(frozen=True)
class FolderLimits:
    """At most this many files seen, bytes read and seconds spent (listing, reading and decoding) per load."""

    files: int = MAX_FOLDER_FILES
    bytes: int = MAX_FOLDER_BYTES
    seconds: float = MAX_FOLDER_SECONDS


def folder_limits() -> FolderLimits:
    """The caps for a server folder loaded for the app: the defaults, or the environment's numbers."""
    values: dict[str, float] = {}
    for name, env in FOLDER_LIMIT_ENVS.items():
        text = os.environ.get(env, "").strip()
        if not text:
            continue
        try:
            number = float(text.replace("_", ""))
        except ValueError:
            number = -1.0
        if number <= 0:
            raise StudioError(
                _("{setting} is not a positive number: the server's admin must fix or unset it.").format(
                    setting=f"{env}={text!r}"
                )
            )
        values[name] = number if name == "seconds" else int(number)
    return FolderLimits(**values)


def data_roots() -> list[str]:
    """The folders the app may read datasets from, as the admin wrote them.

    ``CNN_STUDIO_DATA_ROOTS`` (folders separated by ``os.pathsep``) when it is set, even empty (then none);
    otherwise the ``data/`` folder beside the app when it exists, else none.
    """
    configured = os.environ.get(DATA_ROOTS_ENV)
    if configured is None:
        return [str(DEFAULT_DATA_ROOT)] if DEFAULT_DATA_ROOT.is_dir() else []
    return [part.strip() for part in configured.split(os.pathsep) if part.strip()]


def roots_text(roots: Iterable[str | Path]) -> str:
    """Which folders are allowed and how to add one, for messages and the Dataset page."""
    roots = [str(r) for r in roots]
    add = _(
        "To add a folder, the server's admin sets {setting} (folders separated by '{separator}') and restarts the app."
    ).format(setting=DATA_ROOTS_ENV, separator=os.pathsep)
    if roots:
        allowed = _("This server reads datasets only inside {folders}.").format(
            folders=", ".join(f"'{r}'" for r in roots)
        )
    else:
        allowed = _("This server reads datasets from no folder.")
    return f"{allowed} {add}"


def check_allowed(path: str | Path, roots: Iterable[str | Path], what: str = "folder") -> Path:
    """``path`` with symlinks and '..' resolved, if it lies inside one of ``roots`` (resolved the same way);
    otherwise a StudioError that names the allowed folders. Nothing about ``path`` itself is revealed."""
    roots = list(roots)
    resolved = _resolve(path)
    for root in roots:
        real_root = _resolve(root)
        if resolved is not None and real_root is not None and resolved.is_relative_to(real_root):
            return resolved
    if what == "ZIP":
        message = _("ZIP '{path}' is outside the folders this server allows. {roots}")
    else:
        message = _("Folder '{path}' is outside the folders this server allows. {roots}")
    raise StudioError(message.format(path=path, roots=roots_text(roots)))


def _resolve(path: str | Path) -> Path | None:
    try:
        return Path(os.path.expanduser(str(path))).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None


def load_folder(
    path: str | Path,
    size: int,
    channels: int | None,
    allowed_roots: Iterable[str | Path] | None = None,
    limits: FolderLimits | None = None,
    budget: MemoryBudget | None = None,
    stream: bool = False,
) -> Dataset:
    """A server folder with one subfolder per class (the image_dataset_from_directory layout).

    ``stream``: a folder whose decoded array could exceed ``budget`` (at three channels unless one is asked for)
    is returned as a :class:`core.streaming.StreamedDataset` read from disk while training, instead of refused.

    With ``allowed_roots`` (the app), the folder must lie inside one of them once symlinks and '..' are
    resolved, and so must every file read; ``limits`` caps the files, bytes and seconds of the load.
    """
    roots = None if allowed_roots is None else list(allowed_roots)
    root = Path(path).expanduser() if roots is None else check_allowed(path, roots)
    real_roots = None if roots is None else [r for r in map(_resolve, roots) if r is not None]
    if not root.is_dir():
        raise StudioError(
            _(
                "Folder '{path}' does not exist on the server. Give the path of a folder with one subfolder per class."
            ).format(path=path)
        )
    deadline = None if limits is None else time.monotonic() + limits.seconds
    files, skipped = _list_folder(root, str(path), real_roots, limits, deadline)
    if stream and decoded_bytes(len(files), size, channels or 3) > (budget or memory_budget()).bytes:
        from core.streaming import stream_folder  # over the memory budget: train from disk

        return stream_folder(files, skipped, _("folder '{path}'").format(path=path), size, channels)
    items: list[tuple[str, str, Reader]] = []
    for rel, full in files:
        read = Path(full).read_bytes
        if deadline is not None:
            read = _before(deadline, str(path), limits, read)
        items.append((rel.split("/")[0], rel, read))
    return build_dataset(items, skipped, _("folder '{path}'").format(path=path), "folder", size, channels, budget)


def _list_folder(
    root: Path,
    label: str,
    real_roots: list[Path] | None,
    limits: FolderLimits | None,
    deadline: float | None,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(relative path, full path) of every file inside a class folder, sorted, and (name, reason) skipped.

    Walks with os.scandir: a subfolder that cannot be read is skipped with its reason; symlinked folders are not
    followed. Files directly in the folder (not in a class folder) are counted, not named, unless they are
    the usual system litter (.DS_Store, Thumbs.db).
    """
    found: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    loose = seen = total_bytes = 0
    stack = [(str(root), "")]
    while stack:
        folder, rel_folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as err:
            if not rel_folder:
                raise StudioError(
                    _("Folder '{path}' cannot be read ({reason}). Give a folder the server may read.").format(
                        path=label, reason=_reason(err)
                    )
                ) from None
            skipped.append(
                (rel_folder + "/", _("folder could not be read ({reason}); skipped").format(reason=_reason(err)))
            )
            continue
        for entry in entries:
            rel = f"{rel_folder}/{entry.name}" if rel_folder else entry.name
            seen += 1
            if deadline is not None and seen % TIME_CHECK_EVERY == 0 and time.monotonic() > deadline:
                raise _over_time(label, limits)
            if limits is not None and seen > limits.files:
                raise StudioError(
                    _(
                        "Folder '{path}' holds more than {count} files and folders, the most one load may list on "
                        "this server: point to a smaller folder (one subfolder per class), or ask the admin to "
                        "raise {setting}."
                    ).format(path=label, count=number(limits.files), setting=FOLDER_LIMIT_ENVS["files"])
                )
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, rel))
                    continue
                link = entry.is_symlink()
                if link and entry.is_dir():
                    skipped.append((rel, _("a link to a folder; links to folders are not followed")))
                    continue
                if "/" not in rel:  # beside the class folders: named only when it is the usual system litter
                    if entry.name.lower() in SYSTEM_FILES:
                        skipped.append((rel, _("system file, not an image")))
                    else:
                        loose += 1
                    continue
                is_file = entry.is_file()
                if is_file and link and real_roots is not None:
                    target = _resolve(entry.path)
                    if target is None or not any(target.is_relative_to(r) for r in real_roots):
                        skipped.append((rel, _("a link to a file outside the allowed folders; not read")))
                        continue
                file_bytes = entry.stat().st_size if is_file else 0
            except OSError as err:
                skipped.append((rel, _("could not be read ({reason})").format(reason=_reason(err))))
                continue
            if not is_file:
                skipped.append((rel, _("not a regular file; not read")))
            elif is_system_file(rel):
                skipped.append((rel, _("system file, not an image")))
            else:
                total_bytes += file_bytes
                if limits is not None and total_bytes > limits.bytes:
                    raise StudioError(
                        _(
                            "Folder '{path}' holds more than {size} of files in its class folders, the most one load "
                            "may read on this server: point to a smaller folder or resize the images first, or ask "
                            "the admin to raise {setting}."
                        ).format(path=label, size=_gib(limits.bytes), setting=FOLDER_LIMIT_ENVS["bytes"])
                    )
                found.append((rel, entry.path))
    if loose:
        skipped.append(
            (
                ngettext("{count} file directly in the folder", "{count} files directly in the folder", loose).format(
                    count=number(loose)
                ),
                _("not inside a class folder; put each image in a folder named after its class"),
            )
        )
    found.sort(key=lambda item: item[0].split("/"))
    skipped.sort(key=lambda item: item[0].split("/"))
    return found, skipped


def _before(deadline: float, label: str, limits: FolderLimits, read: Reader) -> Reader:
    def timed() -> bytes:
        if time.monotonic() > deadline:
            raise _over_time(label, limits)
        return read()

    return timed


def _over_time(label: str, limits: FolderLimits) -> StudioError:
    return StudioError(
        _(
            "Loading folder '{path}' took longer than {seconds} seconds, the most one load may take on this server: "
            "point to a smaller folder or resize the images first, or ask the admin to raise {setting}."
        ).format(path=label, seconds=f"{limits.seconds:g}", setting=FOLDER_LIMIT_ENVS["seconds"])
    )


def _reason(err: OSError) -> str:
    """An OSError's reason without the path it names (a server path is not for the visitor)."""
    return err.strerror or type(err).__name__


def _gib(n: int) -> str:
    return f"{n / 1024**3:g} GiB" if n >= 1024**3 else _("{count} bytes").format(count=number(n))


def load_zip(
    source: str | Path | bytes, label: str, size: int, channels: int | None, budget: MemoryBudget | None = None
) -> Dataset:
    """A ZIP with one folder per class, read in memory with caps against ZIP bombs and unsafe paths."""
    with archives.open_zip(source, label) as zf:
        entries, skipped = archives.scan_class_zip(zf, label)
        items = [(e.class_name, e.name, lambda e=e: archives.read_entry(zf, e)) for e in entries]
        return build_dataset(items, skipped, _("ZIP '{name}'").format(name=label), "zip", size, channels, budget)


def load_class_images(
    per_class: dict[str, list[tuple[str, bytes]]], size: int, channels: int | None, budget: MemoryBudget | None = None
) -> Dataset:
    """Images uploaded or captured per class: ``{class name: [(file name, bytes), ...]}``."""
    items = []
    for name, files in per_class.items():
        clean = name.strip()
        if not clean:
            raise StudioError(_("A class has an empty name. Give every class a name before adding images."))
        items += [(clean, f"{clean}/{fname}", lambda data=data: data) for fname, data in files]
    return build_dataset(items, [], _("the uploaded images"), "images", size, channels, budget)


def build_dataset(
    items: Iterable[tuple[str, str, Reader]],
    skipped: list[tuple[str, str]],
    label: str,
    source: str,
    size: int,
    channels: int | None,
    budget: MemoryBudget | None = None,
) -> Dataset:
    """Decode (class, name, reader) items into one Dataset; unreadable files are listed in ``skipped``.

    The array is sized from the item count: it is checked against ``budget`` before the first decode (at the
    channels asked for, or one when automatic), and again when the first colour image makes it three."""
    items = list(items)
    budget = budget or memory_budget()
    check_decoded_size(len(items), size, channels or 1, _capital(label), budget)
    class_names = sorted({item[0] for item in items})
    class_index = {c: i for i, c in enumerate(class_names)}
    # Start at one channel when the colour is automatic and widen on the first colour image, so a
    # grayscale set never holds three channels and a colour set is never copied more than once.
    have = channels or 1
    images: np.ndarray | None = None  # allocated at the first decoded image, with its channel count
    labels = np.empty(len(items), dtype=np.int32)
    sizes = np.empty((len(items), 2), dtype=np.int32)
    modes: Counter[str] = Counter()
    files: list[str] = []
    n = 0
    for class_name, name, decoded in decode_in_parallel(items, size, channels):
        try:
            if isinstance(decoded, Exception):
                raise decoded
            pixels, (width, height, mode) = decoded
            if images is None:
                have = pixels.shape[-1]
                check_decoded_size(len(items), size, have, _capital(label), budget)
                images = np.empty((len(items), size, size, have), dtype=np.uint8)
            elif pixels.shape[-1] == 3 and have == 1:
                check_decoded_size(len(items), size, 3, _capital(label), budget)
                images = np.repeat(images, 3, axis=3)
                have = 3
            elif pixels.shape[-1] == 1 and have == 3:
                pixels = np.repeat(pixels, 3, axis=2)
        except BadImage as err:
            skipped.append((name, str(err)))
            continue
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            # An OSError's own text names the server path; its reason alone is enough.
            skipped.append(
                (name, _("could not be read ({reason})").format(reason=getattr(err, "strerror", None) or err))
            )
            continue
        images[n] = pixels
        labels[n] = class_index[class_name]
        sizes[n] = (width, height)
        modes[mode] += 1
        files.append(name)
        n += 1
    if n == 0:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped[:3])
        if skipped:
            message = ngettext(
                "No images could be loaded from {label} ({count} file skipped, e.g. {reasons}). Use one folder per "
                "class with .png/.jpg/.bmp/.gif images inside.",
                "No images could be loaded from {label} ({count} files skipped, e.g. {reasons}). Use one folder per "
                "class with .png/.jpg/.bmp/.gif images inside.",
                len(skipped),
            )
        else:
            message = _(
                "No images could be loaded from {label} (it is empty). Use one folder per class with "
                ".png/.jpg/.bmp/.gif images inside."
            )
        raise StudioError(message.format(label=label, count=number(len(skipped)), reasons=reasons))
    present = sorted(set(labels[:n].tolist()))
    if len(present) < 2:
        only = class_names[present[0]]
        raise StudioError(
            _(
                "Only one class ('{name}') has images in {label}: a classifier needs at least two. "
                "Add a folder of images for each other class."
            ).format(name=only, label=label)
        )
    if len(present) < len(class_names):
        # Classes whose every file was skipped are dropped, and their labels renumbered.
        keep = [class_names[i] for i in present]
        remap = np.full(len(class_names), -1, dtype=np.int32)
        remap[present] = np.arange(len(present))
        labels[:n] = remap[labels[:n]]
        class_names = keep
    # Views, not copies: the unused tail is only as large as the skipped files.
    images, labels, sizes = images[:n], labels[:n], sizes[:n]
    return Dataset(
        images, labels, class_names, source, skipped, original_sizes=sizes, original_modes=dict(modes), files=files
    )


def _capital(label: str) -> str:
    return label[:1].upper() + label[1:]


# --- Splits -------------------------------------------------------------------------------------------


@dataclass
class Split:
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def counts(self, labels: np.ndarray, num_classes: int) -> dict[str, np.ndarray]:
        return {name: np.bincount(labels[idx], minlength=num_classes) for name, idx in self.parts().items()}

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "validation": self.val, "test": self.test}


def split_dataset(dataset: Dataset, val: float, test: float, seed: int, use_official_test: bool = True) -> Split:
    """Stratified, seeded train/validation/test indices; the source's own test set is kept when it has one."""
    labels = dataset.labels
    if use_official_test and dataset.official_test is not None:
        test_idx = np.sort(dataset.official_test)
        rest = np.setdiff1d(np.arange(len(labels)), test_idx)
        # The validation fraction is of the whole set, as when splitting three ways.
        val_of_rest = min(val / max(1.0 - len(test_idx) / len(labels), 1e-9), 0.9)
        train_idx, val_idx, _test = _stratified(labels, rest, val_of_rest, 0.0, seed, dataset.class_names)
        return Split(train_idx, val_idx, test_idx)
    return Split(*_stratified(labels, np.arange(len(labels)), val, test, seed, dataset.class_names))


def _stratified(labels, indices, val, test, seed, class_names):
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for c, name in enumerate(class_names):
        members = indices[labels[indices] == c]
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_test = max(1, round(n * test)) if test > 0 else 0
        n_val = max(1, round(n * val)) if val > 0 else 0
        if n - n_test - n_val < 1:
            need = 1 + (val > 0) + (test > 0)
            raise StudioError(
                ngettext(
                    "Class '{name}' has {count} image, too few for a validation split of {val} and a test split of "
                    "{test}: each split needs at least one image of every class ({need} in all). Add images to "
                    "'{name}' or lower the splits.",
                    "Class '{name}' has {count} images, too few for a validation split of {val} and a test split of "
                    "{test}: each split needs at least one image of every class ({need} in all). Add images to "
                    "'{name}' or lower the splits.",
                    n,
                ).format(name=name, count=n, val=f"{val:g}", test=f"{test:g}", need=need)
            )
        parts[2].append(members[:n_test])
        parts[1].append(members[n_test : n_test + n_val])
        parts[0].append(members[n_test + n_val :])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


# --- Statistics ---------------------------------------------------------------------------------------


@dataclass
class ChannelStats:
    histograms: np.ndarray  # C×256 pixel counts
    mean: np.ndarray  # per channel, 0..255
    std: np.ndarray


def channel_stats(images: np.ndarray, chunk: int = 4096) -> ChannelStats:
    """Per-channel histograms, mean and standard deviation, from counts (exact, no float copy of the set)."""
    channels = images.shape[-1]
    hist = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk]
        for c in range(channels):
            hist[c] += np.bincount(block[..., c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64)
    totals = np.maximum(hist.sum(axis=1), 1)
    mean = hist @ values / totals
    var = hist @ (values**2) / totals - mean**2
    return ChannelStats(hist, mean, np.sqrt(np.maximum(var, 0.0)))


def size_summary(dataset: Dataset) -> dict[str, str]:
    """What the source files looked like before resizing: sizes (min, median, max) and modes."""
    summary = {_("stored as"): "×".join(map(str, dataset.image_shape)) + " uint8"}
    if dataset.original_sizes is not None and len(dataset.original_sizes):
        w, h = dataset.original_sizes[:, 0], dataset.original_sizes[:, 1]
        summary[_("source width (min/median/max)")] = f"{w.min()} / {int(np.median(w))} / {w.max()}"
        summary[_("source height (min/median/max)")] = f"{h.min()} / {int(np.median(h))} / {h.max()}"
    if dataset.original_modes:
        summary[_("source colour modes")] = ", ".join(f"{m}: {n}" for m, n in sorted(dataset.original_modes.items()))
    return summary


def sample_indices(labels: np.ndarray, num_classes: int, per_class: int, seed: int) -> list[np.ndarray]:
    """Up to ``per_class`` random indices of each class, for the sample grid."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        picks.append(rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else members)
    return picks


def mosaic(rows: list[np.ndarray], gap: int = 2, fill: int = 255) -> np.ndarray:
    """Tile rows of equally sized uint8 images (each row H×W×C stacked as N×H×W×C) into one RGB image."""
    height, width = rows[0].shape[1:3] if len(rows[0]) else next(r.shape[1:3] for r in rows if len(r))
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (height + gap), cols * (width + gap), 3), fill, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = i * (height + gap), j * (width + gap)
            out[y : y + height, x : x + width] = img if img.shape[-1] == 3 else np.repeat(img, 3, axis=-1)
    return out


# --- Augmentation -------------------------------------------------------------------------------------


def build_augmenter(config: AugmentConfig, seed: int | None = None):
    """The Keras layers for the augmentation config (training only), or None when nothing is on."""
    import keras

    config.validate()
    if not config.active:
        return None
    layers = []
    if config.flip != "none":
        layers.append(keras.layers.RandomFlip(config.flip, seed=seed))
    if config.rotation:
        layers.append(keras.layers.RandomRotation(config.rotation / 360.0, fill_mode="reflect", seed=seed))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed))
    if config.translation:
        layers.append(
            keras.layers.RandomTranslation(config.translation, config.translation, fill_mode="reflect", seed=seed)
        )
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, seed=seed))
    return keras.Sequential(layers, name="augmentation")


def preview_augmentation(images: np.ndarray, config: AugmentConfig, variants: int, seed: int) -> np.ndarray:
    """``variants`` augmented copies of each image: an array K×V×H×W×C of uint8."""
    augmenter = build_augmenter(config, seed)
    if augmenter is None:
        return np.repeat(images[:, None], variants, axis=1)
    batch = np.repeat(images, variants, axis=0).astype(np.float32)
    out = np.asarray(augmenter(batch, training=True))
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.reshape(len(images), variants, *images.shape[1:])
