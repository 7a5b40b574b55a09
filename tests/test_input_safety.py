"""Input the app must not trust: server folders outside the allowed roots, folders too large or unreadable,
password-protected ZIPs, config files nested thousands deep, and models no allowed image size can take."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import archives
from core.config import MAX_IMAGE_SIZE, DataConfig, ModelConfig, StudioConfig
from core.data import FolderLimits, data_roots, load_dataset, load_folder, load_zip
from core.errors import StudioError
from core.models import check_config
from tests.conftest import class_zip, make_class_files

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 120
REFUSED = "is outside the folders this server allows"


def write_classes(folder: Path, classes: dict[str, int]) -> Path:
    for name, data in make_class_files(classes).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def roots(tmp_path):
    """An allowed root holding a dataset, and a dataset beside it that is not allowed."""
    root = tmp_path / "allowed"
    write_classes(root / "flowers", {"roses": 3, "tulips": 3})
    outside = write_classes(tmp_path / "private", {"cats": 3, "dogs": 3})
    (outside / "passwords.txt").write_text("secret")
    return root, outside


def load_in(path, allowed, **kwargs):
    return load_dataset(DataConfig(source="folder", path=str(path), image_size=16), allowed_roots=allowed, **kwargs)


# --- A. Allowed folders --------------------------------------------------------------------------------


def test_a_folder_inside_an_allowed_root_loads(roots):
    root, _ = roots
    ds = load_in(root / "flowers", [str(root)])
    assert ds.class_names == ["roses", "tulips"] and len(ds.labels) == 6


@pytest.mark.parametrize(
    "typed",
    [
        lambda root, outside: outside,  # beside the root
        lambda root, outside: "/etc",
        lambda root, outside: f"{root}/../{outside.name}",  # '..' out of the root
        lambda root, outside: f"{root}/flowers/../../{outside.name}",
        lambda root, outside: "~",
    ],
)
def test_folders_outside_the_roots_are_refused_with_the_allowed_folders(roots, typed):
    root, outside = roots
    path = str(typed(root, outside))
    with pytest.raises(StudioError) as err:
        load_in(path, [str(root)])
    message = str(err.value)
    assert REFUSED in message and f"'{root}'" in message and "CNN_STUDIO_DATA_ROOTS" in message
    assert "passwords" not in message and "passwd" not in message and "\n" not in message


def test_a_symlink_inside_the_root_that_leads_outside_is_refused(roots):
    root, outside = roots
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StudioError, match=REFUSED):
        load_in(root / "escape", [str(root)])
    # Inside a dataset: a link to a file outside is not read, a link to a folder is not followed.
    (root / "flowers" / "roses" / "leak.png").symlink_to(outside / "cats" / "img_0.png")
    (root / "flowers" / "linked").symlink_to(outside / "dogs", target_is_directory=True)
    ds = load_in(root / "flowers", [str(root)])
    reasons = dict(ds.skipped)
    assert "outside the allowed folders" in reasons["roses/leak.png"]
    assert "not followed" in reasons["linked"] and ds.class_names == ["roses", "tulips"]


def test_no_roots_refuses_every_folder_and_says_how_to_add_one(roots):
    root, _ = roots
    with pytest.raises(StudioError, match="reads datasets from no folder.*CNN_STUDIO_DATA_ROOTS"):
        load_in(root / "flowers", [])


def test_the_roots_come_from_the_environment_or_the_apps_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_STUDIO_DATA_ROOTS", f"{tmp_path / 'a'}{os.pathsep} {tmp_path / 'b'} {os.pathsep}")
    assert data_roots() == [str(tmp_path / "a"), str(tmp_path / "b")]
    monkeypatch.setenv("CNN_STUDIO_DATA_ROOTS", "")
    assert data_roots() == []
    monkeypatch.delenv("CNN_STUDIO_DATA_ROOTS")
    assert data_roots() == ([str(ROOT / "data")] if (ROOT / "data").is_dir() else [])


def test_a_zip_path_is_held_to_the_roots_too(roots, tmp_path):
    root, _ = roots
    path = tmp_path / "outside.zip"
    path.write_bytes(class_zip(make_class_files({"a": 2, "b": 2})))
    with pytest.raises(StudioError, match=REFUSED):
        load_dataset(DataConfig(source="zip", path=str(path)), allowed_roots=[str(root)])


def test_the_cli_and_scripts_read_any_folder(roots):
    _, outside = roots
    assert load_dataset(DataConfig(source="folder", path=str(outside), image_size=16)).class_names == ["cats", "dogs"]


def test_files_beside_the_class_folders_are_counted_not_named(roots):
    _, outside = roots
    (outside / "notes.txt").write_text("x")
    (outside / ".DS_Store").write_bytes(b"x")
    ds = load_folder(outside, 16, None)
    assert dict(ds.skipped) == {
        "2 files directly in the folder": "not inside a class folder; put each image in a folder named after its class",
        ".DS_Store": "system file, not an image",
    }
    with pytest.raises(StudioError) as err:
        load_folder(outside / "cats", 16, None)  # images but no class folders
    assert "3 files directly in the folder" in str(err.value) and "img_0" not in str(err.value)


@pytest.mark.parametrize(
    "limits, env, expected",
    [
        (FolderLimits(files=5), ("CNN_STUDIO_MAX_FOLDER_FILES", "5"), "more than 5 files and folders"),
        (FolderLimits(bytes=1000), ("CNN_STUDIO_MAX_FOLDER_BYTES", "1000"), "more than 1,000 bytes of files"),
        (FolderLimits(seconds=1e-9), ("CNN_STUDIO_MAX_FOLDER_SECONDS", "1e-9"), "longer than 1e-09 seconds"),
    ],
)
def test_caps_on_files_bytes_and_seconds_stop_a_load_and_say_which(roots, monkeypatch, limits, env, expected):
    root, _ = roots
    with pytest.raises(StudioError, match=expected) as err:
        load_folder(root / "flowers", 16, None, [str(root)], limits)
    assert env[0] in str(err.value)
    monkeypatch.setenv(*env)  # the app's loads take the admin's numbers from the environment
    with pytest.raises(StudioError, match=expected):
        load_in(root / "flowers", [str(root)])
    assert load_dataset(DataConfig(source="folder", path=str(root / "flowers"))).num_classes == 2, "no caps: CLI"


def test_a_bad_cap_setting_names_the_variable(roots, monkeypatch):
    root, _ = roots
    monkeypatch.setenv("CNN_STUDIO_MAX_FOLDER_FILES", "lots")
    with pytest.raises(StudioError, match="CNN_STUDIO_MAX_FOLDER_FILES='lots' is not a positive number"):
        load_in(root / "flowers", [str(root)])


LOCKED_SCRIPT = """
import json, sys
from core.data import load_folder
ds = load_folder(sys.argv[1], 16, None, [sys.argv[2]])
print(json.dumps({"skipped": ds.skipped, "classes": ds.class_names}))
"""


def test_an_unreadable_subfolder_is_skipped_with_a_reason(roots):
    root, _ = roots
    locked = root / "flowers" / "roses" / "locked"
    locked.mkdir()
    (locked / "x.png").write_bytes(b"x")
    locked.chmod(0)
    try:
        command = [sys.executable, "-c", LOCKED_SCRIPT, str(root / "flowers"), str(root)]
        if os.geteuid() == 0:  # root reads anything: run without the capabilities that let it
            if not shutil.which("setpriv"):
                pytest.skip("running as root without setpriv: an unreadable folder cannot be made")
            command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["classes"] == ["roses", "tulips"]
    assert ["roses/locked/", "folder could not be read (Permission denied); skipped"] in result["skipped"]


# --- A in the app: the Dataset page, and a training job -------------------------------------------------


def test_dataset_page_refuses_a_folder_outside_the_roots_and_loads_one_inside(roots, monkeypatch):
    root, outside = roots
    monkeypatch.setenv("CNN_STUDIO_DATA_ROOTS", str(root))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.selectbox(key="data.source").select("folder").run()
    assert any(f"'{root}'" in c.value and "CNN_STUDIO_DATA_ROOTS" in c.value for c in at.caption)
    at.text_input(key="data.path").input(str(outside)).run()
    assert not at.exception
    assert any(REFUSED in e.value and f"'{root}'" in e.value for e in at.error)
    at.text_input(key="data.path").input(str(root / "flowers")).run()
    assert not at.exception and not at.error
    assert next(m.value for m in at.metric if m.label == "Classes") == "2"


def _job_script() -> None:
    """What a training job of the session's folder would get, for a path outside and one inside (AppTest)."""
    import streamlit as st

    from core.errors import StudioError
    from ui.state import config
    from ui.uploads import uploads_for_job

    cfg = config()
    cfg.data.source = "folder"
    results = {}
    for name, path in st.session_state["paths"].items():
        cfg.data.path = path
        try:
            results[name] = uploads_for_job("folder")
        except StudioError as err:
            results[name] = str(err)
    st.session_state["results"] = results


def test_a_training_job_of_a_server_folder_is_held_to_the_roots(roots, monkeypatch):
    root, outside = roots
    monkeypatch.setenv("CNN_STUDIO_DATA_ROOTS", str(root))
    at = AppTest.from_function(_job_script, default_timeout=TIMEOUT)
    at.session_state["paths"] = {"outside": str(outside), "inside": str(root / "flowers")}
    at.run()
    assert not at.exception
    results = at.session_state["results"]
    assert REFUSED in results["outside"], "refused before a run folder exists"
    assert results["inside"]["allowed_roots"] == [str(root)] and results["inside"]["budget"].bytes > 0
    # The training process loads with those keyword arguments (core.training: load_dataset(config.data, **uploads)).
    inside = DataConfig(source="folder", path=str(root / "flowers"), image_size=16)
    assert load_dataset(inside, **results["inside"]).num_classes == 2
    with pytest.raises(StudioError, match=REFUSED):
        load_dataset(DataConfig(source="folder", path=str(outside)), **results["inside"])


# --- B. Encrypted ZIP entries ---------------------------------------------------------------------------


def mark_encrypted(data: bytes, names: set[str]) -> bytes:
    """The ZIP with the 'encrypted' flag set on ``names`` in their local and central headers, as a ZIP made
    with a password has (the entries then need a password to read, as zipfile says)."""
    out = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        start = zf.start_dir
        infos = {i.filename: i for i in zf.infolist()}
    for name in names:
        offset = infos[name].header_offset
        (flags,) = struct.unpack_from("<H", out, offset + 6)
        struct.pack_into("<H", out, offset + 6, flags | 1)
    pos = start
    while out[pos : pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", out, pos + 28)
        name = bytes(out[pos + 46 : pos + 46 + name_len]).decode()
        if name in names:
            (flags,) = struct.unpack_from("<H", out, pos + 8)
            struct.pack_into("<H", out, pos + 8, flags | 1)
        pos += 46 + name_len + extra_len + comment_len
    return bytes(out)


def test_an_encrypted_entry_is_skipped_and_the_rest_loads():
    files = make_class_files({"a": 3, "b": 3})
    data = mark_encrypted(class_zip(files), {"a/img_0.png"})
    with zipfile.ZipFile(io.BytesIO(data)) as zf, pytest.raises(RuntimeError, match="password required"):
        zf.read("a/img_0.png")  # what zipfile does with it
    ds = load_zip(data, "secret.zip", 16, None)
    assert list(ds.class_counts()) == [2, 3]
    assert "encrypted (password-protected)" in dict(ds.skipped)["a/img_0.png"]


def test_read_entry_turns_zipfiles_password_error_into_a_skip_reason():
    data = mark_encrypted(class_zip(make_class_files({"a": 1})), {"a/img_0.png"})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        entry = archives.ZipEntry("a", "a/img_0.png", zf.getinfo("a/img_0.png"))
        with pytest.raises(zipfile.BadZipFile, match="password required"):
            archives.read_entry(zf, entry)


def test_an_all_encrypted_zip_is_refused_with_one_message():
    files = make_class_files({"a": 2, "b": 2})
    data = mark_encrypted(class_zip(files), set(files))
    with pytest.raises(StudioError, match=r"ZIP 'secret.zip' is password-protected: all 4 of its files"):
        load_zip(data, "secret.zip", 16, None)


def run_cli(*args: str, workspace: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", "train", *args, "--workspace", str(workspace), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_exits_2_without_a_run_folder_for_an_all_encrypted_zip(tmp_path):
    files = make_class_files({"a": 2, "b": 2})
    path = tmp_path / "secret.zip"
    path.write_bytes(mark_encrypted(class_zip(files), set(files)))
    done = run_cli("--data", str(path), "--epochs", "1", workspace=tmp_path / "runs")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "password-protected" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# --- C. Config files nested deep, or of the wrong types ------------------------------------------------

DEEP = b'{"model": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


@pytest.mark.parametrize(
    "text, expected",
    [
        (DEEP, "nested too deeply"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"model": {"filters": ' + b"[" * 50 + b"]" * 50 + b"}}", "nested more than 8 levels"),
        (b'{"data": {"seed": ' + b"9" * 5000 + b"}}", "a number with too many digits"),
        (b'{"data": {"seed": "x"}}', "config.data.seed must be a int"),
        (b'{"data": 5}', "config.data must be a JSON object, not int"),
        (b"[1, 2]", "config must be a JSON object, not list"),
        (b" " * 1_000_001, "over the limit of 1,000,000"),
    ],
)
def test_deep_or_wrong_config_json_is_one_studio_error(text, expected):
    with pytest.raises(StudioError, match=expected) as err:
        StudioConfig.from_json(text)
    assert "\n" not in str(err.value)


def test_a_deeply_nested_dict_is_refused_by_from_dict():
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(StudioError, match="nested more than 8 levels"):
        StudioConfig.from_dict({"model": deep})


def test_cli_config_nested_deep_exits_2_without_a_run_folder(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(DEEP)
    done = run_cli("--config", str(path), workspace=tmp_path / "runs")
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["error: " + lines[0][len("error: ") :]] and "nested too deeply" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_failed_config_upload_leaves_the_session_as_it_was_and_a_good_one_reaches_the_widgets():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("app_pages/model.py").run()
    at.slider(key="model.conv_blocks").set_value(4).run()
    at.select_slider(key="model.kernel_size").set_value(5).run()
    before = at.session_state["studio_config"].to_json()
    at.file_uploader(key="config_upload").set_value(("deep.json", DEEP, "application/json")).run()
    assert not at.exception
    assert any(e.value.startswith("deep.json: The config file is nested too deeply") for e in at.error)
    assert at.session_state["studio_config"].to_json() == before
    assert at.slider(key="model.conv_blocks").value == 4 and at.select_slider(key="model.kernel_size").value == 5
    good = StudioConfig()
    good.model.conv_blocks, good.training.epochs = 2, 3
    at.file_uploader(key="config_upload").set_value(("good.json", good.to_json().encode(), "application/json")).run()
    assert not at.exception and not at.error
    assert at.session_state["studio_config"].to_json() == good.to_json()
    assert at.slider(key="model.conv_blocks").value == 2 and at.select_slider(key="model.kernel_size").value == 3
    at.slider(key="model.block_dropout").set_value(0.1).run()  # another change keeps the restored values
    cfg = at.session_state["studio_config"]
    assert (cfg.model.conv_blocks, cfg.model.kernel_size, cfg.training.epochs) == (2, 3, 3)
    assert cfg.model.block_dropout == 0.1 and not at.exception


# --- D. Image size hints within the allowed sizes ---------------------------------------------------------


def test_a_model_no_allowed_image_size_fits_says_so_and_how_to_fix_it():
    deep = ModelConfig(conv_blocks=6, convs_per_block=3, kernel_size=7, padding="valid")
    with pytest.raises(StudioError) as err:
        check_config(deep, (64, 64, 3))
    message = str(err.value)
    assert f"No allowed image size works (the largest is {MAX_IMAGE_SIZE})" in message
    assert "'same' padding" in message and "smaller kernel" in message and "fewer blocks" in message
    assert "at least" not in message
    small = ModelConfig(conv_blocks=3, kernel_size=5)
    with pytest.raises(StudioError, match=r"or an image size of at least 36\."):
        check_config(small, (16, 16, 3))


# --- The browser: the Dataset page against a server with allowed folders ---------------------------------


@pytest.mark.slow
def test_browser_dataset_page_refuses_outside_and_loads_inside(roots, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests import browser as b

    root, outside = roots
    env = {"CNN_STUDIO_DATA_ROOTS": str(root)}
    with b.streamlit_server(tmp_path / "runs", tmp_path / "streamlit.log", env=env) as url, sync_playwright() as p:
        chromium = b.launch(p)
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(b.TIMEOUT_MS)
        b.goto(page, url)
        b.select(page, "Source", "Folder of class folders")
        path_box = b.widget(page, "stTextInput", "Folder on the server").locator("input")
        path_box.fill(str(outside))
        path_box.press("Enter")
        b.wait_for_app(page)
        alert = page.locator('[data-testid="stAlert"]').filter(has_text=REFUSED)
        alert.first.wait_for()
        assert f"'{root}'" in alert.first.inner_text() and "passwords" not in page.content()
        path_box.fill(str(root / "flowers"))
        path_box.press("Enter")
        b.wait_for_app(page)
        b.expect_metric(page, "Classes", "2")
        assert page.locator('[data-testid="stAlert"]').filter(has_text=REFUSED).count() == 0
        chromium.close()
