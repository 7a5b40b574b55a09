"""Decoding one image file into a fixed-size uint8 array, with a reason for every file that cannot be used.

:func:`decode_image` is the one way a picture becomes model input, for training and for a single picture alike
(the Evaluate page's try-it). The exports repeat it exactly: the web demo's ``preprocess.js`` is a port of it,
checked bit for bit against Pillow (tests/test_preprocess.py), and the export snippets call Pillow the same way.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.i18n import N_, _

# Files that operating systems and archivers leave beside images; skipped with this reason.
SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "icon\r"})
GRAY_MODES = frozenset({"1", "L", "LA", "I", "F", "I;16", "I;16B", "I;16L", "I;16N", "La"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# How a picture becomes model input, for people (metadata.json, the Export page, the README).
RESIZE_METHOD = N_(
    "EXIF orientation applied, transparent pixels onto white, grayscale as Pillow's L = (19595 R + 38470 G + "
    "7471 B + 32768) >> 16, then Pillow's bilinear resize (a triangle filter widened by the scale factor when "
    "shrinking, so antialiased; aspect ratio not kept; 8-bit rounding); raw values 0..255, the model normalizes"
)


class BadImage(Exception):
    """A file that is skipped; the message is the reason shown to the user."""


def is_system_file(name: str) -> bool:
    """True for OS/archiver litter such as ``.DS_Store``, ``Thumbs.db``, ``__MACOSX/`` and ``._x`` forks."""
    parts = name.replace("\\", "/").split("/")
    base = parts[-1]
    return "__MACOSX" in parts or base.lower() in SYSTEM_FILES or base.startswith("._")


def decode_image(
    data: bytes, size: int, channels: int | None, draft: bool = True
) -> tuple[np.ndarray, tuple[int, int, str]]:
    """Decode ``data`` into a ``size``×``size`` uint8 array (:data:`RESIZE_METHOD`).

    ``channels`` is 1 or 3, or None to keep grayscale sources at one channel and others at three. ``draft``
    lets a large JPEG decode at a reduced scale first (fast for loading datasets); a single picture is decoded
    in full (``draft=False``) so that it gives the very pixels the web demo and the export snippets compute.
    Returns the array and the source's (width, height, Pillow mode). Raises BadImage with the reason.
    """
    img = _open(data)
    info = (img.width, img.height, img.mode)
    try:
        # Draft lets JPEG decode at a reduced scale: far faster for photos bound for small sizes.
        if draft and img.format == "JPEG":
            img.draft("RGB" if channels != 1 else "L", (size, size))
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImage(_("corrupt or truncated image ({reason})").format(reason=err)) from None
    except Image.DecompressionBombError as err:
        raise BadImage(_("too many pixels, refused as a decompression bomb ({reason})").format(reason=err)) from None
    gray = info[2] in GRAY_MODES
    img = _to_8bit(img)
    if img.mode in ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels have arbitrary colour underneath; show them as white, as viewers do.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    want = channels or (1 if gray else 3)
    img = img.convert("L" if want == 1 else "RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(img, dtype=np.uint8)
    if want == 1:
        array = array[:, :, None]
    return array, info


def _open(data: bytes) -> Image.Image:
    with warnings.catch_warnings():
        # Pillow only warns between 1× and 2× its pixel limit; treat both as refusals.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise BadImage(
                _("too many pixels, refused as a decompression bomb ({reason})").format(reason=err)
            ) from None
        except UnidentifiedImageError:
            raise BadImage(_("not an image file Pillow can read")) from None
        except (OSError, SyntaxError, ValueError) as err:
            raise BadImage(_("corrupt image header ({reason})").format(reason=err)) from None


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float grayscale to 8-bit by scaling, not clipping (Pillow's convert clips to 255)."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        values = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or (img.mode == "I" and values.max(initial=0) > 255):
            values = values / 257.0
        elif img.mode == "F":
            low, high = values.min(initial=0.0), values.max(initial=1.0)
            values = (values - low) / max(high - low, 1e-12) * 255.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    return img


# Threads that decode images at once: Pillow releases the interpreter lock while it decodes and resizes.
DECODE_THREADS = max(1, os.cpu_count() or 1)
DECODE_CHUNK = 256  # items handed to the threads at a time: few decoded images wait in memory


def decode_in_parallel(
    items: list[tuple[str, str, Callable[[], bytes]]], size: int, channels: int | None
) -> Iterator[tuple[str, str, tuple | Exception]]:
    """(class, name, (pixels, info) or the exception) per item, in item order, decoded by DECODE_THREADS
    threads. A BadImage or read error is returned for its item; anything else (a load over its time) raises."""

    def one(item: tuple[str, str, Callable[[], bytes]]) -> tuple[str, str, tuple | Exception]:
        class_name, name, read = item
        try:
            return class_name, name, decode_image(read(), size, channels)
        except (BadImage, OSError, zipfile.BadZipFile, EOFError) as err:
            return class_name, name, err

    if DECODE_THREADS == 1:
        yield from map(one, items)
        return
    with ThreadPoolExecutor(DECODE_THREADS) as pool:
        for start in range(0, len(items), DECODE_CHUNK):
            yield from pool.map(one, items[start : start + DECODE_CHUNK])
