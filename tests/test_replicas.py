"""A room full of viewers (#18): several replicas on one workspace behind a real nginx (deploy/nginx.conf).

A run trains in one process and every page follows it from its run folder: the trainer keeps its progress in
progress.json (at most about once a second) beside status.json and metrics.jsonl. The browser test starts two
`streamlit run` replicas and Debian's nginx with the shipped config, pins each browser context to a replica
with the cookie the config hashes on, and checks that a run started through one replica is listed and watched
live through the other, that a second start there queues behind it, and that Stop there ends it.
"""

import getpass
import os
import re
import shutil
import subprocess
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from core.config import StudioConfig
from core.jobs import JobManager
from core.live import MetricsStore
from core.runs import append_metrics, live_run_ids
from core.status import PROGRESS_FILE, Phase, RunState, read_progress, read_status, update_status, write_progress
from core.training import create_run
from tests import browser as b

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_CONF = ROOT / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
COOKIE = "cnn_studio_replica"
EPOCH_TEXT = re.compile(r"epoch (\d+)/500")


# --- The run folder is how other processes follow a run ------------------------------------------------------


def test_the_trainer_writes_its_progress_at_most_about_once_a_second(tmp_path, monkeypatch):
    import core.callbacks as callbacks

    writes = []
    real = callbacks.write_progress
    monkeypatch.setattr(callbacks, "write_progress", lambda *a: (writes.append(a[1].phase), real(*a)))
    store = callbacks.FolderProgress(MetricsStore(), tmp_path)
    store.set_progress(phase=Phase.TRAINING, epochs=2, steps_per_epoch=500, epoch=1)  # a new phase: written
    for step in range(1, 501):
        store.add_batch({"kind": "batch", "epoch": 1, "step": step, "loss": 1.0, "lr": 0.001})
        store.set_progress(step=step, images_per_second=1000.0, eta=5.0)
    assert writes == [Phase.TRAINING], "500 batches in well under a second: no write besides the phase change"
    time.sleep(1.05)
    store.set_progress(step=500)
    progress, pending = read_progress(tmp_path)
    assert len(writes) == 2 and progress.step == 500 and progress.images_per_second == 1000.0
    assert [r["step"] for r in pending] == list(range(1, 501)), "the epoch's batches until metrics.jsonl has them"
    store.add_epoch({"kind": "epoch", "epoch": 1, "lr": 0.001})
    store.set_progress(phase=Phase.FINISHED)
    assert read_progress(tmp_path) == (store.snapshot()[2], [])
    assert not [p for p in tmp_path.iterdir() if p.name != PROGRESS_FILE], "written atomically"
    (tmp_path / PROGRESS_FILE).write_text('{"progress": {"phase": "dancing", "epoch": "two"}, "batches": 3}')
    progress, pending = read_progress(tmp_path)
    assert progress.phase == Phase.STARTING and progress.epoch == 0 and pending == []


def test_a_run_another_process_trains_is_viewed_from_its_folder(tmp_path):
    config = StudioConfig()
    run_dir = create_run(tmp_path, config, "elsewhere", owner="ada")  # queued by this process: alive
    other_server = JobManager(tmp_path)  # a replica that did not start it
    assert other_server.workspace_live() == [run_dir.name] == live_run_ids(tmp_path)
    view = other_server.view(run_dir.name)
    assert view.state == RunState.QUEUED and view.owner == "ada" and f"process {os.getpid()}" in view.elsewhere

    progress = MetricsStore()
    progress.set_progress(phase=Phase.WAITING, waiting_for="run X (process 1 on h, since 10:00:00)")
    write_progress(run_dir, progress.snapshot()[2], [])
    waiting = other_server.view(run_dir.name).progress
    assert waiting.waiting_for == "run X (process 1 on h, since 10:00:00)" and waiting.text().startswith("waiting")

    update_status(run_dir, state=RunState.RUNNING)
    epoch_one = [{"kind": "batch", "epoch": 1, "step": s, "loss": 2.0, "lr": 0.001} for s in (1, 2)]
    append_metrics(run_dir, [*epoch_one, {"kind": "epoch", "epoch": 1, "lr": 0.001, "loss": 1.5}])
    progress.set_progress(phase=Phase.TRAINING, epoch=2, epochs=3, step=1, steps_per_epoch=2, eta=4.0)
    pending = [*epoch_one[1:], {"kind": "batch", "epoch": 2, "step": 3, "loss": 1.0, "lr": 0.001}]  # one stale
    write_progress(run_dir, progress.snapshot()[2], pending)
    view = other_server.view(run_dir.name)
    assert view.state == RunState.RUNNING and view.progress.text() == "epoch 2/3, batch 1/2, ETA 0:04"
    assert [r["step"] for r in view.batches] == [1, 2, 3] and len(view.epochs) == 1 and view.result is None

    update_status(run_dir, state=RunState.STOPPED, epochs_completed=1, duration=3.0)
    view = other_server.view(run_dir.name)
    assert other_server.workspace_live() == [] and view.progress.phase == Phase.STOPPED
    assert view.result.status == RunState.STOPPED and view.result.epochs_completed == 1


def test_a_trainer_starts_clean_while_other_tabs_rerun_the_app(tmp_path, monkeypatch):
    """A polling tab's script run may install the app script as __main__ in the very moment a trainer is spawned;
    the trainer must not run it (it did once here: the app script started workers in the child and it died)."""
    import sys
    import types

    from core.worker import _CONTEXT, hidden_main

    app = tmp_path / "app.py"
    app.write_text("raise SystemExit(3)  # the app script: a child that runs it dies\n")
    script_main = types.ModuleType("__main__")
    script_main.__file__ = str(app)
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    child = _CONTEXT.Process(target=time.sleep, args=(0,))
    with hidden_main():
        sys.modules["__main__"] = script_main  # another tab's script run, at this very moment
        child.start()
    child.join(60)
    assert child.exitcode == 0


# --- nginx ----------------------------------------------------------------------------------------------------


def deploy_conf(replica_ports: list[int], listen_port: int, access_log: Path) -> str:
    """deploy/nginx.conf as shipped, with only the replicas' ports, the listening port and the log path changed."""
    text = DEPLOY_CONF.read_text()
    for old, new in (
        ("server 127.0.0.1:8501 ", f"server 127.0.0.1:{replica_ports[0]} "),
        ("server 127.0.0.1:8502 ", f"server 127.0.0.1:{replica_ports[1]} "),
        ("listen 80;", f"listen 127.0.0.1:{listen_port};"),
        ("/var/log/nginx/cnn-studio.access.log", str(access_log)),
    ):
        assert text.count(old) == 1, f"deploy/nginx.conf no longer has {old!r} once"
        text = text.replace(old, new)
    return text


def main_conf(prefix: Path, include: Path) -> str:
    """An nginx main config whose pid, logs and temporary files all stay in ``prefix``: no root needed. As root,
    the workers run as root too (the default user could not enter pytest's private temporary folder)."""
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 512; }}
http {{
{temp}
    access_log {prefix / "access.log"};
    include {include};
}}
"""


@contextmanager
def nginx(prefix: Path, replica_urls: list[str]):
    """Debian's nginx in the foreground on a free loopback port in front of the replicas; yields (url, access log)."""
    assert Path(NGINX).exists(), "nginx is not installed: `make test` installs Debian's nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    port, access_log = b.free_port(), prefix / "cnn-studio.access.log"
    ports = [int(url.rsplit(":", 1)[1]) for url in replica_urls]
    (prefix / "cnn-studio.conf").write_text(deploy_conf(ports, port, access_log))
    (prefix / "nginx.conf").write_text(main_conf(prefix, prefix / "cnn-studio.conf"))
    command = [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", str(prefix / "error.log")]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        b.wait_healthy(url, process, 30, lambda: (prefix / "error.log").read_text())
        yield url, access_log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def routes(access_log: Path) -> dict[str, set[int]]:
    """Cookie value → the replica ports its requests went to, from the config's access log."""
    seen: dict[str, set[int]] = {}
    for line in access_log.read_text().splitlines():
        found = re.search(r"cookie=(\S+) upstream=127\.0\.0\.1:(\d+)", line)
        if found:
            seen.setdefault(found[1], set()).add(int(found[2]))
    return seen


def pin_cookies(url: str, access_log: Path, ports: list[int]) -> dict[int, str]:
    """A cookie value that reaches each replica, found as an admin would: a few requests, then the access log."""
    values = [f"pin-{i}" for i in range(24)]
    for value in values * 2:  # twice: the same value must reach the same replica
        request = urllib.request.Request(f"{url}/_stcore/health", headers={"Cookie": f"{COOKIE}={value}"})
        assert urllib.request.urlopen(request, timeout=10).read() == b"ok"
    deadline = time.monotonic() + 10
    while not all(v in routes(access_log) for v in values):
        assert time.monotonic() < deadline, access_log.read_text()[-2000:]
        time.sleep(0.1)
    seen = routes(access_log)
    assert all(len(seen[v]) == 1 for v in values), f"a cookie value reached two replicas: {seen}"
    pins = {port: next((v for v in values if seen[v] == {port}), None) for port in ports}
    assert all(pins.values()), f"some replica got none of {len(values)} cookie values: {seen}"
    return pins


def check_first_visit(url: str, access_log: Path) -> None:
    """A browser without the cookie gets one with its first response, and that first request went to the replica
    the cookie sends all later ones to; a browser with it gets no other."""
    response = urllib.request.urlopen(f"{url}/_stcore/health?first-visit", timeout=10)
    cookies = [c for c in response.headers.get_all("Set-Cookie") or [] if c.startswith(f"{COOKIE}=")]
    assert len(cookies) == 1 and "Path=/" in cookies[0] and "HttpOnly" in cookies[0], cookies
    value = cookies[0].split(";")[0].split("=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{32}", value), value
    request = urllib.request.Request(f"{url}/_stcore/health", headers={"Cookie": f"{COOKIE}={value}"})
    again = urllib.request.urlopen(request, timeout=10)
    assert not [c for c in again.headers.get_all("Set-Cookie") or [] if c.startswith(f"{COOKIE}=")]
    deadline = time.monotonic() + 10
    while value not in routes(access_log):
        assert time.monotonic() < deadline, access_log.read_text()[-2000:]
        time.sleep(0.1)
    (first,) = [line for line in access_log.read_text().splitlines() if "?first-visit" in line]
    assert routes(access_log)[value] == {int(re.search(r"upstream=127\.0\.0\.1:(\d+)", first)[1])}


def test_the_shipped_config_passes_nginx_t_inside_debians_nginx_conf(tmp_path):
    """Used as documented: copied into conf.d of Debian's own /etc/nginx, with its default site removed."""
    etc = tmp_path / "etc-nginx"
    shutil.copytree("/etc/nginx", etc)
    main = (etc / "nginx.conf").read_text().replace("/etc/nginx", str(etc))
    (etc / "nginx.conf").write_text(main)
    shutil.copy(DEPLOY_CONF, etc / "conf.d" / "cnn-studio.conf")
    (etc / "sites-enabled" / "default").unlink(missing_ok=True)
    check = subprocess.run(
        [NGINX, "-t", "-c", str(etc / "nginx.conf"), "-e", str(tmp_path / "error.log")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    assert f"include {etc}/conf.d/*.conf;" in main, "Debian's http block includes conf.d"


# --- Two replicas, three visitors ---------------------------------------------------------------------------


def visitor(chromium, url: str, pin: str):
    """A browser context whose every request reaches one replica: it carries that replica's cookie. Waits only
    for the page's title: b.goto's settled idle can take long on a page that polls while the CPU trains."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.add_cookies([{"name": COOKIE, "value": pin, "url": url}])
    page = context.new_page()
    page.set_default_timeout(b.TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]')
    page.locator("h1").first.wait_for()
    return page


def epoch_shown(page) -> int:
    text = page.get_by_text(EPOCH_TEXT).first.inner_text()
    return int(EPOCH_TEXT.search(text)[1])


@pytest.mark.slow
def test_two_replicas_behind_nginx_share_watch_queue_and_stop_one_run(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    workspace = tmp_path / "runs"
    # One core for TensorFlow's trainer, one for two servers, nginx and three browser pages (2-core machine).
    env = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    with ExitStack() as stack:
        replicas = [
            stack.enter_context(b.streamlit_server(workspace, tmp_path / f"replica-{i}.log", env)) for i in (1, 2)
        ]
        url, access_log = stack.enter_context(nginx(tmp_path / "nginx", replicas))
        ports = [int(r.rsplit(":", 1)[1]) for r in replicas]
        check_first_visit(url, access_log)
        pins = pin_cookies(url, access_log, ports)
        playwright = stack.enter_context(sync_playwright())
        chromium = b.launch(playwright)
        stack.callback(chromium.close)  # before Playwright stops (callbacks run last in, first out)

        # Carol gets a short run ready through replica 2 (the built-in shapes, the mnist preset, 1 epoch); Alice
        # starts a long one through replica 1 (500 epochs). Both open the Model page directly.
        carol = visitor(chromium, f"{url}/model", pins[ports[1]])
        alice = visitor(chromium, f"{url}/model", pins[ports[0]])  # both replicas warm their workers at once
        b.wait_for_app(carol)
        b.select(carol, "Start from", "mnist —")
        b.set_slider(carol, "Epochs", 1)
        b.navigate(carol, "Train")
        b.wait_for_app(alice)
        b.select(alice, "Start from", "mnist —")
        epochs = b.widget(alice, "stSlider", "Epochs").locator('input[type="range"]')
        epochs.press("End")
        b.wait_for_app(alice)
        assert epochs.input_value() == "500"
        b.navigate(alice, "Train")
        b.click_button(alice, "start_training")
        alice.get_by_text(EPOCH_TEXT).first.wait_for()  # it holds the workspace's trainer now
        (run_dir,) = b.run_dirs(workspace)
        run_id = run_dir.name
        b.navigate(alice, "Model")  # her Train page would redraw four charts a second meanwhile

        # Bob, on replica 2, opens the Train page: Alice's run is in his sidebar, his history (the newest run, so
        # his run picker shows it) and his live view.
        bob = visitor(chromium, f"{url}/train", pins[ports[1]])
        sidebar = bob.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text(re.compile(rf"Training {run_id} \(another process\): epoch \d+/500")).wait_for()
        bob.locator(f"h3:has-text('Run {run_id}')").wait_for()
        bob.get_by_text("not by this server: followed through its run folder").wait_for()
        picker = bob.get_by_role("combobox", name="Run", exact=True)
        expect(picker).to_have_value(f"mnist on Shapes · running · {run_id}", timeout=b.TIMEOUT_MS)

        # Carol's start is queued behind it: her page says so at once, and again once her trainer waits.
        b.click_button(carol, "start_training")
        carol.get_by_text("is training in this workspace: yours is queued and starts when it ends").wait_for()

        # Bob's page follows Alice's run with no click: the epoch moves; images/s, ETA and the curves are shown.
        first = epoch_shown(bob)
        deadline = time.monotonic() + 60
        while epoch_shown(bob) <= first:
            assert time.monotonic() < deadline, "the watched run's progress did not move"
            time.sleep(0.5)
        for label in ("Epoch", "Images / s", "ETA"):
            assert b.metric(bob, label)
        assert bob.locator(".st-key-live_batch_loss").count(), "its live curves"
        carol.get_by_text(re.compile(rf"Queued behind run {run_id} \(process \d+")).wait_for()

        # Bob stops Alice's run from replica 2; Carol's then trains to its end, and Alice sees hers stopped.
        b.click_button(bob, "stop_training")
        carol.get_by_text("Run finished after 1 epoch").wait_for(timeout=2 * b.TIMEOUT_MS)
        b.navigate(alice, "Train")
        alice.get_by_text("Run stopped after").wait_for()

    runs = {d.name: read_status(d) for d in b.run_dirs(workspace)}
    alice_run = runs.pop(run_id)
    (carol_run,) = runs.values()
    assert alice_run.state == RunState.STOPPED and 0 < alice_run.epochs_completed < 500
    assert carol_run.state == RunState.FINISHED and carol_run.started >= alice_run.finished
    # Every request of a pinned browser reached its replica (a WebSocket's line is written when it closes).
    seen = routes(access_log)
    assert seen[pins[ports[0]]] == {ports[0]} and seen[pins[ports[1]]] == {ports[1]}
