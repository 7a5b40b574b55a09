"""Decoding single files: every Pillow mode users bring, EXIF orientation, and files that must be refused."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from core.images import BadImage, decode_image, is_system_file
from tests.conftest import image_bytes


@pytest.mark.parametrize(
    "mode, channels_auto",
    [("L", 1), ("LA", 1), ("I;16", 1), ("1", 1), ("RGB", 3), ("RGBA", 3), ("P", 3), ("CMYK", 3)],
)
def test_every_mode_decodes_to_uint8_at_the_requested_size(mode, channels_auto):
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    data = image_bytes(mode, size=(30, 20), fmt=fmt)
    auto, info = decode_image(data, 16, None)
    assert auto.shape == (16, 16, channels_auto) and auto.dtype == np.uint8
    assert info[:2] == (30, 20)
    assert decode_image(data, 12, 3)[0].shape == (12, 12, 3)
    assert decode_image(data, 12, 1)[0].shape == (12, 12, 1)


def test_16_bit_grayscale_is_scaled_not_clipped():
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    buf = io.BytesIO()
    Image.fromarray(values).save(buf, "PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")
    row = decode_image(buf.getvalue(), 4, 1)[0][0, :, 0]  # resized 4x1 -> 4x4: rows are equal
    assert row[0] == 0 and row[-1] == 255, row
    assert 120 <= row[2] <= 135, "mid-range 16-bit maps to mid-gray, not clipped to white"


def test_transparent_pixels_become_white():
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)  # fully transparent black
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    out, _ = decode_image(buf.getvalue(), 8, 3)
    assert (out == 255).all()


def test_exif_orientation_is_respected():
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10] = (255, 0, 0)  # left half red
    pixels[:, 10:] = (0, 0, 255)  # right half blue
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    out, _ = decode_image(buf.getvalue(), 20, 3)
    top, bottom = out[:8].reshape(-1, 3).mean(0), out[-8:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60, "after rotation the red half is on top"
    assert bottom[2] > 200 and bottom[0] < 60


def test_corrupt_truncated_and_non_image_files_give_reasons():
    png = image_bytes("RGB", size=(64, 64))
    with pytest.raises(BadImage, match="truncated|corrupt"):
        decode_image(png[: len(png) // 2], 8, 3)
    with pytest.raises(BadImage, match="not an image"):
        decode_image(b"hello, I am a text file\n", 8, 3)
    with pytest.raises(BadImage, match="not an image|corrupt"):
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, 8, 3)


def test_decompression_bomb_header_is_refused():
    png = bytearray(image_bytes("L", size=(4, 4)))
    # Patch the IHDR chunk to claim 40000×40000 pixels (1.6 G, over Pillow's limit) and fix its CRC.
    png[16:24] = struct.pack(">II", 40000, 40000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    with pytest.raises(BadImage, match="decompression bomb"):
        decode_image(bytes(png), 8, 3)


@pytest.mark.parametrize(
    "name, system",
    [
        (".DS_Store", True),
        ("cats/.DS_Store", True),
        ("dogs/Thumbs.db", True),
        ("__MACOSX/cats/._a.png", True),
        ("cats/._a.png", True),
        ("cats/a.png", False),
        ("thumbs/a.png", False),
    ],
)
def test_system_files_are_recognised(name, system):
    assert is_system_file(name) is system
