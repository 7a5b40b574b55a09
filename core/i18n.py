"""The interface's languages: gettext catalogs managed with Babel, looked up where a message is shown.

Messages are English sentences marked with ``_()`` (or ``ngettext`` where a count changes the words), whole
sentences with named placeholders filled after the lookup (``_("{name} has {count} images.").format(…)``), never
assembled from fragments: Chinese word order differs. ``N_()`` marks text declared before a language is known
(the config's field table, choice names); it is looked up with ``_()`` where it is shown.

The catalogs live in ``locales/<ll_CC>/LC_MESSAGES/messages.po`` (under version control) and are compiled to
``.mo`` in the install step (``make install`` runs ``pybabel compile``); ``tools/i18n.py`` extracts and updates
them. The language of a message is the caller's: a context variable set for a request (the CLI, a worker's
request, a training job), else what the app registered with :func:`set_resolver` (the visitor's choice), else
English. Numbers, percentages and durations are formatted for that language's locale with Babel.
"""

from __future__ import annotations

import contextlib
import functools
import gettext as gettext_module
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path

from babel import Locale
from babel.dates import format_timedelta
from babel.numbers import format_decimal, format_percent

from core.errors import StudioError

LANGUAGES = {"en": "English", "zh-CN": "简体中文"}  # the language tag people see in ?lang= → its own name
DEFAULT_LANGUAGE = "en"
LANG_PARAM = "lang"  # the URL parameter that carries the language of a shared link
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
CATALOG_NAMES = {"zh-CN": "zh_CN"}  # language tag → gettext's folder name
BABEL_LOCALES = {"en": "en_US", "zh-CN": "zh_Hans_CN"}
LANG_ENV = "CNN_STUDIO_LANG"  # the CLI's language (else LANGUAGE / LC_ALL / LANG, as gettext reads them)

_current: ContextVar[str | None] = ContextVar("cnn_studio_language", default=None)
_resolver: Callable[[], str | None] | None = None


def normalize(tag: str | None) -> str | None:
    """The supported language a tag asks for: "zh", "zh_CN.UTF-8", "zh-Hans-CN" → "zh-CN"; "en-GB" → "en";
    None for anything else (traditional Chinese included: it has no catalog)."""
    if not tag:
        return None
    parts = tag.split(".")[0].replace("_", "-").lower().split("-")
    if parts[0] == "zh" and not {"tw", "hk", "mo", "hant"} & set(parts[1:]):
        return "zh-CN"
    if parts[0] == "en":
        return "en"
    return None


def preferred(tags: str | None) -> str | None:
    """The first supported language of an Accept-Language header or a list like "zh-CN,zh;q=0.9,en;q=0.8"."""
    weighted = []
    for i, part in enumerate((tags or "").split(",")):
        tag, _sep, quality = part.strip().partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            weight = 0.0
        weighted.append((-weight, i, tag.strip()))
    for _w, _i, tag in sorted(weighted):
        if normalize(tag):
            return normalize(tag)
    return None


def set_resolver(resolver: Callable[[], str | None] | None) -> None:
    """Where the language comes from when no request set one (the app: the visitor's session)."""
    global _resolver
    _resolver = resolver


def language() -> str:
    """The language of the message being shown now."""
    chosen = _current.get()
    if chosen is None and _resolver is not None:
        chosen = _resolver()
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


@contextlib.contextmanager
def using(lang: str | None) -> Iterator[None]:
    """Messages made inside speak ``lang`` (a worker's request, a job, a test)."""
    token = _current.set(normalize(lang) or DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _current.reset(token)


def cli_language() -> str:
    """The command line's language: CNN_STUDIO_LANG, else the environment's locale as gettext reads it (a locale
    without a catalog, say fr_FR, speaks English). A CNN_STUDIO_LANG the studio does not speak is a StudioError."""
    chosen = os.environ.get(LANG_ENV)
    if chosen and not normalize(chosen):
        raise StudioError(unknown_language(LANG_ENV, chosen))
    for variable in (LANG_ENV, "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return normalize(value.split(":")[0]) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def unknown_language(where: str, value: str) -> str:
    """The message for a language the studio has no catalog for (in English: that language is not understood)."""
    return f"{where}={value!r} is not a language of CNN Studio: use one of {', '.join(LANGUAGES)}."


def catalog_path(lang: str, suffix: str = ".po") -> Path:
    return LOCALE_DIR / CATALOG_NAMES[lang] / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@functools.cache
def translations(lang: str) -> gettext_module.NullTranslations:
    """The compiled catalog of a language; English is the message ids themselves.

    A missing or stale ``.mo`` (a checkout whose install step has not run since the ``.po`` changed) is
    compiled in memory from the ``.po``, so a translation is never silently out of date."""
    if lang not in CATALOG_NAMES:
        return gettext_module.NullTranslations()
    po, mo = catalog_path(lang), catalog_path(lang, ".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return gettext_module.GNUTranslations(handle)
    if not po.exists():
        return gettext_module.NullTranslations()
    import io

    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle, locale=CATALOG_NAMES[lang])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext_module.GNUTranslations(buffer)


def gettext(message: str) -> str:
    """``message`` in the current language (the message id itself when there is no translation)."""
    if not message:
        return message
    return translations(language()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of a message for ``count`` (English has two; Chinese one)."""
    return translations(language()).ngettext(singular, plural, count)


def N_(message: str) -> str:  # noqa: N802  gettext's name for "mark for extraction, look up later"
    """Mark a message for the catalog without looking it up (declared before the language is known)."""
    return message


_ = gettext


def babel_locale(lang: str | None = None) -> Locale:
    return Locale.parse(BABEL_LOCALES[lang or language()])


def number(value: float, digits: int | None = None) -> str:
    """A number for the locale: ``12,345`` / ``0.915``; ``digits`` fixes the decimals."""
    pattern = None if digits is None else ("#,##0." + "0" * digits if digits else "#,##0")
    return format_decimal(value, format=pattern, locale=babel_locale())


def percent(value: float, digits: int = 1) -> str:
    """A share as a percentage for the locale: ``91.5%``."""
    pattern = "#,##0." + "0" * digits + "%" if digits else "#,##0%"
    return format_percent(value, format=pattern, locale=babel_locale())


def duration(seconds: float) -> str:
    """A duration in words for the locale: ``45 seconds``, ``3 minutes`` / ``45秒钟``, ``3分钟``."""
    return format_timedelta(seconds, threshold=1.5, format="long", locale=babel_locale())


def short_duration(seconds: float) -> str:
    """A duration for a progress line: ``1:05`` under an hour, ``2:03:40`` above (the same in every language)."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
