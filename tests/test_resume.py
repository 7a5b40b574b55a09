"""Resume and fine-tune: a run continues from its last epoch with its optimizer state, epoch count and history;
a new run starts from another run's weights, with a fresh classifier head when the classes differ."""

import json
import shutil
from pathlib import Path

import keras
import pytest

from core.__main__ import main
from core.config import StudioConfig, apply_recipe
from core.errors import StudioError
from core.models import build_model
from core.resume import load_source_weights, resume_config
from core.runs import read_metrics
from core.status import RunState, read_status
from core.training import train_run

SIZE = 12  # tiny images: two compact stages


def tiny(source: str = "builtin:digits", epochs: int = 1) -> StudioConfig:
    config = apply_recipe(StudioConfig(), "compact")
    config.data.source, config.data.image_size, config.data.color_mode = source, SIZE, "grayscale"
    config.data.shapes_count = 240
    config.training.epochs, config.training.batch_size = epochs, 64
    return config


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("resume")
    result = train_run(tiny(), workspace)
    assert result.status == RunState.FINISHED and result.epochs_completed == 1
    return workspace, Path(result.run_dir)


def optimizer_steps(run_dir) -> int:
    return int(keras.saving.load_model(f"{run_dir}/final.keras").optimizer.iterations.numpy())


@pytest.mark.slow
def test_a_continued_run_goes_on_with_its_epochs_history_and_optimizer_state(first_run, tmp_path):
    workspace, run_dir = first_run
    copy = workspace / "continued"

    shutil.copytree(run_dir, copy)
    batches_before, epochs_before = read_metrics(copy)
    steps_before = optimizer_steps(copy)
    assert steps_before == batches_before[-1]["step"] > 0
    config = resume_config(copy, 2)
    assert config.training.epochs == 3
    result = train_run(config, workspace, run_dir=copy, resume=True)
    assert result.status == RunState.FINISHED and result.epochs_completed == 3
    batches, epochs = read_metrics(copy)
    assert [e["epoch"] for e in epochs] == [1, 2, 3] and epochs[0] == epochs_before[0]
    steps = [b["step"] for b in batches]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), "batch steps go on, never restart"
    assert optimizer_steps(copy) == 3 * steps_before, "the optimizer's step count went on from the checkpoint"
    status = read_status(copy)
    assert status.epochs_completed == 3 and status.best_val_accuracy == max(e["val_accuracy"] for e in epochs)
    # the command line: one more epoch on the same run
    assert main(["resume", "--run", str(copy), "--epochs", "1", "--quiet"]) == 0
    assert [e["epoch"] for e in read_metrics(copy)[1]] == [1, 2, 3, 4]


def test_a_run_cannot_continue_past_the_epoch_limit_or_without_a_checkpoint(first_run, tmp_path):
    _, run_dir = first_run
    with pytest.raises(StudioError, match="over the limit of 500: give at most 499 more"):
        resume_config(run_dir, 500)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "status.json").write_text(json.dumps({"status": "stopped", "epochs_completed": 0}))
    with pytest.raises(StudioError, match="no checkpoint to continue from"):
        resume_config(tmp_path / "empty", 1)
    assert main(["resume", "--run", str(tmp_path / "empty"), "--epochs", "1"]) == 2


@pytest.mark.slow
def test_a_fine_tuned_run_on_other_classes_trains_with_a_new_head(first_run, capsys):
    workspace, run_dir = first_run
    code = main(
        ["train", "--init-from", str(run_dir), "--data", "builtin:shapes", "--workspace", str(workspace), "--quiet"]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs_completed"] == 1
    status = read_status(workspace / result["run_dir"].split("/")[-1])
    assert status.parent_run == run_dir.name
    assert any("classifier head was re-initialised" in note and "this dataset 6" in note for note in status.notes)
    assert status.num_classes == 6


def test_weights_of_another_architecture_are_refused_by_layer(first_run):
    _, run_dir = first_run
    config = tiny().model
    config.filters = [8, 8, 8, 8, 8, 8]
    model = build_model(config, (SIZE, SIZE, 1), 10).model
    with pytest.raises(StudioError, match="does not have this architecture: layer 'stage1_1_conv'"):
        load_source_weights(run_dir / "best.keras", model, [str(i) for i in range(10)])
    same = build_model(tiny().model, (SIZE, SIZE, 1), 10).model
    notes = load_source_weights(run_dir / "best.keras", same, [str(i) for i in range(10)])
    source = keras.saving.load_model(f"{run_dir}/best.keras")
    assert all((a == b).all() for a, b in zip(same.get_weights(), source.get_weights(), strict=True))
    assert notes == [f"Started from the weights of run {run_dir.name} (best.keras)."]


@pytest.mark.slow
def test_the_train_page_continues_a_run_and_fine_tunes_it_on_other_classes(trained_run, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core.jobs import get_manager

    workspace = tmp_path / "runs"
    shutil.copytree(trained_run.path, workspace / trained_run.run_id)
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(workspace))
    app = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "streamlit_app.py"), default_timeout=120)
    app.run()
    app.session_state["studio_config"].data.shapes_count = 120  # the Dataset page's data: 6 shapes classes
    app.switch_page("app_pages/train.py").run()
    assert not app.exception
    assert any("other classes (6) than the run (10)" in info.value for info in app.info)
    app.number_input(key=f"more_epochs_{trained_run.run_id}").set_value(1).run()
    app.button(key="continue_run").click().run()
    manager = get_manager(workspace)
    job = manager.wait(trained_run.run_id, timeout=300)
    assert job.result.status == RunState.FINISHED and job.result.epochs_completed == 3, job.result.error
    assert [e["epoch"] for e in read_metrics(workspace / trained_run.run_id)[1]] == [1, 2, 3]
    assert len(job.store.snapshot()[1]) == 3, "the live charts hold the earlier epochs too"
    app.run()
    app.button(key="fine_tune_run").click().run()
    tuned = manager.wait(app.session_state["watch_run"], timeout=300)
    assert tuned.result.status == RunState.FINISHED, tuned.result.error
    status = read_status(tuned.run_dir)
    assert status.parent_run == trained_run.run_id and status.num_classes == 6
    app.run()
    assert any("classifier head was re-initialised" in info.value for info in app.info)
