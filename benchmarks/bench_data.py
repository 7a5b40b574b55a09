"""Dataset loading: time for each built-in set and a generated 10,000-image class-folder ZIP, and peak
memory relative to the raw uint8 size, beside a naive loader (decode to a list, then np.stack).

With ``--folder-images N`` (0 skips it; make bench runs 50,000): a generated folder of N JPEGs at 128 px, read
side by side in fresh processes (peak RSS of each from the kernel) by the in-memory path (core.data.load_folder,
threads), the streaming path (core.streaming's tf.data elements, one pass) and
keras.utils.image_dataset_from_directory (one pass), then one epoch of streaming training through the CLI.

Run: make bench   (or .venv/bin/python benchmarks/bench_data.py [--images 10000] [--folder-images 50000])
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import DataConfig  # noqa: E402
from core.data import load_dataset, load_zip  # noqa: E402
from core.shapes import generate_shapes  # noqa: E402

SIZE = 64


def measure(fn):
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def naive_zip_loader(data: bytes) -> np.ndarray:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        arrays = [np.asarray(Image.open(zf.open(n)).convert("RGB").resize((SIZE, SIZE))) for n in zf.namelist()]
    return np.stack(arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--folder-images", type=int, default=50_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/cnn-studio-bench-folder"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return folder_child(args.child, args.folder)

    import sklearn.datasets  # noqa: F401  (its import, not the loading, would dominate the digits row)

    print(f"{'dataset':34} {'images':>7} {'seconds':>8} {'raw MB':>8} {'peak MB':>8} {'peak/raw':>8}")
    for source in ("builtin:shapes", "builtin:digits"):
        ds, seconds, peak = measure(lambda s=source: load_dataset(DataConfig(source=s)))
        raw = ds.images.nbytes
        print(f"{source:34} {len(ds.labels):7} {seconds:8.2f} {raw / 1e6:8.1f} {peak / 1e6:8.1f} {peak / raw:8.2f}")

    images, labels, names = generate_shapes(args.images, 96, seed=0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            png = io.BytesIO()
            Image.fromarray(img).save(png, "PNG")
            zf.writestr(f"shapes/{names[label]}/{i:05d}.png", png.getvalue())
    data = buf.getvalue()
    del images
    print(f"(ZIP of {args.images} 96×96 PNGs: {len(data) / 1e6:.1f} MB, loaded at {SIZE}×{SIZE})")
    ds, seconds, peak = measure(lambda: load_zip(data, "bench.zip", SIZE, None))
    raw = ds.images.nbytes
    print(f"{'core.data.load_zip':34} {len(ds.labels):7} {seconds:8.2f} {raw / 1e6:8.1f} {peak / 1e6:8.1f}", end="")
    print(f" {peak / raw:8.2f}")
    naive, n_seconds, n_peak = measure(lambda: naive_zip_loader(data))
    print(f"{'naive list + np.stack':34} {len(naive):7} {n_seconds:8.2f} {raw / 1e6:8.1f} {n_peak / 1e6:8.1f}", end="")
    print(f" {n_peak / raw:8.2f}")
    print(f"ratio core/naive: time {seconds / n_seconds:.2f}×, peak memory {peak / n_peak:.2f}×")
    if args.folder_images:
        bench_folder(args.folder, args.folder_images)


FOLDER_SIZE = 128


def make_folder(folder: Path, count: int) -> None:
    """``count`` 128-px JPEGs of the Shapes set in class folders (kept between runs: generating takes a while)."""
    done = folder / f".complete-{count}"
    if done.is_file():
        return
    chunk = 2000
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        images, labels, names = generate_shapes(n, FOLDER_SIZE, seed=start)
        for i, (img, label) in enumerate(zip(images, labels, strict=True)):
            path = folder / names[label] / f"{start + i:06d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(path, quality=90)
    done.write_text("")


def folder_child(mode: str, folder: Path) -> None:
    """One measurement in this fresh process; prints 'images seconds'."""
    if mode == "memory":
        from core.data import load_folder

        start = time.perf_counter()
        ds = load_folder(folder, FOLDER_SIZE, 3)
        print(len(ds.labels), time.perf_counter() - start)
    elif mode == "stream":
        import tensorflow  # noqa: F401  (imported before the clock starts, as keras is for the keras row)

        from core.data import load_folder

        start = time.perf_counter()
        ds = load_folder(folder, FOLDER_SIZE, 3, stream=True)
        count = sum(1 for _ in ds.elements(np.arange(len(ds.labels))).batch(256).prefetch(2))
        print(len(ds.labels), time.perf_counter() - start, count)
    elif mode == "keras":
        import keras

        start = time.perf_counter()
        ds = keras.utils.image_dataset_from_directory(
            folder, image_size=(FOLDER_SIZE, FOLDER_SIZE), batch_size=256, shuffle=False, verbose=False
        )
        n = sum(int(x.shape[0]) for x, _ in ds)
        print(n, time.perf_counter() - start)


def run_child(args: list[str], env: dict) -> tuple[str, float, float]:
    """Run a child; its stdout, wall seconds and peak RSS in MB (from wait4)."""
    import os
    import subprocess

    start = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0, f"{args} failed ({child.returncode})"
    return out, time.perf_counter() - start, usage.ru_maxrss / 1024


def bench_folder(folder: Path, count: int) -> None:
    import os

    start = time.perf_counter()
    make_folder(folder, count)
    print(f"folder of {count:,} JPEGs at {FOLDER_SIZE} px: ready in {time.perf_counter() - start:.0f} s")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    big = {**env, "CNN_STUDIO_MEMORY_BUDGET_MB": "1000000"}  # the in-memory path, whatever the budget
    me = [sys.executable, __file__, "--folder", str(folder), "--child"]
    rates = {}
    print(f"{'path':44} {'images':>7} {'seconds':>8} {'images/s':>9} {'peak RSS MB':>12}")
    for mode, label, child_env in (
        ("keras", "keras image_dataset_from_directory", env),
        ("memory", "in memory (core.data.load_folder)", big),
        ("stream", "streaming (core.streaming, one pass)", {**env, "CNN_STUDIO_MEMORY_BUDGET_MB": "1"}),
    ):
        out, _, rss = run_child([*me, mode], child_env)
        images, seconds = int(out.split()[0]), float(out.split()[1])
        rates[mode] = (images / seconds, rss)
        print(f"{label:44} {images:7,} {seconds:8.1f} {images / seconds:9,.0f} {rss:12,.0f}")
    for mode in ("memory", "stream"):
        print(
            f"{mode} / keras: throughput {rates[mode][0] / rates['keras'][0]:.2f}×, "
            f"peak RSS {rates[mode][1] / rates['keras'][1]:.2f}×"
        )
    train = [sys.executable, "-m", "core", "train", "--data", str(folder), "--preset", "small-64"]
    train += [
        "--image-size",
        str(FOLDER_SIZE),
        "--epochs",
        "1",
        "--quiet",
        "--workspace",
        str(folder.parent / "bench-runs"),
    ]
    out, seconds, rss = run_child(train, {**env, "CNN_STUDIO_MEMORY_BUDGET_MB": "200"})
    result = json.loads(out.strip().splitlines()[-1])
    print(
        f"streaming training, 1 epoch (budget 1 MB): {result['status']}, "
        f"{result['images_per_second']:,.0f} images/s, "
        f"test accuracy {result['test_accuracy']:.3f}, {seconds:.0f} s, peak RSS {rss:,.0f} MB"
    )


if __name__ == "__main__":
    main()
