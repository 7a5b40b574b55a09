"""The Live page and the Evaluate page's feature map in headless Chromium against ``streamlit run`` (#15.1, #15.2).

The Live page makes the run's TF.js model on first use, classifies a fake camera's stream continuously in the
browser as Keras classifies the picture, pauses, sends nothing anywhere while it classifies, and falls back to a
chosen picture when the camera is refused. The feature map places every test image, shows a thumbnail on hover
and the image's prediction on click."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from core.evaluation import load_run_model, load_test_data, probabilities
from core.runs import load_run
from tests import browser as b
from tests.test_webdemo import FAKE_CAMERA, UPSCALE, write_picture, write_y4m

pytestmark = pytest.mark.slow
ATOL = 1e-4
FRAMES = 5  # classified camera frames before the test reads the last one
SHOTS = b.ROOT / "docs" / "screenshots"  # the README shows the Live page and the feature map from here


@pytest.fixture(scope="module")
def live_server(trained_run, tmp_path_factory):
    """A server on a workspace holding a copy of the trained digits run, not exported yet."""
    tmp = tmp_path_factory.mktemp("live")
    shutil.copytree(trained_run.path, tmp / "runs" / trained_run.run_id)
    with b.streamlit_server(tmp / "runs", tmp / "streamlit.log") as url:
        yield url, load_run(tmp / "runs" / trained_run.run_id), tmp


def live_frame(page):
    """The Live page's component frame once its model is loaded."""
    page.wait_for_selector('iframe[src*="live_camera"]', timeout=b.TIMEOUT_MS)
    frame = next(f for f in page.frames if "live_camera" in f.url)
    frame.wait_for_function("() => window.cnnStudio && window.cnnStudio.ready", timeout=b.TIMEOUT_MS)
    return frame


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(b.TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url)
    b.wait_for_app(page)
    return page, errors


def test_the_live_page_classifies_the_camera_stream_as_keras_classifies_the_picture(live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, run, _ = live_server
    model = load_run_model(run)
    images, _, names = load_test_data(run)
    expected = probabilities(model, images, logits=False)
    index = int(np.argmax(expected.max(1)))  # the test picture Keras is surest of
    video = tmp_path / "camera.y4m"
    write_y4m(video, np.kron(images[index][..., 0], np.ones((UPSCALE, UPSCALE), np.uint8)))
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=b.CHROMIUM,
            args=[*b.CHROMIUM_ARGS, *FAKE_CAMERA, f"--use-file-for-fake-video-capture={video}"],
            headless=True,
        )
        try:
            page, errors = open_page(browser, f"{url}/live")
            frame = live_frame(page)  # the first visit made the TF.js model in a warm worker
            assert (run.path / "exports" / "tfjs_model" / "model.json").is_file()
            requests = []
            page.on("request", lambda r: requests.append(r.url) if r.frame == frame else None)
            frame.wait_for_function(
                f"() => window.cnnStudio.last && window.cnnStudio.last.source === 'camera'"
                f" && window.cnnStudio.last.frames >= {FRAMES}"
            )
            frame.wait_for_function("() => /frames\\/s$/.test(document.getElementById('fps').textContent)")
            assert re.fullmatch(r"\d+\.\d frames/s", frame.locator("#fps").text_content())
            last = frame.evaluate("() => window.cnnStudio.last")
            shown = np.asarray(last["probabilities"])
            assert shown.argmax() == expected[index].argmax(), "the page's top class for the frame is Keras's"
            seen = np.asarray(last["pixels"], dtype=np.uint8).reshape(1, *images.shape[1:])
            np.testing.assert_allclose(shown, probabilities(model, seen, logits=False)[0], atol=ATOL)
            bars = frame.locator("#bars span.name").all_text_contents()
            assert len(bars) == 5 and bars[0] == names[int(expected[index].argmax())], "top-5 bars, best first"
            b.screenshot(page, SHOTS / "live.png")

            # Pause freezes the frame: no frame is classified until Resume.
            frame.locator("#camera-pause").click()
            frame.wait_for_function("() => document.getElementById('camera-pause').textContent === 'Resume'")
            frozen = frame.evaluate("() => window.cnnStudio.last.frames")
            after = frame.evaluate(
                "async () => { for (let i = 0; i < 20; i++) await new Promise(requestAnimationFrame);"
                " return window.cnnStudio.last.frames; }"
            )
            assert after == frozen, "a paused page classifies no frame"
            frame.locator("#camera-pause").click()
            frame.wait_for_function(f"() => window.cnnStudio.last.frames > {frozen}")
            assert requests == [] and errors == [], "no frame and no prediction leaves the page"
        finally:
            browser.close()


def launch_refusing_camera(playwright):
    """Chromium with a (fake) camera whose permission the visitor refuses."""
    return playwright.chromium.launch(
        executable_path=b.CHROMIUM,
        args=[*b.CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--deny-permission-prompts"],
        headless=True,
    )


def test_a_refused_camera_falls_back_to_a_picture_classified_in_the_browser(live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    url, _, _ = live_server
    with sync_playwright() as p:
        browser = launch_refusing_camera(p)
        try:
            page, errors = open_page(browser, f"{url}/live")
            frame = live_frame(page)
            frame.wait_for_function("() => document.getElementById('camera-status').className === 'refused'")
            assert frame.locator("#camera-status").text_content().startswith("Camera access was refused.")
            frame.locator("#file").set_input_files(str(tmp_path / write_picture(tmp_path, "photo.png", 1)))
            frame.wait_for_function("() => window.cnnStudio.last && window.cnnStudio.last.source === 'file'")
            assert frame.locator("#status").text_content().startswith("Prediction: ") and errors == []
        finally:
            browser.close()


def test_the_live_page_speaks_the_sessions_language(live_server, tmp_path):
    """#21: in zh-CN the camera component shows the words of the session's language (<html lang> too): the
    refused camera's message, the buttons, the drop zone and the prediction, no English."""
    from playwright.sync_api import sync_playwright

    from core.formats import camera_words
    from core.i18n import using
    from ui.live import live_words

    url, _, _ = live_server
    with using("zh-CN"):
        words = camera_words() | live_words()
    with sync_playwright() as p:
        browser = launch_refusing_camera(p)
        try:
            page, errors = open_page(browser, f"{url}/live?lang=zh-CN")
            frame = live_frame(page)
            frame.wait_for_function("() => document.getElementById('camera-status').className === 'refused'")
            assert frame.evaluate("() => document.documentElement.lang") == "zh-CN"
            assert frame.locator("#camera-status").text_content() == words["NotAllowedError"]
            assert frame.locator("#camera-start").text_content() == words["start"]
            assert frame.locator("#drop").text_content() == words["drop"]
            frame.locator("#file").set_input_files(str(tmp_path / write_picture(tmp_path, "photo.png", 2)))
            frame.wait_for_function("() => window.cnnStudio.last && window.cnnStudio.last.source === 'file'")
            assert frame.locator("#status").text_content().startswith(words["prediction"].split("{")[0])
            text = frame.locator("body").inner_text()
            english = ["Start camera", "Pause", "Full screen", "Camera access", "Drop a picture", "Prediction"]
            assert not [w for w in english if w in text] and errors == [], text
        finally:
            browser.close()


def visible_point(page, frame, dots):
    """The middle of a dot of the feature map that lies inside the window, in page coordinates."""
    height = page.viewport_size["height"]
    for k in range(dots.count()):
        box = dots.nth(k).bounding_box()
        if box and 0 < box["y"] < height - 20:
            return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    raise AssertionError("no dot of the feature map is in the window")


def test_the_feature_map_shows_a_thumbnail_on_hover_and_the_prediction_on_click(live_server):
    from playwright.sync_api import sync_playwright

    url, run, _ = live_server
    _, labels, names = load_test_data(run)
    with sync_playwright() as p:
        browser = b.launch(p)
        try:
            page, errors = open_page(browser, f"{url}/evaluate")
            page.get_by_role("tab", name="Feature map").click()
            page.wait_for_selector('iframe[src*="feature_map"]', timeout=b.TIMEOUT_MS)
            frame = next(f for f in page.frames if "feature_map" in f.url)
            frame.wait_for_function("() => window.cnnStudioMap && window.cnnStudioMap.ready", timeout=b.TIMEOUT_MS)
            assert (run.path / "feature_map.npz").is_file(), "computed in a warm worker, kept in the run folder"
            dots = frame.locator(".scatterlayer .trace .points path")
            assert dots.count() == len(labels), "every test image is a dot"
            page.locator('iframe[src*="feature_map"]').scroll_into_view_if_needed()
            x, y = visible_point(page, frame, dots)
            page.mouse.move(x, y)
            frame.wait_for_function("() => !document.getElementById('tip').hidden")
            tip = frame.locator("#tip-text").inner_text()
            assert tip.startswith("true: ") and "predicted: " in tip
            page.mouse.click(x, y)
            caption = page.get_by_text(re.compile(r"^Test image [\d,]+: true class ")).first
            caption.wait_for(timeout=b.TIMEOUT_MS)
            index = int(re.match(r"Test image ([\d,]+)", caption.inner_text()).group(1).replace(",", ""))
            assert caption.inner_text().endswith(f"true class {names[labels[index]]}")
            assert f"true: {names[labels[index]]}" in tip, "the clicked dot is the hovered one"
            page.get_by_text(re.compile(r"^Predicted .+ \(\d+%\)$")).first.wait_for()
            b.wait_for_app(page)
            b.screenshot(page, SHOTS / "feature-map.png")
            frame.locator('input[value="pca"]').check()
            frame.wait_for_function("() => window.cnnStudioMap.method() === 'pca'")
            assert errors == []
        finally:
            browser.close()
