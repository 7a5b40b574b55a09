"""Pictures for people: the tutorials' labelled prediction grid (green right, red wrong) and PNG embedding."""

from __future__ import annotations

import base64
import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RIGHT, WRONG = (22, 163, 74), (220, 38, 38)
CAPTION_SIZE = 12  # pixels
# Captions in Chinese (the interface's, or a user's class names) need a font with CJK glyphs: Pillow's own has
# none. The first of these that is installed (make install puts WenQuanYi Zen Hei there) draws them.
CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
WIDE_CHARACTERS = 0x2E80  # from the CJK radicals on: Chinese, Japanese, Korean and full-width punctuation


@functools.cache
def _fonts() -> tuple:
    """(Pillow's default font, a CJK font if one is installed else the default) at the caption size."""
    default = ImageFont.load_default(size=CAPTION_SIZE)
    for path in CJK_FONTS:
        if Path(path).is_file():
            try:
                return default, ImageFont.truetype(path, size=CAPTION_SIZE)
            except OSError:
                continue
    return default, default


def caption_font(text: str):
    """The font for a caption line: Pillow's default, or the CJK font for a line with Chinese in it."""
    default, wide = _fonts()
    return wide if any(ord(c) >= WIDE_CHARACTERS for c in text) else default


def labelled_grid(
    images: np.ndarray, captions: list[str], correct: list[bool], columns: int = 6, tile: int = 112
) -> np.ndarray:
    """The tutorials' prediction grid: each image scaled to ``tile`` px with a caption, green if right, red if wrong."""
    caption_h, pad = 30, 6
    rows = max(1, -(-len(images) // columns))
    canvas = Image.new("RGB", (columns * (tile + pad) + pad, rows * (tile + caption_h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (img, caption, ok) in enumerate(zip(images, captions, correct, strict=True)):
        x = pad + (i % columns) * (tile + pad)
        y = pad + (i // columns) * (tile + caption_h + pad)
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).convert("RGB")
        canvas.paste(pil.resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        colour = RIGHT if ok else WRONG
        draw.rectangle((x - 2, y - 2, x + tile + 1, y + tile + 1), outline=colour, width=3)
        for line_no, line in enumerate(caption.split("\n")[:2]):
            font = caption_font(line)
            draw.text((x, y + tile + 3 + 13 * line_no), fitted(line, font, tile + pad - 2), fill=colour, font=font)
    return np.asarray(canvas)


def fitted(text: str, font, width: int) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels in ``font``: a caption never runs into its
    neighbour's."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()
