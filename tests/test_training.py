"""Training through the job API and the command line: run folders, stop, faults, queue, schedules, CLI."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from core.config import StudioConfig, apply_preset
from core.files import read_json
from core.jobs import JobManager
from core.runs import list_runs, load_run, read_metrics
from core.status import Phase, RunState, read_status, update_status
from core.training import make_pipeline, train_run
from tests.conftest import class_zip, make_class_files

ROOT = Path(__file__).resolve().parent.parent


def digits_config(epochs: int = 2, **training) -> StudioConfig:
    config = StudioConfig()
    config.data.source = "builtin:digits"
    config.model = apply_preset("mnist")
    config.training.epochs = epochs
    for key, value in training.items():
        setattr(config.training, key, value)
    return config


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_short_job_finishes_and_leaves_a_complete_run_folder(tmp_path):
    manager = JobManager(tmp_path)
    job = manager.submit(digits_config(epochs=2))
    assert (job.run_dir / "status.json").is_file(), "the run folder exists as soon as it is queued"
    manager.wait(job.run_id)
    result = job.result
    assert result.status == "finished" and result.epochs_completed == 2 and result.error is None
    assert result.test_accuracy > 0.5 and result.best_val_accuracy > 0.5
    files = {p.name for p in job.run_dir.iterdir()}
    assert files >= {
        "config.json",
        "status.json",
        "metrics.jsonl",
        "best.keras",
        "final.keras",
        "class_names.json",
        "split.json",
        "test_data.npz",
        "calibration.npz",
    }
    assert not [f for f in files if f.endswith(".tmp") or f.startswith(".")], "no temporary files left behind"
    status = read_status(job.run_dir)
    assert status.state == RunState.FINISHED and status.params == 93_322
    assert read_json(job.run_dir / "status.json")["status"] == "finished", "the file keeps its JSON key"
    assert StudioConfig.from_json((job.run_dir / "config.json").read_text()) == job.config
    batches, epochs = read_metrics(job.run_dir)
    assert [e["epoch"] for e in epochs] == [1, 2] and len(batches) >= 10
    assert all(k in epochs[0] for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "images_per_second"))
    # The stored test split is the one the run was scored on, and the saved model scores the same on it.
    test = np.load(job.run_dir / "test_data.npz")
    split = read_json(job.run_dir / "split.json")
    assert len(test["labels"]) == len(split["test"]) == status.test_size
    model = keras.saving.load_model(job.run_dir / "best.keras")
    accuracy = float(np.mean(model.predict(test["images"], verbose=0).argmax(1) == test["labels"]))
    assert accuracy == pytest.approx(result.test_accuracy, abs=1e-6)
    assert read_json(job.run_dir / "class_names.json") == [str(i) for i in range(10)]


def test_the_live_store_has_batches_epochs_and_progress(tmp_path):
    manager = JobManager(tmp_path)
    job = manager.submit(digits_config(epochs=2))
    manager.wait(job.run_id)
    batches, epochs, progress = job.store.snapshot()
    assert len(epochs) == 2 and batches[-1]["step"] == 2 * progress.steps_per_epoch
    assert progress.phase == Phase.FINISHED and progress.images_per_second > 0 and progress.eta is not None
    assert job.state == RunState.FINISHED and not job.state.live
    # The raw per-batch loss is recovered from Keras's running mean: its average matches the epoch's loss.
    first = [b for b in batches if b["epoch"] == 1]
    assert abs(np.mean([b["loss"] for b in first]) - epochs[0]["loss"]) < 0.05


@pytest.mark.slow
def test_stop_ends_mid_run_and_keeps_a_loadable_model(tmp_path):
    manager = JobManager(tmp_path)
    job = manager.submit(digits_config(epochs=200))
    wait_for(lambda: len(job.store.snapshot()[1]) >= 1)
    assert manager.stop(job.run_id)
    manager.wait(job.run_id)
    assert job.result.status == "stopped" and 1 <= job.result.epochs_completed < 200
    assert load_run(job.run_dir).state == "stopped"
    model = keras.saving.load_model(job.run_dir / "best.keras")
    assert model.predict(np.zeros((1, 28, 28, 1), "uint8"), verbose=0).shape == (1, 10)


def test_nan_loss_fails_the_run_with_a_message_and_the_app_stays_up(tmp_path):
    config = digits_config(epochs=3, optimizer="sgd", learning_rate=10.0, momentum=0.9)
    config.model.output = "logits"
    result = train_run(config, tmp_path)
    assert result.status == "failed"
    assert result.error.startswith("NaN or Inf loss encountered at epoch 1, batch ")
    assert "Lower the learning rate (now 10; try 1)" in result.error
    assert read_status(Path(result.run_dir)).error == result.error


@pytest.mark.slow
def test_a_killed_training_process_fails_its_run_and_the_server_goes_on(tmp_path):
    import signal

    manager = JobManager(tmp_path)
    job = manager.submit(digits_config(epochs=200))
    wait_for(lambda: len(job.store.snapshot()[1]) >= 1)
    os.kill(job.process.pid, signal.SIGKILL)  # what the out-of-memory killer does
    manager.wait(job.run_id)
    assert job.result.status == "failed" and "ended unexpectedly (exit code -9)" in job.result.error
    assert load_run(job.run_dir).state == "failed"
    again = manager.submit(digits_config(epochs=1))
    manager.wait(again.run_id)
    assert again.result.status == "finished"


def test_a_bad_dataset_marks_the_run_failed_with_the_reason(tmp_path):
    config = StudioConfig()
    config.data.source, config.data.path = "folder", str(tmp_path / "missing")
    result = train_run(config, tmp_path / "ws")
    assert result.status == "failed" and "does not exist on the server" in result.error


def test_a_second_job_waits_in_the_queue(tmp_path):
    manager = JobManager(tmp_path)
    first = manager.submit(digits_config(epochs=3))
    second = manager.submit(digits_config(epochs=1))
    assert second.state == "queued" and second in manager.queued()
    assert load_run(second.run_dir, manager.live_ids()).state == "queued"
    manager.wait(second.run_id)
    assert first.state == RunState.FINISHED and second.result.status == RunState.FINISHED
    assert first.result.seconds > 0 and read_status(first.run_dir).finished <= read_status(second.run_dir).started


def test_a_run_left_running_by_a_dead_process_shows_interrupted(tmp_path):
    run = tmp_path / "20260101-000000-x"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    update_status(run, state=RunState.RUNNING, pid=int(dead.stdout), host=socket.gethostname())
    (runs,) = list_runs(tmp_path)
    assert runs.state == RunState.INTERRUPTED and "server stopped" in runs.status.error


def test_early_stopping_and_reduce_on_plateau_act(tmp_path):
    # A learning rate this small moves the validation loss by under 1e-4 an epoch: early stopping (patience 2)
    # ends the run after epoch 3, and reduce-on-plateau (patience 0) halves the rate after epoch 2, so the
    # third epoch (each record holds the rate used during its epoch) runs at half the first's.
    config = digits_config(
        epochs=10,
        optimizer="sgd",
        learning_rate=1e-5,
        momentum=0.0,
        early_stopping=True,
        patience=2,
        schedule="plateau",
        plateau_patience=0,
        plateau_factor=0.5,
    )
    result = train_run(config, tmp_path)
    _, epochs = read_metrics(Path(result.run_dir))
    assert result.status == "finished" and result.epochs_completed == 3
    assert epochs[-1]["lr"] == pytest.approx(epochs[0]["lr"] / 2, rel=1e-4)


def test_pipeline_batches_uint8_and_one_hot_labels():
    images = np.zeros((10, 8, 8, 1), np.uint8)
    labels = np.arange(10) % 3
    x, y = next(iter(make_pipeline(images, labels, 4, 3, one_hot=True, shuffle_seed=1)))
    assert x.dtype.name == "uint8" and tuple(x.shape) == (4, 8, 8, 1) and tuple(y.shape) == (4, 3)


# --- Command line ------------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


@pytest.mark.slow
def test_cli_trains_from_a_zip_of_class_folders_and_prints_json(tmp_path):
    (tmp_path / "pets.zip").write_bytes(class_zip(make_class_files({"cats": 12, "dogs": 12, "fish": 12})))
    out = run_cli(
        "train",
        "--data",
        "pets.zip",
        "--preset",
        "small-64",
        "--epochs",
        "2",
        "--image-size",
        "32",
        "--batch-size",
        "8",
        "--workspace",
        "ws",
        "--seed",
        "3",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"run_dir", "status", "epochs_completed", "best_val_accuracy", "test_accuracy", "images_per_second"} <= set(
        summary
    )
    assert summary["status"] == "finished" and summary["epochs_completed"] == 2
    run_dir = tmp_path / summary["run_dir"] if not Path(summary["run_dir"]).is_absolute() else Path(summary["run_dir"])
    assert (run_dir / "best.keras").is_file() and read_json(run_dir / "class_names.json") == ["cats", "dogs", "fish"]
    assert "epoch 2/2" in out.stderr and "img/s" in out.stderr


def test_cli_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path):
    for args, message in [
        (("train", "--data", "nowhere.zip"), "error: --data nowhere.zip: no such ZIP file"),
        (("train", "--data", "keras:mnist", "--epochs", "0"), "error: training.epochs is 0"),
        (("train", "--data", "builtin:digits", "--preset", "vgg"), "error: Unknown preset 'vgg'"),
    ]:
        out = run_cli(*args, cwd=tmp_path)
        lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
        assert out.returncode == 2 and lines and lines[0].startswith(message), out.stderr[-1000:]
        assert "Traceback" not in out.stderr


def test_cli_help_documents_train():
    out = run_cli("train", "--help", cwd=ROOT)
    for flag in (
        "--data",
        "--preset",
        "--config",
        "--epochs",
        "--batch-size",
        "--image-size",
        "--grayscale",
        "--rgb",
        "--val-split",
        "--test-split",
        "--seed",
        "--workspace",
    ):
        assert flag in out.stdout
    assert "python -m core train" in run_cli("--help", cwd=ROOT).stdout


@pytest.mark.slow
def test_a_spare_trainer_imports_tensorflow_before_the_click_and_is_replaced_after_the_run(tmp_path):
    manager = JobManager(tmp_path)
    manager.prepare()  # what drawing the Train page does
    spare = manager.spare_pid()
    assert spare is not None and manager._spare.wait_ready(120), "the spare imports TensorFlow and says so"
    job = manager.submit(digits_config(epochs=1))
    manager.wait(job.run_id)
    assert job.result.status == "finished"
    assert read_status(job.run_dir).pid == spare, "the run trained in the process that was waiting"
    wait_for(lambda: manager.spare_pid() not in (None, spare), timeout=30)
    # Started at once, before the new spare has imported TensorFlow; Stop reaches a run trained by a spare.
    stopped = manager.submit(digits_config(epochs=200))
    wait_for(lambda: len(stopped.store.snapshot()[1]) >= 1)
    assert manager.stop(stopped.run_id)
    manager.wait(stopped.run_id)
    assert stopped.result.status == "stopped"


def test_a_run_stopped_while_queued_elsewhere_never_starts(tmp_path):
    from core.trainer_lock import request_stop
    from core.training import create_run

    config = digits_config(epochs=5)
    run_dir = create_run(tmp_path, config)
    request_stop(run_dir)  # what Stop on another replica does to a run queued in this server's memory
    result = train_run(config, tmp_path, run_dir=run_dir)
    assert result.status == "stopped" and result.epochs_completed == 0 and result.error == "Stopped before it started."
    assert not (run_dir / "best.keras").exists() and read_status(run_dir).started is None
