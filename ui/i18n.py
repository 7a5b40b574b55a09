"""The visitor's language: chosen once per session, switched in the sidebar, carried by the URL's ``?lang=``.

A new session takes the language of its link (``?lang=zh-CN``: a shared link opens in the sender's language),
else the browser's preferred language (``navigator.language``, else the Accept-Language header), else English.
The choice lives in session state beside the config, so switching never touches the dataset, model or run.
``core.i18n`` looks messages up in it through a resolver registered here.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.i18n import DEFAULT_LANGUAGE, LANG_PARAM, LANGUAGES, _, normalize, preferred, set_resolver, using

LANGUAGE_KEY = "ui_language"  # the session's language (lasting; the widget's own key may be dropped)
WIDGET_KEY = "lang"


def _session_language() -> str | None:
    """The language of the session whose script is running on this thread (None outside a script run)."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    try:
        return st.session_state.get(LANGUAGE_KEY)
    except Exception:  # noqa: BLE001  a thread with a context but no session (a test's): English
        return None


set_resolver(_session_language)


def first_language() -> str:
    """A new session's language: its link's, else the browser's, else English."""
    raw = st.query_params.get(LANG_PARAM)
    if normalize(raw):
        return normalize(raw)
    browser = normalize(st.context.locale) or preferred(st.context.headers.get("Accept-Language"))
    chosen = browser or DEFAULT_LANGUAGE
    if raw:  # a link with a language the studio does not speak: say so, in the language used instead
        with using(chosen):
            st.toast(
                _("The link's lang={value} was left out: use one of {languages}.").format(
                    value=raw[:40], languages=", ".join(LANGUAGES)
                )
            )
    return chosen


def choose_language() -> str:
    """The session's language, set on its first run; call it before anything is drawn."""
    if LANGUAGE_KEY not in st.session_state:
        st.session_state[LANGUAGE_KEY] = first_language()
    return st.session_state[LANGUAGE_KEY]


def _switched() -> None:
    st.session_state[LANGUAGE_KEY] = st.session_state[WIDGET_KEY]


def language_sidebar() -> None:
    """The sidebar's language switch (each language named in itself)."""
    current = choose_language()
    st.session_state[WIDGET_KEY] = current
    st.sidebar.selectbox(
        _("Language"),
        list(LANGUAGES),
        format_func=LANGUAGES.get,
        key=WIDGET_KEY,
        on_change=_switched,
        help=_("The language of the pages, the report and the web demo made from here."),
    )
