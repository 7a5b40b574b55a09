"""A run's state as types: the run's lasting status (``status.json``) and its live progress
(``progress.json`` while it trains).

Everything that reads or writes ``status.json`` and ``progress.json`` goes through this module; pages, jobs and
the CLI read attributes of :class:`RunStatus` and :class:`Progress`, never dict keys.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import types
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.files import atomic_write_json
from core.i18n import N_, _, number, short_duration

STATUS_FILE = "status.json"
# The trainer's live progress and the batch records of the epoch that metrics.jsonl does not have yet, rewritten
# (atomically) about once a second: how a page of another process (another replica, a server watching the CLI)
# follows a run it does not train itself.
PROGRESS_FILE = "progress.json"
PROGRESS_BATCHES = 1000  # the pending batch records progress.json keeps at most (the latest)


class RunState(StrEnum):
    """Where a run is in its life. ``status.json`` stores the value under the key "status"."""

    QUEUED = N_("queued")
    RUNNING = N_("running")
    FINISHED = N_("finished")
    STOPPED = N_("stopped")
    FAILED = N_("failed")
    INTERRUPTED = N_("interrupted")  # said running or queued, but the process that owned it is gone

    @property
    def label(self) -> str:
        """The state as people read it, in their language (the value stays the one status.json stores)."""
        return _(self.value)

    @property
    def live(self) -> bool:
        return self in (RunState.QUEUED, RunState.RUNNING)

    @property
    def ended_well(self) -> bool:
        """Finished, or stopped on request: the CLI exits 0 for both."""
        return self in (RunState.FINISHED, RunState.STOPPED)


class Phase(StrEnum):
    """What a running job is doing right now (the progress line); a run's end state closes it."""

    STARTING = N_("starting")
    STARTING_PROCESS = N_("starting the training process")
    WAITING = N_("waiting for the workspace's trainer")  # another run (any process) is training here
    LOADING_DATA = N_("loading data")
    BUILDING_MODEL = N_("building the model")
    TRAINING = N_("training")
    TESTING = N_("testing")
    FINISHED = N_("finished")
    STOPPED = N_("stopped")
    FAILED = N_("failed")

    @property
    def label(self) -> str:
        """The phase as people read it, in their language (the value stays the one progress.json stores)."""
        return _(self.value)

    @classmethod
    def ended(cls, state: RunState) -> Phase:
        return cls(state.value) if state.value in cls._value2member_map_ else cls.FAILED


@dataclass
class RunStatus:
    """The lasting record of one run, as kept in its ``status.json``."""

    state: RunState = RunState.INTERRUPTED
    name: str | None = None
    owner: str | None = None  # who started it (the app's signed-in user, or the CLI's login name)
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
    replicas: int | None = None  # devices that trained in sync, over all workers
    global_batch: int | None = None  # images per training step over all replicas
    workers: int | None = None  # machines that trained it together (TF_CONFIG); None: one
    streamed: bool | None = None  # read from disk while training: decoded, the set was over the memory budget
    parent_run: str | None = None  # the run whose weights this one started from (fine-tuning)
    sweep: str | None = None  # the sweep this run is a trial of

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = str(data.pop("state"))
        return data

    @classmethod
    def from_dict(cls, data: Any) -> RunStatus:
        """A status from JSON; unknown keys (older or newer versions) are ignored, a bad state reads as interrupted,
        a field of the wrong type reads as its default."""
        return parse_status(data)[0]


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a RunStatus field's type (bools are not numbers; numbers are finite)."""
    if hint is Any:
        return True
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, hint)


def _kind(hint: Any) -> str:
    """The type a field needs, in words of the current language ("a whole number or null")."""
    names = {int: N_("a whole number"), float: N_("a number"), str: N_("a text"), type(None): "null"}
    lists = {int: N_("a list of whole numbers"), float: N_("a list of numbers"), str: N_("a list of texts")}
    if typing.get_origin(hint) is list:
        item = typing.get_args(hint)[0]
        return _(lists[item]) if item in lists else _("a list")
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = [_kind(arg) for arg in typing.get_args(hint)]
        said = kinds[0]
        for kind in kinds[1:]:
            said = _("{first} or {second}").format(first=said, second=kind)
        return said
    return _(names[hint]) if hint in names else getattr(hint, "__name__", str(hint))


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "…"


def parse_status(data: Any) -> tuple[RunStatus, list[str]]:
    """A status from the JSON of status.json, and what was wrong with it (empty when nothing was): a value that
    is not an object reads as an empty status, a field of the wrong type as its default."""
    if not isinstance(data, dict):
        return RunStatus(), [
            _("{file} is not a JSON object (it holds {value})").format(file=STATUS_FILE, value=_shown(data))
        ]
    problems = []
    values = {}
    for name, hint in _FIELD_TYPES.items():
        if name not in data:
            continue
        value = data[name]
        if name == "pid" and isinstance(value, int) and not 0 < value < 2**31:
            problems.append(
                _("{file}: 'pid' is {value}, not a process id").format(file=STATUS_FILE, value=_shown(value))
            )
        elif _fits(value, hint):
            values[name] = value
        else:
            said = _("{file}: '{field}' is {value}, not {kind}")
            problems.append(said.format(file=STATUS_FILE, field=name, value=_shown(value), kind=_kind(hint)))
    try:
        state = RunState(data.get("status"))
    except ValueError:
        state = RunState.INTERRUPTED
        said = _("{file}: 'status' is {value}, not one of {states}")
        problems.append(said.format(file=STATUS_FILE, value=_shown(data.get("status")), states=", ".join(RunState)))
    status = RunStatus(state=state, **values)
    status.notes = list(status.notes)
    return status, problems


_STATUS_FIELDS = frozenset(f.name for f in dataclasses.fields(RunStatus))
_FIELD_TYPES = {name: hint for name, hint in typing.get_type_hints(RunStatus).items() if name != "state"}


def read_status(run_dir: Path) -> RunStatus:
    """A run's status; a missing, torn or damaged status.json reads as much of it as is sound (never raises)."""
    return read_status_checked(run_dir)[0]


def read_status_checked(run_dir: Path) -> tuple[RunStatus, list[str]]:
    """A run's status and what is wrong with its status.json (nothing for a sound file)."""
    path = run_dir / STATUS_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return RunStatus(), [_("{file} is missing").format(file=STATUS_FILE)]
    except OSError as err:
        return RunStatus(), [_("{file} cannot be read ({reason})").format(file=STATUS_FILE, reason=err.strerror)]
    try:
        data = json.loads(text)
    except ValueError:  # torn JSON, or bytes that are not UTF-8
        if not text.strip():
            return RunStatus(), [_("{file} is empty").format(file=STATUS_FILE)]
        return RunStatus(), [_("{file} is not valid JSON (truncated or overwritten)").format(file=STATUS_FILE)]
    return parse_status(data)


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
    batch: str | None = None  # how the global batch splits over the devices, when several train in sync

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
        """``epoch 2/5, batch 40/57, ETA 0:14`` while training, else the phase."""
        if self.phase == Phase.WAITING and self.waiting_for:
            return _("waiting: {holder} is training in this workspace").format(holder=self.waiting_for)
        if self.phase != Phase.TRAINING or not self.epochs:
            return self.phase.label
        counts = dict(
            epoch=number(self.epoch),
            epochs=number(self.epochs),
            step=number(self.step),
            steps=number(self.steps_per_epoch),
        )
        if self.eta is not None:
            line = _("epoch {epoch}/{epochs}, batch {step}/{steps}, ETA {eta}").format(
                eta=short_duration(self.eta), **counts
            )
        else:
            line = _("epoch {epoch}/{epochs}, batch {step}/{steps}").format(**counts)
        return _("{progress} ({batch_split})").format(progress=line, batch_split=self.batch) if self.batch else line

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Progress:
        """A progress from JSON: unknown keys are ignored, a value of the wrong type reads as its default."""
        progress = cls()
        if not isinstance(data, dict):
            return progress
        try:
            progress.phase = Phase(data.get("phase"))
        except ValueError:
            pass
        for name, hint in _PROGRESS_TYPES.items():
            if name != "phase" and name in data and _fits(data[name], hint):
                setattr(progress, name, data[name])
        return progress


_PROGRESS_FIELDS = frozenset(f.name for f in dataclasses.fields(Progress))
_PROGRESS_TYPES = typing.get_type_hints(Progress)


def write_progress(run_dir: Path, progress: Progress, batches: list[dict]) -> None:
    """Replace the run's progress.json (atomically): the progress and the batch records not yet in metrics.jsonl."""
    data = {"progress": progress.to_dict(), "batches": batches[-PROGRESS_BATCHES:], "written": time.time()}
    atomic_write_json(run_dir / PROGRESS_FILE, data)


def read_progress(run_dir: Path) -> tuple[Progress | None, list[dict]]:
    """The progress a trainer (any process) last wrote for the run, and its pending batch records; ``None`` when
    there is no readable progress.json (a run queued in another server, or an older run). Never raises."""
    try:
        data = json.loads((run_dir / PROGRESS_FILE).read_bytes())
    except (OSError, ValueError):
        return None, []
    if not isinstance(data, dict) or not isinstance(data.get("progress"), dict):
        return None, []
    batches = data.get("batches")
    batches = [b for b in batches if isinstance(b, dict)] if isinstance(batches, list) else []
    return Progress.from_dict(data["progress"]), batches
