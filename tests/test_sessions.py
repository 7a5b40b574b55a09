"""A demo server shared by a team: two browser sessions at once on one ``streamlit run``.

Uploads stay in the uploader's session, runs are shared, two starts make a queue (not a crash), a run can be
stopped from the browser, and the upload limit is stated where files are dropped.
"""

import json

import pytest

from tests import browser as b
from tests.conftest import class_zip, make_class_files

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shared")
    with b.streamlit_server(tmp / "runs", tmp / "streamlit.log") as url:
        yield url, tmp / "runs"


def test_two_sessions_share_runs_not_uploads_and_queue_their_training(shared_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, runs = shared_server
    with sync_playwright() as playwright:
        chromium = b.launch(playwright)
        alice = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
        bob = chromium.new_context(viewport={"width": 1400, "height": 900}).new_page()
        for page in (alice, bob):
            page.set_default_timeout(b.TIMEOUT_MS)
            b.goto(page, url)

        # Alice uploads a ZIP; Bob, on the same source, sees no data of hers.
        archive = tmp_path / "alice.zip"
        archive.write_bytes(class_zip(make_class_files({"red": 6, "green": 6})))
        b.select(alice, "Source", "ZIP of class folders")
        alice.get_by_text("500MB per file").wait_for()  # the upload limit is stated at the uploader
        alice.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(archive))
        b.wait_for_app(alice)
        b.expect_metric(alice, "Classes", "2")
        b.select(bob, "Source", "ZIP of class folders")
        bob.get_by_text("Upload a ZIP whose top level").wait_for()
        assert not bob.locator('[data-testid="stMetric"]').count(), "Bob does not see Alice's upload"

        # Bob gets a short digits run ready; Alice starts a long run on the Shapes set, then Bob starts: queued.
        b.select(bob, "Source", "Digits")
        b.navigate(bob, "Model")
        b.set_slider(bob, "Epochs", 1)
        b.navigate(bob, "Train")
        b.select(alice, "Source", "Shapes")
        b.navigate(alice, "Train")
        b.click_button(alice, "start_training")
        alice.wait_for_selector("h3:has-text('-shapes-')")
        b.click_button(bob, "start_training")
        bob.wait_for_selector("text=yours is queued and starts when it ends")
        bob.wait_for_selector("text=Queued behind")

        # Alice stops hers from the browser; Bob's then runs to the end.
        alice.wait_for_selector("text=/epoch \\d+\\/\\d+, batch/")
        b.click_button(alice, "stop_training")
        alice.wait_for_selector("text=Run stopped after", timeout=2 * b.TIMEOUT_MS)
        bob.wait_for_selector("text=Run finished after 1 epoch", timeout=2 * b.TIMEOUT_MS)

        # Both runs are in the shared workspace and in both sessions' history (the compare box lists them).
        statuses = sorted(json.loads((d / "status.json").read_text())["status"] for d in b.run_dirs(runs))
        assert statuses == ["finished", "stopped"]
        # Alice's split sliders went away while her ZIP source waited for a file and came back: they kept
        # their values (the browser used to put them back to 0 and the run trained with no held-out images).
        for run_dir in b.run_dirs(runs):
            data = json.loads((run_dir / "config.json").read_text())["data"]
            assert (data["val_split"], data["test_split"], data["seed"]) == (0.15, 0.15, 42), run_dir.name
        for page in (alice, bob):
            b.navigate(page, "Evaluate")
            b.navigate(page, "Train")
            compare = b.widget(page, "stMultiSelect", "Compare runs")
            compare.get_by_text("on Shapes").wait_for()
            compare.get_by_text("on Digits").wait_for()
        chromium.close()
