"""The app in 简体中文 in headless Chromium: chosen from the browser's language and from ``?lang=zh-CN``, every
page without an English message of the catalog, the sidebar switch keeps the session, and the README's Chinese
screenshots (docs/screenshots/zh-CN) are taken here."""

from __future__ import annotations

import re
import shutil
import time

import pytest
from babel.messages.pofile import read_po

from core.i18n import CATALOG_NAMES, _, catalog_path, using
from tests import browser as b

pytestmark = pytest.mark.slow
SHOTS = b.ROOT / "docs" / "screenshots" / "zh-CN"
PAGES = ("Dataset", "Model", "Train", "Sweep", "Evaluate", "Export", "Live")
PLACEHOLDER = re.compile(r"\{\w*[^{}]*\}")
HAN = re.compile(r"[\u4e00-\u9fff]")


def zh(message: str) -> str:
    with using("zh-CN"):
        return _(message)


def english_phrases() -> list[str]:
    """The catalog's English texts a Chinese page must not show: each literal stretch of a message id (between
    its placeholders) of two words or more, whose translation differs from it."""
    with catalog_path("zh-CN").open("rb") as handle:
        catalog = read_po(handle, locale=CATALOG_NAMES["zh-CN"])
    phrases = set()
    for message in catalog:
        if not message.id:
            continue
        message_id = message.id[0] if isinstance(message.id, tuple) else message.id
        text = message.string[0] if isinstance(message.string, tuple) else message.string
        if not text or text == message_id:
            continue
        for stretch in PLACEHOLDER.split(message_id):
            stretch = stretch.strip(" .,:;()–—-'\"")
            if len(stretch) >= 10 and len(re.findall(r"[A-Za-z]{2,}", stretch)) >= 2:
                phrases.add(stretch)
    return sorted(phrases)


def shown_text(page) -> str:
    """Everything the page shows as text: the document, chart (SVG) text, and its frames (components)."""
    texts = [
        page.evaluate(
            "() => document.body.innerText + '\\n' + [...document.querySelectorAll('svg text')]"
            ".map(t => t.textContent).join('\\n')"
        )
    ]
    for frame in page.frames[1:]:
        try:
            texts.append(frame.evaluate("() => document.body ? document.body.innerText : ''"))
        except Exception:  # a frame that went away meanwhile
            pass
    return "\n".join(texts)


@pytest.fixture(scope="module")
def server(tmp_path_factory, trained_run):
    tmp = tmp_path_factory.mktemp("zh")
    shutil.copytree(trained_run.path, tmp / "runs" / trained_run.path.name)  # Evaluate, Export, Live need a run
    with b.streamlit_server(tmp / "runs", tmp / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=b.CHROMIUM, args=[*b.CHROMIUM_ARGS, "--lang=zh-CN"], headless=True
        )
        yield browser
        browser.close()


def new_page(chromium, locale: str):
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale=locale)
    page = context.new_page()
    page.set_default_timeout(b.TIMEOUT_MS)
    return page


def open_page(page, title: str) -> None:
    """Click a page in the sidebar by its Chinese title and wait until it has drawn its title."""
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=zh(title)).first.click()
    b.wait_for_app(page)
    page.locator("h1").filter(has_text=re.compile(HAN.pattern)).first.wait_for()


def english_on(page, phrases: list[str]) -> list[str]:
    text = shown_text(page)
    return [p for p in phrases if p in text]


def test_every_page_speaks_chinese_when_the_browser_prefers_it(server, chromium):
    phrases = english_phrases()
    assert len(phrases) > 300, "the catalog should hold the app's messages"
    page = new_page(chromium, "zh-CN")
    b.goto(page, server)  # no ?lang=: the browser's language decides
    assert "lang=zh-CN" in page.url, page.url  # and the URL now carries it, for a shared link
    for title in PAGES:
        open_page(page, title)
        if title == "Live":  # the camera page's words are inside its component
            page.wait_for_timeout(3000)
        time.sleep(1.0)
        b.wait_for_app(page)
        assert not english_on(page, phrases), f"{title}: English on the Chinese page: {english_on(page, phrases)}"
        assert len(HAN.findall(shown_text(page))) > 20, title
        b.screenshot(page, SHOTS / f"{title.lower()}.png")
    page.context.close()


def test_every_page_opened_by_a_link_with_lang_speaks_chinese_in_an_english_browser(server, chromium):
    phrases = english_phrases()
    page = new_page(chromium, "en-US")
    for title in PAGES:
        path = "" if title == "Dataset" else title.lower()
        b.goto(page, f"{server}/{path}?lang=zh-CN")  # each a new session: the link alone sets the language
        page.locator("h1").filter(has_text=zh(title)).first.wait_for()
        time.sleep(1.0)
        b.wait_for_app(page)
        assert not english_on(page, phrases), f"{title}: English on the Chinese page: {english_on(page, phrases)}"
    page.context.close()


def test_a_link_with_lang_opens_in_chinese_and_the_switch_keeps_the_session(server, chromium):
    page = new_page(chromium, "en-US")  # an English browser: the link's language wins
    b.goto(page, f"{server}/?lang=zh-CN&data.source=builtin:digits")
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=zh("Dataset")).first.wait_for()
    b.expect_metric(page, zh("Classes"), "10")
    assert not english_on(page, english_phrases())

    # The session's settings survive the switch to English and back.
    b.select(page, zh("Language"), "English")
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Dataset").first.wait_for()
    b.expect_metric(page, "Classes", "10")
    assert "lang=en" in page.url and "data.source=builtin" in page.url, page.url
    b.navigate(page, "Model")
    b.select(page, "Language", "简体中文")
    page.locator("h1").filter(has_text=zh("Model")).first.wait_for()
    assert "lang=zh-CN" in page.url and "data.source=builtin" in page.url, page.url
    open_page(page, "Dataset")
    b.expect_metric(page, zh("Classes"), "10")
    page.context.close()
