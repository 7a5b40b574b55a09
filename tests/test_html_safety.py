"""HTML the project writes runs only its own script (issue #11 point 3).

A run renamed to close a <script> element and class folders named like markup are exported as a web demo
and written into the HTML report; both pages open in headless Chromium, the demo classifies an image under
its Content-Security-Policy, and nothing of the names runs: no dialog, no window.__pwned, the names shown
as the literal text they are.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
import zipfile
from pathlib import Path

import pytest

from core.htmlsafe import csp_meta, escape_script_text, json_block, normalize_script, script_hash, script_json
from tests.conftest import image_bytes

HOSTILE_RUN = "</script><script>window.__pwned=1;alert(1)</script>"
HOSTILE_CLASSES = [
    '<img src=x onerror="window.__pwned=2">',
    '"><svg onload=window.__pwned=3>',
    "line\u2028separator <!-- x -->",
]


# --- The escaping helper (fast) ---------------------------------------------------------------------------


def test_script_json_escapes_what_could_end_a_script_element():
    value = {"name": HOSTILE_RUN, "classes": HOSTILE_CLASSES, "amp": "a & b", "para": "x\u2029y"}
    text = script_json(value)
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text, f"{raw!r} left raw"
    assert "\\u003c/script\\u003e" in text and "\\u0026" in text and "\\u2028" in text and "\\u2029" in text
    assert json.loads(text) == value, "the escapes read back as the same characters"


def test_script_json_writes_json_that_javascript_parses():
    assert script_json({"nan": float("nan"), "inf": float("inf"), "ok": 0.5}) == '{"nan": null, "inf": null, "ok": 0.5}'
    assert escape_script_text('"<>&"') == '"\\u003c\\u003e\\u0026"'
    block = json_block("data", ["</script>"], class_name="figure")
    assert block == '<script type="application/json" id="data" class="figure">["\\u003c/script\\u003e"]</script>'


def test_csp_and_script_hashes():
    # The hash of the example in the CSP specification: script-src 'sha256-…' of "alert('Hello, world.');".
    assert script_hash("alert('Hello, world.');") == "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
    assert normalize_script("a\r\nb\rc") == "a\nb\nc"
    with pytest.raises(ValueError, match="</script"):
        normalize_script("x = '</SCRIPT>'")
    meta = csp_meta(script_src=["'self'"], connect_src=["'self'"], img_src=["data:"], style_src=["'self'"])
    assert meta.startswith('<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; ')
    assert "script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:" in meta


# --- A run with hostile names, exported and reported, opened in Chromium ---------------------------------


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A 1-epoch run on tiny images in class folders named like markup, renamed like a script break-out."""
    from core.config import StudioConfig, apply_preset
    from core.runs import load_run, rename_run
    from core.training import train_run

    data = tmp_path_factory.mktemp("hostile-data")
    for c, name in enumerate(HOSTILE_CLASSES):
        folder = data / name
        folder.mkdir()
        for i in range(12):
            (folder / f"img_{i}.png").write_bytes(image_bytes("RGB", size=(20, 20), seed=100 * c + i))
    config = StudioConfig()
    config.data.source, config.data.path = "folder", str(data)
    config.data.image_size = 20
    config.model = apply_preset("mnist")
    config.training.epochs = 1
    result = train_run(config, tmp_path_factory.mktemp("hostile-workspace"))
    assert result.status == "finished", result.error
    rename_run(Path(result.run_dir), HOSTILE_RUN)
    run = load_run(Path(result.run_dir))
    assert run.name == HOSTILE_RUN
    return run


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def serve_folder(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def watched_page(browser):
    """A tab that records dialogs (and dismisses them), CSP violations and page errors."""
    page = browser.new_page()
    seen = {"dialogs": [], "errors": []}

    def on_dialog(dialog):
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda err: seen["errors"].append(str(err)))
    page.add_init_script(
        """window.__violations = [];
        document.addEventListener("securitypolicyviolation",
            (e) => window.__violations.push(e.effectiveDirective + " " + e.blockedURI));"""
    )
    return page, seen


def assert_nothing_ran(page, seen):
    assert seen["dialogs"] == [], f"a dialog opened: {seen['dialogs']}"
    assert page.evaluate("() => typeof window.__pwned") == "undefined"


def csp_of(text: str) -> str:
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', text)
    assert match, "the page carries a Content-Security-Policy"
    return match.group(1)


@pytest.mark.slow
def test_web_demo_with_hostile_names_runs_only_its_own_script(hostile_run, browser, tmp_path):
    from core.export import export_run

    results = export_run(hostile_run, ["webdemo"], compare=False)
    assert results["webdemo"].error is None, results["webdemo"].error
    with zipfile.ZipFile(hostile_run.path / results["webdemo"].path) as zf:
        zf.extractall(tmp_path)
    text = (tmp_path / "webdemo" / "index.html").read_text(encoding="utf-8")
    policy = csp_of(text)
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "connect-src 'none'" in policy, "the model comes as data in model.js: the demo fetches nothing"
    assert HOSTILE_RUN not in text and "<img src=x" not in text and "\u2028" not in text
    assert not re.search(r"<script>", text), "no inline script: the metadata is a JSON block"
    meta = json.loads(re.search(r'id="metadata">(.*?)</script>', text, re.S).group(1))
    assert meta["source_run"]["name"] == HOSTILE_RUN and meta["class_names"] == sorted(HOSTILE_CLASSES)

    (tmp_path / "photo.png").write_bytes(image_bytes("RGB", size=(40, 30), seed=7))
    httpd = serve_folder(tmp_path)
    page, seen = watched_page(browser)
    try:
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/webdemo/index.html")
        page.wait_for_function("() => window.cnnStudio && window.cnnStudio.ready", timeout=60_000)
        assert page.locator("#source").text_content() == f"Model of run “{HOSTILE_RUN}” ({hostile_run.run_id})"
        page.locator("#file").set_input_files(str(tmp_path / "photo.png"))
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Prediction: ')")
        names = page.locator("#bars span.name").all_text_contents()
        assert sorted(names) == sorted(HOSTILE_CLASSES), "every class name shown as its literal text"
        status = page.locator("#status").text_content()
        assert re.fullmatch(r"Prediction: (.+) \(\d+\.\d%\)", status, re.S).group(1) in HOSTILE_CLASSES
        assert page.locator("#bars img, #bars svg, body > img").count() == 0, "no element made from a name"
        # The one refusal: the long.js in tf.min.js tries WebAssembly (which the policy does not allow) inside a
        # try/catch and falls back to its JavaScript code.
        violations = page.evaluate("() => window.__violations")
        assert set(violations) <= {"script-src wasm-eval"}, "the demo needs nothing else the CSP refuses"
        assert seen["errors"] == []
        assert_nothing_ran(page, seen)
    finally:
        page.close()
        httpd.shutdown()


@pytest.mark.slow
def test_web_demo_inline_script_would_be_refused(hostile_run, browser, tmp_path):
    """The CSP is real: an inline script slipped into the page is refused and reported."""
    from core.formats import WEBDEMO_TEMPLATE

    page_text = WEBDEMO_TEMPLATE.read_text(encoding="utf-8").replace(
        "</body>", "<script>window.__pwned=4</script><img src=x onerror=window.__pwned=5></body>"
    )
    (tmp_path / "index.html").write_text(page_text, encoding="utf-8")
    httpd = serve_folder(tmp_path)
    page, seen = watched_page(browser)
    try:
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        page.wait_for_timeout(500)
        assert_nothing_ran(page, seen)
        assert any(v.startswith("script-src") for v in page.evaluate("() => window.__violations"))
    finally:
        page.close()
        httpd.shutdown()


@pytest.mark.slow
def test_report_with_hostile_names_runs_only_its_own_script(hostile_run, browser, tmp_path):
    from core.evaluation import evaluate_run, load_test_data
    from core.pictures import labelled_grid
    from core.report import html_report

    ev = evaluate_run(hostile_run)
    images, labels, names = load_test_data(hostile_run)
    grid = labelled_grid(images[:3], [names[i] for i in labels[:3]], [True] * 3)
    text = html_report(hostile_run, ev, grid)
    policy = csp_of(text)
    assert "unsafe-eval" not in policy and re.search(r"script-src 'sha256-[^']+' 'sha256-[^']+';", policy)
    assert HOSTILE_RUN not in text and "<img src=x" not in text
    assert len(re.findall(r"<script>", text)) == 2, "two inline scripts: Plotly's library and the figure loader"
    blocks = re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', text, re.S)
    assert len(blocks) == 4 + 1, "four figures and the evaluation, as JSON data blocks"
    assert not [b for b in blocks if re.search("[<>&\u2028\u2029]", b)], "data blocks escaped"
    data = json.loads(re.search(r'id="evaluation-data">(.*?)</script>', text, re.S).group(1))
    assert data["class_names"] == names == sorted(HOSTILE_CLASSES)
    path = tmp_path / "report.html"
    path.write_text(text, encoding="utf-8")

    page, seen = watched_page(browser)
    try:
        page.goto(path.as_uri())  # how a downloaded report is opened: a local file
        page.wait_for_selector(".plotly-graph-div .main-svg", timeout=60_000)
        assert page.locator(".plotly-graph-div").count() >= 2, "Plotly drew the figures under the CSP"
        assert page.locator("h1").text_content() == HOSTILE_RUN
        assert page.title() == f"CNN Studio report: {HOSTILE_RUN}"
        cells = page.locator("#per-class tr td:first-child").all_text_contents()
        assert set(HOSTILE_CLASSES) <= set(cells), "class names shown as their literal text"
        page.locator(".plotly-graph-div .nsewdrag").first.hover()  # hover labels carry class names too
        page.wait_for_timeout(300)
        assert page.evaluate("() => window.__violations") == [], "Plotly needs nothing the CSP refuses"
        assert seen["errors"] == []
        assert_nothing_ran(page, seen)
    finally:
        page.close()

    # The CSP is real: a script slipped into the report (any inline script but its own two) is refused.
    tampered = tmp_path / "tampered.html"
    tampered.write_text(text.replace("</body>", "<script>window.__pwned=6</script></body>"), encoding="utf-8")
    page, seen = watched_page(browser)
    try:
        page.goto(tampered.as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg", timeout=60_000)
        assert_nothing_ran(page, seen)
        assert "script-src-elem inline" in page.evaluate("() => window.__violations")
    finally:
        page.close()


def test_the_web_demo_files_exist_and_hold_no_inline_script():
    from core.formats import WEBDEMO_FILES, WEBDEMO_TEMPLATE, webdemo_page

    for name in WEBDEMO_FILES:
        assert (WEBDEMO_TEMPLATE.parent / name).is_file()
    page = webdemo_page({"class_names": HOSTILE_CLASSES, "source_run": {"name": HOSTILE_RUN}})
    assert re.findall(r"<script[^>]*>", page) == [
        '<script type="application/json" id="words">',
        '<script type="application/json" id="metadata">',
        '<script src="csp-shim.js">',
        '<script src="tf.min.js">',
        '<script src="preprocess.js">',
        '<script src="model.js">',
        '<script src="camera.js">',
        '<script src="demo.js">',
    ]
    for name in ("demo.js", "camera.js", "preprocess.js"):
        assert "innerHTML" not in (WEBDEMO_TEMPLATE.parent / name).read_text()
