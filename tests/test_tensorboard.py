"""TensorBoard logs: a run with training.tensorboard on writes event files with its epoch scalars and graph."""

from pathlib import Path

from core.config import StudioConfig, apply_recipe
from core.status import RunState
from core.training import TENSORBOARD_DIR, train_run


def tags(folder: Path) -> set[str]:
    import tensorflow as tf

    found = set()
    for path in folder.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            found |= {value.tag for value in event.summary.value}
    return found


def test_a_run_writes_tensorboard_event_files_when_asked(tmp_path):
    config = apply_recipe(StudioConfig(), "compact")
    config.data.source, config.data.image_size = "builtin:digits", 8
    config.training.epochs, config.training.tensorboard = 1, True
    result = train_run(config, tmp_path)
    assert result.status == RunState.FINISHED, result.error
    logs = Path(result.run_dir) / TENSORBOARD_DIR
    assert {"epoch_loss", "epoch_accuracy", "keras"} <= tags(logs / "train")  # "keras": the model graph
    assert {"epoch_loss", "epoch_accuracy"} <= tags(logs / "validation")
