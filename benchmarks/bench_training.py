"""Training throughput: the app's path (tf.data pipeline, steps_per_execution, live-metrics callbacks, a
thread polling them as the Train page does) against a plain ``model.fit(x, y, batch_size=32)`` of the same
model on the same data, in one process. Prints images/s for each and the ratio.

Run: .venv/bin/python benchmarks/bench_training.py [--images 12000] [--epochs 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import core  # noqa: E402,F401  (environment for TensorFlow)
from core.callbacks import LiveMetrics, MetricsStore, NanGuard, StopOnRequest  # noqa: E402
from core.config import (
    TrainingConfig,  # noqa: E402
    apply_preset,  # noqa: E402
)
from core.models import build_model, compile_model  # noqa: E402
from core.shapes import generate_shapes  # noqa: E402
from core.training import STEPS_PER_EXECUTION, make_pipeline  # noqa: E402

BATCH = 32


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def fresh_model(shape, classes, steps_per_epoch, steps_per_execution):
    keras.utils.set_random_seed(0)
    model_config = apply_preset("mnist")
    model = build_model(model_config, shape, classes).model
    compile_model(model, model_config, TrainingConfig(batch_size=BATCH), steps_per_epoch, steps_per_execution)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=12_000)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    images, labels, names = generate_shapes(args.images, 28, seed=0)
    images = images.mean(axis=-1, keepdims=True).astype(np.uint8)  # 28×28×1, as MNIST
    steps = -(-len(images) // BATCH)

    # Plain Keras, as the tutorials write it (compiled the same way, one step per execution).
    plain = fresh_model(images.shape[1:], len(names), steps, 1)
    timer = EpochTimer()
    plain.fit(images, labels, batch_size=BATCH, epochs=args.epochs, callbacks=[timer], verbose=0)
    plain_rate = len(images) / statistics.median(timer.seconds[1:])

    # The app's path, with the live charts' poller reading the store once a second.
    app = fresh_model(images.shape[1:], len(names), steps, STEPS_PER_EXECUTION)
    store, stop = MetricsStore(), threading.Event()
    polling = threading.Event()

    def poll():
        while not polling.is_set():
            store.snapshot()
            time.sleep(1.0)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    timer = EpochTimer()
    callbacks = [LiveMetrics(store, None, steps, args.epochs, BATCH), NanGuard(), StopOnRequest(stop), timer]
    dataset = make_pipeline(images, labels, BATCH, len(names), one_hot=False, shuffle_seed=0)
    app.fit(dataset, epochs=args.epochs, callbacks=callbacks, shuffle=False, verbose=0)
    polling.set()
    app_rate = len(images) / statistics.median(timer.seconds[1:])

    print(f"{'path':58} {'images/s':>10}")
    print(f"{'plain model.fit(x, y, batch_size=32)':58} {plain_rate:10,.0f}")
    print(f"{f'app: tf.data + steps_per_execution={STEPS_PER_EXECUTION} + live callbacks':58} {app_rate:10,.0f}")
    print(
        f"ratio app/plain: {app_rate / plain_rate:.2f}x  (mnist preset, {len(images)} images 28x28x1, "
        f"median of epochs 2-{args.epochs})"
    )


if __name__ == "__main__":
    main()
