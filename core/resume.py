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
from core.i18n import N_, _, ngettext, number
from core.runs import FINAL_MODEL, load_run, read_config_checked, read_metrics

HEAD_LAYER = "predictions"  # the classifier: the one layer whose shape follows the class count
# Words every note about a re-initialised classifier head contains (the page finds the note by them, in English
# and in the language it is shown in).
HEAD_NOTE_WORDS = N_("classifier head")
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
        said = _("Run '{name}' is {state}: wait until it ends (or stop it) to continue it.")
        raise StudioError(said.format(name=run.name, state=run.state.label))
    if not (run_dir / FINAL_MODEL).is_file():
        said = _(
            "Run '{name}' has no checkpoint to continue from ({file}): it ended before its first epoch. "
            "Train it again instead."
        )
        raise StudioError(said.format(name=run.name, file=FINAL_MODEL))
    if more_epochs < 1:
        raise StudioError(_("More epochs is {count}: give 1 or more.").format(count=more_epochs))
    data, problem = read_config_checked(run_dir)
    if problem:
        raise StudioError(_("Run '{name}' cannot be continued: {problem}.").format(name=run.name, problem=problem))
    config = StudioConfig.from_dict(data)
    done = run_history(run_dir).epoch_count
    total = done + more_epochs
    if total > MAX_EPOCHS:
        said = ngettext(
            "Run '{name}' has trained {done} epoch; {more} more make {total}, over the limit of {limit}: give at "
            "most {left} more.",
            "Run '{name}' has trained {done} epochs; {more} more make {total}, over the limit of {limit}: give at "
            "most {left} more.",
            done,
        )
        raise StudioError(
            said.format(
                name=run.name,
                done=number(done),
                more=number(more_epochs),
                total=number(total),
                limit=number(MAX_EPOCHS),
                left=number(MAX_EPOCHS - done),
            )
        )
    config.training.epochs = total
    return config


def source_model_path(run_dir: Path) -> Path:
    """The weights a fine-tuned run starts from: the source run's best checkpoint, else its last one."""
    run = load_run(run_dir)
    if run.state.live:
        said = _("Run '{name}' is {state}: wait until it ends to start a new run from its weights.")
        raise StudioError(said.format(name=run.name, state=run.state.label))
    return run.model_path()


def fine_tune_config(run_dir: Path, data: DataConfig | None = None) -> StudioConfig:
    """The source run's config, on ``data`` when given: a fine-tuned run keeps the architecture and the input
    shape it trained with (image size and colour are pinned to what the run saw; other data fields can change)."""
    values, problem = read_config_checked(run_dir)
    if problem:
        raise StudioError(_("Run '{run}' cannot seed a new run: {problem}.").format(run=run_dir.name, problem=problem))
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
        said = _("The checkpoint of run '{run}' does not fit its config ({error}).")
        raise StudioError(said.format(run=run_dir.name, error=err)) from None
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
            listed = ", ".join(class_names[:6]) + ("…" if len(class_names) > 6 else "")
            if source_classes:
                said = _(
                    "The classifier head was re-initialised: run {run} has {before} classes, this dataset {count} "
                    "({names}). The other layers start from its weights."
                )
            else:
                said = _(
                    "The classifier head was re-initialised: run {run} has other classes, this dataset {count} "
                    "({names}). The other layers start from its weights."
                )
            before = number(len(source_classes or []))
            notes.append(
                said.format(run=source.parent.name, before=before, count=number(len(class_names)), names=listed)
            )
        else:
            if other is None:
                said = _(
                    "Run {run}'s model does not have this architecture: layer '{layer}' {shapes} has no such layer "
                    "there. Fine-tune with the source run's model settings (and image size and colour), or train "
                    "from scratch."
                )
            else:
                said = _(
                    "Run {run}'s model does not have this architecture: layer '{layer}' {shapes} has shapes {found} "
                    "there. Fine-tune with the source run's model settings (and image size and colour), or train "
                    "from scratch."
                )
            found = [tuple(w.shape) for w in other.weights] if other is not None else None
            raise StudioError(said.format(run=source.parent.name, layer=layer.name, shapes=shapes, found=found))
    if not notes and source_classes is not None and source_classes != class_names:
        said = _("Same number of classes as run {run}, but other names: the head keeps its weights, class by position.")
        notes.append(said.format(run=source.parent.name))
    notes.append(_("Started from the weights of run {run} ({file}).").format(run=source.parent.name, file=source.name))
    return notes


def check_same_classes(run_dir: Path, class_names: list[str]) -> None:
    """A continued run trains on the data it started with: the same classes, in the same order."""
    from core.runs import CLASSES_FILE

    path = run_dir / CLASSES_FILE
    before = json.loads(path.read_text()) if path.is_file() else None
    if before is not None and before != class_names:
        said = _(
            "Run {run} trained on the classes {before}; this dataset has {names}. Continue it on its own dataset, "
            "or start a new run from its weights."
        )
        raise StudioError(
            said.format(run=run_dir.name, before=", ".join(map(str, before[:6])), names=", ".join(class_names[:6]))
        )
