"""The standalone HTML report speaks the language it was made in (issue #21).

Made in zh-CN (``core.i18n.using``, as a worker's request or the visitor's session sets it) it says
``<html lang="zh-CN">``, and Chromium shows its headings, table headers, results, figure titles, axes and hover
labels in Chinese: 混淆矩阵, not one English message of the catalog. Made in English it reads as before. Class
names stay the user's own in both.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from babel.messages.pofile import read_po

from core.evaluation import evaluate_run, load_test_data
from core.i18n import CATALOG_NAMES, _, catalog_path, using
from core.pictures import labelled_grid
from core.report import html_report

CJK = re.compile(r"[\u4e00-\u9fff]")
HEADINGS = ("Test results", "Confusion matrix", "Per-class metrics", "Learning curves", "Sample predictions", "Config")


def report_in(lang: str, run) -> str:
    with using(lang):
        evaluation = evaluate_run(run)
        images, labels, names = load_test_data(run)
        grid = labelled_grid(images[:6], [names[i] for i in labels[:6]], [True] * 6)
        return html_report(run, evaluation, grid)


@pytest.fixture(scope="module")
def english_messages() -> set[str]:
    """The catalog's English messages whose Chinese differs (not names such as "F1" or "Grad-CAM")."""
    with catalog_path("zh-CN").open("rb") as handle:
        catalog = read_po(handle, locale=CATALOG_NAMES["zh-CN"])
    found = set()
    for message in catalog:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        found |= {i for i in ids if i and i not in strings}
    return found


def test_the_report_made_in_english_is_english(trained_run):
    text = report_in("en", trained_run)
    assert '<html lang="en">' in text
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in text
    assert "<th>precision</th>" in text and "Confusion matrix (row-normalized)" in text
    assert not CJK.search(text.split("<script")[0]), "no Chinese in an English report's page"


@pytest.fixture(scope="module")
def chinese_page(trained_run, tmp_path_factory):
    """The report made in zh-CN, open in Chromium (a zh-CN browser) with its figures drawn; page errors kept."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    path = tmp_path_factory.mktemp("report-zh") / "report.html"
    path.write_text(report_in("zh-CN", trained_run), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(locale="zh-CN")
            page.errors = []
            page.on("pageerror", lambda err: page.errors.append(str(err)))
            page.goto(path.as_uri())
            page.wait_for_selector(".plotly-graph-div .main-svg", timeout=60_000)
            yield page
        finally:
            browser.close()


def assert_chinese(shown: dict[str, list[str]], english_messages: set[str]) -> None:
    """Each group of texts is there, and every text is Chinese: none an English message of the catalog."""
    for where, texts in shown.items():
        assert texts, f"the report shows its {where}"
        english = [t for t in texts if t.strip() in english_messages or (not CJK.search(t) and t != "F1")]
        assert not english, f"English in the Chinese report's {where}: {english}"


@pytest.mark.slow
def test_the_report_made_in_chinese_reads_chinese_in_chromium(trained_run, english_messages, chinese_page):
    page = chinese_page
    with using("zh-CN"):
        headings = [_(h) for h in HEADINGS]
        title = _("CNN Studio report: {name}").format(name=trained_run.name)
    assert "混淆矩阵" in headings and all(CJK.search(h) for h in headings), "the catalog translates the headings"
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    assert page.title() == title
    matrix = "#confusion-matrix"
    shown = {
        "headings": page.locator("h2").all_inner_texts(),
        "table headers": page.locator("#per-class th").all_inner_texts(),
        "results": page.locator("li").all_inner_texts(),
        "averages": page.locator("#per-class tr.avg td:first-child").all_inner_texts(),
        "confusion matrix titles": page.locator("#confusion-matrix .gtitle").all_text_contents(),
        "confusion matrix axes": page.locator(f"{matrix} .xtitle, {matrix} .ytitle").all_text_contents(),
    }
    assert shown["headings"] == headings
    assert all("混淆矩阵" in t for t in shown["confusion matrix titles"]), shown["confusion matrix titles"]
    page.locator("#confusion-matrix .nsewdrag").first.hover()
    page.wait_for_timeout(300)
    shown["confusion matrix hover"] = page.locator(".hoverlayer .hovertext").all_text_contents()
    assert_chinese(shown, english_messages)
    names = page.locator("#per-class tr:not(.avg) td:first-child").all_inner_texts()
    assert names == load_test_data(trained_run)[2], "class names stay the user's own"
    assert page.errors == []


@pytest.mark.slow
def test_the_learning_curves_of_a_chinese_report_are_chinese(english_messages, chinese_page):
    """The report's learning curves are core.charts.epoch_figure's (the Train page's figures): their titles and
    axes follow the language too."""
    curves = "#learning-curves"
    shown = {
        "learning curve titles": chinese_page.locator(f"{curves} .gtitle").all_text_contents(),
        "learning curve axes": chinese_page.locator(f"{curves} .xtitle, {curves} .ytitle").all_text_contents(),
    }
    assert_chinese(shown, english_messages)


def test_chinese_captions_are_drawn_with_chinese_glyphs():
    """The prediction grids (the report's samples, the Mistakes and Grad-CAM tabs) write their captions into
    the picture: Chinese words are drawn with a CJK font, not as the empty boxes of Pillow's own font."""
    from core.pictures import CJK_FONTS

    if not any(Path(p).is_file() for p in CJK_FONTS):
        pytest.fail(f"no CJK font installed (make install puts {CJK_FONTS[0]} there)")
    images = np.zeros((2, 28, 28, 1), np.uint8)
    grid = labelled_grid(images, ["预测：猫\n真实：狗", "真实：狗\n预测：猫"], [True, True], columns=2)
    half = grid.shape[1] // 2
    assert (grid[:, :half] != grid[:, half : 2 * half]).sum() > 50, "different words, different pixels"
