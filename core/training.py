"""One training run, start to end: data, split, model, fit with live callbacks, test score, run folder.

Used the same way by the app's background jobs and by the command line.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.config import StudioConfig
from core.data import Dataset, build_augmenter, channel_stats, load_dataset, split_dataset
from core.devices import batch_text, choose_strategy
from core.errors import StudioError
from core.failures import failure_message, root_cause
from core.files import atomic_save_model, atomic_write_bytes, atomic_write_json
from core.i18n import _
from core.runs import (
    BEST_MODEL,
    CALIBRATION_FILE,
    CLASSES_FILE,
    CONFIG_FILE,
    FINAL_MODEL,
    SPLIT_FILE,
    TEST_DATA_FILE,
    new_run_dir,
)
from core.status import Phase, RunState, update_status
from core.streaming import is_streamed, stats_images, take
from core.trainer_lock import TrainerLock, stop_requested

# Several batches per call into TensorFlow: the per-batch Python overhead dominates small CNNs on CPU.
STEPS_PER_EXECUTION = 16
CALIBRATION_IMAGES = 300
TENSORBOARD_DIR = "tensorboard"  # in the run folder: tensorboard --logdir <workspace> finds every run's logs


@dataclass
class TrainResult:
    run_dir: str
    status: RunState
    epochs_completed: int
    best_val_accuracy: float | None
    test_accuracy: float | None
    test_loss: float | None
    images_per_second: float | None
    seconds: float
    error: str | None = None
    replicas: int | None = None  # devices training in sync (all workers' together)
    global_batch: int | None = None  # images per step over all replicas: the batch-size setting
    workers: int | None = None  # machines (TF_CONFIG workers) that trained it; None: this one alone

    def __post_init__(self) -> None:
        self.status = RunState(self.status)

    def to_dict(self) -> dict:
        return {**asdict(self), "status": str(self.status)}


def make_pipeline(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    num_classes: int,
    one_hot: bool,
    augmenter=None,
    shuffle_seed: int | None = None,
):
    """tf.data over uint8 arrays: shuffle, batch, augment (training only), prefetch. Normalization is in the model.
    ``images`` may instead be a streamed set's elements (core.streaming: decoded and shuffled there)."""
    import tensorflow as tf

    if not isinstance(images, np.ndarray):
        ds = images
    else:
        ds = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int32)))
        if shuffle_seed is not None:
            ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augmenter is not None:
        ds = ds.map(
            lambda x, y: (augmenter(tf.cast(x, tf.float32), training=True), y), num_parallel_calls=tf.data.AUTOTUNE
        )
    if one_hot:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, num_classes)), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _pipeline(dataset, indices: np.ndarray, batch_size: int, one_hot: bool, augmenter=None, shuffle_seed=None):
    """make_pipeline over part of a dataset, in memory or streamed from disk (core.streaming)."""
    images = dataset.elements(indices, shuffle_seed) if is_streamed(dataset) else dataset.images[indices]
    labels = dataset.labels[indices]
    return make_pipeline(images, labels, batch_size, dataset.num_classes, one_hot, augmenter, shuffle_seed)


def create_run(
    workspace: Path,
    config: StudioConfig,
    name: str | None = None,
    state: RunState = RunState.QUEUED,
    owner: str | None = None,
) -> Path:
    """Make the run folder with its config and a first status, before any training starts. A name that is too
    long is refused before the folder exists; a full disk leaves no folder behind (DiskFull says what to free)."""
    import shutil

    from core.files import disk_full_guard
    from core.runs import check_run_name, default_run_name

    name = check_run_name(name) if name is not None and name.strip() else None
    label = f"{config.model.preset}-{config.data.source.split(':')[-1]}"
    data_name = config.data.source + (f" ({Path(config.data.path).name})" if config.data.path else "")
    with disk_full_guard(workspace):
        run_dir = new_run_dir(workspace, label)
        try:
            atomic_write_bytes(run_dir / CONFIG_FILE, config.to_json().encode())
            update_status(
                run_dir,
                state=state,
                name=name or default_run_name(config),
                dataset=data_name,
                preset=config.model.preset,
                owner=owner,
                created=time.time(),
                pid=os.getpid(),  # the queue's owner until the trainer writes its own: a live server's queue stays live
                host=socket.gethostname(),
            )
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)  # no empty or half-written run folder
            raise
    return run_dir


def train_run(
    config: StudioConfig,
    workspace: Path,
    *,
    run_dir: Path | None = None,
    dataset: Dataset | None = None,
    uploads: dict | None = None,
    store=None,
    stop_event: threading.Event | None = None,
    extra_callbacks: list | None = None,
    steps_per_execution: int = STEPS_PER_EXECUTION,
    on_start: Callable[[Path], None] | None = None,
    parent_pid: int | None = None,
    resume: bool = False,
    init_from: Path | None = None,
) -> TrainResult:
    """Train one run into ``run_dir`` (created if None). Never raises for training faults: the result says.

    It first waits for the workspace's trainer lock (one training per workspace, whoever starts it); a stop
    asked for meanwhile ends it as stopped before it started. ``parent_pid``: stop when that process is gone.
    ``resume``: continue ``run_dir`` from its last epoch (``config.training.epochs`` is the new total, see
    core.resume). ``init_from``: start from that model file's weights (fine-tuning).
    """
    from core.callbacks import FolderProgress, MetricsStore

    stop_event = stop_event or threading.Event()
    run_dir = run_dir or create_run(workspace, config)
    # Progress also goes to the run folder (progress.json): pages of other processes follow the run from there.
    store = FolderProgress(store or MetricsStore(), run_dir)
    lock = TrainerLock(run_dir.parent, run_dir.name)  # the folder that holds the run: its workspace
    if not _wait_for_lock(lock, run_dir, store, stop_event):
        return _finish(run_dir, time.time(), RunState.STOPPED, 0, store, error=_("Stopped before it started."))
    try:
        return _train_locked(
            config,
            run_dir,
            dataset,
            uploads,
            store,
            stop_event,
            extra_callbacks,
            steps_per_execution,
            on_start,
            parent_pid,
            resume,
            init_from,
        )
    finally:
        lock.release()


def _wait_for_lock(lock: TrainerLock, run_dir: Path, store, stop_event) -> bool:
    """Queue behind whatever process trains in this workspace; the run stays "queued" meanwhile."""
    shown: list[str] = []

    def on_wait(holder) -> None:
        text = holder.describe() if holder else _("another run")
        if shown[-1:] != [text]:  # the progress line changes only when the holder does
            shown.append(text)
            store.set_progress(phase=Phase.WAITING, waiting_for=text)

    def should_stop() -> bool:
        return stop_event.is_set() or stop_requested(run_dir)

    if not lock.acquire(should_stop, on_wait):
        return False
    if should_stop():  # asked while it waited in another server's queue, where Stop could reach only the folder
        lock.release()
        return False
    return True


def _train_locked(
    config,
    run_dir,
    dataset,
    uploads,
    store,
    stop_event,
    extra_callbacks,
    steps_per_execution,
    on_start,
    parent_pid,
    resume=False,
    init_from=None,
) -> TrainResult:
    import keras

    from core.callbacks import BestCheckpoint, LatestCheckpoint, LiveMetrics, NanGuard, StopOnRequest
    from core.models import build_model, compile_model, uses_one_hot
    from core.resume import History, check_same_classes, load_source_weights, restore_checkpoint, run_history

    started = time.time()
    update_status(
        run_dir, state=RunState.RUNNING, started=started, pid=os.getpid(), host=socket.gethostname(), error=None
    )
    if on_start:
        on_start(run_dir)
    epochs_done = 0
    try:
        config.validate()
        seed = config.data.seed
        keras.utils.set_random_seed(seed)
        store.set_progress(phase=Phase.LOADING_DATA)
        dataset = dataset if dataset is not None else load_dataset(config.data, stream=True, **(uploads or {}))
        split = split_dataset(
            dataset, config.data.val_split, config.data.test_split, seed, config.data.use_official_test
        )
        if resume:
            check_same_classes(run_dir, dataset.class_names)
        _save_data_files(run_dir, dataset, split, seed)
        stats = channel_stats(stats_images(dataset, split.train, seed))
        store.set_progress(phase=Phase.BUILDING_MODEL)
        training = config.training
        steps_per_epoch = max(1, -(-len(split.train) // training.batch_size))
        # Small epochs still get about ten points per epoch on the live batch chart.
        steps_per_execution = max(1, min(steps_per_execution, steps_per_epoch // 10))
        strategy = choose_strategy()
        replicas = int(strategy.num_replicas_in_sync)
        if replicas > 1:
            # Keras 3 bug (keras-team/keras#19246): steps_per_execution > 1 under a multi-replica strategy fails
            # with "You must feed a value for placeholder tensor 'while/cond/Placeholder'"; one step per call works.
            steps_per_execution = 1
        with strategy.scope():
            built = build_model(config.model, dataset.image_shape, dataset.num_classes, stats.mean, stats.std, seed)
            model = built.model
            compile_model(model, config.model, training, steps_per_epoch, steps_per_execution)
            before = run_history(run_dir) if resume else History()
            if resume:
                restore_checkpoint(run_dir, model)
                _replay(store, before)  # the charts go on from where the run ended
            elif init_from is not None:
                built.notes += load_source_weights(Path(init_from), model, dataset.class_names)
        update_status(
            run_dir,
            params=int(model.count_params()),
            image_shape=list(dataset.image_shape),
            num_classes=dataset.num_classes,
            train_size=len(split.train),
            val_size=len(split.val),
            test_size=len(split.test),
            notes=built.notes,
            replicas=replicas,
            global_batch=training.batch_size,  # the batch-size setting is global: split across the replicas
            streamed=is_streamed(dataset) or None,
            **({"parent_run": Path(init_from).parent.name} if init_from is not None else {}),
        )
        one_hot = uses_one_hot(training)
        augmenter = build_augmenter(config.augment, seed)
        train_ds = _pipeline(dataset, split.train, training.batch_size, one_hot, augmenter, shuffle_seed=seed)
        val_ds = None
        if len(split.val):
            val_ds = _pipeline(dataset, split.val, training.batch_size, one_hot)
        monitor = training.monitor if val_ds is not None else training.monitor.removeprefix("val_")
        initial = before.epoch_count
        live = LiveMetrics(
            store, run_dir, steps_per_epoch, training.epochs, training.batch_size, initial, before.last_step
        )
        stopper, nan_guard = StopOnRequest(stop_event, run_dir, parent_pid), NanGuard()
        best = BestCheckpoint(run_dir, monitor, *before.best(monitor))
        callbacks = [
            live,
            nan_guard,
            stopper,
            best,
            LatestCheckpoint(run_dir),
            *_schedule_callbacks(training, monitor),
            *([keras.callbacks.TensorBoard(run_dir / TENSORBOARD_DIR)] if training.tensorboard else []),
            *(extra_callbacks or []),
        ]
        batch_split = batch_text(training.batch_size, replicas) if replicas > 1 else None
        store.set_progress(phase=Phase.TRAINING, batch=batch_split)
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=training.epochs,
            initial_epoch=initial,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )  # the pipeline shuffles, with the run's seed
        epochs_done = initial + len(history.history.get("loss", []))
        if nan_guard.message:
            return _finish(run_dir, started, RunState.FAILED, epochs_done, store, error=nan_guard.message)
        atomic_save_model(model, run_dir / FINAL_MODEL)
        if not (run_dir / BEST_MODEL).is_file():
            atomic_save_model(model, run_dir / BEST_MODEL)  # no monitored epoch ended: keep what there is
        elif not training.early_stopping or not training.restore_best:
            model = keras.saving.load_model(run_dir / BEST_MODEL, safe_mode=True)
        test_loss = test_accuracy = None
        if len(split.test):
            store.set_progress(phase=Phase.TESTING)
            test_ds = _pipeline(dataset, split.test, training.batch_size, one_hot)
            test_loss, test_accuracy = (float(v) for v in model.evaluate(test_ds, verbose=0))
        state = RunState.STOPPED if stopper.stopped else RunState.FINISHED
        return _finish(
            run_dir,
            started,
            state,
            epochs_done,
            store,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
            best_epoch=best.best_epoch,
            monitor=monitor,
        )
    except StudioError as err:
        return _finish(run_dir, started, RunState.FAILED, epochs_done, store, error=str(err))
    except Exception as err:  # out of memory or anything else: the run fails, the app stays up
        import tensorflow as tf

        cause = None
        if isinstance(err, tf.errors.ResourceExhaustedError):
            said = _("Out of memory while training: {cause}. Lower the batch size (now {batch}) or the image size.")
            cause = said.format(cause=root_cause(err), batch=config.training.batch_size)
        message = failure_message(run_dir, err, cause)  # the traceback goes to the run's error.log
        return _finish(run_dir, started, RunState.FAILED, epochs_done, store, error=message)


def _replay(store, history) -> None:
    """Put a continued run's earlier batch and epoch records into the live store, epoch by epoch."""
    batches = iter(history.batches)
    pending = next(batches, None)
    for epoch in history.epochs:
        while pending is not None and pending.get("epoch") == epoch.get("epoch"):
            store.add_batch(pending)
            pending = next(batches, None)
        store.add_epoch(epoch)


def _schedule_callbacks(training, monitor: str) -> list:
    import keras

    callbacks = []
    if training.early_stopping:
        callbacks.append(
            # min_delta as ReduceLROnPlateau's default: gains in the 5th decimal do not reset patience.
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=training.patience,
                min_delta=1e-4,
                restore_best_weights=training.restore_best,
                mode="max" if monitor.endswith("accuracy") else "min",
            )
        )
    if training.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                factor=training.plateau_factor,
                patience=training.plateau_patience,
                mode="max" if monitor.endswith("accuracy") else "min",
            )
        )
    return callbacks


def _save_data_files(run_dir: Path, dataset: Dataset, split, seed: int) -> None:
    """Class names, the split (indices, and file names for user images), the test images and a calibration set."""
    atomic_write_json(run_dir / CLASSES_FILE, dataset.class_names)
    record = {"seed": seed, "source": dataset.source, "image_shape": list(dataset.image_shape)}
    for part, idx in split.parts().items():
        record[part] = idx.tolist()
        if dataset.files is not None:
            record[f"{part}_files"] = [dataset.files[i] for i in idx]
    atomic_write_json(run_dir / SPLIT_FILE, record)
    # The held-out images themselves: evaluation and export need no access to the original upload.
    test_idx = split.test if len(split.test) else split.val
    _save_npz(run_dir / TEST_DATA_FILE, images=take(dataset, test_idx), labels=dataset.labels[test_idx])
    rng = np.random.default_rng(seed)
    calib = rng.choice(split.train, size=min(CALIBRATION_IMAGES, len(split.train)), replace=False)
    _save_npz(run_dir / CALIBRATION_FILE, images=take(dataset, calib), labels=dataset.labels[calib])


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _finish(
    run_dir: Path,
    started: float,
    state: RunState,
    epochs_done: int,
    store,
    error: str | None = None,
    test_loss: float | None = None,
    test_accuracy: float | None = None,
    **extra,
) -> TrainResult:
    _batches, epochs, _progress = store.snapshot()
    val = [e["val_accuracy"] for e in epochs if "val_accuracy" in e]
    speeds = [e["images_per_second"] for e in epochs if e.get("images_per_second")]
    seconds = time.time() - started
    result = TrainResult(
        str(run_dir),
        state,
        epochs_done or len(epochs),
        max(val) if val else None,
        test_accuracy,
        test_loss,
        float(np.median(speeds)) if speeds else None,
        seconds,
        error,
    )
    status = update_status(
        run_dir,
        state=state,
        finished=time.time(),
        duration=seconds,
        error=error,
        epochs_completed=result.epochs_completed,
        best_val_accuracy=result.best_val_accuracy,
        test_accuracy=test_accuracy,
        test_loss=test_loss,
        images_per_second=result.images_per_second,
        **extra,
    )
    result.replicas, result.global_batch, result.workers = status.replicas, status.global_batch, status.workers
    store.set_progress(phase=Phase.ended(state), error=error)
    return result
