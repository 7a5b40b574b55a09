"""Running one request's heavy work in a throw-away child process with a memory limit and a time limit.

Anything that loads or runs a model a user brought (an uploaded ``.keras``; later Grad-CAM, try-it and exports)
can ask for more memory than the machine has. Done in the server process, the kernel's OOM killer ends the
server and every session with it. Done through :func:`run_in_worker`, only that request fails::

    probs = run_in_worker(score, data, images, request=f"The uploaded model '{name}'")

* The function and its arguments go in, its return value comes out; both must pickle. The child is a fresh
  ``spawn`` interpreter (never a fork of a server whose TensorFlow threads are running), so the function must
  be importable at module level.
* The child limits its own memory *before* it unpickles the function and its arguments, so TensorFlow, Keras
  and the model are all imported and built under the limit.
* A :class:`StudioError` raised in the child is raised again in the parent with the same message. Running out
  of memory (``MemoryError``, TensorFlow's ``ResourceExhaustedError``, a C++ ``bad_alloc`` that aborts the
  child, the kernel killing it), a crash or the time limit become a StudioError that names the request and
  the limit. Any other exception becomes a StudioError with its type and first line.
* At most :data:`REQUEST_WORKERS` children run at once per server process, so requests together use at most
  ``REQUEST_WORKERS × REQUEST_MEMORY_MB``; a request waits (up to its time limit) for a free slot.

Which memory limit: measured with TensorFlow 2.19 / Keras 3 on Linux, ``RLIMIT_AS`` is unworkable: importing
TensorFlow and predicting with a tiny model already reserves 3.2 GB of address space (VmPeak) while using 0.6 GB
of data and 0.85 GB resident, and under a 2 GB ``RLIMIT_AS`` TensorFlow does not even import ("failed to map
segment from shared object"). ``RLIMIT_DATA`` (Linux ≥ 4.7 counts every private writable mapping: the heap,
anonymous mmaps, thread stacks) is 0.6 GB after that same import-and-predict, so TensorFlow works under 1 GB,
and a model asking for 6.3 GB of weights gets TensorFlow's ``ResourceExhaustedError`` ("OOM when allocating
tensor with shape[784,2000000]") within seconds, with nothing allocated for real.

The limits are named constants that the server's environment can override:
``CNN_STUDIO_REQUEST_MEMORY_MB``, ``CNN_STUDIO_REQUEST_SECONDS`` and ``CNN_STUDIO_REQUEST_WORKERS``.

**Warm workers** (:class:`WarmPool`, :func:`warm_pool`) serve the pages' TensorFlow work on the studio's own
models (model summaries, augmentation previews, evaluation, Grad-CAM, try-it, exports): a few long-lived
children that import TensorFlow once and keep recently used models, so a request costs its own work only.
Why not in the web process: Streamlit runs ``gc.collect(2)`` and, once Keras is imported, Keras's
``clear_session()`` after every script run, fragment reruns included; with TensorFlow's object graph in the
process each costs ~0.5 s of CPU, so idle polling tabs cost a quarter core each and a room of viewers starves
training (#18). Kept out, a rerun costs milliseconds, and a worker's crash or out-of-memory kill fails one
request: the next request starts a fresh worker. Models a user uploads still go to a throw-away child.
``CNN_STUDIO_WARM_WORKERS`` (2) and ``CNN_STUDIO_WARM_MEMORY_MB`` (4096, RLIMIT_DATA each) set them.
"""

from __future__ import annotations

import ctypes
import importlib
import multiprocessing.spawn
import os
import pickle
import queue
import resource
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from contextlib import contextmanager
from multiprocessing import connection, get_context
from typing import Any

from core.errors import StudioError
from core.i18n import _, language, number, using

REQUEST_MEMORY_MB = 2048  # the data a request's child may map (RLIMIT_DATA); TensorFlow itself takes ~0.6 GB
REQUEST_SECONDS = 300  # wall-clock limit of one request, child start-up (~5-10 s to import TensorFlow) included
REQUEST_WORKERS = 2  # children at once per server process: memory of all requests ≤ workers × memory

WARM_WORKERS = 2  # warm TensorFlow children per server: one long export does not hold up a try-it
WARM_MEMORY_MB = 4096  # RLIMIT_DATA of each: TensorFlow ~0.6 GB, a few cached models, an export's converters
WARM_PRELOAD = ("core.served",)  # imported by each warm worker as it starts: TensorFlow and Keras, once

MEMORY_ENV = "CNN_STUDIO_REQUEST_MEMORY_MB"
WARM_WORKERS_ENV = "CNN_STUDIO_WARM_WORKERS"
WARM_MEMORY_ENV = "CNN_STUDIO_WARM_MEMORY_MB"
SECONDS_ENV = "CNN_STUDIO_REQUEST_SECONDS"
WORKERS_ENV = "CNN_STUDIO_REQUEST_WORKERS"

_CONTEXT = get_context("spawn")
_PR_SET_PDEATHSIG = 1  # Linux prctl option: a signal for this process when its parent thread ends
_MEMORY_SIGNS = ("OOM when allocating", "bad_alloc", "Unable to allocate", "out of memory", "Cannot allocate memory")

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


_main_lock = threading.Lock()
_starting = threading.local()  # set while this thread starts a child: its preparation data names no __main__
_preparation_data = multiprocessing.spawn.get_preparation_data


def _preparation_data_without_main(name: str) -> dict:
    data = _preparation_data(name)
    if getattr(_starting, "active", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


multiprocessing.spawn.get_preparation_data = _preparation_data_without_main


@contextmanager
def hidden_main():
    """Start spawned children inside this: they then do not import the parent's ``__main__``.

    A spawned child imports its parent's ``__main__`` module again (as ``__mp_main__``). While Streamlit runs
    a page it installs the app script as ``__main__``, so every trainer and worker started from a page ran the
    whole app once more as it started (and a worker started by the app would start workers of its own).
    Children here only run ``core`` functions: they need no main module. The starting thread drops it from
    the data the child gets (a thread-local flag: another tab's script run may install the app script as
    ``__main__`` at that very moment, as seen in tests/test_replicas.py), and ``sys.modules`` shows a bare
    placeholder meanwhile."""
    with _main_lock:
        main = sys.modules.get("__main__")
        placeholder = types.ModuleType("__main__")
        sys.modules["__main__"] = placeholder
        _starting.active = True
        try:
            yield
        finally:
            _starting.active = False
            if sys.modules.get("__main__") is placeholder:  # a script run may have installed its own meanwhile
                sys.modules["__main__"] = main


def _env_number(variable: str, default: float, minimum: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value >= minimum:  # also refuses nan
        said = _(
            "The server setting {variable}={value} is not a number ≥ {minimum}: fix it or unset it (the default is "
            "{default})."
        )
        raise StudioError(
            said.format(variable=variable, value=repr(raw), minimum=f"{minimum:g}", default=f"{default:g}")
        )
    return value


def request_memory_mb() -> int:
    """The memory limit of one request in MB: CNN_STUDIO_REQUEST_MEMORY_MB, else REQUEST_MEMORY_MB."""
    return int(_env_number(MEMORY_ENV, REQUEST_MEMORY_MB, 256))


def request_seconds() -> float:
    """The time limit of one request in seconds: CNN_STUDIO_REQUEST_SECONDS, else REQUEST_SECONDS."""
    return _env_number(SECONDS_ENV, REQUEST_SECONDS, 1)


def request_workers() -> int:
    """Children running at once: CNN_STUDIO_REQUEST_WORKERS, else REQUEST_WORKERS."""
    return int(_env_number(WORKERS_ENV, REQUEST_WORKERS, 1))


def _worker_slots() -> threading.BoundedSemaphore:
    global _slots
    count = request_workers()
    with _slots_lock:
        if _slots is None or _slots[0] != count:
            _slots = (count, threading.BoundedSemaphore(count))
        return _slots[1]


def is_out_of_memory(err: BaseException) -> bool:
    """True for the ways Python, NumPy and TensorFlow report running out of memory.

    A function run in a worker that turns its own exceptions into StudioErrors should re-raise these
    unchanged, so the parent reports the memory limit instead of a misleading reason."""
    if isinstance(err, MemoryError) or type(err).__name__ == "ResourceExhaustedError":
        return True
    return any(sign in str(err) for sign in _MEMORY_SIGNS)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def _limit_self(memory_bytes: int) -> None:
    """In a child: SIGKILL when the thread that started it ends (the server dying: no orphan keeps its
    memory), and at most ``memory_bytes`` of data mappings."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))


def _answer(payload: bytes, progress: Callable[[str], None] | None = None) -> tuple[str, Any]:
    """Unpickle and run one request; its answer as (kind, value), every failure classified for the parent.
    A function named "module:function" is imported here; :class:`Progress` arguments become ``progress``."""
    try:
        function, args, kwargs, lang = pickle.loads(payload)
        del payload
        if isinstance(function, str):  # "module:function": the caller need not import the module
            module, name = function.split(":")
            function = getattr(importlib.import_module(module), name)
        args = tuple(progress if isinstance(a, Progress) else a for a in args)
        kwargs = {k: progress if isinstance(v, Progress) else v for k, v in kwargs.items()}
        with using(lang):  # the messages of the request speak its caller's language
            return "ok", function(*args, **kwargs)
    except StudioError as err:
        return "studio", str(err)
    except BaseException as err:  # noqa: BLE001  every failure is reported, classified, to the parent
        kind = "memory" if is_out_of_memory(err) else "error"
        return kind, f"{type(err).__name__}: {_first_line(err)}"


def _send(conn, answer: tuple[str, Any]) -> str:
    """Send an answer; the kind that was sent (a result too big to send is a memory answer)."""
    try:
        conn.send(answer)
    except MemoryError:
        conn.send(("memory", _("MemoryError: the result does not fit")))
        return "memory"
    except Exception as err:  # an unpicklable result is the calling code's bug: say so
        said = _("the result cannot be sent back ({error})").format(error=f"{type(err).__name__}: {_first_line(err)}")
        conn.send(("error", said))
        return "error"
    return answer[0]


def _child(conn, memory_bytes: int, payload: bytes) -> None:
    """A throw-away child's whole life: limit itself, run one request, send its answer."""
    _limit_self(memory_bytes)
    _send(conn, _answer(payload))
    conn.close()


def _memory_message(request: str, limit_mb: int, detail: str, setting: str = MEMORY_ENV) -> str:
    said = _(
        "{request} needs more memory than the {limit} GB a request may use on this server: {detail}. Use a smaller "
        "model, or ask the administrator to raise {setting} (now {megabytes} MB)."
    )
    return said.format(
        request=request, limit=number(limit_mb / 1024, 1), detail=detail, setting=setting, megabytes=number(limit_mb)
    )


def run_in_worker(
    function: Callable[..., Any],
    *args: Any,
    request: str,
    memory_mb: int | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    """``function(*args, **kwargs)`` in a fresh child process under a memory and a time limit; its result.

    ``request`` names what is being done, as the subject of a sentence ("The uploaded model 'x.keras'"):
    every error message starts with it. ``memory_mb`` and ``timeout`` default to the server's settings
    (:func:`request_memory_mb`, :func:`request_seconds`). Raises StudioError for everything that goes wrong
    in the child; the parent (the server) carries on."""
    limit_mb = int(memory_mb) if memory_mb is not None else request_memory_mb()
    seconds = float(timeout) if timeout is not None else request_seconds()
    payload = pickle.dumps((function, args, kwargs, language()), protocol=pickle.HIGHEST_PROTOCOL)
    deadline = time.monotonic() + seconds
    slots = _worker_slots()
    if not slots.acquire(timeout=seconds):
        said = _(
            "{request} could not start: the server was busy with {count} other requests for {seconds} s. Try again "
            "in a minute."
        )
        raise StudioError(said.format(request=request, count=request_workers(), seconds=number(seconds, 0)))
    try:
        return _run(payload, request, limit_mb, seconds, deadline)
    finally:
        slots.release()


def _run(payload: bytes, request: str, limit_mb: int, seconds: float, deadline: float) -> Any:
    receive, send = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(target=_child, args=(send, limit_mb * 2**20, payload), daemon=True)
    with hidden_main():
        process.start()
    send.close()  # the child holds the only write end: its death closes the pipe
    answer = None
    try:
        while answer is None and time.monotonic() < deadline:
            ready = connection.wait([receive, process.sentinel], timeout=max(0.0, deadline - time.monotonic()))
            if receive in ready:
                try:
                    answer = receive.recv()
                except EOFError:
                    break  # the child ended without answering
            elif process.sentinel in ready:
                if not receive.poll():
                    break
        if answer is None and process.is_alive() and time.monotonic() >= deadline:
            said = _(
                "{request} took longer than the {seconds} s a request may take on this server and was stopped. Use "
                "a smaller model or fewer images, or ask the administrator to raise {variable}."
            )
            raise StudioError(said.format(request=request, seconds=number(seconds, 0), variable=SECONDS_ENV))
    finally:
        receive.close()
        if process.is_alive():
            process.kill()
        process.join(timeout=30)
    if answer is None:
        code = process.exitcode
        if code is not None and code < 0:  # a signal: SIGABRT from a C++ bad_alloc, SIGKILL from the OOM killer
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            ended = _("the worker process was ended by {signal}").format(signal=name)
            raise StudioError(_memory_message(request, limit_mb, ended))
        said = _(
            "{request} failed: the worker process ended with exit code {code} without an answer. Try again; if it "
            "keeps failing, the file is probably damaged."
        )
        raise StudioError(said.format(request=request, code=code))
    kind, value = answer
    if kind == "ok":
        return value
    if kind == "studio":
        raise StudioError(value)
    if kind == "memory":
        raise StudioError(_memory_message(request, limit_mb, value))
    raise StudioError(_("{request} failed: {reason}.").format(request=request, reason=value))


# --- Warm workers ------------------------------------------------------------------------------------------


class Progress:
    """Passed as an argument to a warm request, it becomes a callable in the worker that sends each text to
    the ``on_progress`` of :meth:`WarmPool.call` while the request runs (an export's "Exporting TFLite…")."""


def _serve(conn, memory_bytes: int, preload: tuple[str, ...]) -> None:
    """A warm worker's life: limit memory, import ``preload`` once, then answer requests until the pipe closes.
    After running out of memory it answers and exits: its heap may be fragmented or TensorFlow's state broken."""
    _limit_self(memory_bytes)
    for module in preload:
        importlib.import_module(module)

    def send_progress(text: str) -> None:
        conn.send(("progress", str(text)))

    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if _send(conn, _answer(payload, send_progress)) == "memory":
            return


class _Launcher:
    """Starts warm workers from one thread that lives as long as the process. The kernel sends the parent-death
    signal when the *thread* that started a child ends, and Streamlit's script threads end after their run:
    a worker started from a page would be killed as soon as that page was drawn."""

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        threading.Thread(target=self._serve, daemon=True, name="cnn-studio-launcher").start()

    def _serve(self) -> None:
        while True:
            function, done, failure = self._requests.get()
            try:
                function()
            except BaseException as err:  # noqa: BLE001  handed to the caller
                failure.append(err)
            finally:
                done.set()

    def run(self, function: Callable[[], None]) -> None:
        done, failure = threading.Event(), []
        self._requests.put((function, done, failure))
        done.wait()
        if failure:
            raise failure[0]


_launcher_lock = threading.Lock()
_launcher: _Launcher | None = None


def launch(function: Callable[[], None]) -> None:
    """Run ``function`` (which starts a child) on the launcher thread, which lives as long as the process."""
    global _launcher
    with _launcher_lock:
        if _launcher is None:
            _launcher = _Launcher()
    _launcher.run(function)


class WarmWorker:
    """One long-lived child serving one request at a time; started (again) on demand."""

    def __init__(self, memory_mb: int, preload: tuple[str, ...]) -> None:
        self.memory_mb = memory_mb
        self.preload = preload
        self.lock = threading.Lock()  # held by the request being served
        self._process = None
        self._conn = None

    def start(self) -> None:
        """Spawn the child if it is not running (it imports TensorFlow in the background)."""
        if self._process is not None and self._process.is_alive():
            return
        self._conn, child_end = _CONTEXT.Pipe(duplex=True)
        self._process = _CONTEXT.Process(
            target=_serve, args=(child_end, self.memory_mb * 2**20, self.preload), daemon=True, name="cnn-warm"
        )

        def start() -> None:
            with hidden_main():
                self._process.start()

        launch(start)
        child_end.close()

    def stop(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def call(self, payload: bytes, request: str, seconds: float, on_progress) -> Any:
        """Send one request and wait for its answer (the caller holds ``lock``)."""
        self.start()
        deadline = time.monotonic() + seconds
        try:
            self._conn.send_bytes(payload)
        except (BrokenPipeError, OSError):
            self.stop()  # it died between requests: one fresh start
            self.start()
            self._conn.send_bytes(payload)
        while True:
            left = deadline - time.monotonic()
            ready = connection.wait([self._conn, self._process.sentinel], timeout=max(0.0, left))
            if self._conn in ready:
                try:
                    kind, value = self._conn.recv()
                except (EOFError, OSError):
                    break
                if kind == "progress":
                    if on_progress is not None:
                        on_progress(value)
                    continue
                if kind == "memory":
                    self.stop()
                return kind, value
            if self._process.sentinel in ready or left <= 0:
                break
        timed_out = time.monotonic() >= deadline
        if not timed_out:
            self._process.join(timeout=5)  # the pipe closes as the child dies: let it be reaped for its exit code
        code = self._process.exitcode
        self.stop()
        if timed_out:
            said = _(
                "{request} took longer than the {seconds} s a request may take on this server and was stopped. Try "
                "again with fewer images or formats, or ask the administrator to raise {variable}."
            )
            raise StudioError(said.format(request=request, seconds=number(seconds, 0), variable=SECONDS_ENV))
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            ended = _("the worker process was ended by {signal}").format(signal=name)
            raise StudioError(_memory_message(request, self.memory_mb, ended, WARM_MEMORY_ENV))
        said = _("{request} failed: the worker process ended with exit code {code}. Try again.")
        raise StudioError(said.format(request=request, code=code))


class WarmPool:
    """A few warm workers; a request takes a free one (or waits for one, within its time limit)."""

    def __init__(self, size: int, memory_mb: int, preload: tuple[str, ...] = WARM_PRELOAD) -> None:
        self.workers = [WarmWorker(memory_mb, preload) for _ in range(size)]
        self._free = threading.Semaphore(size)

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()

    def pids(self) -> list[int]:
        return [pid for pid in (w.pid for w in self.workers) if pid]

    def call(
        self,
        function: Callable[..., Any] | str,
        *args: Any,
        request: str,
        timeout: float | None = None,
        on_progress: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``function(*args, **kwargs)`` in a warm worker; its result, or a StudioError that starts with
        ``request``. ``function`` may be named as ``"module:function"`` so that the caller does not import
        its module (the web process never imports ``core.served``, which imports TensorFlow). A
        :class:`Progress` argument reaches ``on_progress`` as the function reports."""
        seconds = float(timeout) if timeout is not None else request_seconds()
        payload = pickle.dumps((function, args, kwargs, language()), protocol=pickle.HIGHEST_PROTOCOL)
        if not self._free.acquire(timeout=seconds):
            said = _("{request} could not start: the server's workers stayed busy for {seconds} s.")
            raise StudioError(said.format(request=request, seconds=number(seconds, 0)))
        try:
            worker = next(w for w in self.workers if w.lock.acquire(blocking=False))
            try:
                kind, value = worker.call(payload, request, seconds, on_progress)
            finally:
                worker.lock.release()
        finally:
            self._free.release()
        if kind == "ok":
            return value
        if kind == "studio":
            raise StudioError(value)
        if kind == "memory":
            raise StudioError(_memory_message(request, worker.memory_mb, value, WARM_MEMORY_ENV))
        raise StudioError(_("{request} failed: {reason}.").format(request=request, reason=value))


_pool_lock = threading.Lock()
_pool: WarmPool | None = None


def warm_pool() -> WarmPool:
    """This process's warm workers (created on first use, started on first request or by ``start()``)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            size = int(_env_number(WARM_WORKERS_ENV, WARM_WORKERS, 1))
            memory = int(_env_number(WARM_MEMORY_ENV, WARM_MEMORY_MB, 1024))
            _pool = WarmPool(size, memory)
        return _pool
