"""Prediction server: ``python -m core serve`` (requests batched, one compiled model call per batch) against the
naive server (``--no-batching``: Keras's ``model.predict`` once per request), side by side in one run.

Each server gets the same bounded load: REQUESTS requests of one 28x28x1 picture each (the mnist preset, raw
pixel arrays as JSON), sent by CLIENTS concurrent local clients on keep-alive connections. Prints throughput and
p50/p99 latency per server, and the ratios. Both servers give the same answers (checked).

Run: flock /tmp/cnn-bench.lock .venv/bin/python benchmarks/bench_serve.py [--requests 2000] [--clients 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import core  # noqa: E402,F401  (environment for TensorFlow)
from core.config import StudioConfig, apply_preset  # noqa: E402
from core.files import atomic_write_json  # noqa: E402
from core.models import build_model  # noqa: E402
from core.runs import BEST_MODEL, CLASSES_FILE, CONFIG_FILE, TEST_DATA_FILE  # noqa: E402
from core.shapes import generate_shapes  # noqa: E402
from core.status import RunState, update_status  # noqa: E402

START_SECONDS = 300
PICTURES = 64  # distinct pictures, sent in turn


def make_run(folder: Path) -> tuple[Path, np.ndarray]:
    """A run folder with an (untrained) mnist-preset model: serving costs the same whatever the weights."""
    images, labels, names = generate_shapes(PICTURES, 28, seed=0)
    images = images.mean(axis=-1, keepdims=True).astype(np.uint8)
    run_dir = folder / "bench-serve"
    run_dir.mkdir()
    np.savez(run_dir / TEST_DATA_FILE, images=images, labels=labels)
    config = StudioConfig()
    config.model = apply_preset("mnist")
    (run_dir / CONFIG_FILE).write_text(config.to_json())
    atomic_write_json(run_dir / CLASSES_FILE, names)
    update_status(run_dir, state=RunState.FINISHED, name="bench")
    build_model(config.model, (28, 28, 1), len(names), seed=0).model.save(run_dir / BEST_MODEL)
    return run_dir, images


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run_dir: Path, batching: bool) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    command = [sys.executable, "-m", "core", "serve", "--run", str(run_dir), "--port", str(port)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        command + ([] if batching else ["--no-batching"]),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    started = json.loads(process.stdout.readline() or "{}")
    if "model" not in started:
        process.kill()
        sys.exit("the server did not start")
    path = f"/v1/models/{started['model']}"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return process, port, path
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit("the server did not answer in time")


def load(port: int, path: str, bodies: list[bytes], requests: int, clients: int) -> tuple[float, np.ndarray, list]:
    """(seconds for all requests, per-request latencies in ms, answers of the first round of pictures)."""
    per_client = [list(range(c, requests, clients)) for c in range(clients)]
    latencies = np.zeros(requests)
    answers: list = [None] * len(bodies)

    def client(indices: list[int]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/json"}
        for i in indices:
            start = time.perf_counter()
            connection.request("POST", f"{path}:predict", bodies[i % len(bodies)], headers)
            response = connection.getresponse()
            data = response.read()
            latencies[i] = (time.perf_counter() - start) * 1000
            if response.status != 200:
                raise RuntimeError(f"{response.status}: {data[:300]!r}")
            if i < len(bodies):
                answers[i] = json.loads(data)["predictions"][0]
        connection.close()

    # A short warm-up (first model calls trace and allocate), not measured.
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, [list(range(c, clients * 4, clients)) for c in range(clients)]))
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, per_client))
    return time.perf_counter() - start, latencies, answers


def model_calls(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", f"{path}/metadata")
    return json.loads(connection.getresponse().read())["batching"]["model_calls"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    results, load_before = {}, os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, images = make_run(Path(tmp))
        bodies = [json.dumps({"instances": [image.tolist()]}).encode() for image in images]
        for label, batching in (("batched (python -m core serve)", True), ("naive: model.predict per request", False)):
            process, port, path = start_server(run_dir, batching)
            try:
                seconds, latencies, answers = load(port, path, bodies, args.requests, args.clients)
                results[label] = (seconds, latencies, answers, model_calls(port, path))
            finally:
                process.terminate()
                process.wait(30)
    (batched, naive) = results.values()
    difference = np.abs(np.array(batched[2]) - np.array(naive[2])).max()
    print(f"{args.requests} requests of one 28x28x1 picture (mnist preset) from {args.clients} concurrent clients")
    print(
        f"load average (1 min) before {load_before:.2f}, after {os.getloadavg()[0]:.2f}; answers differ by at most "
        f"{difference:.1e}; model calls include {args.clients * 4} warm-up requests"
    )
    print(f"{'server':36} {'requests/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'model calls':>12}")
    for label, (seconds, latencies, _, calls) in results.items():
        p50, p99 = np.percentile(latencies, [50, 99])
        print(f"{label:36} {args.requests / seconds:10.0f} {p50:8.1f} {p99:8.1f} {calls:12d}")
    p50 = [np.percentile(r[1], 50) for r in (batched, naive)]
    p99 = [np.percentile(r[1], 99) for r in (batched, naive)]
    print(
        f"batched vs naive: throughput {naive[0] / batched[0]:.1f}x, p50 {p50[1] / p50[0]:.1f}x lower, "
        f"p99 {p99[1] / p99[0]:.1f}x lower"
    )


if __name__ == "__main__":
    main()
