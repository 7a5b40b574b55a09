"""The whole journey in headless Chromium against ``streamlit run``: dataset, preset, live training,
evaluation, export and download, the downloaded TF.js model run in the same browser, and a ZIP upload.

Screenshots of every page go to docs/screenshots (the README shows them).
"""

import functools
import http.server
import io
import json
import re
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import browser as b
from tests.conftest import class_zip, make_class_files

pytestmark = pytest.mark.slow
SHOTS = b.ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    with b.streamlit_server(tmp / "runs", tmp / "streamlit.log") as url:
        yield url, tmp


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = b.launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(b.TIMEOUT_MS)
    yield page
    context.close()


def serve_folder(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def batch_chart_points(page) -> int:
    return page.evaluate(
        "() => { const p = [...document.querySelectorAll('.js-plotly-plot')]"
        ".find(e => e.layout && e.layout.title && String(e.layout.title.text || '').includes('Batch loss'));"
        " return p ? p.data[0].x.length : 0; }"
    )


def test_the_whole_journey(server, page, tmp_path):
    url, workdir = server
    b.goto(page, url)
    b.expect_metric(page, "Classes", "6")

    # Dataset: the built-in digits.
    b.select(page, "Source", "Digits")
    b.expect_metric(page, "Classes", "10")
    b.expect_metric(page, "Images", "1,797")
    b.screenshot(page, SHOTS / "dataset.png")

    # Model: the MNIST tutorial preset, 2 epochs.
    b.navigate(page, "Model")
    b.select(page, "Start from", "mnist")
    b.expect_metric(page, "Parameters", "93,322")
    b.set_slider(page, "Epochs", 2)
    b.screenshot(page, SHOTS / "model.png")

    # Train: the live chart grows while the run trains.
    b.navigate(page, "Train")
    b.click_button(page, "start_training")
    page.wait_for_selector("text=/epoch 1\\/2, batch/", timeout=b.TIMEOUT_MS)
    counts = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not page.get_by_text("Run finished").count():
        counts.append(batch_chart_points(page))
        time.sleep(0.3)
    assert len(set(c for c in counts if c)) >= 2, f"the batch chart never updated while training: {counts}"
    page.wait_for_selector("text=Run finished after 2 epochs", timeout=b.TIMEOUT_MS)
    b.wait_for_app(page)
    b.screenshot(page, SHOTS / "train.png")

    # Evaluate: the confusion matrix, and the app's prediction for one test image.
    b.navigate(page, "Evaluate")
    page.wait_for_selector("text=Confusion matrix")
    assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1
    # Clicking a cell of the matrix shows that cell's images: the top-left cell is true 0, predicted 0.
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.click(area["x"] + area["width"] * 0.05, area["y"] + area["height"] * 0.05)
    page.get_by_text("test images are of class 0 and predicted 0").wait_for()
    run_dir = b.run_dirs(workdir / "runs")[0]
    with np.load(run_dir / "test_data.npz") as data:
        pixels = data["images"][0]
    png = tmp_path / "digit.png"
    Image.fromarray(pixels[..., 0]).save(png)
    b.screenshot(page, SHOTS / "evaluate.png")
    page.get_by_role("tab", name="Try it yourself").click()  # Evaluate's tabs: each computed when opened
    b.wait_for_app(page)
    page.locator('[data-testid="stFileUploader"]').filter(has_text="Upload an image").locator(
        'input[type="file"]'
    ).set_input_files(str(png))
    b.wait_for_app(page)
    title = page.locator(".gtitle").filter(has_text="Prediction:").first.text_content()
    app_class, app_percent = re.match(r"Prediction: (\S+) \(([\d.]+)%\)", title).groups()

    # Export: TF.js and TFLite, measured, then downloaded.
    b.navigate(page, "Export")
    b.click_button(page, "export_button")
    page.wait_for_selector("text=Comparison", timeout=300_000)
    b.wait_for_app(page)
    page.get_by_text("TensorFlow.js graph model matches Keras to 0.0001").wait_for()
    downloads = {}
    for label in ("TensorFlow.js graph model", "TFLite float32", "Web demo (index.html + TF.js model + TF.js library)"):
        with page.expect_download() as info:
            page.locator('[data-testid="stDownloadButton"] button').filter(has_text=label).first.click()
        downloads[label] = tmp_path / info.value.suggested_filename
        info.value.save_as(downloads[label])
    assert downloads["TFLite float32"].read_bytes()[4:8] == b"TFL3"
    b.screenshot(page, SHOTS / "export.png")

    # The downloaded TF.js model, loaded in this same browser with TF.js, predicts what the app predicted.
    site = tmp_path / "site"
    with zipfile.ZipFile(downloads["TensorFlow.js graph model"]) as zf:
        zf.extractall(site)
    with zipfile.ZipFile(downloads["Web demo (index.html + TF.js model + TF.js library)"]) as zf:
        zf.extractall(site)
    (site / "check.html").write_text('<script src="webdemo/tf.min.js"></script>')
    httpd = serve_folder(site)
    tab = page.context.new_page()  # a second tab: the app's tab keeps its session
    try:
        tab.goto(f"http://127.0.0.1:{httpd.server_address[1]}/check.html")
        probs = tab.evaluate(
            """async (pixels) => {
                const model = await tf.loadGraphModel('tfjs_model/model.json');
                const y = model.predict(tf.tensor4d(pixels, [1, 28, 28, 1]));
                return Array.from(await y.data());
            }""",
            pixels.astype(float).ravel().tolist(),
        )
        names = json.loads((run_dir / "class_names.json").read_text())
        best = int(np.argmax(probs))
        assert names[best] == app_class
        assert abs(100 * probs[best] - float(app_percent)) <= 0.051
        # The web demo page itself loads its model and classifies the same pixels the same way.
        tab.goto(f"http://127.0.0.1:{httpd.server_address[1]}/webdemo/index.html")
        tab.wait_for_function("() => window.cnnStudio && window.cnnStudio.ready", timeout=60_000)
        demo = tab.evaluate("(pixels) => window.cnnStudio.predictPixels(pixels)", pixels.astype(float).ravel().tolist())
        np.testing.assert_allclose(demo, probs, atol=1e-4)
    finally:
        tab.close()
        httpd.shutdown()

    # A ZIP of class folders, uploaded and trained on (same session: still the mnist preset, 2 epochs).
    b.navigate(page, "Dataset")
    b.select(page, "Source", "ZIP of class folders")
    archive = tmp_path / "pets.zip"
    archive.write_bytes(class_zip(make_class_files({"cats": 8, "dogs": 8, "fish": 8})))
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(str(archive))
    b.wait_for_app(page)
    b.expect_metric(page, "Classes", "3")
    b.expect_metric(page, "Images", "24")
    b.navigate(page, "Train")
    b.click_button(page, "start_training")
    page.wait_for_selector("h3:has-text('-zip-')", timeout=b.TIMEOUT_MS)  # the live view shows the new run
    page.wait_for_selector("text=Run finished after 2 epochs", timeout=b.TIMEOUT_MS)
    statuses = [json.loads((d / "status.json").read_text()) for d in b.run_dirs(workdir / "runs")]
    assert sorted(s["dataset"] for s in statuses) == ["builtin:digits", "zip (pets.zip)"]
    assert all(s["status"] == "finished" for s in statuses)


def test_screenshots_are_pictures_of_the_pages():
    # Runs after the journey (same module): the README's screenshots exist and are real PNGs.
    for name in ("dataset", "model", "train", "evaluate", "export"):
        image = Image.open(io.BytesIO((SHOTS / f"{name}.png").read_bytes()))
        assert image.format == "PNG" and image.width == 1400 and image.height >= 900
