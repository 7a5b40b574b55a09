"""Hyperparameter sweeps with Optuna: TPE sampling over fields of the config table, pruning of poor trials from
their epoch validation metric, every trial a normal run in the history (its status names the sweep).

A sweep lives in ``<workspace>/.sweeps/<id>/``: ``sweep.json`` (base config, search space, budget) and
``study.db`` (Optuna's SQLite storage), so it can be stopped (a STOP file) and resumed by id from the command
line or the Sweep page. Trials wait for the workspace's trainer lock like any run. This module imports Optuna
but never TensorFlow at import time: the web process draws the figures from it.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.config import StudioConfig, field_info, set_field
from core.errors import StudioError
from core.files import atomic_write_json
from core.i18n import LANG_ENV, _, language
from core.runs import list_runs
from core.status import RunState

SWEEPS_DIR = ".sweeps"  # a dot folder: the run history lists only folders with a status.json
SPEC_FILE = "sweep.json"
STUDY_FILE = "study.db"
STOP_FILE = "STOP"
PID_FILE = "pid"
METRICS = ("val_accuracy", "val_loss")
MAX_TRIALS = 200
STARTUP_TRIALS = 2  # trials before the pruner may stop one: it needs others to compare with
SWEEP_ID = re.compile(r"^sweep-\d{8}-\d{6}-[0-9a-f]{4}$")


@dataclass
class Param:
    """One searched field: ``low``..``high`` (``log`` for log-uniform), or one of ``choices``."""

    path: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list | None = None

    def text(self) -> str:
        if self.choices:
            return f"{self.path}={','.join(str(c) for c in self.choices)}"
        return f"{self.path}={self.low:g}:{self.high:g}" + (":log" if self.log else "")


# What a sweep searches when nothing is chosen: the settings that matter most for small CNNs.
DEFAULT_PARAMS = (
    Param("training.learning_rate", 1e-4, 1e-2, log=True),
    Param("model.filters.0", 8, 48),
    Param("model.block_dropout", 0.0, 0.4),
    Param("training.batch_size", choices=[32, 64, 128]),
    Param("augment.rotation", 0.0, 20.0),
)


def parse_param(text: str) -> Param:
    """``path=low:high``, ``path=low:high:log`` or ``path=a,b,c`` (choices), checked against the field table."""
    path, sep, spec = text.partition("=")
    path = path.strip()
    try:
        info = field_info(path)
    except KeyError:
        said = _("--param {text}: '{path}' is not a config field (python -m core settings lists them).")
        raise StudioError(said.format(text=text, path=path)) from None
    if not sep or not spec.strip():
        raise StudioError(
            _("--param {text}: give FIELD=LOW:HIGH, FIELD=LOW:HIGH:log or FIELD=A,B,C.").format(text=text)
        )
    kind = info.item_kind or info.kind
    if info.kind is list and path == info.path:
        said = _("--param {text}: search one item of a list field, e.g. {path}.0.")
        raise StudioError(said.format(text=text, path=path))
    if info.spec.choices or "," in spec or kind in (bool, str):
        choices = [_value(info, part, text) for part in spec.split(",") if part.strip()]
        return Param(path, choices=choices)
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].strip() != "log"):
        said = _("--param {text}: give LOW:HIGH or LOW:HIGH:log, e.g. training.learning_rate=1e-4:1e-2:log.")
        raise StudioError(said.format(text=text))
    low, high = (_value(info, part, text) for part in parts[:2])
    if low >= high:
        said = _("--param {text}: the low end {low} must be below the high end {high}.")
        raise StudioError(said.format(text=text, low=low, high=high))
    if len(parts) == 3 and low <= 0:
        raise StudioError(_("--param {text}: a log range needs a low end above 0.").format(text=text))
    return Param(path, low, high, log=len(parts) == 3)


def _value(info, text: str, whole: str):
    """One value of a searched field, parsed and checked as the field's flag would be."""
    from core.fields import check, parse_text

    flag = f"--param {whole}"
    if info.kind is list:
        value = parse_text(info, text, info.default, flag)[0]
        check(info, [value] * len(info.default))
    else:
        value = parse_text(info, text, None, flag)
        check(info, value)
    return value


@dataclass
class SweepSpec:
    """What a sweep searches: the base config, the params, the trial budget and the metric it maximises."""

    sweep_id: str
    base: dict
    params: list[Param]
    trials: int
    metric: str = "val_accuracy"
    created: float = field(default_factory=time.time)

    @property
    def direction(self) -> str:
        return "minimize" if self.metric.endswith("loss") else "maximize"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SweepSpec:
        return cls(**{**data, "params": [Param(**p) for p in data["params"]]})


def sweeps_dir(workspace: Path) -> Path:
    return workspace / SWEEPS_DIR


def sweep_dir(workspace: Path, sweep_id: str) -> Path:
    if not SWEEP_ID.match(sweep_id):
        said = _("'{sweep}' is not a sweep id (they look like sweep-20261202-081500-1a2b).")
        raise StudioError(said.format(sweep=sweep_id))
    return sweeps_dir(workspace) / sweep_id


def create_sweep(
    workspace: Path, base: StudioConfig, params: list[Param] | None = None, trials: int = 10, metric: str = METRICS[0]
) -> SweepSpec:
    """A new sweep folder with its spec (nothing trains yet)."""
    base.validate()
    if not 1 <= trials <= MAX_TRIALS:
        said = _("The trial budget is {count}: give 1 to {limit} trials.")
        raise StudioError(said.format(count=trials, limit=MAX_TRIALS))
    if metric not in METRICS:
        said = _("The sweep metric is '{metric}': choose {first} or {second}.")
        raise StudioError(said.format(metric=metric, first=METRICS[0], second=METRICS[1]))
    if base.data.val_split <= 0:
        raise StudioError(
            _("data.val_split is 0: a sweep compares trials on their validation metric; give it 0.1 or more.")
        )
    params = list(params or DEFAULT_PARAMS)
    paths = [p.path for p in params]
    if len(set(paths)) != len(paths):
        twice = ", ".join(sorted({p for p in paths if paths.count(p) > 1}))
        raise StudioError(_("A field is searched twice: {fields}.").format(fields=twice))
    sweep_id = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    spec = SweepSpec(sweep_id, base.to_dict(), params, trials, metric)
    folder = sweep_dir(workspace, sweep_id)
    folder.mkdir(parents=True)
    atomic_write_json(folder / SPEC_FILE, spec.to_dict())
    return spec


def load_spec(workspace: Path, sweep_id: str) -> SweepSpec:
    path = sweep_dir(workspace, sweep_id) / SPEC_FILE
    if not path.is_file():
        said = _("No sweep '{sweep}' in {workspace}: give the id of one (python -m core sweep --list).")
        raise StudioError(said.format(sweep=sweep_id, workspace=workspace))
    return SweepSpec.from_dict(json.loads(path.read_text()))


def list_sweeps(workspace: Path) -> list[str]:
    """Sweep ids, newest first."""
    folder = sweeps_dir(workspace)
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if (p / SPEC_FILE).is_file()), reverse=True)


def _storage(workspace: Path, sweep_id: str) -> str:
    return f"sqlite:///{sweep_dir(workspace, sweep_id) / STUDY_FILE}"


def load_study(workspace: Path, spec: SweepSpec):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=spec.sweep_id,
        storage=_storage(workspace, spec.sweep_id),
        direction=spec.direction,
        sampler=optuna.samplers.TPESampler(seed=spec.base["data"]["seed"], n_startup_trials=STARTUP_TRIALS),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=0),
        load_if_exists=True,
    )


def suggest(trial, spec: SweepSpec) -> StudioConfig:
    """The trial's config: the base with each searched field set to Optuna's suggestion."""
    config = StudioConfig.from_dict(spec.base)
    for param in spec.params:
        if param.choices:
            value = trial.suggest_categorical(param.path, param.choices)
        elif (field_info(param.path).item_kind or field_info(param.path).kind) is int:
            value = trial.suggest_int(param.path, int(param.low), int(param.high), log=param.log)
        else:
            value = trial.suggest_float(param.path, param.low, param.high, log=param.log)
        set_field(config, param.path, value)
    return config.validate()


def stop_sweep(workspace: Path, sweep_id: str) -> None:
    """Ask a sweep to stop: no new trial starts, and its training trial stops at its next step."""
    from core.trainer_lock import request_stop

    folder = sweep_dir(workspace, sweep_id)
    load_spec(workspace, sweep_id)
    (folder / STOP_FILE).write_text("stop requested\n")
    for run in list_runs(workspace):
        if run.status.sweep == sweep_id and run.state.live:
            request_stop(run.path)


def clear_stop(workspace: Path, sweep_id: str) -> None:
    """Resuming a stopped sweep: forget its stop request."""
    (sweep_dir(workspace, sweep_id) / STOP_FILE).unlink(missing_ok=True)


def stop_requested(workspace: Path, sweep_id: str) -> bool:
    return (sweep_dir(workspace, sweep_id) / STOP_FILE).is_file()


def _pruning_callback(trial, metric: str):
    import keras

    class Pruning(keras.callbacks.Callback):
        """Reports each epoch's validation metric to Optuna and stops training when the trial is pruned."""

        pruned_at: int | None = None

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(metric)
            if value is None or not math.isfinite(float(value)):
                return
            trial.report(float(value), epoch)
            if trial.should_prune():
                self.pruned_at = epoch + 1
                self.model.stop_training = True

    return Pruning()


def run_sweep(
    workspace: Path,
    sweep_id: str,
    dataset=None,
    extra_callbacks: Callable[[], list] | None = None,
    on_trial: Callable[[int, str], None] | None = None,
) -> dict:
    """Run (or resume) a sweep until its trial budget is used or a stop is asked for; returns :func:`summary`.

    ``dataset``: the loaded data (same for every trial unless a trial changes a data field: then it loads).
    """
    import optuna

    from core.training import create_run, train_run

    spec = load_spec(workspace, sweep_id)
    study = load_study(workspace, spec)
    data_params = any(p.path.startswith("data.") for p in spec.params)

    def objective(trial) -> float:
        config = suggest(trial, spec)
        name = f"{spec.sweep_id} trial {trial.number + 1}"
        run_dir = create_run(workspace, config, name)
        from core.status import update_status

        update_status(run_dir, sweep=spec.sweep_id)
        trial.set_user_attr("run_id", run_dir.name)
        if on_trial:
            on_trial(trial.number + 1, run_dir.name)
        pruning = _pruning_callback(trial, spec.metric)
        extra = [pruning, *(extra_callbacks() if extra_callbacks else [])]
        result = train_run(
            config, workspace, run_dir=run_dir, dataset=None if data_params else dataset, extra_callbacks=extra
        )
        if pruning.pruned_at is not None:
            said = _("Pruned by sweep {sweep} after epoch {epoch}.")
            update_status(run_dir, error=said.format(sweep=spec.sweep_id, epoch=pruning.pruned_at))
            raise optuna.TrialPruned()
        if result.status != RunState.FINISHED:
            if stop_requested(workspace, spec.sweep_id):
                trial.study.stop()
            return math.nan  # a failed or stopped trial: Optuna records it as failed
        return _metric_of(run_dir, spec.metric)

    def stop_when_asked(study, trial) -> None:
        if stop_requested(workspace, spec.sweep_id):
            study.stop()

    pid_file = sweep_dir(workspace, sweep_id) / PID_FILE
    pid_file.write_text(str(os.getpid()))
    try:
        while _done_trials(study) < spec.trials and not stop_requested(workspace, spec.sweep_id):
            study.optimize(objective, n_trials=1, callbacks=[stop_when_asked], catch=())
    finally:
        pid_file.unlink(missing_ok=True)
    return summary(workspace, sweep_id)


def is_running(workspace: Path, sweep_id: str) -> bool:
    """Whether a process runs the sweep now (its pid file names a live process)."""
    try:
        pid = int((sweep_dir(workspace, sweep_id) / PID_FILE).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def start_in_background(workspace: Path, sweep_id: str) -> int:
    """Run (or resume) the sweep in its own process, as ``python -m core sweep --sweep ID`` would; its pid."""
    import subprocess
    import sys

    load_spec(workspace, sweep_id)
    clear_stop(workspace, sweep_id)
    log = (sweep_dir(workspace, sweep_id) / "sweep.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "sweep",
            "--sweep",
            sweep_id,
            "--workspace",
            str(workspace),
            "--quiet",
            "--background",
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, LANG_ENV: language()},  # its trials' messages speak the language of who started it
        start_new_session=True,  # it outlives a page rerun; stop_sweep ends it
    )
    (sweep_dir(workspace, sweep_id) / PID_FILE).write_text(str(process.pid))  # running from now on
    return process.pid


def _metric_of(run_dir: Path, metric: str) -> float:
    from core.runs import read_metrics

    values = [float(e[metric]) for e in read_metrics(run_dir)[1] if isinstance(e.get(metric), (int, float))]
    if not values:
        return math.nan
    return max(values) if metric.endswith("accuracy") else min(values)


def _done_trials(study) -> int:
    import optuna

    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state in ended)


def summary(workspace: Path, sweep_id: str) -> dict:
    """The sweep's trials (number, state, run id, params, value), its best trial and best config."""
    import optuna

    spec = load_spec(workspace, sweep_id)
    study = load_study(workspace, spec)
    trials = [
        {
            "number": t.number + 1,
            "state": t.state.name.lower(),
            "run_id": t.user_attrs.get("run_id"),
            "params": t.params,
            "value": t.value,
        }
        for t in study.get_trials(deepcopy=False)
    ]
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    best = None
    if complete:
        chosen = study.best_trial
        best = {"number": chosen.number + 1, "value": chosen.value, "params": chosen.params}
        best["config"] = best_config(spec, chosen.params).to_dict()
    return {
        "sweep_id": sweep_id,
        "metric": spec.metric,
        "budget": spec.trials,
        "params": [p.text() for p in spec.params],
        "stopped": stop_requested(workspace, sweep_id),
        "trials": trials,
        "best": best,
    }


def best_config(spec: SweepSpec, params: dict) -> StudioConfig:
    """The base config with a trial's params: what "use the best config" adopts."""
    config = StudioConfig.from_dict(spec.base)
    for path, value in params.items():
        set_field(config, path, value)
    return config.validate()


def figures(workspace: Path, sweep_id: str) -> dict:
    """Optuna's Plotly figures for the sweep, as JSON: parallel coordinates and parameter importances (the
    latter needs two finished trials with different values). Missing ones are None."""
    import optuna
    import optuna.visualization as vis

    spec = load_spec(workspace, sweep_id)
    study = load_study(workspace, spec)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    out: dict[str, str | None] = {"parallel": None, "importance": None}
    if complete:
        out["parallel"] = vis.plot_parallel_coordinate(study, target_name=spec.metric).to_json()
    if len(complete) >= 2 and len({t.value for t in complete}) > 1:
        try:
            out["importance"] = vis.plot_param_importances(study, target_name=spec.metric).to_json()
        except (RuntimeError, ValueError):  # e.g. every searched value the same in all trials
            pass
    return out


def default_param_texts() -> list[str]:
    """The default search space as --param texts (the CLI's help and the Sweep page's starting values)."""
    return [p.text() for p in DEFAULT_PARAMS]
