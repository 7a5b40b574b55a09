"""Snippets that run (#14.5): every Python snippet of the Export page runs, as shown, against the exported files
and prints the class and probability the app gives the same photo. The project README's "Using an exported
model" shows these very snippets (rendered for the digits run), and the README.md written with every export
shows them for its run: both run here. The JavaScript snippet runs in Chromium in tests/test_webdemo.py."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.evaluation import load_run_model, predict_image, run_config
from core.formats import FORMATS, REGISTRY

ROOT = Path(__file__).resolve().parent.parent
PRINTED = 5e-5  # the snippets print probabilities with 4 decimals

pytestmark = pytest.mark.slow


def rendered(run) -> dict[str, tuple[str, str]]:
    """The snippets as the Export page shows them for ``run``: title → (language, code)."""
    meta = json.loads((run.path / "exports" / "metadata.json").read_text())
    return {s.title: (s.language, s.code(meta)) for fmt in FORMATS for s in REGISTRY[fmt].snippets}


def photo_bytes() -> bytes:
    """A colour JPEG photo that needs resizing (300x200)."""
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:200, 0:300]
    base = np.stack([xx * 255 / 299, yy * 255 / 199, (xx * yy) % 97 * 2.5], -1) + rng.normal(0, 15, (200, 300, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def run_snippet(code: str, run, folder: Path) -> list[str]:
    """Run ``code`` in a folder holding the run's exported files and photo.jpg; its printed lines."""
    folder.mkdir()
    for file in (run.path / "exports").iterdir():
        (folder / file.name).symlink_to(file)
    (folder / "photo.jpg").write_bytes(photo_bytes())
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=300, env=snippet_env()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def snippet_env() -> dict[str, str]:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "GLOG_minloglevel": "3"}


def app_answer(run) -> tuple[str, float]:
    """What the app's try-it says for the photo: class name and probability."""
    model = load_run_model(run)
    logits = run_config(run).model.output == "logits"
    probs, _ = predict_image(model, photo_bytes(), tuple(model.input_shape[1:]), logits)
    names = json.loads((run.path / "exports" / "metadata.json").read_text())["class_names"]
    return names[int(probs.argmax())], float(probs.max())


def check_answer(lines: list[str], expected: tuple[str, float], title: str) -> None:
    label, probability = lines[0].rsplit(" ", 1)
    assert label == expected[0], f"{title}: {lines}"
    assert abs(float(probability) - expected[1]) <= 1e-4 + PRINTED, f"{title}: {lines} vs {expected}"


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of each fenced snippet block (Python, Kotlin, HTML) in a Markdown text."""
    blocks = [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w+)\n(.*?)\n```", text, re.S)]
    return [(language, code) for language, code in blocks if language in ("python", "kotlin", "html")]


def readme_blocks() -> list[tuple[str, str]]:
    """The snippet blocks of the project README's "Using an exported model" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Using an exported model") :]
    return code_blocks(section[: section.index("\n## ", 5)])


def test_the_readme_shows_the_page_snippets_and_they_run(digits_export, tmp_path):
    """The README's snippets are the Export page's, rendered for the digits run (28x28 grayscale), MediaPipe and
    ONNX among them; each Python one runs against that run's exports."""
    run, _ = digits_export
    snippets = rendered(run)
    blocks = readme_blocks()
    codes = {code: title for title, (_, code) in snippets.items()}
    shown = [codes.get(code) for _, code in blocks]
    assert None not in shown, "a README block is not an Export page snippet (or is out of date)"
    assert set(shown) == set(snippets), f"every snippet is in the README: missing {set(snippets) - set(shown)}"
    expected = app_answer(run)
    for i, (language, code) in enumerate(blocks):
        if language == "python":
            check_answer(run_snippet(code, run, tmp_path / f"readme-{i}"), expected, codes[code])


def test_the_exports_readme_snippets_run_for_an_rgb_logits_model(shapes_export, tmp_path):
    """The README.md written with every export holds the Export page's snippets for that run; its Python ones
    run against the exported files of an RGB model with logits output."""
    run, _ = shapes_export
    snippets = rendered(run)
    titles = {code: title for title, (_, code) in snippets.items()}
    blocks = code_blocks((run.path / "exports" / "README.md").read_text(encoding="utf-8"))
    assert sorted(titles.get(code, "?") for _, code in blocks) == sorted(snippets)
    expected = app_answer(run)
    for i, (language, code) in enumerate(blocks):
        title = titles[code]
        if language == "python":
            lines = run_snippet(code, run, tmp_path / f"snippet-{i}")
            check_answer(lines, expected, title)
            if "MediaPipe" in title:
                assert len(lines) == 3, "max_results=3: the three best categories, by name"
