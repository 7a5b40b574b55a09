"""Training on several machines: ``TF_CONFIG`` on each worker, the same ``python -m core train`` command on each.

How it runs, and why:

- Keras 3's ``model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585: "Attempt to convert
  a value (PerReplica…) with an unsupported type"), while tf_keras (Keras 2, pinned in requirements.txt) trains.
  So a multi-worker process maps ``keras`` to ``tf_keras`` before anything imports Keras, and builds, compiles and
  trains the same model from the same config with the same core code (:func:`use_tf_keras`).
- TensorFlow requires the strategy before any other TensorFlow work: :func:`start` creates it first.
- The strategy's constructor blocks, holding the interpreter, until every worker has joined: a missing worker
  would hang it for good. So the workers first meet over plain TCP on their own cluster ports
  (:func:`wait_for_peers`), within ``CNN_STUDIO_WORKER_TIMEOUT`` seconds; a worker not reached by then is named
  in the error (exit 2, before any run folder exists).
- Only the chief (worker 0) writes the run folder in its workspace; the others train into a temporary folder
  they delete at the end (the pattern of TensorFlow's multi-worker Keras guide: every worker saves, since saving
  reads variables collectively). At the end the chief turns its models into Keras 3 ``.keras`` files
  (:func:`to_keras3`: the same config built by Keras 3, the trained weights copied over and checked by
  predicting the test images with both), so evaluation and exports load them as any other run's.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import StudioError
from core.i18n import _

TIMEOUT_ENV = "CNN_STUDIO_WORKER_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 120.0
RETRY_SECONDS = 0.5
# The converted Keras 3 model must predict what the trained tf_keras model predicts (softmax or logits).
CONVERSION_ATOL = 1e-4


@dataclass(frozen=True)
class Cluster:
    """This process's place in ``TF_CONFIG``."""

    workers: list[str]
    index: int

    @property
    def chief(self) -> bool:
        return self.index == 0

    @property
    def address(self) -> str:
        return self.workers[self.index]

    def peers(self) -> list[tuple[int, str]]:
        return [(i, address) for i, address in enumerate(self.workers) if i != self.index]


def cluster_from_env() -> Cluster | None:
    """The cluster ``TF_CONFIG`` describes, or None when it is unset; a value that cannot work is a StudioError."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    example = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    try:
        data = json.loads(text)
        workers = data["cluster"]["worker"]
        task = data["task"]
        index = task["index"]
    except (ValueError, KeyError, TypeError):
        said = _("TF_CONFIG is not a worker cluster: {value}. Set it as {example} with this machine's index.")
        raise StudioError(said.format(value=repr(text[:120]), example=example)) from None
    if set(data["cluster"]) != {"worker"} or task.get("type") != "worker":
        said = _(
            "TF_CONFIG: only a cluster of workers is supported (no chief, ps or evaluator). Set it as {example} "
            "with this machine's index."
        )
        raise StudioError(said.format(example=example))
    if not isinstance(workers, list) or not all(isinstance(w, str) and _port(w) for w in workers):
        said = _("TF_CONFIG: cluster.worker must be a list of host:port addresses, not {value}.")
        raise StudioError(said.format(value=repr(workers)))
    if not isinstance(index, int) or not 0 <= index < len(workers):
        said = _("TF_CONFIG: task.index {index} is not one of the {count} workers (0 to {last}).")
        raise StudioError(said.format(index=repr(index), count=len(workers), last=len(workers) - 1))
    return Cluster(workers, index)


def _port(address: str) -> int | None:
    host, _colon, port = address.rpartition(":")
    return int(port) if host and port.isdigit() and 0 < int(port) < 65536 else None


def timeout_setting() -> float:
    """Seconds to wait for the other workers: CNN_STUDIO_WORKER_TIMEOUT, else DEFAULT_TIMEOUT_SECONDS."""
    from core.worker import _env_number

    return _env_number(TIMEOUT_ENV, DEFAULT_TIMEOUT_SECONDS, 1.0)


def wait_for_peers(cluster: Cluster, timeout: float) -> None:
    """Listen on this worker's own port and connect to every other worker's, until all answered or ``timeout``
    seconds passed (then a StudioError naming the workers not reached). The listener closes before TensorFlow
    binds the same port; a peer still trying then reaches TensorFlow's server, which answers as well."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", _port(cluster.address)))
    except OSError as err:
        listener.close()
        said = _(
            "This worker's address {address} (TF_CONFIG task {index}) cannot be used: {reason}. Free that port or "
            "give another one in TF_CONFIG on every worker."
        )
        raise StudioError(said.format(address=cluster.address, index=cluster.index, reason=err.strerror)) from None
    listener.listen(16)
    listener.settimeout(RETRY_SECONDS)
    done = threading.Event()

    def answer() -> None:
        while not done.is_set():
            try:
                connection, _address = listener.accept()
                connection.close()
            except OSError:
                continue

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    missing = cluster.peers()
    try:
        while missing:
            missing = [(i, address) for i, address in missing if not _answers(address)]
            if missing and time.monotonic() > deadline:
                names = ", ".join(
                    _("worker {index} at {address}").format(index=i, address=address) for i, address in missing
                )
                said = _(
                    "{workers} did not answer within {seconds} s ({variable}). Start the same command there with "
                    "its TF_CONFIG task index, or check the address, the port and the firewall."
                )
                raise StudioError(said.format(workers=names, seconds=f"{timeout:g}", variable=TIMEOUT_ENV))
            if missing:
                time.sleep(RETRY_SECONDS)
    finally:
        done.set()
        thread.join()
        listener.close()


def _answers(address: str) -> bool:
    host, _colon, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=RETRY_SECONDS):
            return True
    except OSError:
        return False


def use_tf_keras() -> None:
    """Make ``import keras`` give tf_keras in this process (see the module's docstring for why)."""
    if "keras" in sys.modules and sys.modules["keras"].__name__ != "tf_keras":
        raise RuntimeError("Keras 3 was imported before the multi-worker set-up")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # tf.keras is tf_keras too
    import tf_keras

    sys.modules["keras"] = tf_keras


def use_keras3() -> None:
    """Undo :func:`use_tf_keras`: the next ``import keras`` loads Keras 3."""
    for name in [n for n in sys.modules if n == "keras" or n.startswith("keras.")]:
        if sys.modules[name].__name__.startswith("tf_keras"):
            del sys.modules[name]
    os.environ.pop("TF_USE_LEGACY_KERAS", None)


def start(cluster: Cluster):
    """Meet the other workers, then create the strategy ahead of any other TensorFlow work (TensorFlow requires
    it) and keep it for :func:`core.devices.choose_strategy`. Returns the strategy."""
    wait_for_peers(cluster, timeout_setting())
    use_tf_keras()
    import tensorflow as tf

    from core.devices import set_early_strategy

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    set_early_strategy(strategy)
    return strategy


def to_keras3(run_dir: Path, config, image_shape, num_classes: int, mean, std, model_files: list[str]) -> None:
    """Rewrite each tf_keras ``.keras`` file of the run as a Keras 3 one of the same model: the config built by
    Keras 3, the weights copied over, the predictions of both on the run's test images compared."""
    import tf_keras

    from core.files import atomic_save_model
    from core.runs import TEST_DATA_FILE

    with np.load(run_dir / TEST_DATA_FILE) as data:
        probe = data["images"][:64]
    trained = {}
    for name in model_files:
        if (run_dir / name).is_file():
            model = tf_keras.saving.load_model(run_dir / name, safe_mode=True)
            trained[name] = (model.get_weights(), model.predict(probe, verbose=0))
    use_keras3()
    from core.models import build_model

    for name, (weights, expected) in trained.items():
        model = build_model(config.model, image_shape, num_classes, mean, std).model
        model.set_weights(weights)
        difference = float(np.max(np.abs(model.predict(probe, verbose=0) - expected)))
        if difference > CONVERSION_ATOL:
            said = _(
                "The model trained on several workers does not carry over to Keras 3 ({file}: predictions differ by "
                "{difference}). Train this config on one machine."
            )
            raise StudioError(said.format(file=name, difference=f"{difference:.2g}"))
        atomic_save_model(model, run_dir / name)


def train_in_cluster(cluster: Cluster, config, workspace: Path, dataset, name: str | None, extra_callbacks: list):
    """Train this worker's part of a multi-worker run: the chief into a run folder of ``workspace`` (recording
    the worker count, its models turned into Keras 3 at the end), the others into a temporary folder they
    delete. Returns the TrainResult (``run_dir`` None on the other workers: nothing of theirs is kept)."""
    import getpass
    import shutil
    import tempfile

    from core.data import channel_stats, split_dataset
    from core.failures import failure_message
    from core.runs import BEST_MODEL, FINAL_MODEL
    from core.status import RunState, update_status
    from core.streaming import stats_images
    from core.training import create_run, train_run

    own = workspace if cluster.chief else Path(tempfile.mkdtemp(prefix="cnn-studio-worker-"))
    try:
        run_dir = create_run(own, config, name, owner=getpass.getuser())
        update_status(run_dir, workers=len(cluster.workers))
        result = train_run(config, own, run_dir=run_dir, dataset=dataset, extra_callbacks=extra_callbacks)
        if not cluster.chief:
            result.run_dir = None
        elif result.status.ended_well:
            data = config.data
            split = split_dataset(dataset, data.val_split, data.test_split, data.seed, data.use_official_test)
            stats = channel_stats(stats_images(dataset, split.train, data.seed))
            try:
                to_keras3(
                    run_dir,
                    config,
                    dataset.image_shape,
                    dataset.num_classes,
                    stats.mean,
                    stats.std,
                    [BEST_MODEL, FINAL_MODEL],
                )
            except Exception as err:  # the run's models would not load in the app: the run failed
                result.error = failure_message(run_dir, err, str(err) if isinstance(err, StudioError) else None)
                result.status = RunState.FAILED
                update_status(run_dir, state=RunState.FAILED, error=result.error)
    finally:
        if not cluster.chief:
            shutil.rmtree(own, ignore_errors=True)
    _all_done()
    return result


def _all_done() -> None:
    """Wait for every worker to get here (the chief after writing its models) before exiting: a worker that
    exits first makes the others' TensorFlow log "The tasks have crashed". Bounded by the worker timeout."""
    import tensorflow as tf

    from core.devices import choose_strategy

    strategy = choose_strategy()
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout_setting())
    try:
        one = strategy.run(tf.function(lambda: tf.constant(1.0)))
        strategy.extended.reduce_to(tf.distribute.ReduceOp.SUM, one, one, options=options)
    except Exception:  # a worker already gone: the run itself is complete
        pass
