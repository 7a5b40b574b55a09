"""The zh-CN catalog is complete, used, consistent with the glossary; messages follow the caller's language."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from core import i18n
from core.i18n import CATALOG_NAMES, _, catalog_path, using

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
GLOSSARY = ROOT / "locales" / "glossary.tsv"
PLACEHOLDER = re.compile(r"\{(\w*)[^{}]*\}")


def _ids(catalog) -> dict[str, object]:
    return {(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in catalog if m.id}


def _text(message) -> str:
    return message.string[0] if isinstance(message.string, tuple) else message.string


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """What `pybabel extract` finds in the code now (tools/i18n.py's settings)."""
    from i18n import extract  # tools/i18n.py

    target = extract(tmp_path_factory.mktemp("pot") / "messages.pot")
    with target.open("rb") as handle:
        return _ids(read_po(handle))


@pytest.fixture(scope="module")
def catalog():
    with catalog_path("zh-CN").open("rb") as handle:
        return _ids(read_po(handle, locale=CATALOG_NAMES["zh-CN"]))


def test_every_message_in_the_code_has_a_chinese_translation(template, catalog):
    missing = sorted(m for m in template if m not in catalog or not _text(catalog[m]).strip())
    assert not missing, (
        f"{len(missing)} messages lack a zh-CN translation (tools/i18n.py update, then fill): {missing[:20]}"
    )
    fuzzy = sorted(m for m in template if m in catalog and catalog[m].fuzzy)
    assert not fuzzy, f"fuzzy (unchecked) translations: {fuzzy[:20]}"


def test_every_translation_is_used_by_the_code(template, catalog):
    unused = sorted(set(catalog) - set(template))
    assert not unused, f"{len(unused)} translations no message in the code uses (tools/i18n.py update): {unused[:20]}"


def test_translations_keep_the_placeholders_of_their_message(catalog):
    wrong = {
        m: _text(message)
        for m, message in catalog.items()
        if _text(message) and sorted(PLACEHOLDER.findall(m)) != sorted(PLACEHOLDER.findall(_text(message)))
    }
    assert not wrong, wrong


def _glossary() -> list[tuple[str, list[str]]]:
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            english, chinese = line.split("\t")
            rows.append((english, chinese.split("|")))
    return rows


def test_the_catalog_says_each_glossary_term_with_its_chinese_word(catalog):
    """A learner meets the words of Chinese CNN tutorials, the same word for the same idea everywhere."""
    wrong = []
    for english, words in _glossary():
        pattern = re.compile(rf"\b{re.escape(english)}\b", re.I)
        for message_id, message in catalog.items():
            text = _text(message)
            if pattern.search(PLACEHOLDER.sub("", message_id)) and not any(w in text for w in words):
                wrong.append(f"{english} → {words[0]}: {message_id!r} → {text!r}")
    assert not wrong, "\n".join(wrong[:30])
    unused = [words[0] for english, words in _glossary() if not any(words[0] in _text(m) for m in catalog.values())]
    assert not unused, f"glossary terms the catalog never uses: {unused}"


def _binds_underscore(tree: ast.AST) -> list[int]:
    """Lines where a module binds ``_`` in a function or module scope (comprehensions have their own scope)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "_" and isinstance(node.ctx, ast.Store):
            found.append(node.lineno)
    comprehension_lines = {
        n.lineno
        for c in ast.walk(tree)
        if isinstance(c, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
        for gen in c.generators
        for n in ast.walk(gen.target)
        if hasattr(n, "lineno")
    }
    return [line for line in found if line not in comprehension_lines]


def test_no_module_that_translates_reuses_underscore_as_a_variable():
    """``x, _ = …`` in a function makes ``_`` local there, and its ``_("…")`` then fails at run time."""
    wrong = []
    for path in [*ROOT.glob("core/*.py"), *ROOT.glob("ui/*.py"), *ROOT.glob("app_pages/*.py")]:
        source = path.read_text()
        if "import" not in source or not re.search(r"from core\.i18n import .*\b_\b", source):
            continue
        lines = [n for n in _binds_underscore(ast.parse(source)) if "_ = gettext" not in source.splitlines()[n - 1]]
        wrong += [f"{path.relative_to(ROOT)}:{n}" for n in lines]
    assert not wrong, wrong


def test_language_tags_and_browser_preferences_map_to_the_two_languages():
    assert i18n.normalize("zh-CN") == i18n.normalize("zh_CN.UTF-8") == i18n.normalize("zh-Hans-CN") == "zh-CN"
    assert i18n.normalize("zh") == "zh-CN" and i18n.normalize("zh-TW") is None
    assert i18n.normalize("en-GB") == "en" and i18n.normalize("fr-FR") is None and i18n.normalize("") is None
    assert i18n.preferred("fr-FR,fr;q=0.9,zh-CN;q=0.8,en;q=0.7") == "zh-CN"
    assert i18n.preferred("en;q=0.5,zh;q=0.9") == "zh-CN"
    assert i18n.preferred("de,fr") is None


def test_numbers_percentages_and_durations_follow_the_locale():
    with using("en"):
        assert (i18n.number(12345), i18n.percent(0.915), i18n.duration(180)) == ("12,345", "91.5%", "3 minutes")
        assert _("Dataset") == "Dataset"
    with using("zh-CN"):
        assert i18n.number(12345) == "12,345" and i18n.percent(0.915) == "91.5%"
        assert i18n.duration(180) == "3分钟"
        assert _("Dataset") != "Dataset" and re.search(r"[\u4e00-\u9fff]", _("Dataset"))


def test_a_warm_workers_messages_speak_the_callers_language():
    from core.worker import run_in_worker

    with using("zh-CN"):
        said = run_in_worker(i18n.gettext, "Dataset", request="test", memory_mb=512)
    assert said == i18n.translations("zh-CN").gettext("Dataset") != "Dataset"


def test_the_command_line_speaks_chinese_when_asked(tmp_path):
    env = {"CNN_STUDIO_LANG": "zh-CN", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    shown = subprocess.run(
        [sys.executable, "-m", "core", "train", "--help"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0
    with using("zh-CN"):
        assert _("Learning rate") in shown.stdout and "Learning rate" not in shown.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "core", "train", "--training.epochs", "many", "--workspace", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "--training.epochs 'many'" in bad.stderr and re.search(r"[\u4e00-\u9fff]", bad.stderr), bad.stderr


def test_the_chinese_readme_settings_table_is_the_generated_one():
    from core.config import settings_table

    text = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert settings_table("zh-CN") in text
    assert "README.zh-CN.md" in (ROOT / "README.md").read_text()


def test_a_language_the_studio_does_not_speak_is_named_with_the_fix(tmp_path):
    env = {"CNN_STUDIO_LANG": "klingon", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    bad = subprocess.run(
        [sys.executable, "-m", "core", "train", "--workspace", str(tmp_path / "runs")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and not (tmp_path / "runs").exists()
    assert "CNN_STUDIO_LANG='klingon' is not a language of CNN Studio: use one of en, zh-CN." in bad.stderr
    # A locale without a catalog is an ordinary environment, not a mistake: the CLI speaks English.
    fine = subprocess.run(
        [sys.executable, "-m", "core", "train", "--help"],
        cwd=ROOT,
        env={**env, "CNN_STUDIO_LANG": "", "LANG": "fr_FR.UTF-8"},
        capture_output=True,
        text=True,
    )
    assert fine.returncode == 0 and "Learning rate" in fine.stdout


def _language_page():
    from ui.i18n import choose_language

    choose_language()


def test_a_link_with_an_unknown_language_says_so_and_opens_in_english():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(_language_page)
    app.query_params["lang"] = "xx-YY"
    app.run()
    assert not app.exception
    assert [t.value for t in app.toast] == ["The link's lang=xx-YY was left out: use one of en, zh-CN."]
    assert app.session_state["ui_language"] == "en"
