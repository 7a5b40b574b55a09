"""Keras callbacks that turn training into plain events: a thread-safe store the pages poll and an
append-only metrics file. They never touch the UI."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import keras
import numpy as np

from core.errors import StudioError
from core.files import atomic_save_model
from core.i18n import _
from core.live import MetricsStore  # noqa: F401  (re-exported: training code imports it from here)
from core.runs import BEST_MODEL, FINAL_MODEL, append_metrics
from core.status import PROGRESS_BATCHES, Phase, Progress, write_progress
from core.trainer_lock import stop_requested

PROGRESS_WRITE_SECONDS = 1.0


def current_lr(model) -> float:
    rate = model.optimizer.learning_rate  # a Keras 3 or tf_keras (multi-worker) variable, or a tensor
    return float(np.asarray(rate.numpy() if hasattr(rate, "numpy") else keras.ops.convert_to_numpy(rate)))


class LiveMetrics(keras.callbacks.Callback):
    """Per-batch and per-epoch loss, accuracy, learning rate, images/s, elapsed time and ETA.

    Keras 3 logs running means over the epoch; the loss of the batches since the last call is recovered
    exactly from two running means (equal batch sizes), so the "raw" curve is real, not smoothed.
    """

    def __init__(
        self,
        store: MetricsStore,
        run_dir: Path | None,
        steps_per_epoch: int,
        epochs: int,
        batch_size: int,
        initial_epoch: int = 0,
        first_step: int = 0,
    ) -> None:
        super().__init__()
        self.initial_epoch = initial_epoch  # epochs trained before (a continued run): ETA counts only the rest
        self.store = store
        self.run_dir = run_dir
        self.steps_per_epoch = steps_per_epoch
        self.epochs = epochs
        self.batch_size = batch_size
        self._buffer: list[dict] = []
        self._train_start = 0.0
        self._epoch_start = 0.0
        self._seen_steps = 0
        self._loss_sum = 0.0
        self._acc_sum = 0.0
        self._global_step = first_step  # a continued run's batch steps go on from its last one
        self._epoch = initial_epoch + 1

    def on_train_begin(self, logs=None):
        self._train_start = time.perf_counter()
        self._rate_from: tuple[float, int] | None = None
        self.store.set_progress(
            epochs=self.epochs,
            steps_per_epoch=self.steps_per_epoch,
            epoch=self.initial_epoch,
            step=0,
            started=time.time(),
            phase=Phase.TRAINING,
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._seen_steps, self._loss_sum, self._acc_sum = 0, 0.0, 0.0
        self._epoch = epoch + 1
        self.store.set_progress(epoch=self._epoch, step=0)

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        steps = batch + 1
        n = steps - self._seen_steps
        if n <= 0:
            return
        loss_total = float(logs.get("loss", math.nan)) * steps
        acc_total = float(logs.get("accuracy", math.nan)) * steps
        loss = (loss_total - self._loss_sum) / n
        accuracy = (acc_total - self._acc_sum) / n
        self._seen_steps, self._loss_sum, self._acc_sum = steps, loss_total, acc_total
        self._global_step += n
        now = time.perf_counter()
        epoch_elapsed = now - self._epoch_start
        images_per_second = steps * self.batch_size / max(epoch_elapsed, 1e-9)
        done = (self._epoch - 1 - self.initial_epoch) * self.steps_per_epoch + steps
        total = (self.epochs - self.initial_epoch) * self.steps_per_epoch
        # Timed from the first batch's end: the first call traces and compiles the step function, which counted
        # in made the first ETAs 1.5-2.5x too long (#15). Validation time still counts, epoch by epoch.
        if self._rate_from is None:
            self._rate_from = (now, done)
        since, done_then = self._rate_from
        eta = (now - since) / (done - done_then) * (total - done) if done > done_then else None
        record = {
            "kind": "batch",
            "epoch": self._epoch,
            "step": self._global_step,
            "loss": loss,
            "accuracy": accuracy,
            "lr": current_lr(self.model),
            "time": now - self._train_start,
        }
        self._buffer.append(record)
        self.store.add_batch(record)
        self.store.set_progress(
            step=steps, images_per_second=images_per_second, elapsed=now - self._train_start, eta=eta, loss=loss
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self._epoch_start
        record = {
            "kind": "epoch",
            "epoch": epoch + 1,
            "lr": current_lr(self.model),
            "seconds": seconds,
            "time": time.perf_counter() - self._train_start,
            "images_per_second": self._seen_steps * self.batch_size / max(seconds, 1e-9),
        }
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                record[key] = float(logs[key])
        # The file first, then the store: a FolderProgress store drops the epoch's batches from progress.json on
        # add_epoch, and a reader of both files must find them in one or the other.
        if self.run_dir is not None:
            append_metrics(self.run_dir, [*self._buffer, record])
        self._buffer = []
        self.store.add_epoch(record)


class FolderProgress:
    """A store that forwards everything to ``inner`` and keeps the run's live progress in its folder
    (``progress.json``, see :mod:`core.status`) for pages of other processes: another replica, or a server
    watching a run the command line trains.

    It rewrites the file atomically at most once every ``every`` seconds, and at once when the phase changes
    (waiting, loading, training, the end). Batch records of the current epoch ride along until LiveMetrics has
    appended them to metrics.jsonl. Best effort: a failed write is skipped (the run's own files report a full
    disk)."""

    def __init__(self, inner, run_dir: Path, every: float = PROGRESS_WRITE_SECONDS) -> None:
        self.inner = inner
        self.run_dir = run_dir
        self.every = every
        self._progress = Progress()
        self._pending: list[dict] = []
        self._written = -math.inf

    def add_batch(self, record: dict) -> None:
        self.inner.add_batch(record)
        self._pending.append(record)
        del self._pending[:-PROGRESS_BATCHES]
        self._write()

    def add_epoch(self, record: dict) -> None:
        self.inner.add_epoch(record)
        self._pending = []  # in metrics.jsonl now

    def set_progress(self, **values) -> None:
        self.inner.set_progress(**values)
        before = (self._progress.phase, self._progress.waiting_for)
        self._progress.update(**values)
        self._write(force=(self._progress.phase, self._progress.waiting_for) != before)

    def snapshot(self):
        return self.inner.snapshot()

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.every:
            return
        self._written = now
        try:
            write_progress(self.run_dir, self._progress, self._pending)
        except (OSError, StudioError):
            pass


class StopOnRequest(keras.callbacks.Callback):
    """Ends training at the next step once a stop is asked for: ``stop_event`` set (the page's Stop button),
    the run folder's STOP file created (any process: a restarted server, the CLI), or, when ``parent_pid``
    is given, the process that started this trainer gone (its parent changes)."""

    def __init__(self, stop_event: threading.Event, run_dir: Path | None = None, parent_pid: int | None = None) -> None:
        super().__init__()
        self.stop_event = stop_event
        self.run_dir = run_dir
        self.parent_pid = parent_pid
        self.stopped = False

    def requested(self) -> bool:
        return (
            self.stop_event.is_set()
            or (self.run_dir is not None and stop_requested(self.run_dir))
            or (self.parent_pid is not None and os.getppid() != self.parent_pid)
        )

    def on_train_batch_end(self, batch, logs=None):
        if self.requested():
            self.stopped = True
            self.model.stop_training = True


class NanGuard(keras.callbacks.Callback):
    """Stops on a NaN or infinite loss and keeps a message that says where and what to change."""

    def __init__(self) -> None:
        super().__init__()
        self.message: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            lr = current_lr(self.model)
            said = _(
                "NaN or Inf loss encountered at epoch {epoch}, batch {batch}. Loss value: {loss}. Lower the learning "
                "rate (now {rate}; try {lower}) or turn on BatchNormalization."
            )
            self.message = said.format(
                epoch=self._epoch + 1, batch=batch + 1, loss=float(loss), rate=f"{lr:g}", lower=f"{lr / 10:g}"
            )
            self.model.stop_training = True


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever the monitored value improves, atomically, so a crash leaves the last good one."""

    def __init__(self, path: Path, monitor: str, best: float | None = None, best_epoch: int | None = None) -> None:
        super().__init__()
        self.path = path
        self.monitor = monitor
        self.mode_max = monitor.endswith("accuracy")
        self.best = best  # a continued run's best so far: its best.keras is only replaced by a better epoch
        self.best_epoch = best_epoch

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        improved = self.best is None or (value > self.best if self.mode_max else value < self.best)
        if improved:
            self.best, self.best_epoch = value, epoch + 1
            atomic_save_model(self.model, self.path / BEST_MODEL)


class LatestCheckpoint(keras.callbacks.Callback):
    """Saves the model with its optimizer state as ``final.keras`` after every epoch, atomically: a stopped,
    interrupted or finished run can be continued from its last epoch (core.resume)."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        atomic_save_model(self.model, self.run_dir / FINAL_MODEL)
