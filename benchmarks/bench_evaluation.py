"""Evaluation speed: a run folder with a 10,000-image test split and the mnist preset, evaluated cold
(load the model, predict, score) and again (predictions from the run's cache), in one process.

Run: .venv/bin/python benchmarks/bench_evaluation.py [--images 10000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import core  # noqa: E402,F401  (environment for TensorFlow)
from core.config import (
    StudioConfig,  # noqa: E402
    apply_preset,  # noqa: E402
)
from core.evaluation import evaluate_run  # noqa: E402
from core.files import atomic_write_json  # noqa: E402
from core.models import build_model  # noqa: E402
from core.runs import BEST_MODEL, CLASSES_FILE, CONFIG_FILE, TEST_DATA_FILE, load_run  # noqa: E402
from core.shapes import generate_shapes  # noqa: E402
from core.status import RunState, update_status  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "bench-run"
        run_dir.mkdir()
        images, labels, names = generate_shapes(args.images, 28, seed=0)
        images = images.mean(axis=-1, keepdims=True).astype(np.uint8)
        np.savez(run_dir / TEST_DATA_FILE, images=images, labels=labels)
        config = StudioConfig()
        config.model = apply_preset("mnist")
        (run_dir / CONFIG_FILE).write_text(config.to_json())
        atomic_write_json(run_dir / CLASSES_FILE, names)
        update_status(run_dir, state=RunState.FINISHED, name="benchmark")
        build_model(config.model, (28, 28, 1), len(names), seed=0).model.save(run_dir / BEST_MODEL)
        run = load_run(run_dir)

        start = time.perf_counter()
        cold = evaluate_run(run)
        cold_seconds = time.perf_counter() - start
        start = time.perf_counter()
        warm = evaluate_run(run)
        warm_seconds = time.perf_counter() - start
        assert np.array_equal(cold.confusion, warm.confusion)
    print(f"{'evaluation of ' + str(args.images) + ' test images, mnist preset':52} {'seconds':>8}")
    print(f"{'first visit (load model, predict, score)':52} {cold_seconds:8.2f}")
    print(f"{'revisit (predictions cached in the run folder)':52} {warm_seconds:8.2f}")
    print(f"ratio first/revisit: {cold_seconds / warm_seconds:.0f}x")


if __name__ == "__main__":
    main()
