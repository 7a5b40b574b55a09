"""Warm workers (#18): TensorFlow work runs in long-lived children, the web process never imports TensorFlow,
and a worker's crash, out-of-memory or time-out fails one request while the next one gets a fresh worker."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.errors import StudioError
from core.worker import Progress, WarmPool

ROOT = Path(__file__).resolve().parent.parent


def report_three(progress) -> str:
    """Runs in a worker: three progress texts, then an answer."""
    for step in ("one", "two", "three"):
        progress(step)
    return "done"


@pytest.fixture
def pool():
    workers = WarmPool(1, 1024, preload=())  # no TensorFlow: these tests are about the processes
    yield workers
    workers.stop()


def test_a_worker_is_reused_and_replaced_when_it_dies(pool):
    first = pool.call("os:getpid", request="Asking")
    assert pool.call("os:getpid", request="Asking") == first, "one warm process serves request after request"
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    second = pool.call("os:getpid", request="Asking")
    assert second != first and second != os.getpid()


def test_a_crash_during_a_request_fails_that_request_only(pool):
    pid = pool.call("os:getpid", request="Asking")
    failure: list[BaseException] = []

    def slow() -> None:
        try:
            pool.call("time:sleep", 30, request="Sleeping")
        except StudioError as err:
            failure.append(err)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(1.0)
    os.kill(pid, signal.SIGKILL)
    thread.join(timeout=20)
    assert failure and str(failure[0]).startswith("Sleeping needs more memory than the 1.0 GB")
    assert "ended by SIGKILL" in str(failure[0])
    assert pool.call("operator:add", 2, 3, request="Adding") == 5


def test_out_of_memory_and_time_limits_fail_one_request(pool):
    with pytest.raises(StudioError, match=r"^Allocating needs more memory than the 1.0 GB .*CNN_STUDIO_WARM_MEMORY_MB"):
        pool.call("numpy:ones", 4 * 10**9, request="Allocating")  # 32 GB of float64 under a 1 GB limit
    with pytest.raises(StudioError, match=r"^Sleeping took longer than the 1 s"):
        pool.call("time:sleep", 30, request="Sleeping", timeout=1)
    assert pool.call("operator:add", 2, 3, request="Adding") == 5


def test_progress_reaches_the_caller_and_errors_keep_their_message(pool):
    heard: list[str] = []
    answer = pool.call(f"{__name__}:report_three", Progress(), request="Reporting", on_progress=heard.append)
    assert answer == "done" and heard == ["one", "two", "three"]
    with pytest.raises(StudioError, match=r"^Parsing failed: ValueError: invalid literal"):
        pool.call("builtins:int", "x", request="Parsing")


PAGES_SCRIPT = """
import sys
from streamlit.testing.v1 import AppTest

app = AppTest.from_file({app!r}, default_timeout=300).run()
for page in ("dataset", "model", "train", "evaluate", "export"):
    app.switch_page(f"app_pages/{{page}}.py").run()
    assert not app.exception, (page, app.exception)
    print(page, [m.label for m in app.metric][:4], [e.value for e in app.error])
app.switch_page("app_pages/dataset.py").run()
app.slider(key="augment.rotation").set_value(20.0).run()  # the augmentation preview
assert not app.exception and not app.error
print("TENSORFLOW_IN_WEB_PROCESS", "keras" in sys.modules, "tensorflow" in sys.modules)
"""


@pytest.mark.slow
def test_every_page_draws_without_tensorflow_in_the_web_process(trained_run, tmp_path):
    """The pages' process imports neither Keras nor TensorFlow: the model summary, augmentation preview,
    evaluation, Grad-CAM and exports come from warm workers."""
    env = {**os.environ, "CNN_STUDIO_WORKSPACE": str(trained_run.path.parent)}
    script = PAGES_SCRIPT.format(app=str(ROOT / "streamlit_app.py"))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "evaluate ['Test accuracy'" in done.stdout, done.stdout
    assert "model ['Parameters'" in done.stdout, done.stdout
    assert "TENSORFLOW_IN_WEB_PROCESS False False" in done.stdout, done.stdout
