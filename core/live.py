"""The live state of a training run as the pages read it: plain data, no Keras, so the web process that
polls it never imports TensorFlow (#18: with TensorFlow in the web process every rerun costs ~0.5 s of CPU)."""

from __future__ import annotations

import dataclasses
import threading

from core.status import Progress


class MetricsStore:
    """Live training state shared between the training thread (writer) and page reruns (readers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: list[dict] = []
        self._epochs: list[dict] = []
        self._progress = Progress()

    def add_batch(self, record: dict) -> None:
        with self._lock:
            self._batches.append(record)

    def add_epoch(self, record: dict) -> None:
        with self._lock:
            self._epochs.append(record)

    def set_progress(self, **values) -> None:
        with self._lock:
            self._progress.update(**values)

    def snapshot(self) -> tuple[list[dict], list[dict], Progress]:
        """Copies of batch records, epoch records and progress, safe to read while training goes on."""
        with self._lock:
            return list(self._batches), list(self._epochs), dataclasses.replace(self._progress)
