"""One resize everywhere (#14.4): the web demo's preprocess.js gives the pixels the app's decode_image gives, bit
for bit, and so do the Python lines of the export snippets.

preprocess.js runs in Node here on random RGBA pictures of many sizes (shrinking, enlarging, one side only, a
vertical pass first or not) and is compared with Pillow; the browser side (canvas decoding) is tested in
tests/test_webdemo.py."""

from __future__ import annotations

import io
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageOps

from core.images import decode_image
from core.runtimes import ROOT

PREPROCESS = ROOT / "assets" / "webdemo" / "preprocess.js"
SIZES = [
    (97, 61, 28, 28),  # shrink, more across: horizontal pass first
    (50, 200, 24, 24),  # shrink, far more down: Pillow starts with the vertical pass
    (34, 118, 3, 41),
    (20, 100, 30, 10),  # wider but shorter
    (10, 7, 28, 28),  # enlarge
    (28, 50, 28, 28),  # one side only
    (60, 28, 28, 28),
    (28, 28, 28, 28),  # no resize
    (640, 480, 32, 32),  # a camera frame
]


def pillow_pixels(rgba: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """What core.images.decode_image does to an RGBA picture: onto white, to L or RGB, Pillow's bilinear."""
    image = Image.fromarray(rgba, "RGBA")
    flat = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    return np.asarray(flat.convert("L" if channels == 1 else "RGB").resize(size, Image.BILINEAR)).reshape(-1)


def cases() -> list[dict]:
    rng = np.random.default_rng(14)
    sizes = SIZES + [tuple(int(v) for v in rng.integers(2, 90, 4)) for _ in range(60)]
    found = []
    for i, (w, h, out_w, out_h) in enumerate(sizes):
        rgba = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
        if i % 3:
            rgba[..., 3] = 255  # most pictures are opaque; every third has random transparency
        channels = 1 if i % 2 else 3
        found.append(
            {
                "rgba": rgba.reshape(-1).tolist(),
                "size": [w, h, out_w, out_h, channels],
                "expected": pillow_pixels(rgba, (out_w, out_h), channels).tolist(),
            }
        )
    return found


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is installed by make install")
def test_preprocess_js_gives_pillows_pixels_bit_for_bit(tmp_path):
    data = tmp_path / "cases.json"
    data.write_text(json.dumps(cases()))
    script = f"""
const p = require({json.dumps(str(PREPROCESS))});
const cases = JSON.parse(require("fs").readFileSync({json.dumps(str(data))}, "utf8"));
const wrong = [];
for (const c of cases) {{
  const [w, h, outW, outH, channels] = c.size;
  const got = p.modelInput(Uint8ClampedArray.from(c.rgba), w, h, outW, outH, channels);
  const bad = got.reduce((n, v, i) => n + (v !== c.expected[i] ? 1 : 0), 0);
  if (got.length !== c.expected.length || bad) wrong.push([c.size, bad]);
}}
console.log(JSON.stringify({{ cases: cases.length, wrong }}));
"""
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["cases"] == len(SIZES) + 60 and report["wrong"] == []


def test_a_single_picture_is_decoded_in_full_as_the_snippets_decode_it():
    """try-it decodes a JPEG in full (draft=False): the snippets' Pillow lines give the same pixels; loading a
    dataset may still decode large JPEGs at a reduced scale first, which gives other pixels."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:300, 0:400]
    base = np.stack([xx * 255 / 399, yy * 255 / 299, (xx + yy) % 64 * 4], -1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)).save(buffer, "JPEG")
    data = buffer.getvalue()
    for mode, channels in (("L", 1), ("RGB", 3)):
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert(mode)  # the snippets' lines
        snippet = np.asarray(image.resize((28, 28), Image.BILINEAR)).reshape(28, 28, channels)
        single, _ = decode_image(data, 28, channels, draft=False)
        assert np.array_equal(single, snippet), mode
    drafted, _ = decode_image(data, 28, 3)
    assert not np.array_equal(drafted, single), "the draft decoding differs: try-it must not use it"
