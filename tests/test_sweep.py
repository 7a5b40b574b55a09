"""Hyperparameter sweeps: a short Optuna sweep gives runs in the history, a best config and the two figures,
from the command line and on the Sweep page; search specs are checked like config flags."""

import json
import sys
from pathlib import Path

import pytest

from core.__main__ import main
from core.errors import StudioError
from core.runs import list_runs
from core.sweep import figures, list_sweeps, parse_param, summary

SWEEP_ARGS = [
    "--data",
    "builtin:digits",
    "--set",
    "data.image_size=12",
    "--epochs",
    "1",
    "--trials",
    "3",
    "--param",
    "training.learning_rate=1e-3:3e-2:log",
    "--param",
    "model.filters.0=8:16",
    "--quiet",
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("sweep")
    assert main(["sweep", *SWEEP_ARGS, "--workspace", str(workspace)]) == 0
    (sweep_id,) = list_sweeps(workspace)
    return workspace, sweep_id


@pytest.mark.slow
def test_a_three_trial_sweep_gives_runs_a_best_config_and_both_figures(swept):
    workspace, sweep_id = swept
    result = summary(workspace, sweep_id)
    assert len(result["trials"]) == 3
    assert {t["state"] for t in result["trials"]} <= {"complete", "pruned"}
    runs = {r.run_id: r for r in list_runs(workspace)}
    assert {t["run_id"] for t in result["trials"]} == set(runs), "every trial is a run in the history"
    assert all(r.status.sweep == sweep_id and r.status.epochs_completed == 1 for r in runs.values())
    best = result["best"]
    assert 1e-3 <= best["params"]["training.learning_rate"] <= 3e-2
    assert best["config"]["training"]["learning_rate"] == best["params"]["training.learning_rate"]
    assert best["config"]["model"]["filters"][0] == best["params"]["model.filters.0"]
    figs = figures(workspace, sweep_id)
    parallel, importance = json.loads(figs["parallel"]), json.loads(figs["importance"])
    assert parallel["layout"]["title"]["text"] == "Parallel Coordinate Plot"
    complete = [t for t in result["trials"] if t["state"] == "complete"]
    assert len(parallel["data"]) >= len(complete) >= 2  # Optuna 5 draws a line per trial (plus the axes)
    assert importance["layout"]["title"]["text"] == "Hyperparameter Importances"
    assert set(importance["data"][0]["y"]) == {"training.learning_rate", "model.filters.0"}


@pytest.mark.slow
def test_a_finished_sweep_resumed_with_a_larger_budget_adds_trials(swept, tmp_path):
    import shutil

    workspace, sweep_id = swept
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)
    spec_file = copy / ".sweeps" / sweep_id / "sweep.json"
    spec = json.loads(spec_file.read_text())
    spec["trials"] = 4
    spec_file.write_text(json.dumps(spec))
    assert main(["sweep", "--sweep", sweep_id, "--workspace", str(copy), "--quiet"]) == 0
    assert len(summary(copy, sweep_id)["trials"]) == 4


def test_the_sweep_page_and_figures_do_not_import_tensorflow():
    import subprocess

    code = "import sys, core.sweep, optuna.visualization; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("model.nothing=1:2", "'model.nothing' is not a config field"),
        ("training.learning_rate=0.1:0.01", "the low end 0.1 must be below the high end 0.01"),
        ("training.learning_rate=0:0.1:log", "above 0"),
        ("model.filters=8:16", "search one item of a list field, e.g. model.filters.0"),
        ("training.batch_size=32,0", "training.batch_size is 0"),
        ("training.optimizer=adam,lion", "choose one of adam"),
    ],
)
def test_search_specs_are_checked_like_flags(text, message):
    with pytest.raises(StudioError, match=message):
        parse_param(text)


def test_search_specs_parse_ranges_log_ranges_and_choices():
    assert parse_param("training.learning_rate=1e-4:1e-2:log").log
    assert parse_param("model.filters.1=16:64").high == 64
    assert parse_param("training.optimizer=adam,sgd").choices == ["adam", "sgd"]
    assert parse_param("training.batch_size=32,64").choices == [32, 64]


@pytest.mark.slow
def test_the_sweep_page_shows_trials_figures_uses_the_best_config_and_starts_a_sweep(swept, tmp_path, monkeypatch):
    import shutil
    import time

    from streamlit.testing.v1 import AppTest

    from core.sweep import is_running, stop_sweep

    workspace, sweep_id = swept
    copy = tmp_path / "runs"
    shutil.copytree(workspace, copy)
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(copy))
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=120)
    app.run()
    app.switch_page("app_pages/sweep.py").run()
    assert not app.exception
    table = next(d.value for d in app.dataframe if "trial" in d.value.columns)
    assert list(table["trial"]) == [1, 2, 3]
    assert len(app.get("plotly_chart")) == 2, "parallel coordinates and parameter importance"
    best = summary(copy, sweep_id)["best"]
    app.button(key="use_best_config").click().run()
    config = app.session_state["studio_config"]
    assert config.training.learning_rate == best["params"]["training.learning_rate"]
    assert config.model.filters[0] == best["params"]["model.filters.0"]
    # a new sweep from the page: its own process, stopped at once
    app.text_area(key="sweep_params").input("training.learning_rate=1e-3:1e-2:log").run()
    app.button(key="FormSubmitter:sweep_form-Start the sweep").click().run()
    assert not app.exception and not app.error
    (new,) = [s for s in list_sweeps(copy) if s != sweep_id]
    stop_sweep(copy, new)
    deadline = time.monotonic() + 120
    while is_running(copy, new) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not is_running(copy, new)
