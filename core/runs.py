"""Run folders in a workspace: config, status, metrics, split, models. Writes are atomic where a reader
could otherwise see half a file, a run whose process died shows as "interrupted", and a run whose files are
damaged (torn, truncated, overwritten) is listed with what is wrong instead of breaking the listing."""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import socket
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from core.config import StudioConfig, source_title
from core.errors import StudioError
from core.files import disk_full_guard, json_default
from core.i18n import N_, _, language, number, using
from core.status import STATUS_FILE, RunState, RunStatus, read_status_checked, update_status
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
MAX_RUN_NAME = 200  # characters in a run's name
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
DAMAGED_FIX = "delete the run or train it again"
# The history table's columns: the keys of history_rows (as the CLI and tests read them), shown translated.
HISTORY_COLUMNS = {
    "run": N_("run"),
    "name": N_("name"),
    "status": N_("status"),
    "dataset": N_("dataset"),
    "preset": N_("preset"),
    "parameters": N_("parameters"),
    "best val acc": N_("best val acc"),
    "test acc": N_("test acc"),
    "epochs": N_("epochs"),
    "duration": N_("duration"),
    "started": N_("started"),
    "problem": N_("problem"),
}


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


def clean_run_name(name: str) -> str:
    """A name as one line: newlines and tabs become spaces, other control characters (and text-direction
    overrides) are dropped, runs of spaces shrink to one."""
    kept = (
        " " if ch.isspace() else ch
        for ch in str(name)
        if ch.isspace() or (unicodedata.category(ch) not in ("Cc", "Cs") and ch not in BIDI_CONTROLS)
    )
    return " ".join("".join(kept).split())


def default_run_name(config: StudioConfig) -> str:
    """The name of a run started without one: "mnist on Digits", "tiny on ZIP of class folders (pets.zip)". A run's
    name is data, stored in status.json and read by every visitor and the CLI whatever their language, so the app
    makes it language-neutral (English) once, as the run is created; renaming it is the person's choice."""
    with using("en"):
        data = source_title(config.data.source)
    data += f" ({Path(config.data.path).name})" if config.data.path else ""
    return clean_run_name(f"{config.model.preset} on {data}")[:MAX_RUN_NAME]


def check_run_name(name: str) -> str:
    """The cleaned name, or a StudioError when it is empty or longer than MAX_RUN_NAME characters."""
    cleaned = clean_run_name(name)
    if not cleaned:
        raise StudioError(_("A run name cannot be empty: type a name, or keep the old one."))
    if len(cleaned) > MAX_RUN_NAME:
        said = _("A run name can have at most {limit} characters; this one has {count}. Shorten it.")
        raise StudioError(said.format(limit=number(MAX_RUN_NAME), count=number(len(cleaned))))
    return cleaned


@dataclass
class RunInfo:
    """What the run history shows about one run folder; ``problems`` says what is damaged in it, one sentence
    per problem naming the file (empty for a sound run)."""

    path: Path
    status: RunStatus = field(default_factory=RunStatus)
    config: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> str | None:
        """What is wrong with the run's files, in one line, or None."""
        return "; ".join(self.problems) if self.problems else None

    @property
    def unusable(self) -> str | None:
        """The problems that stop evaluating and exporting the run (all but status.json's), or None."""
        blocking = [p for p in self.problems if not p.startswith(STATUS_FILE)]
        return "; ".join(blocking) if blocking else None

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def state(self) -> RunState:
        return self.status.state

    @property
    def name(self) -> str:
        name = clean_run_name(self.status.name or "") or self.run_id
        return name if len(name) <= MAX_RUN_NAME else name[: MAX_RUN_NAME - 1] + "…"

    def has_model(self) -> bool:
        return (self.path / BEST_MODEL).is_file() or (self.path / FINAL_MODEL).is_file()

    def model_path(self) -> Path:
        """The model to evaluate and export: the best checkpoint, else the final one."""
        for name in (BEST_MODEL, FINAL_MODEL):
            if (self.path / name).is_file():
                return self.path / name
        said = _(
            "Run '{name}' has no model file ({best} or {final}) in {folder}: it stopped before the first "
            "checkpoint. Train it again."
        )
        raise StudioError(said.format(name=self.name, best=BEST_MODEL, final=FINAL_MODEL, folder=self.path))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    return True


# (path, size, mtime) of a checked file → its check's answer: the history reads each file once per version.
_FILE_CHECKS: dict[tuple[str, str, str, int, int], object] = {}  # the language too: answers are messages
_MAX_FILE_CHECKS = 512


def _checked(path: Path, check):
    """``check(path)`` memoized on the file's version."""
    try:
        info = path.stat()
    except OSError:
        return check(path)
    key = (check.__name__, language(), str(path), info.st_size, info.st_mtime_ns)
    if key not in _FILE_CHECKS:
        if len(_FILE_CHECKS) >= _MAX_FILE_CHECKS:
            _FILE_CHECKS.clear()
        _FILE_CHECKS[key] = check(path)
    return _FILE_CHECKS[key]


def model_output_count(path: Path) -> int | None:
    """How many classes a .keras file's model outputs, read from its config (no weights loaded); None when the
    config does not say plainly."""
    try:
        with zipfile.ZipFile(path) as archive:
            inner = json.loads(archive.read("config.json")).get("config", {})
        layers = inner.get("layers", [])
        outputs = inner.get("output_layers")
        if outputs:  # ["predictions", 0, 0] for one output, a list of those for several
            name = outputs[0] if isinstance(outputs[0], str) else outputs[0][0]
        else:  # Sequential: the last layer
            name = layers[-1].get("config", {}).get("name")
        for layer in layers:
            config = layer.get("config", {})
            if config.get("name") == name and isinstance(config.get("units"), int):
                return config["units"]
    except Exception:  # any config we do not know the shape of: nothing to compare
        return None
    return None


def _model_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return _("{file} cannot be read: it is truncated or not a Keras model file").format(file=path.name)
    if "config.json" in names:
        return None
    return _("{file} is not a Keras model file (it has no config.json)").format(file=path.name)


def _npz_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return _("{file} is truncated or not a NumPy archive").format(file=path.name)
    missing = [a for a in ("images", "labels") if f"{a}.npy" not in names]
    return _("{file} has no '{array}' array").format(file=path.name, array=missing[0]) if missing else None


def read_class_names(path: Path) -> tuple[list[str] | None, str | None]:
    """The class names in a run folder's class_names.json, or None and what is wrong with the file."""
    file = path / CLASSES_FILE
    try:
        names = json.loads(file.read_bytes())
    except FileNotFoundError:
        return None, _("{file} is missing").format(file=CLASSES_FILE)
    except OSError as err:
        return None, _("{file} cannot be read ({reason})").format(file=CLASSES_FILE, reason=err.strerror)
    except ValueError:
        return None, _("{file} is not valid JSON (truncated or overwritten)").format(file=CLASSES_FILE)
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        return None, _("{file} is not a list of at least 2 class names").format(file=CLASSES_FILE)
    return names, None


def read_config_checked(path: Path) -> tuple[dict, str | None]:
    """A run folder's config.json as a dict, and what is wrong with it (missing, torn, not a valid config)."""
    try:
        text = (path / CONFIG_FILE).read_bytes()
    except FileNotFoundError:
        return {}, _("{file} is missing").format(file=CONFIG_FILE)
    except OSError as err:
        return {}, _("{file} cannot be read ({reason})").format(file=CONFIG_FILE, reason=err.strerror)
    try:
        data = json.loads(text)
    except ValueError:
        return {}, _("{file} is not valid JSON (truncated or overwritten)").format(file=CONFIG_FILE)
    if not isinstance(data, dict):
        return {}, _("{file} is not a JSON object").format(file=CONFIG_FILE)
    try:
        StudioConfig.from_dict(data)
    except (StudioError, TypeError, ValueError, KeyError, AttributeError) as err:
        detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        return data, _("{file} is not a valid config ({detail})").format(file=CONFIG_FILE, detail=detail)
    return data, None


def file_problems(path: Path) -> list[str]:
    """What is wrong with the files of a run folder that has a model, one sentence each naming the file: the
    model file, the class names, the test split, and whether the model's class count is the class names'."""
    model = next((path / n for n in (BEST_MODEL, FINAL_MODEL) if (path / n).is_file()), None)
    if model is None:
        return []
    problems = []
    model_problem = _checked(model, _model_problem)
    names, names_problem = read_class_names(path)
    if not (path / TEST_DATA_FILE).is_file():
        data_problem = _("{file} is missing").format(file=TEST_DATA_FILE)
    else:
        data_problem = _checked(path / TEST_DATA_FILE, _npz_problem)
    problems += [p for p in (model_problem, names_problem, data_problem) if p]
    outputs = None if model_problem else _checked(model, model_output_count)
    if names is not None and outputs is not None and outputs != len(names):
        said = _("{file} lists {count} classes but the model outputs {outputs}")
        problems.append(said.format(file=CLASSES_FILE, count=number(len(names)), outputs=number(outputs)))
    return problems


def _owner_alive(path: Path, status: RunStatus) -> bool:
    """Whether the process that owns a queued or running run is alive: the trainer, or the server (or CLI) that
    queued it. Another host's process cannot be checked from here: its run is live while it holds the
    workspace's trainer lock."""
    if status.host == socket.gethostname():
        return status.pid is not None and _process_alive(int(status.pid))
    holder = current_holder(path.parent)
    return holder is not None and holder.run_id == path.name


def _mark_interrupted(path: Path, status: RunStatus, live_ids: set[str] | frozenset[str]) -> RunStatus:
    if status.state.live and path.name not in live_ids and not _owner_alive(path, status):
        status.state = RunState.INTERRUPTED
        status.error = status.error or _("The server stopped while this run was training.")
    return status


def run_status(path: Path, live_ids: set[str] | frozenset[str] = frozenset()) -> RunStatus:
    """A run's status as load_run gives it (interrupted when its owner is gone), without checking its files."""
    return _mark_interrupted(path, read_status_checked(path)[0], live_ids)


def load_run(path: Path, live_ids: set[str] | frozenset[str] = frozenset()) -> RunInfo:
    """Read a run folder; a run that says running (or queued) but has no live owner becomes interrupted, a run
    with damaged files lists what is wrong in ``problems``. Never raises for what is in the folder."""
    status, problems = read_status_checked(path)
    config, config_problem = read_config_checked(path)
    problems += [config_problem] if config_problem else []
    problems += file_problems(path)
    return RunInfo(path, _mark_interrupted(path, status, live_ids), config, problems)


# status.json files known to hold an ended run, by path → (inode, size, mtime): an ended run never becomes live
# again, so live_run_ids reads each such file once. Live runs' files are read on every call.
_ENDED: dict[str, tuple[int, int, int]] = {}


def live_run_ids(workspace: Path, live_ids: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The runs queued or training in the workspace, by any process (this server's ``live_ids``, another
    server's, the command line's), newest first. Cheap enough to ask every second while something trains."""
    if not workspace.is_dir():
        return []
    found = []
    for path in sorted(workspace.iterdir(), key=lambda p: p.name, reverse=True):
        file = path / STATUS_FILE
        try:
            info = file.stat()
        except OSError:
            continue
        version = (info.st_ino, info.st_size, info.st_mtime_ns)
        if _ENDED.get(str(file)) == version:
            continue
        status = read_status_checked(path)[0]
        if not status.state.live:
            if len(_ENDED) >= _MAX_FILE_CHECKS * 8:
                _ENDED.clear()
            _ENDED[str(file)] = version
        elif path.name in live_ids or _owner_alive(path, status):
            found.append(path.name)
    return found


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
        said = _("No run at '{run}': give a run folder (with {file}) or a run id from the history.")
        raise StudioError(said.format(run=run, file=STATUS_FILE))
    return load_run(path.resolve())  # absolute: exports hand the folder to tools that run elsewhere


# What each action on a run that trains says: by a known process, by an unknown one.
REFUSALS = {
    "renamed": (
        N_(
            "Run '{name}' is {state} by process {pid} on {host}: it cannot be renamed while it trains. Stop it first "
            "(Stop on the Train page, or `python -m core stop RUN`), then try again."
        ),
        N_(
            "Run '{name}' is {state}: it cannot be renamed while it trains. Stop it first (Stop on the Train page, "
            "or `python -m core stop RUN`), then try again."
        ),
    ),
    "deleted": (
        N_(
            "Run '{name}' is {state} by process {pid} on {host}: it cannot be deleted while it trains. Stop it first "
            "(Stop on the Train page, or `python -m core stop RUN`), then try again."
        ),
        N_(
            "Run '{name}' is {state}: it cannot be deleted while it trains. Stop it first (Stop on the Train page, "
            "or `python -m core stop RUN`), then try again."
        ),
    ),
}


def ensure_not_training(path: Path, action: str, live_ids: set[str] | frozenset[str] = frozenset()) -> None:
    """Refuse ``action`` on a run that is queued or training, whichever process (server, CLI) owns it."""
    run = load_run(path, live_ids)
    holder = current_holder(path.parent)
    held = holder is not None and holder.run_id == path.name
    if not (held or run.state.live):
        return
    state = run.state.label if run.state.live else _("training")
    said = _(REFUSALS[action][0 if held else 1])
    raise StudioError(
        said.format(name=run.name, state=state, pid=holder.pid if held else "", host=holder.host if held else "")
    )


def rename_run(path: Path, name: str, live_ids: set[str] | frozenset[str] = frozenset()) -> None:
    """Give a run a new name: one line (control characters cleaned), at most MAX_RUN_NAME characters."""
    name = check_run_name(name)
    ensure_not_training(path, "renamed", live_ids)
    with disk_full_guard(path.parent):
        update_status(path, name=name)


def delete_run(path: Path, workspace: Path, live_ids: set[str] | frozenset[str] = frozenset()) -> None:
    """Remove a run folder; refuses paths outside the workspace and runs that are queued or training."""
    resolved, root = path.resolve(), workspace.resolve()
    if root not in resolved.parents:
        said = _("Refusing to delete '{path}': it is not inside the workspace {workspace}.")
        raise StudioError(said.format(path=path, workspace=workspace))
    ensure_not_training(resolved, "deleted", live_ids)
    shutil.rmtree(resolved)


_REQUIRED_METRICS = {"batch": ("epoch", "step", "loss", "lr"), "epoch": ("epoch", "lr")}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """Batch and epoch records from metrics.jsonl. A torn last line from a crash, and any line that is not a
    record (overwritten, garbage), is skipped; a value that is not a number is left out of its record."""
    batches, epochs = [], []
    try:
        lines = (path / METRICS_FILE).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return batches, epochs
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind not in _REQUIRED_METRICS:
            continue
        clean = {"kind": kind, **{k: v for k, v in record.items() if k != "kind" and _is_number(v)}}
        if all(key in clean for key in _REQUIRED_METRICS[kind]):
            (batches if kind == "batch" else epochs).append(clean)
    return batches, epochs


# metrics.jsonl by path → (inode, size, mtime) and its records: only the latest version of each file is kept.
_METRICS: dict[str, tuple[tuple[int, int, int], tuple[list[dict], list[dict]]]] = {}
_MAX_METRICS = 32


def read_metrics_cached(path: Path) -> tuple[list[dict], list[dict]]:
    """read_metrics, parsed once per version of the file: every tab that watches a run of another process reads
    it every second. The lists are shared: do not change them."""
    file = path / METRICS_FILE
    try:
        info = file.stat()
    except OSError:
        return [], []
    version = (info.st_ino, info.st_size, info.st_mtime_ns)
    cached = _METRICS.get(str(file))
    if cached is not None and cached[0] == version:
        return cached[1]
    records = read_metrics(path)
    if len(_METRICS) >= _MAX_METRICS:
        _METRICS.clear()
    _METRICS[str(file)] = (version, records)
    return records


def append_metrics(path: Path, records: list[dict]) -> None:
    """Append records and flush them to disk (the file only ever grows); a full disk leaves the file as it was."""
    if not records:
        return
    text = "".join(json.dumps(record, default=json_default) + "\n" for record in records).encode()
    file = path / METRICS_FILE
    with disk_full_guard(path.parent, len(text)):
        with open(file, "ab") as handle:
            size = handle.tell()
            try:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            except OSError:
                handle.truncate(size)  # no half line for a reader
                raise


def _score(value: float | int | None, pattern: str = "{seconds}", digits: int = 3) -> str:
    """A number as the history shows it (``pattern`` around it, a dash when unknown)."""
    if not (_is_number(value) and math.isfinite(value)):
        return "—"
    return pattern.format(seconds=number(value, digits))


def _when(seconds: float | None) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else "—"
    except (OverflowError, OSError, ValueError):
        return "—"


def history_rows(runs: list[RunInfo]) -> list[dict]:
    """One row per run for the history table: name, state, data, size, scores, duration, start time, and what
    is damaged in it."""
    rows = []
    for run in runs:
        s = run.status
        rows.append(
            {
                "run": run.run_id,
                "name": run.name,
                "status": _("{state} · damaged").format(state=run.state.label) if run.damaged else run.state.label,
                "dataset": s.dataset or "—",
                "preset": s.preset or "—",
                "parameters": number(s.params) if _is_number(s.params) else "—",
                "best val acc": _score(s.best_val_accuracy),
                "test acc": _score(s.test_accuracy),
                "epochs": s.epochs_completed,
                "duration": _score(s.duration, _("{seconds} s"), 0),
                "started": _when(s.created),
                "problem": run.damaged or "",
            }
        )
    return rows
