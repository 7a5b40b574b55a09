"""A room full of viewers (issue #18): N browser sessions on one ``streamlit run``, measured in one run.

* Idle CPU: the server process's CPU seconds over a window while the N sessions sit on the five pages (one
  after another: Dataset, Model, Train, Evaluate, Export, Dataset, …), in cores and per session; the same
  window with no session open; the server's child processes (trainer, workers) and Chromium apart.
* First paint: visitors join one after another while the earlier ones sit idle; for each, the seconds from
  ``page.goto`` until the Dataset page shows its title and its "Images" metric. The N-th is the one reported.
* Page switches: one more visitor clicks through the pages while the N sit idle; the seconds from the click
  until the new page shows its title and content (tests/browser.py ``PAGE_CONTENT``), median and slowest.
* Training: ``python -m core train`` on the built-in digits (mnist preset), images/s as the median of epochs
  2..K in the run's metrics.jsonl, with nobody on the server before the viewers come and after they leave, and
  while the N viewers watch it on the Train page; the ratio to the mean of the two alone (their spread shows
  how steady the machine was). The watched run waits for the workspace's trainer lock, which the benchmark
  holds until every viewer has (re)opened the Train page: an idle tab notices a new run only at its next
  script run, and from then on follows it.

Everything runs on this machine, the browsers included: their CPU is printed next to the server's, and a
real room's browsers would be on the viewers' own machines. The server listens on 127.0.0.1 only; at most
40 sessions; the whole run stops at a time limit.

Run: .venv/bin/python benchmarks/bench_viewers.py [--viewers 20] [--epochs 12] [--idle-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.status import STATUS_FILE  # noqa: E402
from core.trainer_lock import TrainerLock  # noqa: E402
from tests import browser as b  # noqa: E402

VIEWERS = 20
MAX_SESSIONS = 40  # the viewers and the one visitor who switches pages
IDLE_SECONDS = 20.0
SETTLE_SECONDS = 5.0  # after the last visitor drew its page, before an idle window starts
SWITCH_ROUNDS = 2  # each round visits the other four pages and comes back to Dataset: 5 switches
EPOCHS = 12
TIME_LIMIT_SECONDS = 1800
TRAIN_TIMEOUT_SECONDS = 600
PAGE_TIMEOUT_MS = 300_000  # for one page to draw: a server busy with its idle tabs is slow, and that is measured
WATCH_TIMEOUT_MS = 60_000  # for a viewer to draw the Train page while the others follow a live run (gives up)
VIEWPORT = {"width": 900, "height": 650}  # wide enough for the sidebar to stay open
PAGES = list(b.PAGE_CONTENT)
SWITCH_ORDER = [*PAGES[1:], PAGES[0]]
CHROMIUM_NAME = "chrom"  # /proc/<pid>/comm of Chromium's processes
GOAL_VIEWERS = 20
GOAL_IDLE_CORES = 0.1
GOAL_FIRST_PAINT_SECONDS = 3.0
GOAL_TRAINING_RATIO = 0.90


@contextmanager
def training(workspace: Path, epochs: int, name: str, log: Path):
    """One CLI run in the background; yields its process (killed if still running when the block ends)."""
    command = [sys.executable, "-m", "core", "train", "--data", "builtin:digits", "--preset", "mnist"]
    command += ["--epochs", str(epochs), "--workspace", str(workspace), "--name", name, "--quiet"]
    with open(log, "w") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=out, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def finished(process, log: Path) -> Path:
    """The folder of a CLI run, once it has ended."""
    stdout, _ = process.communicate(timeout=TRAIN_TIMEOUT_SECONDS)
    if process.returncode != 0:
        raise RuntimeError(f"training failed ({process.returncode}):\n{log.read_text()[-3000:]}")
    return Path(json.loads(stdout.strip().splitlines()[-1])["run_dir"])


def train(workspace: Path, epochs: int, name: str) -> Path:
    """One CLI run from start to end; returns its folder."""
    log = workspace.parent / f"train-{name.replace(' ', '-')}.log"
    with training(workspace, epochs, name, log) as process:
        return finished(process, log)


def new_run(workspace: Path, before: set[Path]) -> Path:
    """Wait for a run folder not in ``before`` to have its status (the CLI has created the run)."""
    deadline = time.monotonic() + TRAIN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for run_dir in set(b.run_dirs(workspace)) - before:
            if (run_dir / STATUS_FILE).is_file():
                return run_dir
        time.sleep(0.2)
    raise TimeoutError("the command line did not create its run")


def images_per_second(run_dir: Path) -> float:
    """A run's training speed: the median of epochs 2..K (epoch 1 builds the graph), as bench_training.py."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    speeds = [r["images_per_second"] for r in records if r.get("kind") == "epoch"][1:]
    return statistics.median(speeds)


class CpuWindow:
    """CPU seconds used between start() and stop() by the server, its children and Chromium, and the wall time."""

    def __init__(self, server_pid: int):
        self.server_pid = server_pid

    def _read(self) -> tuple[float, float, float, float]:
        return (
            time.monotonic(),
            b.cpu_seconds(self.server_pid),
            b.child_cpu_seconds(self.server_pid),
            b.child_cpu_seconds(os.getpid(), CHROMIUM_NAME),
        )

    def start(self) -> CpuWindow:
        self._start = self._read()
        return self

    def stop(self) -> CpuWindow:
        end = self._read()
        self.seconds = end[0] - self._start[0]
        self.server, self.children, self.chromium = (e - s for e, s in zip(end[1:], self._start[1:], strict=True))
        return self

    def cores(self, used: float) -> float:
        return used / self.seconds


def measure_idle(server_pid: int, seconds: float) -> CpuWindow:
    window = CpuWindow(server_pid).start()
    time.sleep(seconds)
    return window.stop()


def join(chromium, url: str) -> tuple[object, float]:
    """A new visitor (its own browser context: its own Streamlit session); returns the page and its first paint."""
    page = chromium.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    b.wait_for_page(page, "Dataset", timeout=PAGE_TIMEOUT_MS)
    return page, time.perf_counter() - start


def go(page, title: str) -> float:
    """Click ``title`` in the sidebar; the seconds until that page shows its content. Then let its run end."""
    start = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    b.wait_for_page(page, title, timeout=PAGE_TIMEOUT_MS)
    seconds = time.perf_counter() - start
    b.wait_for_app(page, timeout=PAGE_TIMEOUT_MS, start_window=0)
    return seconds


def watch(viewers: list, url: str) -> list[float]:
    """Each viewer (re)opens the Train page, where a run is now live, and follows it; returns the seconds each
    took to draw it. A viewer that takes longer than WATCH_TIMEOUT_MS (those before it already follow the run,
    and poll) leaves, and so do the ones after it: the run is then watched by fewer, and the table says so."""
    from playwright.sync_api import TimeoutError as PageTimeout

    seconds = []
    for i, page in enumerate(viewers):
        start = time.perf_counter()
        try:
            page.goto(f"{url}/train", wait_until="commit", timeout=WATCH_TIMEOUT_MS)
            b.wait_for_page(page, "Train", timeout=WATCH_TIMEOUT_MS)
        except PageTimeout:
            print(f"watcher {i + 1}: no Train page in {WATCH_TIMEOUT_MS / 1000:.0f} s, stopped there", file=sys.stderr)
            for gone in viewers[i:]:
                gone.context.close()
            del viewers[i:]
            break
        seconds.append(time.perf_counter() - start)
        print(f"watcher {i + 1}/{len(viewers)}: Train page in {seconds[-1]:.2f} s", file=sys.stderr)
    time.sleep(SETTLE_SECONDS)
    return seconds


def state() -> str:
    """The commit measured, with "+changes" when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" +changes" if dirty.stdout.strip() else "")


def on_signal(signum, frame):
    """The time limit, or a SIGTERM: end the run through its cleanups (server, browser, trainer), then report."""
    raise TimeoutError("the time limit ran out" if signum == signal.SIGALRM else f"signal {signal.strsignal(signum)}")


def measure(args, found: dict) -> None:
    """The whole run, filling ``found`` as it goes (so a run stopped early still reports what it measured)."""
    from playwright.sync_api import sync_playwright

    n = args.viewers
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "runs"
        train(workspace, 1, "viewed")  # the finished run the Train, Evaluate and Export pages show
        with b.streamlit_process(workspace, Path(tmp) / "streamlit.log") as (url, server):
            time.sleep(SETTLE_SECONDS)
            found["empty"] = measure_idle(server.pid, args.idle_seconds)
            found["alone"] = [images_per_second(train(workspace, args.epochs, "alone"))]
            with sync_playwright() as playwright:
                chromium = b.launch(playwright)
                try:
                    viewers, found["first_paints"] = [], []
                    for i in range(n):
                        page, seconds = join(chromium, url)
                        found["first_paints"].append(seconds)
                        print(f"viewer {i + 1}/{n}: first paint {seconds:.2f} s", file=sys.stderr)
                        if PAGES[i % len(PAGES)] != "Dataset":
                            go(page, PAGES[i % len(PAGES)])
                        b.wait_for_app(page, timeout=PAGE_TIMEOUT_MS, start_window=0)
                        viewers.append(page)
                    time.sleep(SETTLE_SECONDS)
                    found["idle"] = measure_idle(server.pid, args.idle_seconds)

                    switcher, _ = join(chromium, url)
                    b.wait_for_app(switcher, timeout=PAGE_TIMEOUT_MS, start_window=0)
                    found["switches"] = []
                    for title in SWITCH_ORDER * SWITCH_ROUNDS:
                        found["switches"].append(go(switcher, title))
                    switcher.context.close()

                    # The watched run waits for the trainer lock, held here, while the viewers open the Train
                    # page (an idle tab notices a run only at its next script run); then it trains.
                    lock, log = TrainerLock(workspace, "viewers-benchmark"), Path(tmp) / "train-watched.log"
                    lock.acquire()
                    before = set(b.run_dirs(workspace))
                    try:
                        with training(workspace, args.epochs, "watched", log) as trainer:
                            new_run(workspace, before)
                            found["watch_joins"] = watch(viewers, url)
                            during = CpuWindow(server.pid).start()
                            lock.release()
                            found["watched"] = images_per_second(finished(trainer, log))
                            found["during"] = during.stop()
                    finally:
                        lock.release()
                    for page in viewers:
                        page.context.close()
                finally:
                    chromium.close()
            time.sleep(SETTLE_SECONDS)
            found["alone"].append(images_per_second(train(workspace, args.epochs, "alone again")))


def table(n: int, found: dict) -> list[tuple[str, str, str]]:
    """The rows of the markdown table, for what was measured."""
    rows = [("viewers (idle sessions)", f"{n}", f"{GOAL_VIEWERS}")]
    if "idle" in found:
        idle, cores = found["idle"], found["idle"].cores(found["idle"].server)
        rows += [
            ("idle server CPU, all sessions", f"{cores:.3f} core", f"< {GOAL_IDLE_CORES} core"),
            ("idle server CPU per session", f"{cores / n:.4f} core", ""),
            ("idle: the server's child processes", f"{idle.cores(idle.children):.3f} core", ""),
            ("idle: Chromium, all the viewers' tabs", f"{idle.cores(idle.chromium):.3f} core", ""),
        ]
    if "empty" in found:
        rows.append(("server CPU with no session open", f"{found['empty'].cores(found['empty'].server):.3f} core", ""))
    paints = found.get("first_paints", [])
    if paints:
        rows.append(("first paint, 1st visitor", f"{paints[0]:.2f} s", ""))
    if len(paints) == n:
        goal = f"≤ {GOAL_FIRST_PAINT_SECONDS:.0f} s (the {GOAL_VIEWERS}th)"
        rows += [(f"first paint, {n}th visitor", f"{paints[-1]:.2f} s", goal)]
    if paints:
        rows.append((f"first paint, slowest of {len(paints)}", f"{max(paints):.2f} s", ""))
    switches = found.get("switches")
    if switches:
        shown = f"{statistics.median(switches):.2f} s ({max(switches):.2f} s)"
        rows.append((f"page switch with {n} idle, median (slowest) of {len(switches)}", shown, ""))
    alone = found.get("alone", [])
    if alone:
        shown = " and ".join(f"{speed:,.0f}" for speed in alone)
        rows.append(("training alone (before the viewers, after them)", f"{shown} images/s", ""))
    joins = found.get("watch_joins")
    if joins:
        shown = f"{len(joins)} of {n}, slowest {max(joins):.2f} s"
        rows.append(("viewers who drew the Train page of a live run (1 min each at most)", shown, f"{n}"))
    if "watched" in found:
        during, ratio, k = found["during"], found["watched"] / statistics.mean(alone), len(joins)
        rows += [
            (f"training with {k} viewers following it", f"{found['watched']:,.0f} images/s", ""),
            ("ratio watched / alone (their mean)", f"{ratio:.2f}", f"≥ {GOAL_TRAINING_RATIO:.2f}"),
            (
                "while it trains watched: server CPU per viewer",
                f"{during.cores(during.server) / max(k, 1):.3f} core",
                "",
            ),
            (
                "while it trains watched: server, its children (the trainer is not one), Chromium",
                f"{during.cores(during.server):.2f}, {during.cores(during.children):.2f}, "
                f"{during.cores(during.chromium):.2f} core",
                "",
            ),
        ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=VIEWERS, help=f"idle sessions, 1..{MAX_SESSIONS - 1}")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of each training run (at least 3)")
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS, help="length of each idle window")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_SECONDS, help="seconds for the whole run")
    args = parser.parse_args()
    if not 1 <= args.viewers <= MAX_SESSIONS - 1:
        parser.error(f"--viewers must be 1..{MAX_SESSIONS - 1} (at most {MAX_SESSIONS} sessions with the switcher)")
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (epoch 1 is left out of the median)")
    load = os.getloadavg()[0]
    found: dict = {}
    stopped = None
    signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.alarm(int(args.time_limit))
    try:
        measure(args, found)
    except Exception as err:  # report what was measured, then say why the rest was not
        stopped = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    finally:
        signal.alarm(0)
    print(f"\nmeasured at {state()}, {os.cpu_count()} cores, load average {load:.2f} at the start\n")
    print("| measure | measured | goal |\n| --- | --- | --- |")
    for row in table(args.viewers, found):
        print("| " + " | ".join(row) + " |")
    if stopped:
        print(f"\nstopped early: {stopped}")
        sys.exit(1)


if __name__ == "__main__":
    main()
