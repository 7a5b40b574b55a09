"""Shared fixtures: real image files and archives made on the fly, in the formats users bring."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import core  # noqa: E402,F401  (sets the environment TensorFlow and tensorflowjs need)


def image_bytes(mode: str = "RGB", size: tuple[int, int] = (20, 16), fmt: str = "PNG", seed: int = 0, **save) -> bytes:
    """An encoded image of the given Pillow mode with random pixels."""
    rng = np.random.default_rng(seed)
    w, h = size
    if mode in ("RGB", "CMYK", "RGBA"):
        img = Image.fromarray(rng.integers(0, 256, (h, w, len(mode)), dtype=np.uint8), mode)
    elif mode == "LA":
        img = Image.fromarray(rng.integers(0, 256, (h, w, 2), dtype=np.uint8), "LA")
    elif mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16))  # 16-bit grayscale
    elif mode == "P":
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert("P")
    else:
        img = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").convert(mode)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def class_zip(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def make_class_files(classes: dict[str, int], mode: str = "RGB", prefix: str = "") -> dict[str, bytes]:
    """``{prefix}class/img_i.png`` → bytes, with ``n`` images per class."""
    files = {}
    for c, (name, n) in enumerate(classes.items()):
        for i in range(n):
            files[f"{prefix}{name}/img_{i}.png"] = image_bytes(mode, seed=100 * c + i)
    return files


@pytest.fixture
def keras_home(tmp_path, monkeypatch) -> Path:
    """An empty Keras cache: keras.datasets and core.data both look in $KERAS_HOME/datasets."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    return tmp_path / "keras" / "datasets"


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One finished 2-epoch run of the mnist preset on the built-in digits, shared by read-only tests."""
    from core.config import StudioConfig, apply_preset
    from core.runs import load_run
    from core.training import train_run

    config = StudioConfig()
    config.data.source = "builtin:digits"
    config.model = apply_preset("mnist")
    config.training.epochs = 2
    workspace = tmp_path_factory.mktemp("workspace")
    result = train_run(config, workspace)
    assert result.status == "finished", result.error
    return load_run(Path(result.run_dir))


@pytest.fixture(scope="module")
def digits_export(trained_run, tmp_path_factory):
    """The trained digits run exported in every format (made once per session, tests/export_fixtures.py)."""
    from tests import export_fixtures

    return export_fixtures.digits_export(trained_run, tmp_path_factory)


@pytest.fixture(scope="module")
def shapes_export(tmp_path_factory):
    """An RGB logits Shapes run exported in every format (made once per session)."""
    from tests import export_fixtures

    return export_fixtures.shapes_export(tmp_path_factory)
