"""Dataset loading: time for each built-in set and a generated 10,000-image class-folder ZIP, and peak
memory relative to the raw uint8 size, beside a naive loader (decode to a list, then np.stack).

Run: make bench   (or .venv/bin/python benchmarks/bench_data.py [--images 10000])
"""

from __future__ import annotations

import argparse
import io
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
    args = parser.parse_args()

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


if __name__ == "__main__":
    main()
