"""The exported web demo in headless Chromium (#14.3, #14.4): it classifies a live camera stream (a fake camera
playing a video made from test images), says clearly when the camera is refused, opens from file:// and from a
static server, and gives, for pictures that need resizing, the probabilities the app gives, as does the TF.js
snippet of the Export page run as shown."""

from __future__ import annotations

import functools
import http.server
import io
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.evaluation import load_run_model, load_test_data, predict_image, probabilities, run_config
from core.formats import REGISTRY
from tests.browser import CHROMIUM, CHROMIUM_ARGS

ATOL = 1e-4
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
UPSCALE = 8  # the camera's frames are 8x the model's size: the demo shrinks them as the app shrinks pictures

pytestmark = pytest.mark.slow


def unzip_demo(run, results, folder: Path) -> Path:
    with zipfile.ZipFile(run.path / results["webdemo"].path) as zf:
        zf.extractall(folder)
    return folder / "webdemo"


def write_y4m(path: Path, gray: np.ndarray, frames: int = 10) -> None:
    """A YUV4MPEG2 video of one grayscale picture: BT.601 studio-range luma, neutral chroma (I420 planes)."""
    luma = np.rint(16 + gray.astype(np.float64) * 219 / 255).astype(np.uint8)
    h, w = luma.shape
    chroma = np.full((h // 2, w // 2), 128, np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + luma.tobytes() + chroma + chroma)


def chromium(playwright, extra: list[str]):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + extra, headless=True)


def open_demo(browser, url: str):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url)
    page.wait_for_function("() => window.cnnStudio && window.cnnStudio.ready", timeout=60_000)
    return page, errors


def test_the_camera_stream_is_classified_continuously_as_keras_classifies_the_picture(digits_export, tmp_path):
    from playwright.sync_api import sync_playwright

    run, results = digits_export
    demo = unzip_demo(run, results, tmp_path)
    model = load_run_model(run)
    images, _, _ = load_test_data(run)
    expected = probabilities(model, images, logits=False)
    confident = [i for i in np.argsort(-expected.max(1)) if expected[i].max() > 0.9]
    chosen = [confident[0], next(i for i in confident if expected[i].argmax() != expected[confident[0]].argmax())]
    with sync_playwright() as p:
        for index in chosen:
            video = tmp_path / f"camera-{index}.y4m"
            write_y4m(video, np.kron(images[index][..., 0], np.ones((UPSCALE, UPSCALE), np.uint8)))
            browser = chromium(p, [*FAKE_CAMERA, f"--use-file-for-fake-video-capture={video}"])
            try:
                page, errors = open_demo(browser, (demo / "index.html").as_uri())  # from file://, offline
                page.locator("#camera-start").click()
                page.wait_for_function(
                    "() => window.cnnStudio.last && window.cnnStudio.last.source === 'camera'"
                    " && window.cnnStudio.last.frames >= 10",
                    timeout=60_000,
                )
                page.wait_for_function("() => /frames\\/s$/.test(document.getElementById('fps').textContent)")
                assert re.fullmatch(r"\d+\.\d frames/s", page.locator("#fps").text_content())
                last = page.evaluate("() => window.cnnStudio.last")
                shown = np.asarray(last["probabilities"])
                assert shown.argmax() == expected[index].argmax(), "the demo's top class for the frame is Keras's"
                names = page.locator("#bars span.name").all_text_contents()
                assert len(names) == 5 and names[0] == str(expected[index].argmax()), "top-5 bars, best first"
                # What the demo computed from the frame is what Keras computes from the same pixels.
                seen = np.asarray(last["pixels"], dtype=np.uint8).reshape(1, 28, 28, 1)
                np.testing.assert_allclose(shown, probabilities(model, seen, logits=False)[0], atol=ATOL)
                page.locator("#camera-stop").click()
                assert page.locator("#camera-status").text_content() == "Camera off."
                assert page.locator("#video").is_hidden() and errors == []
            finally:
                browser.close()


def test_a_refused_camera_is_said_clearly(digits_export, tmp_path):
    from playwright.sync_api import sync_playwright

    run, results = digits_export
    demo = unzip_demo(run, results, tmp_path)
    with sync_playwright() as p:
        browser = chromium(p, ["--use-fake-device-for-media-stream", "--deny-permission-prompts"])
        try:
            page, errors = open_demo(browser, (demo / "index.html").as_uri())
            page.locator("#camera-start").click()
            page.wait_for_function("() => document.getElementById('camera-status').className === 'refused'")
            message = page.locator("#camera-status").text_content()
            assert message.startswith("Camera access was refused.") and "drop a picture" in message
            assert page.locator("#camera-start").is_enabled() and page.locator("#camera-stop").is_disabled()
            page.locator("#file").set_input_files(str(demo.parent / write_picture(demo.parent, "photo.png", 1)))
            page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Prediction: ')")
            assert errors == []
        finally:
            browser.close()


def write_picture(folder: Path, name: str, seed: int) -> str:
    """A photo-like picture that needs resizing: smooth gradients with noise, in the format its name says."""
    rng = np.random.default_rng(seed)
    h, w = (200, 300) if name.endswith(".jpg") else (61, 97)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 64 * 4], -1) + rng.normal(0, 25, (h, w, 3))
    pixels = np.clip(base, 0, 255).astype(np.uint8)
    if "alpha" in name:
        pixels = np.dstack([pixels, rng.integers(0, 256, (h, w), dtype=np.uint8)])
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG" if name.endswith(".jpg") else "PNG")
    (folder / name).write_bytes(buffer.getvalue())
    return name


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def serve(folder: Path):
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize("which", ["digits", "shapes"])
def test_app_web_demo_and_tfjs_snippet_agree_on_pictures_that_need_resizing(which, request, tmp_path):
    """The same picture gives the same probabilities (1e-4) in the app's try-it, in the web demo (served by a
    static server) and in the Export page's TF.js snippet pasted into a page as shown: one resize everywhere."""
    from playwright.sync_api import sync_playwright

    run, results = request.getfixturevalue(f"{which}_export")
    demo = unzip_demo(run, results, tmp_path)
    model = load_run_model(run)
    shape, logits = tuple(model.input_shape[1:]), run_config(run).model.output == "logits"
    meta = {"input": {"shape": [1, *shape]}, "output": {"values": "logits" if logits else "probabilities"}}
    snippet = REGISTRY["tfjs"].snippets[0].code(meta)
    pictures = [write_picture(demo, name, seed) for seed, name in enumerate(["photo.jpg", "photo.png", "alpha.png"])]
    for picture in pictures:  # each picture as the snippet's photo.jpg, next to the demo's files
        case = demo / f"snippet-{picture.replace('.', '-')}"
        case.mkdir()
        for name in ("tf.min.js", "preprocess.js", "labels.txt", "model"):
            (case / name).symlink_to(demo / name)
        (case / "photo.jpg").write_bytes((demo / picture).read_bytes())
        page = f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{snippet}\n</body></html>\n'
        (case / "index.html").write_text(page, encoding="utf-8")
    server = serve(demo)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as p:
            browser = chromium(p, [])
            try:
                page, errors = open_demo(browser, f"{url}/index.html")
                for picture in pictures:
                    app, _ = predict_image(model, (demo / picture).read_bytes(), shape, logits)
                    page.evaluate("() => { window.cnnStudio.last = null; }")
                    page.locator("#file").set_input_files(str(demo / picture))
                    page.wait_for_function("() => window.cnnStudio.last && window.cnnStudio.last.source === 'file'")
                    shown = np.asarray(page.evaluate("() => window.cnnStudio.last.probabilities"))
                    np.testing.assert_allclose(shown, app, atol=ATOL, err_msg=f"web demo, {picture}")

                    snippet_page = browser.new_page()
                    snippet_page.on("pageerror", lambda err: errors.append(str(err)))
                    snippet_page.goto(f"{url}/snippet-{picture.replace('.', '-')}/index.html")
                    snippet_page.wait_for_function(
                        "() => / \\d\\.\\d{4}$/.test(document.getElementById('answer').textContent)"
                    )
                    label, probability = snippet_page.locator("#answer").text_content().rsplit(" ", 1)
                    names = load_test_data(run)[2]
                    assert label == names[int(app.argmax())], f"TF.js snippet, {picture}"
                    assert abs(float(probability) - app.max()) <= ATOL + 5e-5, "printed with 4 decimals"
                    snippet_page.close()
                assert errors == []
            finally:
                browser.close()
    finally:
        server.shutdown()


def _demo_files(run, result) -> dict[str, bytes]:
    with zipfile.ZipFile(run.path / result.path) as zf:
        return {name.removeprefix("webdemo/"): zf.read(name) for name in zf.namelist()}


def test_the_web_demo_speaks_the_language_it_was_made_in(trained_run, tmp_path):
    """#21: a web demo exported in zh-CN shows Chinese words only (buttons, status, camera messages, the run's
    line, the help) with <html lang="zh-CN">; its metadata.json and labels.txt are the English export's, byte for
    byte; exporting again in another language makes the web demo again, and only it."""
    from playwright.sync_api import sync_playwright

    from core.export import export_run, read_manifest
    from core.formats import camera_words, webdemo_words
    from core.i18n import using
    from tests.export_fixtures import copy_run

    run = copy_run(trained_run, tmp_path / "runs")
    with using("en"):
        english = export_run(run, ["keras", "webdemo"], compare=False)
        english_words = webdemo_words()
    keras_made = (run.path / english["keras"].path).stat().st_mtime_ns
    english_files = _demo_files(run, english["webdemo"])
    with using("zh-CN"):
        chinese = export_run(run, ["keras", "webdemo"], compare=False)
        words = webdemo_words()
    assert (run.path / chinese["keras"].path).stat().st_mtime_ns == keras_made, "a format without words is reused"
    assert read_manifest(run)["webdemo"].language == "zh-CN" and english["webdemo"].language == "en"
    files = _demo_files(run, chinese["webdemo"])
    for name in ("metadata.json", "labels.txt", "model.js", "camera.js", "demo.js"):
        assert files[name] == english_files[name], f"{name} is the same in every language"
    page_text = files["index.html"].decode("utf-8")
    assert '<html lang="zh-CN">' in page_text and "__" not in page_text.split("<body>")[1]
    assert '<html lang="en">' in english_files["index.html"].decode("utf-8")
    shown_words = {key: text for key, text in words.items() if key in camera_words() or key == "source"}
    assert all(words[k] != english_words[k] for k in shown_words), "every word of the demo has a translation"
    fragments = [part.strip() for w in english_words.values() for part in re.split(r"\{\w+\}", w)]
    for name in ("camera.js", "demo.js"):  # no word of their own: each comes from the words block
        literals = " ".join(re.findall(r'"[^"\n]*"|`[^`]*`', files[name].decode("utf-8")))
        assert not [f for f in fragments if len(f) > 3 and f in literals], f"English words in {name}"

    demo = tmp_path / "demo"
    for name, data in files.items():
        (demo / name).parent.mkdir(parents=True, exist_ok=True)
        (demo / name).write_bytes(data)
    write_picture(demo, "photo.png", 3)
    images, _labels, _names = load_test_data(run)
    video = tmp_path / "camera.y4m"
    write_y4m(video, np.kron(images[0][..., 0], np.ones((UPSCALE, UPSCALE), np.uint8)))
    english_visible = ["Start camera", "Pause", "Stop camera", "Full screen", "Model ready", "Drop a picture", "Camera"]
    english_visible += ["frames/s", "Model of run", "Runs entirely", "web demo", "Prediction", "Resume", "classes"]
    with sync_playwright() as p:
        browser = chromium(p, [*FAKE_CAMERA, f"--use-file-for-fake-video-capture={video}"])
        try:
            page, errors = open_demo(browser, (demo / "index.html").as_uri())
            assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
            assert page.title() == page.locator("h1").text_content() == "CNN Studio 网页演示"
            assert page.locator("#camera-start").text_content() == words["start"]
            assert page.locator("#status").text_content().startswith(words["readyGray"].split("{")[0])
            assert page.locator("#source").text_content() == words["source"].format(name=run.name, run_id=run.run_id)
            page.locator("#camera-start").click()
            page.wait_for_function("() => window.cnnStudio.last && window.cnnStudio.last.frames >= 3", timeout=60_000)
            assert page.locator("#camera-status").text_content() == words["cameraOn"]
            page.wait_for_function("() => document.getElementById('fps').textContent !== ''")
            fps = r"\d+\.\d" + re.escape(words["fps"].replace("{fps}", ""))
            assert re.fullmatch(fps, page.locator("#fps").text_content())
            page.locator("#camera-pause").click()
            assert page.locator("#camera-pause").text_content() == words["resume"]
            assert page.locator("#camera-status").text_content() == words["paused"]
            seen = [page.locator("body").inner_text()]
            page.locator("#camera-pause").click()
            page.locator("#camera-stop").click()
            assert page.locator("#camera-status").text_content() == words["cameraOff"]
            page.locator("#file").set_input_files(str(demo / "photo.png"))
            prefix = words["prediction"].split("{")[0]
            page.wait_for_function(f"() => document.getElementById('status').textContent.startsWith({prefix!r})")
            seen.append(page.locator("body").inner_text())
            for text in seen:
                assert re.search("[\u4e00-\u9fff]", text), "Chinese text is shown"
                assert not [w for w in english_visible if w in text], f"English words on the page: {text}"
            assert errors == []
        finally:
            browser.close()
