"""Failed runs keep their traceback (error.log in the run folder) and say the root cause in one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.failures import ERROR_LOG, root_cause
from core.status import read_status

ROOT = Path(__file__).resolve().parent.parent

# The CLI, with one fault planted inside TensorFlow: after the split, every label is out of the model's range, so
# the sparse cross-entropy op fails inside the compiled training step ("Graph execution error").
PLANTED_FAULT = """
import sys
import core.training as training

real_split = training.split_dataset

def split_then_break_labels(dataset, *args):
    split = real_split(dataset, *args)
    dataset.labels[:] = dataset.num_classes + 3
    return split

training.split_dataset = split_then_break_labels
from core.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_run_that_fails_inside_tensorflow_keeps_its_traceback_and_says_the_root_error(tmp_path):
    command = [sys.executable, "-c", PLANTED_FAULT, "train", "--data", "builtin:digits", "--preset", "mnist"]
    command += ["--epochs", "1", "--workspace", str(tmp_path), "--quiet"]
    out = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300
    )
    assert out.returncode == 1, out.stderr[-2000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    run_dir = Path(summary["run_dir"])
    error = summary["error"]
    # The root error, not TensorFlow's header; and where the full log is, relative to the workspace.
    assert error.startswith("InvalidArgumentError: Received a label value of 13 which is outside the valid range")
    assert "Graph execution error" not in error and "Detected at node" not in error
    assert error.endswith(f"Full traceback: {run_dir.name}/{ERROR_LOG} in the workspace.")
    assert str(tmp_path) not in error and "site-packages" not in error
    assert f"error: {error}" in out.stderr and "Traceback" not in out.stderr
    assert read_status(run_dir).state == "failed" and read_status(run_dir).error == error
    log = (run_dir / ERROR_LOG).read_text()
    assert "Traceback (most recent call last)" in log and "Graph execution error" in log
    assert "Received a label value of 13" in log and "in _train_locked" in log


class FakeOpError(Exception):
    """The shape of TensorFlow's OpError: the text is in ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def test_root_cause_skips_tensorflow_headers_and_numbered_root_errors():
    several = (
        "Graph execution error:\n\nDetected at node while/cond/Placeholder defined at (most recent call last):\n"
        '  File "/srv/app/core/training.py", line 9, in fit\n\n2 root error(s) found.\n'
        "  (0) INVALID_ARGUMENT:  You must feed a value for placeholder tensor 'while/cond/Placeholder' with dtype "
        "int64\n\t [[{{node while/cond/Placeholder}}]]\n  (1) CANCELLED: Function was cancelled\n"
        "0 successful operations."
    )
    assert root_cause(FakeOpError(several)) == (
        "You must feed a value for placeholder tensor 'while/cond/Placeholder' with dtype int64"
    )
    assert root_cause(ValueError("first line\nsecond")) == "first line"
    assert root_cause(ValueError("")) == "no message"
    assert len(root_cause(ValueError("x" * 5000))) == 300
