"""The cost of each distributed path, side by side in one run: the same CLI training (built-in digits, mnist
preset, same seed) on one device, on two logical CPU devices (MirroredStrategy) and on two workers on localhost
(TF_CONFIG, MultiWorkerMirroredStrategy): images/s (median of epochs) and test accuracy of each.

Run: .venv/bin/python benchmarks/bench_distributed.py [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(epochs: int, workspace: Path) -> list[str]:
    return [sys.executable, "-m", "core", "train", "--data", "builtin:digits", "--preset", "mnist", "--epochs",
            str(epochs), "--seed", "0", "--quiet", "--workspace", str(workspace)]  # fmt: skip


def run(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def summary(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise SystemExit(f"failed ({process.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        rows.append(("1 device", summary(run(command(args.epochs, tmp / "one"), env)), time.perf_counter() - start))
        start = time.perf_counter()
        two = run(command(args.epochs, tmp / "two"), {**env, "CNN_STUDIO_CPU_DEVICES": "2"})
        rows.append(("2 logical CPU devices", summary(two), time.perf_counter() - start))
        ports = [free_port(), free_port()]
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        start = time.perf_counter()
        workers = [
            run(
                command(args.epochs, tmp / f"worker{i}"),
                {**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
            )
            for i in (0, 1)
        ]
        chief, _ = (summary(w) for w in workers)
        rows.append(("2 workers on localhost", chief, time.perf_counter() - start))
    print(f"digits, mnist preset, {args.epochs} epoch(s), global batch 32, seed 0; load: {os.getloadavg()[0]:.1f}")
    print(f"{'path':24} {'replicas':>8} {'images/s':>9} {'test acc':>9} {'wall s':>7}")
    base = rows[0][1]["images_per_second"]
    for name, result, seconds in rows:
        speed = result["images_per_second"]
        print(
            f"{name:24} {result['replicas']:8} {speed:9,.0f} {result['test_accuracy']:9.3f} {seconds:7.0f}"
            f"   ({speed / base:.2f}× one device)"
        )


if __name__ == "__main__":
    main()
