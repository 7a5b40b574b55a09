"""Several devices: MirroredStrategy over logical CPU devices (CNN_STUDIO_CPU_DEVICES) trains like one device."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.__main__ import build_parser, config_from_args
from core.devices import batch_text, cpu_devices_setting
from core.errors import StudioError
from core.status import Phase, Progress, read_progress, read_status
from core.training import train_run

ROOT = Path(__file__).resolve().parent.parent
# Same config and seed on one and on two devices: the test accuracies (digits' 269 test images) may differ by this
# much. The global batch is the same, so the updates are the same up to float summation order and the per-replica
# dropout masks; 3 epochs of the mnist preset reach ~0.9 either way.
ACCURACY_TOLERANCE = 0.07


TRAIN = ["train", "--data", "builtin:digits", "--preset", "mnist", "--epochs", "3", "--seed", "5", "--quiet"]


@pytest.mark.slow
def test_two_logical_devices_train_like_one_with_the_global_batch_recorded(tmp_path):
    # One device in this process (TensorFlow here has one CPU device), two in a fresh CLI process (the setting
    # must come before TensorFlow starts); the same command line makes the same config.
    config = config_from_args(build_parser().parse_args(TRAIN))
    one = train_run(config, tmp_path / "one").to_dict()
    out = subprocess.run(
        [sys.executable, "-m", "core", *TRAIN, "--workspace", str(tmp_path / "two")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CNN_STUDIO_CPU_DEVICES": "2"},
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    two = json.loads(out.stdout.strip().splitlines()[-1])
    assert one["status"] == two["status"] == "finished", out.stderr[-2000:]
    assert (one["replicas"], one["global_batch"]) == (1, 32) and (two["replicas"], two["global_batch"]) == (2, 32)
    assert one["test_accuracy"] > 0.8 and two["test_accuracy"] > 0.8
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= ACCURACY_TOLERANCE, (one, two)
    run = Path(two["run_dir"])
    status = read_status(run)
    assert status.replicas == 2 and status.global_batch == 32 and status.epochs_completed == 3
    progress, _ = read_progress(run)
    assert progress.phase == Phase.FINISHED and progress.batch == "global batch 32 = 16 per replica × 2 replicas"


def test_the_device_setting_is_checked_and_the_split_is_shown_while_training(monkeypatch):
    monkeypatch.delenv("CNN_STUDIO_CPU_DEVICES", raising=False)
    assert cpu_devices_setting() == 1 and cpu_devices_setting("4") == 4
    for bad in ("0", "two", "65"):
        with pytest.raises(StudioError, match=f"--cpu-devices '{bad}' is not a device count: give a whole number"):
            cpu_devices_setting(bad, "--cpu-devices")
    monkeypatch.setenv("CNN_STUDIO_CPU_DEVICES", "-1")
    with pytest.raises(StudioError, match="CNN_STUDIO_CPU_DEVICES '-1' is not a device count"):
        cpu_devices_setting()
    progress = Progress(phase=Phase.TRAINING, epoch=1, epochs=2, step=3, steps_per_epoch=40)
    assert progress.text() == "epoch 1/2, batch 3/40"
    progress.update(batch=batch_text(48, 2))
    assert progress.text() == "epoch 1/2, batch 3/40 (global batch 48 = 24 per replica × 2 replicas)"
    assert batch_text(33, 2) == "global batch 33 split over 2 replicas"


def test_cli_refuses_a_bad_device_count_before_a_run_folder_exists(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "core", "train", "--data", "builtin:digits", "--cpu-devices", "zero"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.returncode == 2 and "error: --cpu-devices 'zero' is not a device count" in out.stderr
    assert not (tmp_path / "runs").exists()
