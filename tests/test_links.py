"""A session in its link (#15): settings and run in the URL, restored by a reload or a shared link; the Train
page's run picker and live view after a run ends and after a reload."""

import re
import shutil
import time

import pytest

from core.config import apply_recipe, default_config
from core.links import config_from_link, link_params
from tests import browser as b


def test_a_link_carries_the_changed_settings_and_gives_them_back():
    config = default_config()
    config.data.source = "builtin:digits"
    apply_recipe(config, "mnist")  # what choosing a preset on the Model page does
    config.model.filters[0] = 8
    config.training.epochs = 7
    params = link_params(config, "20260101-000000-abcd")
    # Only what differs from the defaults (the preset's own values come back with the preset).
    assert params == {
        "data.source": "builtin:digits",
        "model.preset": "mnist",
        "model.filters": "8,64,64,64,64,64",
        "training.epochs": "7",
        "run": "20260101-000000-abcd",
    }
    restored, problems = config_from_link(params)
    assert restored == config and problems == []
    assert link_params(default_config()) == {}, "the defaults make a bare link"


def test_a_bad_link_keeps_what_is_good_and_says_what_it_left_out():
    restored, problems = config_from_link(
        {"training.epochs": "abc", "data.image_size": "99999", "training.batch_size": "64", "utm_source": "mail"}
    )
    assert restored.training.batch_size == 64 and restored.training.epochs == default_config().training.epochs
    assert problems == [
        "The link's training.epochs=abc was left out: training.epochs 'abc' is not a whole number: give e.g. 10.",
        "The link's data.image_size=99999 was left out: data.image_size is 99999: pick a whole number from 8 to "
        "512 pixels, or 0 for the source's default.",
    ]


def test_an_uploaded_dataset_stays_out_of_the_link():
    config = default_config()
    config.data.source, config.data.path = "zip", "my-photos.zip"
    assert "data.source" not in link_params(config) and "data.path" not in link_params(config)


@pytest.fixture
def app(tmp_path):
    from playwright.sync_api import sync_playwright

    with b.streamlit_server(tmp_path / "runs", tmp_path / "streamlit.log") as url, sync_playwright() as playwright:
        browser = b.launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(b.TIMEOUT_MS)
        yield url, page, tmp_path / "runs"
        browser.close()


def header(page) -> str:
    return page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="Training").first.inner_text()


def picker_text(page) -> str:
    """What the run picker shows (its chosen option is drawn as text or as an input's value)."""
    picker = b.widget(page, "stSelectbox", "Run")
    return " ".join([picker.inner_text(), *(field.input_value() for field in picker.locator("input").all())])


@pytest.mark.slow
def test_a_reload_and_a_shared_link_keep_the_session_and_the_train_page_tells_the_truth(app):
    url, page, workspace = app
    # A shared link opens the Train page with its settings (today's main opened the defaults).
    b.goto(page, f"{url}/train?data.source=builtin:digits&model.preset=mnist&training.epochs=2")
    assert "builtin:digits" in header(page) and "mnist" in header(page) and "2 epochs" in header(page)

    b.click_button(page, "start_training")
    page.wait_for_selector("text=/epoch [12]\\/2, batch/")
    page.reload()  # during training: the settings stay and the page re-attaches to the live run
    b.wait_for_app(page)
    assert "builtin:digits" in header(page) and "2 epochs" in header(page)
    # The live view stays after the run ends, with its result, and the picker says finished with no reload.
    page.wait_for_selector("text=Run finished after 2 epochs")
    (run_dir,) = b.run_dirs(workspace)
    deadline = time.monotonic() + 60
    while "finished" not in picker_text(page) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert f"· finished · {run_dir.name}" in picker_text(page)
    assert re.search(rf"[?&]run={run_dir.name}", page.url), page.url

    page.reload()  # after the run: the picker shows its end state, the settings are still those of the link
    b.wait_for_app(page)
    assert f"· finished · {run_dir.name}" in picker_text(page) and "2 epochs" in header(page)

    # ?run= opens that run on Evaluate, not the newest one: the link a presenter sends.
    newer = workspace / ("99991231-235959" + run_dir.name[15:])
    shutil.copytree(run_dir, newer)
    b.goto(page, f"{url}/evaluate?run={run_dir.name}")
    b.wait_for_page(page, "Evaluate")
    assert run_dir.name in picker_text(page) and newer.name not in picker_text(page)
