"""One trainer per workspace, whoever starts it: the lock, queueing behind the CLI, stopping another process's
run, protection from delete and rename, and a trainer that stops when its server dies."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from socket import gethostname

import pytest

from core.errors import StudioError
from core.jobs import JobManager
from core.runs import delete_run, list_runs, load_run, rename_run
from core.status import Phase, RunState, read_status
from core.trainer_lock import TrainerLock, current_holder
from tests.test_training import digits_config, wait_for

ROOT = Path(__file__).resolve().parent.parent
HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from core.trainer_lock import TrainerLock
    lock = TrainerLock(Path(sys.argv[1]), "held-by-child")
    lock.acquire()
    print("held", flush=True)
    time.sleep(600)
    """
)


def test_the_lock_is_exclusive_and_says_who_holds_it(tmp_path):
    first = TrainerLock(tmp_path, "run-a")
    assert current_holder(tmp_path) is None and first.acquire()
    holder = current_holder(tmp_path)
    assert holder.run_id == "run-a" and holder.pid == os.getpid() and "run run-a" in holder.describe()
    seen, polls = [], iter(range(3))
    second = TrainerLock(tmp_path, "run-b")
    assert not second.acquire(lambda: next(polls, None) is None, seen.append, poll=0.01)
    assert seen and seen[0].run_id == "run-a"
    first.release()
    assert current_holder(tmp_path) is None and second.acquire(poll=0.01)
    assert current_holder(tmp_path).run_id == "run-b"
    second.release()


def test_a_killed_holder_never_leaves_a_stale_lock(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"held"
        assert current_holder(tmp_path).pid == child.pid
    finally:
        child.kill()
        child.wait()
    assert current_holder(tmp_path) is None  # the kernel dropped the flock with the process
    assert TrainerLock(tmp_path, "next").acquire(lambda: True)


def cli(*args: str, workspace: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "core", *args, "--workspace", str(workspace)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_the_app_queues_behind_a_cli_training_and_can_stop_it(tmp_path):
    trainer = cli("train", "--data", "builtin:digits", "--preset", "mnist", "--epochs", "200", workspace=tmp_path)
    try:
        # The trainer takes the lock, then marks its run running: wait for both.
        wait_for(lambda: current_holder(tmp_path) is not None and list_runs(tmp_path)[0].state == RunState.RUNNING)
        (cli_run,) = list_runs(tmp_path)
        assert current_holder(tmp_path).run_id == cli_run.run_id and cli_run.state == RunState.RUNNING

        manager = JobManager(tmp_path)  # a server in another process than the trainer
        job = manager.submit(digits_config(epochs=1))
        wait_for(lambda: job.store.snapshot()[2].phase == Phase.WAITING)
        progress = job.store.snapshot()[2]
        assert cli_run.run_id in progress.waiting_for and cli_run.run_id in progress.text()
        assert read_status(job.run_dir).state == RunState.QUEUED and job.state.live

        # The server follows the CLI's run through its folder (progress.json, metrics.jsonl) and lists it first;
        # its own job shows as queued behind it.
        assert manager.workspace_live() == [cli_run.run_id, job.run_id]
        wait_for(lambda: manager.view(cli_run.run_id).progress.step > 0 and manager.view(cli_run.run_id).batches)
        watched = manager.view(cli_run.run_id)
        assert watched.state == RunState.RUNNING and watched.elsewhere == f"process {trainer.pid} on {gethostname()}"
        assert watched.progress.phase == Phase.TRAINING and watched.progress.epochs == 200
        assert manager.view(job.run_id).state == RunState.QUEUED

        # Nobody deletes or renames a run another process trains; the page's delete stays disabled.
        for action in (lambda: delete_run(cli_run.path, tmp_path), lambda: rename_run(cli_run.path, "mine")):
            with pytest.raises(StudioError, match="cannot be (deleted|renamed) while it trains"):
                action()
        assert load_run(cli_run.path).state.live and cli_run.path.is_dir()

        stop = cli("stop", "--run", cli_run.run_id, workspace=tmp_path)
        assert stop.wait(timeout=60) == 0, stop.stderr.read()
        assert trainer.wait(timeout=120) == 0, trainer.stderr.read()
        manager.wait(job.run_id, timeout=300)
    finally:
        trainer.kill()
    cli_status, ours = read_status(cli_run.path), read_status(job.run_dir)
    assert cli_status.state == RunState.STOPPED and 0 < cli_status.epochs_completed < 200
    assert ours.state == RunState.FINISHED and ours.started >= cli_status.finished
    rename_run(cli_run.path, "kept")  # once it has stopped, both are allowed again
    delete_run(cli_run.path, tmp_path)
    assert not cli_run.path.exists()


SERVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from core.jobs import JobManager
    from tests.test_training import digits_config
    job = JobManager(Path(sys.argv[1])).submit(digits_config(epochs=500))
    print(job.run_id, flush=True)
    time.sleep(900)
    """
)


@pytest.mark.slow
def test_a_trainer_stops_cleanly_when_the_server_that_started_it_dies(tmp_path):
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        run_dir = tmp_path / server.stdout.readline().decode().strip()
        wait_for(lambda: read_status(run_dir).state == RunState.RUNNING and (run_dir / "metrics.jsonl").is_file())
        trainer_pid = read_status(run_dir).pid
        assert trainer_pid != server.pid and current_holder(tmp_path).pid == trainer_pid
    finally:
        server.send_signal(signal.SIGKILL)  # no chance to clean up: only the kernel's parent-death signal
        server.wait()
    wait_for(lambda: read_status(run_dir).state == RunState.STOPPED, timeout=120)
    wait_for(lambda: current_holder(tmp_path) is None, timeout=60)
    status = read_status(run_dir)
    assert 0 < status.epochs_completed < 500 and (run_dir / "best.keras").is_file()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "stopped"
