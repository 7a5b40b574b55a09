"""Several machines: the README's TF_CONFIG recipe, run as two workers on localhost."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from core.runs import list_runs
from tests.browser import free_port

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ["-m", "core", "train", "--data", "builtin:digits", "--preset", "mnist", "--epochs", "1", "--quiet"]


def tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def worker(tmp_path: Path, ports: list[int], index: int, **env: str) -> subprocess.Popen:
    """One worker as the README starts it: the same command, its own TF_CONFIG (and here its own workspace and
    temporary folder, to see what each leaves behind)."""
    temp = tmp_path / f"tmp{index}"
    temp.mkdir()
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": tf_config(ports, index), "TMPDIR": str(temp)}
    return subprocess.Popen(
        [sys.executable, *TRAIN, "--workspace", str(tmp_path / f"workspace{index}")],
        cwd=tmp_path,
        env={**environment, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_workers_on_localhost_train_one_run_in_the_chiefs_workspace(tmp_path):
    ports = [free_port(), free_port()]
    workers = [worker(tmp_path, ports, i) for i in (0, 1)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-3000:]
        assert "Traceback" not in err and "crashed" not in err, err[-3000:]
    chief, other = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)
    assert chief["status"] == other["status"] == "finished"
    assert chief["workers"] == 2 and chief["replicas"] == 2 and chief["global_batch"] == 32
    assert other["run_dir"] is None
    (run,) = list_runs(tmp_path / "workspace0")
    assert run.state == "finished" and run.status.workers == 2 and run.status.test_accuracy > 0.6
    assert str(run.path) == chief["run_dir"] or run.path == tmp_path / chief["run_dir"]
    # Nothing of the other worker's: no workspace, nothing left in its temporary folder.
    assert not (tmp_path / "workspace1").exists() and list((tmp_path / "tmp1").iterdir()) == []
    # The chief's models are Keras 3 files, as any other run's: they load and score the kept test images.
    with np.load(run.path / "test_data.npz") as data:
        images, labels = data["images"], data["labels"]
    for name in ("best.keras", "final.keras"):
        model = keras.saving.load_model(run.path / name, safe_mode=True)
        accuracy = float(np.mean(model.predict(images, verbose=0).argmax(axis=1) == labels))
        assert accuracy > 0.6, (name, accuracy)


def test_a_worker_that_cannot_reach_the_other_says_which_within_the_timeout(tmp_path):
    ports = [free_port(), free_port()]  # nobody listens on the second
    started = time.monotonic()
    lone = worker(tmp_path, ports, 0, CNN_STUDIO_WORKER_TIMEOUT="2")
    out, err = lone.communicate(timeout=120)
    assert lone.returncode == 2, err[-2000:]
    assert f"error: worker 1 at localhost:{ports[1]} did not answer within 2 s (CNN_STUDIO_WORKER_TIMEOUT)" in err
    assert "Traceback" not in err and time.monotonic() - started < 60
    assert not (tmp_path / "workspace0").exists(), "no run folder for a run that never started"


def test_a_tf_config_that_cannot_work_is_refused_with_the_fix(tmp_path):
    for value, message in [
        ("{not json", "error: TF_CONFIG is not a worker cluster"),
        ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 3}}', "task.index 3 is not"),
        ('{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}', "host:port addresses"),
    ]:
        out = subprocess.run(
            [sys.executable, *TRAIN],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CONFIG": value},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 2 and message in out.stderr, out.stderr[-1000:]
        assert "Traceback" not in out.stderr
