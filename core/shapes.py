"""A built-in RGB dataset: geometric shapes drawn with random colour, size, position, rotation and noise."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ("circle", "square", "triangle", "star", "hexagon", "cross")
# Drawn larger, then shrunk: cheap anti-aliasing so small images still look like shapes.
SUPERSAMPLE = 4
NOISE_STD = 8.0


def generate_shapes(count: int, image_size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``count`` images (uint8, N×size×size×3), balanced labels and class names; same seed, same images."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    images = np.empty((count, image_size, image_size, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = _draw(SHAPE_CLASSES[label], image_size, rng)
    return images, labels.astype(np.int32), list(SHAPE_CLASSES)


def _draw(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    big = size * SUPERSAMPLE
    background, foreground = _contrasting_colours(rng)
    img = Image.new("RGB", (big, big), background)
    radius = big * rng.uniform(0.2, 0.38)
    margin = radius * 1.05
    cx, cy = rng.uniform(margin, big - margin, size=2)
    angle = rng.uniform(0, 2 * math.pi)
    draw = ImageDraw.Draw(img)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=foreground)
    else:
        draw.polygon(_outline(shape, cx, cy, radius, angle), fill=foreground)
    small = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    small += rng.normal(0.0, NOISE_STD, small.shape)
    return np.clip(small, 0, 255).astype(np.uint8)


def _outline(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        radii, corners = [r * 0.95] * 4, 4
    elif shape == "triangle":
        radii, corners = [r] * 3, 3
    elif shape == "hexagon":
        radii, corners = [r] * 6, 6
    elif shape == "star":
        radii, corners = [r, r * 0.42] * 5, 10
    elif shape == "cross":
        # Twelve corners of a plus sign, as radius/angle pairs around the centre.
        arm, half = r, r * 0.33
        points = [
            (half, arm),
            (-half, arm),
            (-half, half),
            (-arm, half),
            (-arm, -half),
            (-half, -half),
            (-half, -arm),
            (half, -arm),
            (half, -half),
            (arm, -half),
            (arm, half),
            (half, half),
        ]
        cos, sin = math.cos(angle), math.sin(angle)
        return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in points]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    step = 2 * math.pi / corners
    return [(cx + rr * math.cos(angle + k * step), cy + rr * math.sin(angle + k * step)) for k, rr in enumerate(radii)]


def _contrasting_colours(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Background and shape colours whose brightness differs enough to see the shape."""
    while True:
        bg, fg = rng.integers(0, 256, size=(2, 3))
        if abs(_luma(bg) - _luma(fg)) > 60:
            return tuple(int(v) for v in bg), tuple(int(v) for v in fg)


def _luma(rgb: np.ndarray) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
