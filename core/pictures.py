"""Pictures for people: the tutorials' labelled prediction grid (green right, red wrong) and PNG embedding."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RIGHT, WRONG = (22, 163, 74), (220, 38, 38)


def labelled_grid(
    images: np.ndarray, captions: list[str], correct: list[bool], columns: int = 6, tile: int = 112
) -> np.ndarray:
    """The tutorials' prediction grid: each image scaled to ``tile`` px with a caption, green if right, red if wrong."""
    font = ImageFont.load_default(size=12)
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
