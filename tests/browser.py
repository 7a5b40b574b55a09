"""Driving the real app in headless Chromium: a server on a free port, and waits and actions that follow
how Streamlit's own end-to-end tests wait (health endpoint, connected, script not running); and the CPU
seconds a process (the server) and its children have used, from /proc."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 120_000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of utime and stime in /proc/<pid>/stat


def run_dirs(workspace: Path) -> list[Path]:
    """The run folders of a workspace, oldest name first (not its hidden files, such as the trainer lock)."""
    return sorted(d for d in workspace.iterdir() if d.is_dir() and not d.name.startswith("."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process, seconds: float, failure) -> None:
    """Until ``url``/_stcore/health answers ok (a Streamlit server, or nginx in front of one); RuntimeError with
    ``failure()`` when ``process`` ends or ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(failure())
        time.sleep(0.2)


@contextmanager
def streamlit_process(workspace: Path, log: Path, env: dict[str, str] | None = None):
    """``streamlit run`` on a free loopback port; yields ``(url, process)`` once /_stcore/health answers ok.

    ``process`` is the server itself (``process.pid`` for :func:`cpu_seconds`): ``python -m streamlit`` serves
    in the process it starts in. ``env`` adds settings for the server (allowed data folders, roles) on top of
    the test's environment."""
    port = free_port()
    env = {**os.environ, "CNN_STUDIO_WORKSPACE": str(workspace), **(env or {})}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "streamlit_app.py"),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, 120, lambda: f"streamlit did not start:\n{log.read_text()[-3000:]}")
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def streamlit_server(workspace: Path, log: Path, env: dict[str, str] | None = None):
    """``streamlit run`` on a free loopback port; yields its URL once /_stcore/health answers ok.

    ``env`` adds settings for the server (allowed data folders, roles) on top of the test's environment."""
    with streamlit_process(workspace, log, env) as (url, _):
        yield url


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses):
    index 0 is the state (field 3 in proc(5)), 1 the parent pid, 11 utime, 12 stime."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """CPU seconds one process has used so far, user + system, all its threads, its children excluded (the
    trainer and request workers are processes of their own: see :func:`child_cpu_seconds`)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (children, their children, …)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (OSError, IndexError):  # gone meanwhile
                pass
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def child_cpu_seconds(pid: int, name: str | None = None) -> float:
    """CPU seconds used so far by the live processes below ``pid`` (those whose name starts with ``name``, when
    given). A child that exits between two readings takes its seconds with it: compare readings taken while
    the same children live."""
    total = 0.0
    for child in descendants(pid):
        if name is None or process_name(child).startswith(name):
            try:
                total += cpu_seconds(child)
            except OSError:
                pass
    return total


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def wait_for_app(page, timeout: int = TIMEOUT_MS, start_window: float = 1.5) -> None:
    """Connected, and the run an action started has finished: first give the server up to ``start_window``
    seconds to start the rerun (a busy server is slow to), then wait for a settled idle state."""
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=timeout)
    started = time.monotonic()
    while time.monotonic() - started < start_window:
        if page.get_attribute('[data-testid="stApp"]', "data-test-script-state") != "notRunning":
            break
        time.sleep(0.05)
    deadline = time.monotonic() + timeout / 1000
    idle_since = None
    # A polling fragment flips the state for a moment every second or two: require a settled idle.
    while time.monotonic() < deadline:
        state = page.get_attribute('[data-testid="stApp"]', "data-test-script-state")
        if state == "notRunning":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 0.6:
                return
        else:
            idle_since = None
        time.sleep(0.1)
    raise TimeoutError("the app did not finish running")


def goto(page, url: str) -> None:
    page.goto(url)
    wait_for_app(page)


def widget(page, testid: str, label: str):
    return page.locator(f'[data-testid="{testid}"]').filter(has=page.get_by_text(label, exact=True)).first


def select(page, label: str, option: str) -> None:
    """Choose ``option`` (its visible text, or a prefix of it) in the selectbox labelled ``label``."""
    widget(page, "stSelectbox", label).locator('[role="combobox"], input').first.click()
    page.get_by_role("option", name=re.compile("^" + re.escape(option))).first.click()
    wait_for_app(page)


def set_slider(page, label: str, value: float) -> None:
    """Move a slider with the keyboard until it shows ``value`` (Streamlit's slider is an input[type=range])."""
    thumb = widget(page, "stSlider", label).locator('input[type="range"]')
    for _ in range(300):
        current = float(thumb.input_value())
        if current == value:
            break
        thumb.press("ArrowLeft" if current > value else "ArrowRight")
    wait_for_app(page)
    assert float(thumb.input_value()) == value


def click_button(page, key: str) -> None:
    """Click the app's button with widget key ``key`` (by text alone, "Stop" would also match Streamlit's
    own toolbar button that stops a running script)."""
    page.locator(f".st-key-{key} button").first.click()


def metric(page, label: str) -> str:
    return widget(page, "stMetric", label).locator('[data-testid="stMetricValue"]').inner_text().strip()


def expect_metric(page, label: str, value: str, timeout: float = 60.0) -> None:
    """Wait until the metric labelled ``label`` shows ``value`` (a rerun may still be drawing it)."""
    deadline = time.monotonic() + timeout
    shown = None
    while time.monotonic() < deadline:
        try:
            shown = metric(page, label)
        except Exception:  # not drawn yet
            shown = None
        if shown == value:
            return
        time.sleep(0.2)
    raise AssertionError(f"metric {label!r} shows {shown!r}, expected {value!r}")


def navigate(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    wait_for_app(page)


# Per page, the element that shows it has drawn its content, not only its title: (data-testid, label). The run
# pages (Train's history, Evaluate, Export) need a finished run in the workspace.
PAGE_CONTENT = {
    "Dataset": ("stMetric", "Images"),
    "Model": ("stMetric", "Parameters"),
    "Train": ("stHeading", "Run history"),
    "Evaluate": ("stMetric", "Test accuracy"),
    "Export": ("stMultiSelect", "Formats"),
}


def wait_for_page(page, title: str, timeout: float = TIMEOUT_MS) -> None:
    """Wait until page ``title`` shows its title and its content (:data:`PAGE_CONTENT`)."""
    page.locator("h1").filter(has_text=title).first.wait_for(timeout=timeout)
    widget(page, *PAGE_CONTENT[title]).wait_for(timeout=timeout)


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its own container, so grow the viewport to its height."""
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], section.main, body')]"
        ".map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1400, "height": min(max(900, int(height) + 40), 6000)})
    time.sleep(1.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1400, "height": 900})
