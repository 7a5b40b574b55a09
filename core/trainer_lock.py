"""One trainer per workspace, whoever starts it: the app, a restarted app, a second app or the CLI.

The lock is an ``flock`` on ``<workspace>/.trainer.lock``, held by the process that trains for as long as
it trains. The kernel drops it when that process ends, however it ends (a crash or an out-of-memory kill
included), so a lock is never stale; the file's text (pid, host, run, start time) only says who holds it.
Everyone else waits their turn: a queued run polls until the lock is free (or it is asked to stop).

A run is stopped from any process by creating the file ``STOP`` in its folder (:func:`request_stop`): the
trainer's callback looks for it after each step, so a restarted server can stop a run that a previous server
or the CLI started.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from core.i18n import _

LOCK_FILE = ".trainer.lock"
STOP_FILE = "STOP"
WAIT_POLL_SECONDS = 0.5


@dataclass
class Holder:
    """Who trains in a workspace right now."""

    pid: int
    host: str
    run_id: str
    started: float

    def describe(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.started))
        said = _("run {run} (process {pid} on {host}, since {since})")
        return said.format(run=self.run_id, pid=self.pid, host=self.host, since=since)


def _read_holder(handle) -> Holder | None:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "null")
        return Holder(int(data["pid"]), str(data["host"]), str(data["run_id"]), float(data["started"]))
    except (ValueError, TypeError, KeyError):
        return None  # the holder has the lock but has not written its name yet


class TrainerLock:
    """The workspace's trainer lock for one run; ``acquire`` waits, ``release`` (or process exit) frees it."""

    def __init__(self, workspace: Path, run_id: str) -> None:
        self.path = Path(workspace) / LOCK_FILE
        self.run_id = run_id
        self._handle = None

    def acquire(
        self,
        should_stop: Callable[[], bool] = lambda: False,
        on_wait: Callable[[Holder | None], None] | None = None,
        poll: float = WAIT_POLL_SECONDS,
    ) -> bool:
        """Wait until this process holds the lock (True), or until ``should_stop()`` says give up (False)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open while training
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(_read_holder(handle))
                if should_stop():
                    handle.close()
                    return False
                time.sleep(poll)
        holder = Holder(os.getpid(), socket.gethostname(), self.run_id, time.time())
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(asdict(holder)))
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            handle.seek(0)
            handle.truncate()
            handle.flush()
        except OSError:
            pass  # a full disk cannot keep the lock from being released
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def current_holder(workspace: Path) -> Holder | None:
    """The process training in ``workspace`` now, or None when nobody holds the lock."""
    path = Path(workspace) / LOCK_FILE
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(handle) or Holder(0, "?", "?", time.time())
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return None


def request_stop(run_dir: Path) -> None:
    """Ask whichever process trains this run to stop at its next step (works across processes and servers)."""
    (Path(run_dir) / STOP_FILE).touch()


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / STOP_FILE).exists()


def clear_stop(run_dir: Path) -> None:
    (Path(run_dir) / STOP_FILE).unlink(missing_ok=True)
