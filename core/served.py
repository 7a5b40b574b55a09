"""The pages' TensorFlow work, as functions a warm worker runs (``core.worker.warm_pool().call(...)``).

Each takes and returns plain data (paths, configs, arrays, dataclasses), never a Keras object, so the web
process never imports TensorFlow (see :mod:`core.worker` for why). Importing this module imports Keras: a
warm worker does it once as it starts. A run's model is kept per model file (path and modification time),
so Grad-CAM and try-it after the first request cost only their own work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import keras  # noqa: F401  imported once per warm worker, as it starts
import numpy as np

from core.config import AugmentConfig, StudioConfig
from core.data import preview_augmentation
from core.evaluation import evaluate_run, load_run_model, load_test_data, predict_image, run_config
from core.explain import grad_cam, overlay_heatmap
from core.export import export_run
from core.featuremap import FeatureMap
from core.featuremap import feature_map as compute_feature_map
from core.formats import ExportResult
from core.metrics import Evaluation
from core.models import build_model
from core.runs import load_run
from core.summary import ModelSummary, reference_params, summarize

MODELS_KEPT = 4  # runs whose model a worker keeps loaded

_models: OrderedDict[tuple[str, int], tuple] = OrderedDict()


def _run_model(run_dir: str):
    """(run, model, logits) of a run, from this worker's cache while the model file is unchanged."""
    run = load_run(Path(run_dir))
    key = (run_dir, run.model_path().stat().st_mtime_ns)
    if key not in _models:
        logits = run_config(run).model.output == "logits"
        _models[key] = (load_run_model(run), logits)
        while len(_models) > MODELS_KEPT:
            _models.popitem(last=False)
    _models.move_to_end(key)
    return run, *_models[key]


def model_summary(config_json: str, input_shape: tuple, num_classes: int) -> tuple[ModelSummary, list[str]]:
    """The Model page's layer table, counts, FLOPs and diagram for a config, and the builder's notes."""
    built = build_model(StudioConfig.from_json(config_json).model, tuple(input_shape), num_classes)
    return summarize(built.model), built.notes


def preset_params(preset_id: str) -> int:
    """A preset's parameter count at its tutorial's input shape and 10 classes."""
    return reference_params(preset_id)


def augmentation_preview(images: np.ndarray, augment: AugmentConfig, variants: int, seed: int) -> np.ndarray:
    """``variants`` random augmentations of each image, as training sees them."""
    return preview_augmentation(images, augment, variants, seed)


def evaluation(run_dir: str) -> Evaluation:
    """The run's evaluation on its test split (predictions cached in the run folder)."""
    return evaluate_run(load_run(Path(run_dir)))


def grad_cam_overlays(run_dir: str, indices: list[int]) -> list[np.ndarray]:
    """Grad-CAM heat maps over the run's test images at ``indices``, blended onto the images."""
    run, model, _ = _run_model(run_dir)
    images = load_test_data(run)[0][np.asarray(indices, dtype=int)]
    return [overlay_heatmap(image, cam) for image, cam in zip(images, grad_cam(model, images), strict=True)]


def classify_picture(run_dir: str, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities for an uploaded or camera picture, and the pixels the model saw."""
    _, model, logits = _run_model(run_dir)
    return predict_image(model, data, tuple(model.input_shape[1:]), logits)


def export(
    run_dir: str, formats: list[str], compare: bool = True, progress: Callable[[str], None] | None = None
) -> dict[str, ExportResult]:
    """Export the run's model in ``formats`` (each measured against Keras when ``compare``); ``progress``
    hears each step."""
    return export_run(load_run(Path(run_dir)), formats, compare=compare, progress=progress)


def feature_map(run_dir: str) -> FeatureMap:
    """The run's test images in 2-D by its penultimate-layer features (PCA and t-SNE; cached in the run folder)."""
    run, model, _ = _run_model(run_dir)
    return compute_feature_map(run, model)
