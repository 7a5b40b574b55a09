"""Background training jobs: one worker thread per workspace runs queued jobs one at a time, each in its
own process.

The registry is module-level, so it outlives any Streamlit script run: clicks, page switches and browser
reloads neither stop nor restart a job. Each run trains in a child process because Streamlit calls
``keras.backend.clear_session()`` after every script run (so every second under a polling fragment), which
in the same process resets the state a running ``fit`` depends on (measured: 17× slower); a child process is
also one that an out-of-memory kill can take without taking the app. Events come back over a queue into a
MetricsStore, the only thing pages read.
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing
import os
import queue as queue_module
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from core.config import StudioConfig
from core.devices import configure_devices
from core.errors import StudioError
from core.failures import logged_cause, write_error_log
from core.i18n import _, language, using
from core.live import MetricsStore
from core.runs import live_run_ids, load_run, read_metrics_cached, run_status, workspace_dir
from core.status import STATUS_FILE, Phase, Progress, RunState, read_progress, update_status
from core.trainer_lock import current_holder, request_stop
from core.training import TrainResult, create_run, train_run
from core.worker import hidden_main, launch

# "spawn": a fresh interpreter, never a fork of a server that already runs TensorFlow threads.
_CONTEXT = multiprocessing.get_context("spawn")

POLL_SECONDS = 0.2
# Imported by a spare trainer while it waits for a job: TensorFlow, Keras and the training code (about 10 s of
# a click's wait otherwise, #15).
TRAINER_PRELOAD = ("keras", "core.callbacks", "core.models")


class _QueueStore:
    """The child's store: keeps its own copy (train_run reads it at the end) and forwards every event."""

    def __init__(self, events) -> None:
        self.events = events
        self.local = MetricsStore()

    def add_batch(self, record: dict) -> None:
        self.local.add_batch(record)
        self.events.put(("batch", record))

    def add_epoch(self, record: dict) -> None:
        self.local.add_epoch(record)
        self.events.put(("epoch", record))

    def set_progress(self, **values) -> None:
        self.local.set_progress(**values)
        self.events.put(("progress", values))

    def snapshot(self) -> tuple[list[dict], list[dict], Progress]:
        return self.local.snapshot()


# Linux's prctl option: a signal for this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _stop_with_parent(run_dir: Path) -> int:
    """Make this trainer stop cleanly when the server that started it dies, however it dies.

    Linux sends SIGTERM at the parent's death (PR_SET_PDEATHSIG); the handler only creates the run's STOP file
    (safe in a signal handler, unlike setting a multiprocessing Event), so training ends at its next step with
    its model saved and the workspace lock released. Elsewhere, and as a second guard, the stop callback
    compares ``os.getppid()`` with the pid returned here. Returns the parent's pid.
    """
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda signum, frame: request_stop(run_dir))
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the parent check in the callback remains
    if os.getppid() != parent:  # the server died before the signal was armed
        request_stop(run_dir)
    return parent


def _train_in_child(
    config_json: str, workspace: str, run_dir: str, uploads: dict | None, options: dict | None, events, stop
) -> None:
    parent = _stop_with_parent(Path(run_dir))
    options = dict(options or {})
    with using(options.pop("lang", None)):  # the run's messages speak the language of who started it
        try:
            configure_devices()  # CNN_STUDIO_CPU_DEVICES, before TensorFlow starts in this process
            config = StudioConfig.from_json(config_json)
            result = train_run(
                config,
                Path(workspace),
                run_dir=Path(run_dir),
                uploads=uploads,
                store=_QueueStore(events),
                stop_event=stop,
                parent_pid=parent,
                **options,  # resume=True, or init_from=<a model file> (core.resume)
            )
        except Exception as err:  # outside train_run's own handling: keep the traceback for the parent's message
            write_error_log(Path(run_dir), err)
            raise
    events.put(("result", result.to_dict()))


def _spare_trainer(conn, events, stop) -> None:
    """A trainer started before the click: it imports TensorFlow, says so, then waits for its one job (the
    arguments of :func:`_train_in_child`) and trains it. The server's end (a closed pipe) ends it; so does the
    server's death while it waits (it was started from the launcher thread, which lives as long as the server)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    configure_devices()  # before TensorFlow starts here (its own call in _train_in_child then changes nothing)
    for module in TRAINER_PRELOAD:
        importlib.import_module(module)
    try:
        conn.send("ready")  # the job may already be on its way, its sender gone: nobody needs to hear it then
    except OSError:
        pass
    try:
        job = conn.recv()
    except (EOFError, OSError):
        return
    conn.close()
    _train_in_child(*job, events, stop)


class SpareTrainer:
    """One trainer process kept waiting with TensorFlow imported, so that a click starts training at once; the
    manager starts another after each run that used one."""

    def __init__(self) -> None:
        self.events = _CONTEXT.Queue()
        self.stop_event = _CONTEXT.Event()
        self._conn, child_end = _CONTEXT.Pipe(duplex=True)
        self.process = _CONTEXT.Process(
            target=_spare_trainer, args=(child_end, self.events, self.stop_event), daemon=True, name="train-spare"
        )

        def start() -> None:
            with hidden_main():
                self.process.start()

        launch(start)
        child_end.close()

    def wait_ready(self, timeout: float) -> bool:
        """Whether it has imported TensorFlow within ``timeout`` s (a job sent earlier simply waits for that)."""
        try:
            return self._conn.poll(timeout) and self._conn.recv() == "ready"
        except (EOFError, OSError):
            return False

    def take(self, job_args: tuple) -> bool:
        """Hand it its job; False when it has died meanwhile."""
        if not self.process.is_alive():
            return False
        try:
            self._conn.send(job_args)
        except OSError:
            return False
        self._conn.close()
        return True

    def discard(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)
        self._conn.close()


@dataclass
class Job:
    run_dir: Path
    config: StudioConfig
    uploads: dict | None = None
    store: MetricsStore = field(default_factory=MetricsStore)
    stop_event: object = field(default_factory=_CONTEXT.Event)
    # queued, running, then the run's end state (finished, stopped or failed)
    state: RunState = RunState.QUEUED
    result: TrainResult | None = None
    submitted: float = field(default_factory=time.time)
    process: object = None  # the child process while it runs
    owner: str | None = None  # who started it (None when roles are off)
    options: dict = field(default_factory=dict)  # train_run's resume / init_from
    lang: str = field(default_factory=language)  # the language of who started it: the run's messages speak it

    @property
    def run_id(self) -> str:
        return self.run_dir.name


@dataclass
class RunView:
    """A queued, training or just ended run as the pages show it, whichever process trains it: a job of this
    server (read from its in-memory store) or a run of another process (another replica, the command line),
    read from its folder: status.json, progress.json and metrics.jsonl."""

    run_id: str
    state: RunState  # queued while it waits for the workspace's trainer, whatever its job says
    progress: Progress
    batches: list[dict]
    epochs: list[dict]
    owner: str | None = None
    result: TrainResult | None = None  # once it has ended
    elsewhere: str | None = None  # "process 123 on host" for a run this server does not train


class JobManager:
    """A queue of training jobs for one workspace, run by one daemon worker thread."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._active: Job | None = None
        self._worker: threading.Thread | None = None
        self._spare: SpareTrainer | None = None
        self._keep_spare = False

    def prepare(self) -> None:
        """Keep a spare trainer waiting from now on (the Train page calls this as it is drawn): the next start
        skips importing TensorFlow. Cheap when one is already waiting."""
        with self._lock:
            self._keep_spare = True
            if self._spare is None or not self._spare.process.is_alive():
                self._spare = SpareTrainer()

    def spare_pid(self) -> int | None:
        with self._lock:
            return self._spare.process.pid if self._spare is not None and self._spare.process.is_alive() else None

    def _take_spare(self) -> SpareTrainer | None:
        with self._lock:
            spare, self._spare = self._spare, None
        return spare

    def submit(
        self,
        config: StudioConfig,
        uploads: dict | None = None,
        name: str | None = None,
        owner: str | None = None,
        init_from: Path | None = None,
    ) -> Job:
        """Queue a run (its folder appears at once, status "queued"); it starts when the worker is free.
        ``init_from``: a model file whose weights the run starts from (fine-tuning)."""
        config.validate()
        run_dir = create_run(self.workspace, config, name, owner=owner)
        options = {"init_from": str(init_from)} if init_from is not None else {}
        return self._enqueue(
            Job(run_dir, StudioConfig.from_json(config.to_json()), uploads, owner=owner, options=options)
        )

    def resume(self, run_id: str, more_epochs: int, uploads: dict | None = None, owner: str | None = None) -> Job:
        """Queue an ended run to train ``more_epochs`` more in its own folder, from its last checkpoint."""
        from core.resume import resume_config

        run_dir = self.workspace / run_id
        if run_id in self.live_ids():
            said = _("Run {run} is still queued or training: continue it once it has ended.")
            raise StudioError(said.format(run=run_id))
        config = resume_config(run_dir, more_epochs)
        update_status(run_dir, state=RunState.QUEUED, error=None, pid=os.getpid())
        return self._enqueue(Job(run_dir, config, uploads, owner=owner, options={"resume": True}))

    def _enqueue(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.run_id] = job
            self._queue.append(job)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="cnn-studio-trainer", daemon=True)
                self._worker.start()
        return job

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._active = None
                    self._worker = None
                    return
                job = self._queue.popleft()
                job.state = RunState.RUNNING
                self._active = job
            job.result = self._run_child(job)
            if self._keep_spare:  # the next trainer imports TensorFlow now, not while this run trained
                self.prepare()
            job.uploads = None  # uploaded bytes are not kept once the run has its own copy of the split
            job.state = job.result.status

    def _run_child(self, job: Job) -> TrainResult:
        started = time.time()
        job.store.set_progress(phase=Phase.STARTING_PROCESS)
        options = {**job.options, "lang": job.lang}
        job_args = (job.config.to_json(), str(self.workspace), str(job.run_dir), job.uploads, options)
        spare = self._take_spare()
        if spare is not None and spare.take(job_args):
            process, events = spare.process, spare.events
            asked, job.stop_event = job.stop_event, spare.stop_event  # a Stop from now on reaches that process
            if asked.is_set():
                job.stop_event.set()
        else:
            if spare is not None:
                spare.discard()
            events = _CONTEXT.Queue()
            process = _CONTEXT.Process(
                target=_train_in_child,
                name=f"train-{job.run_id}",
                daemon=True,
                args=(*job_args, events, job.stop_event),
            )
            with hidden_main():  # the trainer must not run the app script again as it starts
                process.start()
        job.process = process
        result = None
        while result is None:
            try:
                kind, payload = events.get(timeout=POLL_SECONDS)
            except queue_module.Empty:
                if process.is_alive():
                    continue
                try:  # it may have put its last events just before exiting
                    kind, payload = events.get(timeout=1.0)
                except queue_module.Empty:
                    break
            if kind == "batch":
                job.store.add_batch(payload)
            elif kind == "epoch":
                job.store.add_epoch(payload)
            elif kind == "progress":
                job.store.set_progress(**payload)
            else:
                result = TrainResult(**payload)
        process.join(timeout=30)
        if result is None:
            with using(job.lang):  # this thread has no page: the message speaks the run's language
                said = _(
                    "The training process ended unexpectedly (exit code {code}), for example killed for lack of "
                    "memory: lower the batch size or the image size and try again."
                )
                message = logged_cause(job.run_dir) or said.format(code=process.exitcode)
            epochs = len(job.store.snapshot()[1])
            update_status(
                job.run_dir,
                state=RunState.FAILED,
                error=message,
                finished=time.time(),
                duration=time.time() - started,
                epochs_completed=epochs,
            )
            job.store.set_progress(phase=Phase.FAILED, error=message)
            result = TrainResult(
                str(job.run_dir), RunState.FAILED, epochs, None, None, None, None, time.time() - started, message
            )
        return result

    def stop(self, run_id: str) -> bool:
        """Stop a running job at the next batch boundary, or take a queued one off the queue. A run this server
        does not own (the CLI's, another server's, one a previous server left training) gets a stop request in
        its folder, which its trainer reads after each step."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None:
                run_dir = self.workspace / run_id
                if not (run_dir / STATUS_FILE).is_file() or not load_run(run_dir).state.live:
                    return False
                request_stop(run_dir)
                return True
            if not job.state.live:
                return False
            if job.state == RunState.QUEUED:
                self._queue.remove(job)
                job.state = RunState.STOPPED
                with using(job.lang):
                    update_status(job.run_dir, state=RunState.STOPPED, error=_("Stopped before it started."))
                return True
        job.stop_event.set()
        return True

    def busy_with(self) -> str | None:
        """What trains in this workspace now, from this server or any other process, or None."""
        active = self.active()
        if active is not None:
            return _("run {run}").format(run=active.run_id)
        holder = current_holder(self.workspace)
        return holder.describe() if holder else None

    def active(self) -> Job | None:
        with self._lock:
            return self._active

    def queued(self) -> list[Job]:
        with self._lock:
            return list(self._queue)

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def live_ids(self) -> set[str]:
        """Runs this server owns that are queued or running (others saying "running" were interrupted)."""
        with self._lock:
            return {rid for rid, job in self._jobs.items() if job.state.live}

    def workspace_live(self) -> list[str]:
        """Runs queued or training in the workspace now, this server's and any other process's; the one that
        trains first, then the others newest first."""
        ours = self.live_ids()
        ids = live_run_ids(self.workspace, ours)
        ids += [rid for rid in ours if rid not in ids]  # a folder deleted under a job (tests)
        holder = current_holder(self.workspace)  # whoever trains now, any process
        active = self.active()  # this server's job, maybe still starting or waiting for the holder
        training = holder.run_id if holder is not None else active.run_id if active is not None else None
        return sorted(ids, key=lambda rid: rid != training)

    def view(self, run_id: str) -> RunView | None:
        """What the pages show of a run (None when there is no such run)."""
        job = self.get(run_id)
        if job is not None:
            batches, epochs, progress = job.store.snapshot()
            waiting = job.state == RunState.RUNNING and progress.phase == Phase.WAITING
            state = RunState.QUEUED if waiting else job.state
            return RunView(job.run_id, state, progress, batches, epochs, job.owner, job.result)
        run_dir = self.workspace / run_id
        if not (run_dir / STATUS_FILE).is_file():
            return None
        progress, pending = read_progress(run_dir)  # before metrics.jsonl: an epoch's batches are in one of them
        batches, epochs = read_metrics_cached(run_dir)
        status = run_status(run_dir, self.live_ids())
        done = batches[-1]["step"] if batches else 0
        batches = batches + [b for b in pending if isinstance(b.get("step"), int) and b["step"] > done]
        if progress is None or (status.state.live and progress.phase in (Phase.FINISHED, Phase.STOPPED)):
            progress = Progress()  # not started, or a file left from before
        state = status.state
        if state == RunState.RUNNING and progress.phase == Phase.WAITING:
            state = RunState.QUEUED
        result = None
        if not state.live:
            progress.update(phase=Phase.ended(state))
            result = TrainResult(
                str(run_dir),
                state,
                status.epochs_completed,
                status.best_val_accuracy,
                status.test_accuracy,
                status.test_loss,
                status.images_per_second,
                status.duration or 0.0,
                status.error,
            )
        if status.pid:
            where = _("process {pid} on {host}").format(pid=status.pid, host=status.host)
        else:
            where = _("another process")
        return RunView(run_id, state, progress, batches, epochs, status.owner, result, where)

    def wait(self, run_id: str, timeout: float = 600.0) -> Job:
        """Block until a job is done (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        job = self.get(run_id)
        while job is not None and job.state.live:
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} still {job.state} after {timeout} s")
            time.sleep(0.05)
        return job


_managers: dict[str, JobManager] = {}
_managers_lock = threading.Lock()


def get_manager(workspace: str | Path | None = None) -> JobManager:
    """The process-wide manager for a workspace (created on first use)."""
    path = workspace_dir(workspace)
    path.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    with _managers_lock:
        if key not in _managers:
            _managers[key] = JobManager(path)
        return _managers[key]
