"""Pages render through Streamlit's AppTest: one smoke test per page, plus per-page checks by widget key."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import class_zip, image_bytes, make_class_files

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TIMEOUT = 120


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture
def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def test_app_opens_on_the_dataset_page_with_the_default_dataset(app):
    app.run()
    assert not app.exception
    assert app.selectbox(key="data.source").value == "builtin:shapes"
    assert metric(app, "Classes") == "6" and metric(app, "Images") == "1,800"


@pytest.mark.parametrize(
    "source, classes, shape", [("builtin:shapes", "6", "32×32×3"), ("builtin:digits", "10", "28×28×1")]
)
def test_dataset_page_renders_each_builtin_dataset(app, source, classes, shape):
    app.run()
    app.selectbox(key="data.source").select(source).run()
    assert not app.exception
    assert metric(app, "Classes") == classes
    assert metric(app, "Image shape") == shape
    assert app.slider(key="data.image_size").value == int(shape.split("×")[0])


def test_widgets_write_the_config_and_survive_a_page_switch(app):
    app.run()
    app.slider(key="data.image_size").set_value(40).run()
    app.slider(key="data.val_split").set_value(0.2).run()
    assert metric(app, "Image shape") == "40×40×3"
    config = app.session_state["studio_config"]
    assert config.data.image_size == 40 and config.data.val_split == 0.2
    app.switch_page("app_pages/model.py").run()
    app.switch_page("app_pages/dataset.py").run()
    assert not app.exception
    assert app.slider(key="data.image_size").value == 40 and app.slider(key="data.val_split").value == 0.2


def test_a_change_followed_at_once_by_a_page_switch_reaches_the_config(app):
    app.run()
    app.selectbox(key="data.source").select("builtin:digits")
    app.switch_page("app_pages/train.py").run()  # the Dataset page does not run again
    assert app.session_state["studio_config"].data.source == "builtin:digits"
    assert any("builtin:digits" in m.value for m in app.markdown)


@pytest.mark.parametrize("end", [0, 1])
def test_any_valid_config_restores_into_the_widgets(app, end):
    from core.config import StudioConfig, field_info, field_paths, get_field, set_field

    config = StudioConfig()
    config.data.source = "builtin:digits"
    for path in field_paths(config):
        spec = field_info(path).spec
        if spec.low is not None and not spec.choices and not spec.low_open:
            set_field(config, path, type(get_field(config, path))((spec.low, spec.high)[end]))
    if end:
        config.data.test_split = 0.3  # both splits at 0.5 would leave nothing to train on
        config.model.filters = [256] * 6  # 1024 filters at every block builds a 30 M-parameter model: slow
    else:
        config.model.filters, config.model.dense_units = [1] * 6, [1] * 3  # 0 is a valid "unused" value only
    app.session_state["studio_config"] = config.validate()
    app.run()
    assert not app.exception
    assert app.slider(key="data.val_split").value == config.data.val_split
    app.switch_page("app_pages/model.py").run()
    assert not app.exception
    assert app.slider(key="training.epochs").value == config.training.epochs


@pytest.mark.slow
def test_augmentation_preview_appears_when_a_slider_moves(app):
    app.run()
    assert len(app.get("image")) == 1, "a new project's compact recipe augments: its preview shows"
    for path in ("augment.rotation", "augment.zoom", "augment.translation"):
        app.slider(key=path).set_value(0.0).run()
    assert not app.get("image")
    app.slider(key="augment.rotation").set_value(30.0).run()
    assert not app.exception and len(app.get("image")) == 1


def test_uploaded_zip_loads_lists_skipped_files_and_shows_split_errors(app):
    files = make_class_files({"cats": 2, "dogs": 8})
    files["cats/readme.txt"] = b"hello"
    app.session_state["zip_upload"] = class_zip(files)
    app.run()
    app.selectbox(key="data.source").select("zip").run()
    assert not app.exception
    assert metric(app, "Classes") == "2" and metric(app, "Skipped files") == "1"
    app.slider(key="data.val_split").set_value(0.4).run()
    app.slider(key="data.test_split").set_value(0.4).run()
    assert any("Class 'cats' has 2 images, too few" in e.value for e in app.error)


def test_per_class_images_source_asks_for_images_first(app):
    app.run()
    app.selectbox(key="data.source").select("images").run()
    assert not app.exception
    assert any("at least two classes" in i.value for i in app.info)
    app.session_state["class_images"] = {
        "up": [("a.png", image_bytes(seed=1)), ("b.png", image_bytes(seed=2))],
        "down": [("c.png", image_bytes(seed=3)), ("d.png", image_bytes(seed=4))],
    }
    app.run()
    assert not app.exception and metric(app, "Classes") == "2"


@pytest.mark.slow
def test_keras_dataset_offline_shows_where_to_put_the_archive(app, keras_home):
    app.run()
    app.selectbox(key="data.source").select("keras:mnist").run()
    assert not app.exception
    assert any(str(keras_home / "mnist.npz") in e.value for e in app.error)


PRESET_IDS = ["tutorial-cifar", "cifar-bn", "mnist", "small-64", "resnet-small", "mobilenetv2-transfer", "custom"]


@pytest.fixture
def model_page(app) -> AppTest:
    app.run()
    app.switch_page("app_pages/model.py").run()
    return app


@pytest.mark.parametrize("preset", PRESET_IDS)
def test_model_page_renders_each_preset(model_page, preset, keras_home):
    model_page.selectbox(key="model.preset").select(preset).run()
    assert not model_page.exception and not model_page.error
    assert int(metric(model_page, "Parameters").replace(",", "")) > 0
    assert model_page.session_state["studio_config"].model.preset == preset


def test_model_page_states_the_tutorial_count_and_follows_sliders(model_page):
    model_page.selectbox(key="model.preset").select("tutorial-cifar").run()  # a new project starts compact
    # The default Shapes set has 6 classes, not the recipe's 10: the page says what that changes.
    assert any("361,034 parameters" in i.value and "6 classes it has 358,982" in i.value for i in model_page.info)
    model_page.slider(key="model.conv_blocks").set_value(2).run()
    assert metric(model_page, "Parameters") != "358,982"
    model_page.number_input(key="model.filters.0").set_value(16).run()
    conv1 = next(r for r in model_page.dataframe[0].value.to_dict("records") if r["layer"] == "conv1")
    assert conv1["parameters"] == 3 * 3 * 3 * 16 + 16


def test_impossible_model_shows_its_message_and_keeps_the_last_valid_model(model_page):
    model_page.selectbox(key="model.preset").select("tutorial-cifar").run()
    model_page.slider(key="model.conv_blocks").set_value(5).run()
    assert any(
        "Block 4, conv 1: the 3×3 kernel is larger than the 2×2 feature map" in e.value for e in model_page.error
    )
    assert metric(model_page, "Parameters") == "358,982", "the last valid model stays shown"
    assert not model_page.exception
    model_page.number_input(key="model.filters.0").set_value(0).run()
    assert any("has 0 filters" in e.value for e in model_page.error)


def test_model_settings_survive_a_trip_to_the_dataset_page(model_page):
    model_page.selectbox(key="model.preset").select("cifar-bn").run()
    model_page.select_slider(key="training.batch_size").set_value(64).run()
    model_page.switch_page("app_pages/dataset.py").run()
    model_page.switch_page("app_pages/model.py").run()
    assert model_page.selectbox(key="model.preset").value == "cifar-bn"
    assert model_page.select_slider(key="training.batch_size").value == 64
    assert metric(model_page, "Non-trainable") == "512"


@pytest.mark.parametrize(
    "page",
    ["app_pages/model.py", "app_pages/train.py", "app_pages/evaluate.py", "app_pages/export.py", "app_pages/live.py"],
)
def test_other_pages_render(app, page):
    app.run()
    app.switch_page(page).run()
    assert not app.exception


# --- Train page --------------------------------------------------------------------------------------


@pytest.fixture
def train_page(app, tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(tmp_path / "runs"))
    app.run()
    app.slider(key="data.shapes_count").set_value(600).run()
    app.switch_page("app_pages/model.py").run()
    app.slider(key="training.epochs").set_value(3).run()
    app.switch_page("app_pages/train.py").run()
    return app


def test_training_job_survives_reruns_and_page_switches(train_page):
    from ui.jobs import manager

    assert not train_page.exception
    train_page.button(key="start_training").click().run()
    run_id = train_page.session_state["watch_run"]
    job = manager().get(run_id)
    assert job is not None and job.state in ("queued", "running")
    # Clicks and page switches rerun the script; the job goes on in its own thread.
    train_page.switch_page("app_pages/dataset.py").run()
    train_page.slider(key="data.val_split").set_value(0.2).run()
    train_page.switch_page("app_pages/train.py").run()
    assert not train_page.exception
    manager().wait(run_id)
    assert job.result.status == "finished" and job.result.epochs_completed == 3
    train_page.run()
    assert any("Run finished after 3 epochs" in s.value for s in train_page.success)
    assert train_page.session_state["studio_config"].data.val_split == 0.2, "the finished run kept its own config"
    assert job.config.data.val_split == 0.15


def test_the_sidebar_shows_a_running_job_on_every_page(train_page):
    from ui.jobs import manager

    train_page.session_state["studio_config"].training.epochs = 200
    train_page.button(key="start_training").click().run()
    run_id = train_page.session_state["watch_run"]
    try:
        for page in ("dataset", "model", "train", "evaluate", "export"):
            train_page.switch_page(f"app_pages/{page}.py").run()
            captions = [c.value for c in train_page.sidebar.caption]
            assert any(run_id in c and c.startswith("Training") for c in captions), (page, captions)
    finally:
        manager().stop(run_id)
        manager().wait(run_id)


def history(at: AppTest):
    return next(d.value for d in at.dataframe if "run" in d.value.columns)


def test_run_history_lists_renames_and_deletes_runs(train_page):
    from ui.jobs import manager

    train_page.button(key="start_training").click().run()
    manager().wait(train_page.session_state["watch_run"])
    train_page.run()
    table = history(train_page)
    assert list(table["status"]) == ["finished"] and table["parameters"][0] == "157,998"  # compact, 6 classes
    run_id = table["run"][0]
    train_page.text_input(key=f"rename_{run_id}").input("my first run").run()
    train_page.button(key="rename_run").click().run()
    assert history(train_page)["name"][0] == "my first run"
    assert not train_page.exception and len(train_page.get("plotly_chart")) >= 5
    train_page.button(key="delete_run").click().run()
    train_page.button(key="confirm_delete_run").click().run()
    assert not train_page.exception
    assert not (manager().workspace / run_id).exists()


# --- Evaluate page -----------------------------------------------------------------------------------


@pytest.fixture
def eval_workspace(trained_run, tmp_path, monkeypatch):
    import shutil

    workspace = tmp_path / "runs"
    shutil.copytree(trained_run.path, workspace / trained_run.run_id)
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(workspace))
    return workspace / trained_run.run_id


def test_evaluate_page_renders_a_finished_run(app, eval_workspace, trained_run):
    app.run()
    app.switch_page("app_pages/evaluate.py").run()
    assert not app.exception and not app.error
    assert metric(app, "Test accuracy") == f"{trained_run.status.test_accuracy:.2%}"
    assert metric(app, "Test images") == str(trained_run.status.test_size)
    assert not app.dataframe, "only the open tab (the confusion matrix) is computed"
    app.toggle(key="cm_normalized").set_value(True).run()
    app.selectbox(key="cell_true").select("3").run()
    app.selectbox(key="cell_pred").select("3").run()
    assert any("are of class **3** and predicted **3**" in c.value for c in app.caption)
    assert not app.exception and len(app.get("image")) >= 1
    app.session_state["eval_tab"] = "Per class"
    app.run()
    per_class = next(d.value for d in app.dataframe if "precision" in d.value.columns)
    assert list(per_class["class"])[-2:] == ["macro avg", "weighted avg"]
    for tab in ("Mistakes", "Grad-CAM", "Learning curves"):
        app.session_state["eval_tab"] = tab
        app.run()
        assert not app.exception and not app.error, tab


def test_evaluate_page_says_when_the_model_file_is_unreadable(app, eval_workspace):
    (eval_workspace / "best.keras").write_bytes(b"garbage")
    (eval_workspace / "final.keras").unlink()
    app.run()
    app.switch_page("app_pages/evaluate.py").run()
    assert not app.exception
    assert any("cannot be read" in e.value for e in app.error)


def test_evaluate_page_without_runs_points_to_training(app, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(tmp_path / "empty"))
    app.run()
    app.switch_page("app_pages/evaluate.py").run()
    assert not app.exception and any("train one on the Train page" in i.value for i in app.info)


# --- Export page -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_export_page_exports_measures_and_offers_downloads(app, eval_workspace):
    app.run()
    app.switch_page("app_pages/export.py").run()
    assert not app.exception and any("Nothing exported" in i.value for i in app.info)
    app.multiselect(key="export_formats").set_value(["keras", "tfjs", "tflite", "tflite-int8"]).run()
    app.button(key="export_button").click().run()
    assert not app.exception and not app.error
    table = next(t.value for t in app.table if "max |Δ probability|" in t.value.columns)
    assert list(table["status"]) == ["ok"] * 4 and "None" not in table.to_string()
    assert all(float(v) <= 1e-4 for v in table["max |Δ probability|"][1:3])
    assert any("TensorFlow.js graph model matches Keras to 0.0001" in s.value for s in app.success)
    assert any("int8 file at most 30% of float32" in s.value for s in app.success)
    assert (eval_workspace / "exports" / "tfjs_model.zip").is_file()
    labels = {b.label for b in app.get("download_button")}
    assert {"TensorFlow.js graph model", "TFLite float32", "labels.txt", "metadata.json"} <= labels


def test_export_page_without_runs_points_to_training(app, tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_STUDIO_WORKSPACE", str(tmp_path / "empty"))
    app.run()
    app.switch_page("app_pages/export.py").run()
    assert not app.exception and any("export it here" in i.value for i in app.info)
