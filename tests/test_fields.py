"""The field table is the one description of every config field: checks, widgets, CLI flags and README."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.__main__ import build_parser, config_flags, config_from_args
from core.config import FIELDS, StudioConfig, apply_preset, default_config, field_paths, get_field, settings_table
from core.errors import StudioError
from core.fields import number_text

ROOT = Path(__file__).resolve().parent.parent
NUMERIC = [info for info in FIELDS.values() if info.spec.low is not None and not info.spec.choices]


def test_every_config_field_is_in_the_table_with_a_label_and_help():
    leaves = {p.rsplit(".", 1)[0] if p.rsplit(".", 1)[1].isdigit() else p for p in field_paths(StudioConfig())}
    assert leaves == set(FIELDS)
    for info in FIELDS.values():
        assert info.spec.label and info.spec.help, info.path
        assert (info.spec.low is None) == (info.spec.high is None), info.path
        if info.spec.choices:
            assert info.default in info.spec.choices, info.path
    assert StudioConfig().validate() == StudioConfig(), "the declared defaults are valid"


@pytest.mark.parametrize("info", NUMERIC, ids=lambda info: info.path)
def test_validate_names_field_value_and_range_from_the_table(info):
    config = StudioConfig()
    too_big = info.spec.high + (1 if (info.item_kind or info.kind) is int else 0.5)
    value = [too_big] * len(info.default) if info.kind is list else too_big
    section, name = info.path.split(".")
    setattr(getattr(config, section), name, value)
    where = f"{info.path}.0" if info.kind is list else info.path
    with pytest.raises(StudioError, match=re.escape(f"{where} is {too_big}: pick")) as caught:
        config.validate()
    assert number_text(info.spec.high) in str(caught.value)


@pytest.mark.parametrize("info", [i for i in FIELDS.values() if i.spec.choices], ids=lambda info: info.path)
def test_validate_lists_the_choices_from_the_table(info):
    config = StudioConfig()
    section, name = info.path.split(".")
    setattr(getattr(config, section), name, "nonsense" if info.kind is str else 0.123)
    with pytest.raises(StudioError, match=re.escape(f"{info.path} is")) as caught:
        config.validate()
    assert all(str(choice) in str(caught.value) for choice in info.spec.choices)


def _every_widget() -> None:
    """A page that draws the widget of every config field (list items included) from the table."""
    import streamlit as st

    from core.config import StudioConfig, field_paths
    from ui.state import config, field_widget

    if "started" not in st.session_state:
        st.session_state["started"] = True
        config().data.image_size = 32  # 0 means "the source's default": the Dataset page puts that size in first
    for path in field_paths(StudioConfig()):
        field_widget(path)


def test_every_widget_is_built_from_the_field_table():
    app = AppTest.from_function(_every_widget, default_timeout=60)
    app.run()
    assert not app.exception
    widgets = {}
    for kind in ("checkbox", "radio", "selectbox", "select_slider", "slider", "number_input", "text_input"):
        for widget in getattr(app, kind):
            widgets[widget.key] = (kind, widget)
    paths = field_paths(StudioConfig())
    assert set(widgets) == set(paths), "one widget per field, keyed by its path"
    for path in paths:
        kind, widget = widgets[path]
        head, _, last = path.rpartition(".")
        info = FIELDS[head] if last.isdigit() else FIELDS[path]
        label = info.spec.item.format(i=int(last) + 1) if last.isdigit() else info.spec.label
        assert widget.label == label, path
        assert widget.value == (32 if path == "data.image_size" else get_field(default_config(), path)), path
        if kind in ("slider", "number_input"):
            assert (widget.min, widget.max) == (info.spec.low, info.spec.high), path
        if kind in ("radio", "selectbox"):
            assert len(widget.options) == len(info.spec.choices), path
        if info.spec.help:
            assert info.spec.help[1:] in widget.help, path
    # A widget change reaches the session's config.
    app.slider(key="training.epochs").set_value(7).run()
    assert app.session_state["studio_config"].training.epochs == 7


def _model_page_keys(app: AppTest) -> set[str]:
    kinds = ("checkbox", "radio", "selectbox", "select_slider", "slider", "number_input", "text_input")
    return {
        w.key for kind in kinds for w in getattr(app, kind) if w.key and w.key.split(".")[0] in ("model", "training")
    }


@pytest.mark.parametrize("preset", ["tutorial-cifar", "resnet-small", "mobilenetv2-transfer"])
def test_the_model_page_draws_every_field_in_use_from_the_table(preset):
    """A field declared with a group appears on the Model page with no page change; conditional ones follow."""
    from core.fields import shown

    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    app.switch_page("app_pages/model.py").run()
    app.selectbox(key="model.preset").select(preset).run()
    app.selectbox(key="training.optimizer").select("sgd").run()
    assert not app.exception
    config = app.session_state["studio_config"]
    values = {path: get_field(config, path) for path in FIELDS}
    expected = {"model.preset"}
    for info in FIELDS.values():
        if info.spec.group in ("base", "blocks", "head", "layers", "training") and shown(info, values):
            count = get_field(config, info.spec.count) if info.spec.count else 0
            expected |= {f"{info.path}.{i}" for i in range(count)} if info.kind is list else {info.path}
    assert _model_page_keys(app) == expected
    assert "training.momentum" in expected and "training.weight_decay" not in expected
    assert ("model.mobilenet_alpha" in expected) == (preset == "mobilenetv2-transfer")


def test_pages_draw_config_fields_only_through_the_field_table():
    """No page builds a config field's widget by hand (its own label, range or options)."""
    by_hand = re.compile(r"""key=f?["'](data|augment|model|training)\.""")
    for page in sorted((ROOT / "app_pages").glob("*.py")):
        text = page.read_text()
        assert not by_hand.search(text), f"{page.name} draws a config widget by hand: use ui.state.field_widget"


def test_train_help_lists_every_field_with_its_range():
    parser = build_parser()
    train = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    text = " ".join(train.format_help().split())
    for info in FIELDS.values():
        assert info.flag in text, info.path
        assert " ".join(f"Allowed: {info.range_text()}.".split()) in text, info.path
    for alias in ("--epochs", "--batch-size", "--image-size", "--preset", "--seed", "--learning-rate"):
        assert alias in text


def _changed_config() -> StudioConfig:
    """A config that differs from the defaults in every section, list fields included."""
    config = StudioConfig()
    config.data.source, config.data.image_size, config.data.val_split = "builtin:digits", 24, 0.2
    config.augment.flip, config.augment.rotation = "horizontal", 12.5
    config.model = apply_preset("resnet-small")
    config.model.filters = [8, 16, 24, 32, 40, 48]
    config.model.activation, config.model.l2 = "gelu", 1e-4
    config.training.optimizer, config.training.learning_rate, config.training.early_stopping = "adamw", 3e-4, True
    return config.validate()


def test_a_config_round_trips_through_the_cli_flags():
    config = _changed_config()
    args = build_parser().parse_args(["train", *config_flags(config)])
    assert config_from_args(args) == config


def test_config_alone_is_enough_and_flags_apply_on_top(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(_changed_config().to_json())
    args = build_parser().parse_args(["train", "--config", str(path)])
    assert config_from_args(args) == _changed_config()
    args = build_parser().parse_args(
        ["train", "--config", str(path), "--epochs", "3", "--set", "model.filters=4,4", "--model.head", "flatten"]
    )
    config = config_from_args(args)
    assert config.training.epochs == 3 and config.model.filters == [4, 4, 24, 32, 40, 48]
    assert config.model.head == "flatten" and config.data.source == "builtin:digits"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "training.epoch=3"], "--set training.epoch=3: give FIELD=VALUE with a config field"),
        (["--training.epochs", "many"], "--training.epochs 'many' is not a whole number: give e.g. 10"),
        (["--model.batch_norm", "maybe"], "--model.batch_norm 'maybe' is not true or false"),
        (["--model.dense_units", "1,2,3,4"], "--model.dense_units '1,2,3,4': give 1 to 3 comma-separated numbers"),
        (["--data.val_split", "0.7"], "data.val_split is 0.7: pick a value from 0 to 0.5"),
        (["--model.padding", "full"], "model.padding is 'full': choose one of valid, same"),
    ],
)
def test_bad_flags_name_the_flag_the_value_and_the_fix(argv, message):
    with pytest.raises(StudioError, match=re.escape(message)):
        config_from_args(build_parser().parse_args(["train", *argv]))


def test_readme_settings_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert block, "README.md has the settings block markers"
    assert block.group(1).strip() == settings_table().strip(), (
        "README's settings table drifted from the field table: run `python tools/update_readme.py`"
    )


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "core", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.mark.slow
def test_the_cli_prints_only_its_own_lines(tmp_path):
    train = _cli(
        "train", "--data", "builtin:digits", "--preset", "mnist", "--epochs", "1", "--workspace", "ws", cwd=tmp_path
    )
    assert train.returncode == 0, train.stderr[-2000:]
    lines = [part.strip() for line in train.stderr.splitlines() for part in line.split("\r") if part.strip()]
    assert lines and all(line.startswith("epoch 1/1 ") for line in lines), lines[:10]
    run_dir = json.loads(train.stdout.splitlines()[-1])["run_dir"]
    evaluate = _cli("evaluate", "--run", run_dir, cwd=tmp_path)
    assert evaluate.returncode == 0 and evaluate.stderr.strip() == "", evaluate.stderr[-2000:]
    assert json.loads(evaluate.stdout.splitlines()[-1])["accuracy"] > 0
    export = _cli("export", "--run", run_dir, "--formats", "tfjs,tflite,tflite-int8", cwd=tmp_path)
    assert export.returncode == 0, export.stderr[-2000:]
    lines = export.stderr.splitlines()
    assert lines and all(line.startswith(("Exporting ", "ok   ", "FAIL ")) for line in lines), lines
    assert len([line for line in lines if line.startswith("Exporting ")]) == 3
