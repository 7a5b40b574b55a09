"""Exports made once per test session and shared by the export test modules (each exporting costs a minute).

Module-scoped fixtures call these; the results are kept here, so the digits run is exported in full once
however many modules use it. Tests read the exported files and never change them."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.runs import RunInfo, load_run

_DONE: dict[str, tuple] = {}

# The RGB run's formats: enough to hold every runtime to an RGB, BatchNorm, logits model.
RGB_FORMATS = (
    "keras",
    "h5",
    "weights-h5",
    "savedmodel",
    "tfjs",
    "onnx",
    "tflite",
    "tflite-int8",
    "mediapipe",
    "mediapipe-int8",
    "webdemo",
)


def copy_run(run: RunInfo, folder: Path) -> RunInfo:
    target = folder / run.run_id
    shutil.copytree(run.path, target)
    return load_run(target)


def digits_export(trained_run: RunInfo, tmp_path_factory) -> tuple:
    """(a copy of the session's digits run, its export in every registry format)."""
    from core.export import export_run

    if "digits" not in _DONE:
        run = copy_run(trained_run, tmp_path_factory.mktemp("digits-export"))
        _DONE["digits"] = (run, export_run(run))
    return _DONE["digits"]


def shapes_logits_run(tmp_path_factory) -> RunInfo:
    """RGB built-in shapes with the cifar-bn preset: BatchNorm, dropout and logits output (3 epochs)."""
    from core.config import StudioConfig, apply_preset
    from core.training import train_run

    if "shapes" not in _DONE:
        config = StudioConfig()
        config.data.shapes_count = 600
        config.model = apply_preset("cifar-bn")
        config.training.epochs = 3
        result = train_run(config, tmp_path_factory.mktemp("shapes"))
        assert result.status == "finished", result.error
        _DONE["shapes"] = load_run(Path(result.run_dir))
    return _DONE["shapes"]


def shapes_export(tmp_path_factory) -> tuple:
    """(a copy of the RGB logits run, its export in :data:`RGB_FORMATS`)."""
    from core.export import export_run

    if "shapes-export" not in _DONE:
        run = copy_run(shapes_logits_run(tmp_path_factory), tmp_path_factory.mktemp("shapes-export"))
        _DONE["shapes-export"] = (run, export_run(run, RGB_FORMATS))
    return _DONE["shapes-export"]
