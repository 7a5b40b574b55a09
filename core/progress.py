"""A text progress bar for the command line (stderr), as a Keras callback."""

from __future__ import annotations

import sys
import time
from typing import TextIO

import keras

from core.i18n import _, number

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
        eta = elapsed / done * (steps - done) if steps else 0
        values = dict(
            epoch=self._epoch + 1,
            epochs=self.params.get("epochs"),
            bar=bar,
            done=done,
            steps=steps or "?",
            loss=f"{logs.get('loss', float('nan')):.4f}",
            accuracy=f"{logs.get('accuracy', float('nan')):.4f}",
            eta=number(eta, 0),
        )
        if batch_size and elapsed:
            said = _(
                "epoch {epoch}/{epochs} [{bar}] {done}/{steps} loss {loss} acc {accuracy} {rate} img/s ETA {eta} s"
            )
            values["rate"] = number(done * batch_size / elapsed, 0)
        else:
            said = _("epoch {epoch}/{epochs} [{bar}] {done}/{steps} loss {loss} acc {accuracy} ETA {eta} s")
        self.stream.write("\r" + said.format(**values) + " ")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        extra = "".join(f" {k} {logs[k]:.4f}" for k in ("val_loss", "val_accuracy") if k in logs)  # Keras's names
        seconds = time.perf_counter() - self._epoch_start
        said = _("epoch {epoch}/{epochs} done in {seconds} s: loss {loss} acc {accuracy}").format(
            epoch=epoch + 1,
            epochs=self.params.get("epochs"),
            seconds=number(seconds, 1),
            loss=f"{logs.get('loss', float('nan')):.4f}",
            accuracy=f"{logs.get('accuracy', float('nan')):.4f}",
        )
        self.stream.write(f"\r{said}{extra}{' ' * 20}\n")
        self.stream.flush()
