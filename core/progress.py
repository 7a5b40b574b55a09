"""A text progress bar for the command line (stderr), as a Keras callback."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import keras

BAR_WIDTH = 30


class TextProgress(keras.callbacks.Callback):
    """``epoch 2/5 [=========>.....] 40/57 loss 0.4120 acc 0.8711 2,950 img/s ETA 14 s``; one line per epoch."""

    def __init__(self, stream: TextIO = sys.stderr, batch_size: int = 0) -> None:
        super().__init__()
        self.stream = stream
        self.batch_size = batch_size
        self._start = 0.0
        self._epoch_start = 0.0
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_start = time.perf_counter()

    def _steps(self) -> int:
        return int(self.params.get("steps") or 0)

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        steps, done = self._steps(), batch + 1
        elapsed = time.perf_counter() - self._epoch_start
        filled = int(BAR_WIDTH * done / steps) if steps else 0
        bar = "=" * max(filled - 1, 0) + (">" if filled else "") + "." * (BAR_WIDTH - filled)
        batch_size = self.batch_size
        rate = f" {done * batch_size / elapsed:,.0f} img/s" if batch_size and elapsed else ""
        eta = elapsed / done * (steps - done) if steps else 0
        self.stream.write(
            f"\repoch {self._epoch + 1}/{self.params.get('epochs')} [{bar}] {done}/{steps or '?'} "
            f"loss {logs.get('loss', float('nan')):.4f} acc {logs.get('accuracy', float('nan')):.4f}{rate} "
            f"ETA {eta:.0f} s "
        )
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        extra = "".join(f" {k} {logs[k]:.4f}" for k in ("val_loss", "val_accuracy") if k in logs)
        seconds = time.perf_counter() - self._epoch_start
        self.stream.write(
            f"\repoch {epoch + 1}/{self.params.get('epochs')} done in {seconds:.1f} s: "
            f"loss {logs.get('loss', float('nan')):.4f} acc {logs.get('accuracy', float('nan')):.4f}"
            f"{extra}{' ' * 20}\n"
        )
        self.stream.flush()
