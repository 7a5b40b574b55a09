"""Continue a run for more epochs from its checkpoint (with the optimizer's state), or start a new run from
another run's weights (fine-tuning), on the same dataset or another one.

A run keeps its latest weights and optimizer state in ``final.keras`` after every epoch (see
:class:`core.callbacks.LatestCheckpoint`), so a stopped, interrupted or finished run can go on where it ended:
same folder, same split, its epoch count and metrics.jsonl continuing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from core.config import FIELDS, DataConfig, StudioConfig
from core.errors import StudioError
from core.runs import FINAL_MODEL, load_run, read_config_checked, read_metrics

HEAD_LAYER = "predictions"  # the classifier: the one layer whose shape follows the class count
MAX_EPOCHS = int(FIELDS["training.epochs"].spec.high)  # a resumed run's total epochs stay within it


@dataclass
class History:
    """What a run trained before it is continued: its epoch and batch records, and its last step."""

    epochs: list[dict] = field(default_factory=list)
    batches: list[dict] = field(default_factory=list)

    @property
    def epoch_count(self) -> int:
        return len(self.epochs)

    @property
    def last_step(self) -> int:
        return int(self.batches[-1]["step"]) if self.batches else 0

    def best(self, monitor: str) -> tuple[float | None, int | None]:
        """The best value of ``monitor`` so far and its epoch (1-based), or (None, None)."""
        values = [
            (float(e[monitor]), int(e["epoch"]))
            for e in self.epochs
            if isinstance(e.get(monitor), (int, float)) and math.isfinite(e[monitor])
        ]
        if not values:
            return None, None
        pick = max if monitor.endswith("accuracy") else min
        return pick(values, key=lambda v: v[0])


def run_history(run_dir: Path) -> History:
    batches, epochs = read_metrics(run_dir)
    return History(epochs, batches)


def resume_config(run_dir: Path, more_epochs: int) -> StudioConfig:
    """The config to continue ``run_dir`` with: its own, with ``more_epochs`` added to the epochs it trained.

    Raises StudioError (bad input) for a run that trains now, has no checkpoint, or would pass the epoch limit.
    """
    run = load_run(run_dir)
    if run.state.live:
        raise StudioError(f"Run '{run.name}' is {run.state}: wait until it ends (or stop it) to continue it.")
    if not (run_dir / FINAL_MODEL).is_file():
        raise StudioError(
            f"Run '{run.name}' has no checkpoint to continue from ({FINAL_MODEL}): it ended before its first epoch. "
            "Train it again instead."
        )
    if more_epochs < 1:
        raise StudioError(f"More epochs is {more_epochs}: give 1 or more.")
    data, problem = read_config_checked(run_dir)
    if problem:
        raise StudioError(f"Run '{run.name}' cannot be continued: {problem}.")
    config = StudioConfig.from_dict(data)
    done = run_history(run_dir).epoch_count
    total = done + more_epochs
    if total > MAX_EPOCHS:
        raise StudioError(
            f"Run '{run.name}' has trained {done} epochs; {more_epochs} more make {total}, over the limit of "
            f"{MAX_EPOCHS}: give at most {MAX_EPOCHS - done} more."
        )
    config.training.epochs = total
    return config


def source_model_path(run_dir: Path) -> Path:
    """The weights a fine-tuned run starts from: the source run's best checkpoint, else its last one."""
    run = load_run(run_dir)
    if run.state.live:
        raise StudioError(f"Run '{run.name}' is {run.state}: wait until it ends to start a new run from its weights.")
    return run.model_path()


def fine_tune_config(run_dir: Path, data: DataConfig | None = None) -> StudioConfig:
    """The source run's config, on ``data`` when given: a fine-tuned run keeps the architecture and the input
    shape it trained with (image size and colour are pinned to what the run saw; other data fields can change)."""
    values, problem = read_config_checked(run_dir)
    if problem:
        raise StudioError(f"Run '{run_dir.name}' cannot seed a new run: {problem}.")
    config = StudioConfig.from_dict(values)
    if data is not None:
        config.data = DataConfig(**vars(data))
    shape = load_run(run_dir).status.image_shape
    if shape and len(shape) == 3:
        config.data.image_size = int(shape[0])
        config.data.color_mode = "grayscale" if shape[2] == 1 else "rgb"
    return config


def restore_checkpoint(run_dir: Path, model) -> None:
    """Load ``run_dir``'s latest weights and optimizer state into ``model`` (built and compiled from the same
    config, with the new epoch count's schedule): the optimizer's step count and moments go on from there."""
    import keras

    saved = keras.saving.load_model(run_dir / FINAL_MODEL, safe_mode=True)
    try:
        model.set_weights(saved.get_weights())
    except ValueError as err:
        raise StudioError(f"The checkpoint of run '{run_dir.name}' does not fit its config ({err}).") from None
    old = getattr(saved, "optimizer", None)
    new = model.optimizer
    new.build(model.trainable_variables)
    if old is not None and old.built and len(old.variables) == len(new.variables):
        for target, value in zip(new.variables, old.variables, strict=True):
            target.assign(value)


def load_source_weights(source: Path, model, class_names: list[str]) -> list[str]:
    """Copy a trained model's weights into ``model`` layer by layer (same names and shapes); the classifier
    head is re-initialised when the classes differ. Returns notes for the run; raises StudioError when the
    architectures differ."""
    import keras

    saved = keras.saving.load_model(source, safe_mode=True, compile=False)
    names_file = source.parent / "class_names.json"
    source_classes = json.loads(names_file.read_text()) if names_file.is_file() else None
    saved_layers = {layer.name: layer for layer in saved.layers}
    notes: list[str] = []
    for layer in model.layers:
        if not layer.weights:
            continue
        other = saved_layers.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if other is not None and [tuple(w.shape) for w in other.weights] == shapes:
            layer.set_weights(other.get_weights())
        elif layer.name == HEAD_LAYER:
            before = f"{len(source_classes)} classes" if source_classes else "other classes"
            notes.append(
                f"The classifier head was re-initialised: run {source.parent.name} has {before}, this dataset "
                f"{len(class_names)} ({', '.join(class_names[:6])}{'…' if len(class_names) > 6 else ''}). The "
                "other layers start from its weights."
            )
        else:
            found = "no such layer" if other is None else f"shapes {[tuple(w.shape) for w in other.weights]}"
            raise StudioError(
                f"Run {source.parent.name}'s model does not have this architecture: layer '{layer.name}' "
                f"{shapes} has {found} there. Fine-tune with the source run's model settings (and image size and "
                "colour), or train from scratch."
            )
    if not notes and source_classes is not None and source_classes != class_names:
        notes.append(
            f"Same number of classes as run {source.parent.name}, but other names: the head keeps its weights, "
            "class by position."
        )
    notes.append(f"Started from the weights of run {source.parent.name} ({source.name}).")
    return notes


def check_same_classes(run_dir: Path, class_names: list[str]) -> None:
    """A continued run trains on the data it started with: the same classes, in the same order."""
    from core.runs import CLASSES_FILE

    path = run_dir / CLASSES_FILE
    before = json.loads(path.read_text()) if path.is_file() else None
    if before is not None and before != class_names:
        raise StudioError(
            f"Run {run_dir.name} trained on the classes {', '.join(map(str, before[:6]))}; this dataset has "
            f"{', '.join(class_names[:6])}. Continue it on its own dataset, or start a new run from its weights."
        )
