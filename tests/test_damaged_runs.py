"""Damaged runs, full disks and run names: a broken file is named, never a traceback; a full disk leaves nothing
half-written; names have a length limit. Every damage is done to a real copy of a real trained run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.errors import StudioError
from core.files import DiskFull, atomic_save_model, atomic_write_bytes, disk_full_guard
from core.runs import (
    CLASSES_FILE,
    CONFIG_FILE,
    MAX_RUN_NAME,
    METRICS_FILE,
    TEST_DATA_FILE,
    clean_run_name,
    history_rows,
    list_runs,
    load_run,
    read_metrics,
    rename_run,
)
from core.status import STATUS_FILE, read_status, read_status_checked

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
DAMAGED_ID = "99999999-000000-damaged-0000"  # sorts first: the pages pick it by default


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_garbage_predictions(run: Path) -> None:
    (run / "predictions.npz").write_bytes(b"PK\x03\x04 not a zip at all")


def write_wrong_shape_predictions(run: Path) -> None:
    model = run / "best.keras"
    stamp = f"best.keras:{model.stat().st_size}:{model.stat().st_mtime_ns}"
    np.savez(run / "predictions.npz", probabilities=np.full((3, 2), 7.0), stamp=np.array(stamp))


# name → (damage, the problem listed for the run, or None when the run stays sound, evaluation's error or None)
DAMAGES = {
    "status-not-an-object": (
        lambda run: (run / STATUS_FILE).write_text("[1,2]"),
        "status.json is not a JSON object",
        None,
    ),
    "status-wrong-types": (
        lambda run: (run / STATUS_FILE).write_text(
            json.dumps({"status": "finished", "created": "yesterday", "pid": "x", "notes": 5, "epochs_completed": []})
        ),
        "status.json: 'created' is \"yesterday\", not a number",
        None,
    ),
    "predictions-garbage": (write_garbage_predictions, None, None),
    "predictions-wrong-shape": (write_wrong_shape_predictions, None, None),
    "metrics-garbage": (
        lambda run: (run / METRICS_FILE).write_text(
            '[1,2]\n{"kind": "epoch", "epoch": "x"}\n\x00\x01garbage\n{"kind":'
        ),
        None,
        None,
    ),
    "test-data-truncated": (
        lambda run: truncate(run / TEST_DATA_FILE),
        "test_data.npz is truncated",
        "test_data.npz is truncated",
    ),
    "model-truncated": (
        lambda run: (truncate(run / "best.keras"), (run / "final.keras").unlink()),
        "best.keras cannot be read: it is truncated",
        "best.keras of run .* cannot be read",
    ),
    "config-missing": (lambda run: (run / CONFIG_FILE).unlink(), "config.json is missing", "config.json is missing"),
    "class-count": (
        lambda run: (run / CLASSES_FILE).write_text('["a", "b", "c"]'),
        "class_names.json lists 3 classes but the model outputs 10",
        "class_names.json lists 3 classes",
    ),
}


@pytest.fixture
def workspace(trained_run, tmp_path, monkeypatch) -> Path:
    """A workspace with a good copy of the trained run; the app looks here."""
    workspace = tmp_path / "runs"
    shutil.copytree(trained_run.path, workspace / trained_run.run_id)
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(workspace))
    return workspace


def damaged_copy(workspace: Path, trained_run, damage: str) -> Path:
    run = workspace / DAMAGED_ID
    shutil.copytree(trained_run.path, run)
    DAMAGES[damage][0](run)
    return run


# --- Listing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_run_is_listed_with_its_problem_and_the_others_load(workspace, trained_run, damage):
    damaged_copy(workspace, trained_run, damage)
    runs = {run.run_id: run for run in list_runs(workspace)}
    good, bad = runs[trained_run.run_id], runs[DAMAGED_ID]
    assert good.problems == [] and good.damaged is None and good.status.test_accuracy is not None
    problem = DAMAGES[damage][1]
    rows = {row["run"]: row for row in history_rows(list(runs.values()))}
    assert rows[trained_run.run_id]["problem"] == "" and "damaged" not in rows[trained_run.run_id]["status"]
    if problem is None:
        assert bad.damaged is None, bad.problems
    else:
        assert problem in bad.damaged
        assert rows[DAMAGED_ID]["status"].endswith("· damaged") and problem in rows[DAMAGED_ID]["problem"]


def test_status_fields_of_the_wrong_type_read_as_defaults_and_are_named(tmp_path):
    (tmp_path / STATUS_FILE).write_text(
        json.dumps({"status": "finished", "name": 5, "pid": -1, "created": 1e300, "test_accuracy": True})
    )
    status, problems = read_status_checked(tmp_path)
    assert status.state == "finished" and status.name is None and status.pid is None and status.test_accuracy is None
    assert any("'name' is 5" in p for p in problems) and any("'pid' is -1" in p for p in problems)
    assert history_rows([load_run(tmp_path)])[0]["started"] == "—", "a date out of range shows as unknown"
    (tmp_path / STATUS_FILE).write_bytes(b"\xff\xfe torn")
    assert read_status(tmp_path).state == "interrupted"


def test_garbage_metric_lines_are_skipped(tmp_path):
    good = {"kind": "epoch", "epoch": 1, "lr": 0.001, "loss": 0.5, "accuracy": "high"}
    (tmp_path / METRICS_FILE).write_text("\n".join(["[1]", "7", json.dumps(good), '{"kind": "batch"}', "{torn"]))
    batches, epochs = read_metrics(tmp_path)
    assert batches == [] and epochs == [{"kind": "epoch", "epoch": 1, "lr": 0.001, "loss": 0.5}]


# --- Evaluation ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", DAMAGES)
def test_evaluation_names_the_damaged_file_or_recomputes(workspace, trained_run, damage):
    from core.evaluation import evaluate_run

    run = load_run(damaged_copy(workspace, trained_run, damage))
    expected = DAMAGES[damage][2]
    if expected is None:
        evaluation = evaluate_run(run)
        assert evaluation.accuracy == pytest.approx(trained_run.status.test_accuracy, abs=1e-6)
    else:
        with pytest.raises(StudioError, match=expected) as caught:
            evaluate_run(run)
        assert "delete the run or train it again" in str(caught.value).lower()


def test_a_garbage_prediction_cache_is_rewritten(workspace, trained_run):
    from core.evaluation import PREDICTIONS_FILE, cached_probabilities

    run = load_run(damaged_copy(workspace, trained_run, "predictions-wrong-shape"))
    probs = cached_probabilities(run)
    assert probs.shape == (trained_run.status.test_size, 10)
    with np.load(run.path / PREDICTIONS_FILE) as data:
        assert data["probabilities"].shape == probs.shape


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, damage",
    [("evaluate", "test-data-truncated"), ("evaluate", "class-count"), ("export", "config-missing")],
)
def test_the_cli_refuses_a_damaged_run_in_one_line(workspace, trained_run, command, damage):
    run = damaged_copy(workspace, trained_run, damage)
    extra = ["--formats", "keras", "--no-compare"] if command == "export" else []
    result = cli(command, "--run", str(run), *extra)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and DAMAGES[damage][2] in lines[0], result.stderr
    assert not (run / "exports" / "model.keras").exists()


# --- Pages ---------------------------------------------------------------------------------------------------


def open_page(page: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=180)
    app.run()
    app.switch_page(page).run()
    return app


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["status-not-an-object", "test-data-truncated", "config-missing", "class-count"])
def test_pages_show_the_damage_and_keep_working_for_the_good_run(workspace, trained_run, damage):
    damaged_copy(workspace, trained_run, damage)
    problem, fatal = DAMAGES[damage][1], DAMAGES[damage][2]

    train = open_page("app_pages/train.py")
    assert not train.exception
    history = next(d.value for d in train.dataframe if "problem" in d.value.columns)
    assert problem in history.set_index("run").loc[DAMAGED_ID, "problem"]
    assert any(problem in w.value for w in train.warning), "the picked (damaged) run says what is wrong"

    for page in ("app_pages/evaluate.py", "app_pages/export.py"):
        app = open_page(page)
        assert not app.exception, page
        if fatal:
            assert [e.value for e in app.error] == [e.value for e in app.error if fatal in e.value], page
            assert len(app.error) == 1 and "Delete the run or train it again" in app.error[0].value
        else:
            assert not app.error and any(problem in w.value for w in app.warning), page
        key = "eval_run" if page.endswith("evaluate.py") else "export_run"
        app.selectbox(key=key).select(trained_run.run_id).run()
        assert not app.exception and not app.error, page
    assert app.button(key="export_button")  # the Export page, for the good run: ready to export
    evaluate = open_page("app_pages/evaluate.py")
    evaluate.selectbox(key="eval_run").select(trained_run.run_id).run()
    assert next(m.value for m in evaluate.metric if m.label == "Test accuracy") == (
        f"{trained_run.status.test_accuracy:.2%}"
    )


def test_the_export_page_survives_a_damaged_manifest_and_metadata(workspace, trained_run):
    run = workspace / trained_run.run_id
    (run / "exports").mkdir()
    (run / "exports" / "manifest.json").write_text('{"model": [1], "formats": "x"}')
    (run / "exports" / "metadata.json").write_text("[not json")
    app = open_page("app_pages/export.py")
    assert not app.exception and not app.error
    assert any("Nothing exported" in i.value for i in app.info)


# --- Full disk -----------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MB filesystem (tmpfs), so writes really fail with ENOSPC; needs root to mount."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; no other way to fill a real filesystem here")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the filesystem of ``folder`` until ``leave_bytes`` are free."""
    free = shutil.disk_usage(folder).free - leave_bytes
    with open(folder / "filler", "wb") as handle:
        try:
            handle.write(b"\0" * max(free, 0))
        except OSError:
            pass


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name)


def test_a_full_disk_write_becomes_one_message_and_leaves_no_part_file(small_disk):
    workspace = small_disk / "ws"
    run = workspace / "20260101-run"
    run.mkdir(parents=True)
    (run / STATUS_FILE).write_text("{}")
    fill(small_disk)
    with pytest.raises(DiskFull, match=r"The disk is full: free 3 MB in the workspace \(ws\) and try again"):
        atomic_write_bytes(run / TEST_DATA_FILE, b"x" * 2_500_000)
    with pytest.raises(DiskFull, match=r"free 1 MB in the workspace \(ws\)"):
        with disk_full_guard(workspace):
            with open(run / "raw.bin", "wb") as handle:  # no space check first: the OS's own ENOSPC
                handle.write(b"x" * 100_000)
                handle.flush()
    assert leftovers(workspace) == []


def test_a_model_saved_on_a_full_disk_leaves_no_file(small_disk):
    import keras

    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2048), keras.layers.Dense(10)])
    fill(small_disk, leave_bytes=200_000)
    with pytest.raises(DiskFull, match="The disk is full: free 1 MB"):
        atomic_save_model(model, small_disk / "best.keras")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_creating_a_run_on_a_full_disk_leaves_no_folder(small_disk):
    from core.config import StudioConfig
    from core.training import create_run

    workspace = small_disk / "ws"
    workspace.mkdir()
    fill(small_disk)
    with pytest.raises(DiskFull, match=r"The disk is full: free 1 MB in the workspace \(ws\) and try again"):
        create_run(workspace, StudioConfig())
    assert list(workspace.iterdir()) == []


@pytest.mark.slow
def test_exporting_on_a_full_disk_stops_with_the_message_and_no_truncated_file(small_disk, trained_run):
    from core.export import EXPORT_DIR, export_run

    workspace = small_disk / "ws"
    run_dir = workspace / trained_run.run_id
    shutil.copytree(trained_run.path, run_dir, ignore=shutil.ignore_patterns("final.keras", "predictions.npz"))
    model_size = (run_dir / "best.keras").stat().st_size
    fill(small_disk, leave_bytes=model_size // 2)
    with pytest.raises(DiskFull, match=r"The disk is full: free \d+ MB in the workspace \(ws\) and try again"):
        export_run(load_run(run_dir), ["keras"], compare=False)
    assert not (run_dir / EXPORT_DIR / "model.keras").exists()
    assert leftovers(workspace) == []
    result = cli("export", "--run", str(run_dir), "--formats", "keras", "--no-compare")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Exporting")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and "error: The disk is full: free" in lines[0] and "(ws)" in lines[0], result.stderr
    assert not (run_dir / EXPORT_DIR / "model.keras").exists() and leftovers(workspace) == []


@pytest.mark.slow
def test_starting_training_on_a_full_disk_shows_the_message(small_disk, monkeypatch):
    workspace = small_disk / "ws"
    workspace.mkdir()
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(workspace))
    fill(small_disk)
    app = open_page("app_pages/train.py")
    app.button(key="start_training").click().run()
    assert not app.exception
    assert any("The disk is full: free 1 MB in the workspace (ws)" in e.value for e in app.error)
    assert list(workspace.iterdir()) == []


# --- Names ---------------------------------------------------------------------------------------------------


def test_rename_refuses_names_over_the_limit_with_the_numbers(workspace, trained_run):
    run = workspace / trained_run.run_id
    with pytest.raises(StudioError, match=f"at most {MAX_RUN_NAME} characters; this one has 1,048,576"):
        rename_run(run, "x" * 2**20)
    with pytest.raises(StudioError, match=f"at most {MAX_RUN_NAME} characters; this one has {MAX_RUN_NAME + 1}"):
        rename_run(run, "y" * (MAX_RUN_NAME + 1))
    rename_run(run, "z" * MAX_RUN_NAME)
    assert load_run(run).name == "z" * MAX_RUN_NAME


def test_control_characters_and_newlines_are_cleaned_from_names(workspace, trained_run):
    run = workspace / trained_run.run_id
    rename_run(run, "  first\nsecond\tthird\x00\x1b[31m\u202eend  ")
    assert load_run(run).name == "first second third[31mend"
    assert clean_run_name("a\r\n\r\nb") == "a b"
    with pytest.raises(StudioError, match="cannot be empty"):
        rename_run(run, "\n\x00\x07")


def test_a_long_name_is_refused_before_a_run_folder_exists(tmp_path):
    from core.config import StudioConfig
    from core.training import create_run

    with pytest.raises(StudioError, match="this one has 1,048,576"):
        create_run(tmp_path, StudioConfig(), "n" * 2**20)
    assert list(tmp_path.iterdir()) == []
    run = create_run(tmp_path, StudioConfig(), "line one\nline two")
    assert read_status(run).name == "line one line two"


def test_a_long_name_already_on_disk_is_shown_shortened(tmp_path):
    (tmp_path / STATUS_FILE).write_text(json.dumps({"status": "finished", "name": "n" * 5000}))
    assert len(load_run(tmp_path).name) == MAX_RUN_NAME
