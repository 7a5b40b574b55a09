"""A run's state as types: the run's lasting status (``status.json``) and its live progress.

Everything that reads or writes ``status.json`` goes through this module; pages, jobs and the CLI read
attributes of :class:`RunStatus` and :class:`Progress`, never dict keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.files import atomic_write_json, read_json

STATUS_FILE = "status.json"


class RunState(StrEnum):
    """Where a run is in its life. ``status.json`` stores the value under the key "status"."""

    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # said running or queued, but the process that owned it is gone

    @property
    def live(self) -> bool:
        return self in (RunState.QUEUED, RunState.RUNNING)

    @property
    def ended_well(self) -> bool:
        """Finished, or stopped on request: the CLI exits 0 for both."""
        return self in (RunState.FINISHED, RunState.STOPPED)


class Phase(StrEnum):
    """What a running job is doing right now (the progress line); a run's end state closes it."""

    STARTING = "starting"
    STARTING_PROCESS = "starting the training process"
    WAITING = "waiting for the workspace's trainer"  # another run (any process) is training here
    LOADING_DATA = "loading data"
    BUILDING_MODEL = "building the model"
    TRAINING = "training"
    TESTING = "testing"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    @classmethod
    def ended(cls, state: RunState) -> Phase:
        return cls(state.value) if state.value in cls._value2member_map_ else cls.FAILED


@dataclass
class RunStatus:
    """The lasting record of one run, as kept in its ``status.json``."""

    state: RunState = RunState.INTERRUPTED
    name: str | None = None
    dataset: str | None = None
    preset: str | None = None
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    duration: float | None = None
    pid: int | None = None
    host: str | None = None
    error: str | None = None
    params: int | None = None
    image_shape: list[int] | None = None
    num_classes: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    notes: list[str] = field(default_factory=list)
    epochs_completed: int = 0
    best_val_accuracy: float | None = None
    best_epoch: int | None = None
    monitor: str | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    images_per_second: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = str(data.pop("state"))
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RunStatus:
        """A status from JSON; unknown keys (older or newer versions) are ignored, a bad state reads as interrupted."""
        if not isinstance(data, dict):
            return cls()
        names = {f.name for f in dataclasses.fields(cls)} - {"state"}
        values = {k: v for k, v in data.items() if k in names}
        try:
            state = RunState(data.get("status"))
        except ValueError:
            state = RunState.INTERRUPTED
        status = cls(state=state, **values)
        status.notes = list(status.notes or [])
        return status


_STATUS_FIELDS = frozenset(f.name for f in dataclasses.fields(RunStatus))


def read_status(run_dir: Path) -> RunStatus:
    return RunStatus.from_dict(read_json(run_dir / STATUS_FILE, {}))


def update_status(run_dir: Path, **changes: Any) -> RunStatus:
    """Change some fields of a run's status.json (atomically) and return the new status."""
    unknown = set(changes) - _STATUS_FIELDS
    if unknown:
        raise TypeError(f"RunStatus has no field {sorted(unknown)[0]!r}")
    status = dataclasses.replace(read_status(run_dir), **changes)
    status.state = RunState(status.state)
    atomic_write_json(run_dir / STATUS_FILE, status.to_dict())
    return status


@dataclass
class Progress:
    """A running job's live progress: what the sidebar, the Train page and the CLI show while it trains."""

    phase: Phase = Phase.STARTING
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    started: float | None = None
    elapsed: float = 0.0
    eta: float | None = None
    images_per_second: float | None = None
    loss: float | None = None
    error: str | None = None
    waiting_for: str | None = None  # the run another process trains, while this one waits its turn

    def update(self, **values: Any) -> None:
        for name, value in values.items():
            if name not in _PROGRESS_FIELDS:
                raise TypeError(f"Progress has no field {name!r}")
            setattr(self, name, Phase(value) if name == "phase" else value)

    @property
    def fraction(self) -> float:
        """Share of all training batches done, 0..1."""
        if not self.epochs or not self.steps_per_epoch:
            return 0.0
        done = (max(self.epoch, 1) - 1) * self.steps_per_epoch + self.step
        return min(max(done / (self.epochs * self.steps_per_epoch), 0.0), 1.0)

    def text(self) -> str:
        """``epoch 2/5, batch 40/57, ETA 14 s`` while training, else the phase."""
        if self.phase == Phase.WAITING and self.waiting_for:
            return f"waiting: {self.waiting_for} is training in this workspace"
        if self.phase != Phase.TRAINING or not self.epochs:
            return str(self.phase)
        eta = f", ETA {self.eta:.0f} s" if self.eta is not None else ""
        return f"epoch {self.epoch}/{self.epochs}, batch {self.step}/{self.steps_per_epoch}{eta}"


_PROGRESS_FIELDS = frozenset(f.name for f in dataclasses.fields(Progress))
