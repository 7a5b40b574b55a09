"""Run folders in a workspace: config, status, metrics, split, models. Writes are atomic where a reader
could otherwise see half a file, and a run whose process died shows as "interrupted"."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import StudioError
from core.files import json_default, read_json
from core.status import STATUS_FILE, RunState, RunStatus, read_status, update_status
from core.trainer_lock import current_holder

DEFAULT_WORKSPACE = "runs"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
CLASSES_FILE = "class_names.json"
SPLIT_FILE = "split.json"
TEST_DATA_FILE = "test_data.npz"
CALIBRATION_FILE = "calibration.npz"
BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"


def workspace_dir(path: str | os.PathLike | None = None) -> Path:
    """The workspace folder: the argument, else $CNN_STUDIO_WORKSPACE, else ./runs."""
    return Path(path or os.environ.get("CNN_STUDIO_WORKSPACE") or DEFAULT_WORKSPACE).expanduser()


def new_run_dir(workspace: Path, label: str) -> Path:
    """A fresh, sortable folder name: time, label, random suffix (two servers never collide)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40]
    path = workspace / f"{stamp}-{safe}-{secrets.token_hex(2)}"
    path.mkdir(parents=True, exist_ok=False)
    return path


@dataclass
class RunInfo:
    """What the run history shows about one run folder."""

    path: Path
    status: RunStatus = field(default_factory=RunStatus)
    config: dict = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def state(self) -> RunState:
        return self.status.state

    @property
    def name(self) -> str:
        return self.status.name or self.run_id

    def has_model(self) -> bool:
        return (self.path / BEST_MODEL).is_file() or (self.path / FINAL_MODEL).is_file()

    def model_path(self) -> Path:
        """The model to evaluate and export: the best checkpoint, else the final one."""
        for name in (BEST_MODEL, FINAL_MODEL):
            if (self.path / name).is_file():
                return self.path / name
        raise StudioError(
            f"Run '{self.name}' has no model file ({BEST_MODEL} or {FINAL_MODEL}) in {self.path}: it stopped before "
            "the first checkpoint. Train it again."
        )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_run(path: Path, live_ids: set[str] | frozenset[str] = frozenset()) -> RunInfo:
    """Read a run folder; a run that says running (or queued) but has no live owner becomes interrupted."""
    status = read_status(path)
    config = read_json(path / CONFIG_FILE, {}) or {}
    if status.state.live and path.name not in live_ids:
        # The owner: the trainer, or the server (or CLI) that queued it. Another host's process cannot be checked
        # from here: its run is live while it holds the workspace's trainer lock.
        if status.host == socket.gethostname():
            owner_alive = status.pid is not None and _process_alive(int(status.pid))
        else:
            holder = current_holder(path.parent)
            owner_alive = holder is not None and holder.run_id == path.name
        if not owner_alive:
            status.state = RunState.INTERRUPTED
            status.error = status.error or "The server stopped while this run was training."
    return RunInfo(path, status, config)


def list_runs(workspace: Path, live_ids: set[str] | frozenset[str] = frozenset()) -> list[RunInfo]:
    """All runs, newest first."""
    if not workspace.is_dir():
        return []
    folders = [p for p in workspace.iterdir() if p.is_dir() and (p / STATUS_FILE).is_file()]
    return [load_run(p, live_ids) for p in sorted(folders, key=lambda p: p.name, reverse=True)]


def find_run(workspace: Path, run: str | os.PathLike) -> RunInfo:
    """A run by folder path or by id inside the workspace."""
    path = Path(run)
    if not (path / STATUS_FILE).is_file():
        path = workspace / str(run)
    if not (path / STATUS_FILE).is_file():
        raise StudioError(f"No run at '{run}': give a run folder (with {STATUS_FILE}) or a run id from the history.")
    return load_run(path.resolve())  # absolute: exports hand the folder to tools that run elsewhere


def ensure_not_training(path: Path, action: str, live_ids: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse ``action`` on a run that is queued or training, whichever process (server, CLI) owns it."""
    run = load_run(path, live_ids)
    holder = current_holder(path.parent)
    if holder is not None and holder.run_id == path.name:
        who = f" by process {holder.pid} on {holder.host}"
    elif run.state.live:
        who = ""
    else:
        return
    raise StudioError(
        f"Run '{run.name}' is {run.state if run.state.live else 'training'}{who}: it cannot be {action} while it "
        "trains. Stop it first (Stop on the Train page, or `python -m core stop RUN`), then try again."
    )


def rename_run(path: Path, name: str, live_ids: set[str] | frozenset[str] = frozenset()) -> None:
    ensure_not_training(path, "renamed", live_ids)
    name = name.strip()
    if not name:
        raise StudioError("A run name cannot be empty: type a name, or keep the old one.")
    update_status(path, name=name)


def delete_run(path: Path, workspace: Path, live_ids: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove a run folder; refuses paths outside the workspace and runs that are queued or training."""
    resolved, root = path.resolve(), workspace.resolve()
    if root not in resolved.parents:
        raise StudioError(f"Refusing to delete '{path}': it is not inside the workspace {workspace}.")
    ensure_not_training(resolved, "deleted", live_ids)
    shutil.rmtree(resolved)


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """Batch and epoch records from metrics.jsonl (a torn last line from a crash is ignored)."""
    batches, epochs = [], []
    try:
        lines = (path / METRICS_FILE).read_text().splitlines()
    except OSError:
        return batches, epochs
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        (batches if record.get("kind") == "batch" else epochs).append(record)
    return batches, epochs


def append_metrics(path: Path, records: list[dict]) -> None:
    """Append records and flush them to disk (the file only ever grows)."""
    if not records:
        return
    with open(path / METRICS_FILE, "a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, default=json_default) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _shown(value: float | int | None, pattern: str = "{:.3f}") -> str:
    return pattern.format(value) if isinstance(value, (int, float)) else "—"


def history_rows(runs: list[RunInfo]) -> list[dict]:
    """One row per run for the history table: name, state, data, size, scores, duration, start time."""
    rows = []
    for run in runs:
        s = run.status
        rows.append(
            {
                "run": run.run_id,
                "name": run.name,
                "status": str(run.state),
                "dataset": s.dataset or "—",
                "preset": s.preset or "—",
                "parameters": _shown(s.params, "{:,}"),
                "best val acc": _shown(s.best_val_accuracy),
                "test acc": _shown(s.test_accuracy),
                "epochs": s.epochs_completed,
                "duration": _shown(s.duration, "{:.0f} s"),
                "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(s.created)) if s.created else "—",
            }
        )
    return rows
