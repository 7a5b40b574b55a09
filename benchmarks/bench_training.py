"""Training throughput on the path users take, against plain Keras, in interleaved pairs.

The app's path: a training job as the Train page starts it (core.jobs.JobManager: a trainer child process, a
ZIP of PNG class folders decoded by the app's loader, validation on, the live callbacks with their event queue,
status.json, progress.json and metrics.jsonl, checkpoints). Plain Keras: a fresh process that decodes the same
ZIP with the same loader, takes the same split, builds and compiles the same model and calls
``model.fit(x, y, batch_size, validation_data=(xv, yv))`` as the tutorials do. Each side's rate is training
images per second over the median wall time of epochs 2..E (end of one epoch to the end of the next:
validation and anything the callbacks do included; the first epoch, with tracing, left out). The pairs
alternate which side goes first. Prints each pair's ratio, the median and the spread.

Run: .venv/bin/python benchmarks/bench_training.py [--pairs 5] [--images 6000] [--epochs 4]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import StudioConfig, apply_recipe  # noqa: E402  (no TensorFlow in this process)
from core.runs import read_metrics  # noqa: E402

PRESET = "mnist"
IMAGE_SIZE = 28


def make_zip(path: Path, count: int) -> None:
    """``count`` generated 28×28 gray shapes as PNG files in class folders: the format users upload."""
    import numpy as np
    from PIL import Image

    from core.shapes import generate_shapes

    images, labels, names = generate_shapes(count, IMAGE_SIZE, seed=0)
    gray = images.mean(axis=-1).astype(np.uint8)
    with zipfile.ZipFile(path, "w") as archive:
        for i, (image, label) in enumerate(zip(gray, labels, strict=True)):
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            archive.writestr(f"shapes/{names[label]}/{i:05d}.png", buffer.getvalue())


def bench_config(zip_path: Path, epochs: int) -> StudioConfig:
    config = StudioConfig()
    config.data.source, config.data.path, config.data.color_mode = "zip", str(zip_path), "grayscale"
    apply_recipe(config, PRESET)
    config.training.epochs = epochs
    return config.validate()


def rate(train_images: int, epoch_end_times: list[float]) -> float:
    """Training images per second over the median of epochs 2..E (from their end times)."""
    durations = [b - a for a, b in zip(epoch_end_times, epoch_end_times[1:], strict=False)]
    return train_images / statistics.median(durations)


def app_run(config: StudioConfig, workspace: Path) -> float:
    from core.jobs import JobManager
    from core.status import read_status

    manager = JobManager(workspace)
    job = manager.submit(config, name="bench")
    manager.wait(job.run_id, timeout=3600)
    if job.result.status != "finished":
        raise SystemExit(f"the app's run ended {job.result.status}: {job.result.error}")
    _, epochs = read_metrics(job.run_dir)
    return rate(read_status(job.run_dir).train_size, [e["time"] for e in epochs])


def plain_run(config: StudioConfig) -> float:
    result = subprocess.run(
        [sys.executable, __file__, "--plain", config.to_json()], capture_output=True, text=True, check=True, cwd=ROOT
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return rate(answer["train_images"], answer["epoch_end_times"])


def plain_fit(config_json: str) -> None:
    """The tutorials' way, in this (fresh) process: arrays in memory and ``model.fit(x, y, ...)``."""
    import keras

    from core.data import channel_stats, load_dataset, split_dataset
    from core.models import build_model, compile_model, uses_one_hot

    config = StudioConfig.from_json(config_json)
    data, training = config.data, config.training
    keras.utils.set_random_seed(data.seed)
    dataset = load_dataset(data)
    split = split_dataset(dataset, data.val_split, data.test_split, data.seed, data.use_official_test)
    x, y = dataset.images[split.train], dataset.labels[split.train]
    xv, yv = dataset.images[split.val], dataset.labels[split.val]
    if uses_one_hot(training):
        y, yv = (keras.utils.to_categorical(v, dataset.num_classes) for v in (y, yv))
    stats = channel_stats(x)
    model = build_model(config.model, dataset.image_shape, dataset.num_classes, stats.mean, stats.std, data.seed).model
    compile_model(model, config.model, training, -(-len(x) // training.batch_size), 1)
    ends: list[float] = []
    start = time.perf_counter()
    timer = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter() - start))
    model.fit(x, y, batch_size=training.batch_size, epochs=training.epochs, validation_data=(xv, yv), verbose=0,
              callbacks=[timer])  # fmt: skip
    print(json.dumps({"train_images": len(x), "epoch_end_times": ends}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_fit(args.plain)
        return
    if not 1 <= args.pairs <= 20 or not 500 <= args.images <= 60_000 or not 3 <= args.epochs <= 30:
        raise SystemExit("--pairs 1..20, --images 500..60000, --epochs 3..30")
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        zip_path = Path(tmp) / "shapes.zip"
        make_zip(zip_path, args.images)
        config = bench_config(zip_path, args.epochs)
        print(
            f"{PRESET} preset, {args.images:,} PNGs {IMAGE_SIZE}x{IMAGE_SIZE} gray in a ZIP, batch "
            f"{config.training.batch_size}, {args.epochs} epochs, validation on; images/s over epochs 2-{args.epochs}"
        )
        print(f"{'pair':>4} {'first':>6} {'app images/s':>13} {'plain images/s':>15} {'ratio':>6}")
        ratios = []
        for pair in range(args.pairs):
            app_first = pair % 2 == 0
            rates = {}
            for side in ("app", "plain") if app_first else ("plain", "app"):
                workspace = Path(tmp) / f"runs-{pair}"
                rates[side] = app_run(config, workspace) if side == "app" else plain_run(config)
            ratios.append(rates["app"] / rates["plain"])
            first = "app" if app_first else "plain"
            print(f"{pair + 1:>4} {first:>6} {rates['app']:>13,.0f} {rates['plain']:>15,.0f} {ratios[-1]:>6.2f}")
        print(
            f"ratio app/plain: median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f} "
            f"over {len(ratios)} pairs"
        )


if __name__ == "__main__":
    main()
