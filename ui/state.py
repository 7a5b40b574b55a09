"""The session's one StudioConfig, and widgets built from its field table and bound to it by key.

Streamlit drops a widget's state when a page that does not draw it runs, so the config (a plain
session_state entry) is the lasting copy: each bound widget is seeded from it and written back to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import streamlit as st

from core.config import FIELDS, StudioConfig, field_info, field_paths, get_field, set_field
from core.errors import StudioError
from core.fields import FieldInfo, number_text, shown
from core.i18n import LANG_PARAM, _, language, translations
from core.links import RUN_PARAM, config_from_link, link_params

CONFIG_KEY = "studio_config"
LINK_PROBLEMS_KEY = "link_problems"
SECTIONS = tuple(dict.fromkeys(info.section for info in FIELDS.values()))
MAX_RADIO_CHOICES = 3
LIST_COLUMNS = 3  # list items (filters per block, units per dense layer) side by side


def config() -> StudioConfig:
    """The session's config; a new session (a first visit, a reload, a shared link) starts from its link."""
    if CONFIG_KEY not in st.session_state:
        params = st.query_params.to_dict()
        restored, problems = config_from_link(params)
        st.session_state[CONFIG_KEY] = restored
        st.session_state[LINK_PROBLEMS_KEY] = problems
        if params.get(RUN_PARAM):
            st.session_state.setdefault("selected_run", params[RUN_PARAM])
    return st.session_state[CONFIG_KEY]


def sync_link() -> None:
    """Keep the browser's URL equal to the session's link (its changed settings and chosen run), so a reload or a
    copied link opens the same state; and say once what a link had that could not be used. The entry calls it
    on every script run, before the page: widget changes reach the config in their callbacks, before the script.

    Why not the widgets' own ``bind="query-params"``: a widget is bound only while its page draws it, and a reload
    on the Train page must restore the dataset and model fields the Dataset and Model pages draw; the config
    (session state) is the lasting copy here, so the URL follows it."""
    cfg = config()
    for problem in st.session_state.pop(LINK_PROBLEMS_KEY, None) or []:
        st.toast(problem)
    wanted = link_params(cfg, st.session_state.get("selected_run"))
    wanted[LANG_PARAM] = language()  # a shared link opens in the sender's language
    if st.query_params.to_dict() != wanted:  # only a change goes to the browser
        st.query_params.from_dict(wanted)


def replace_config(new: StudioConfig) -> None:
    """Adopt a whole config (an uploaded file); call it before the page draws its widgets.

    The session's config object is updated in place, so a page that already holds it sees the new values. The
    keys of the widgets on screen are set to the new values rather than deleted: a deleted key leaves the browser
    showing (and on its next change sending back) the old value, which then overwrites the new config.
    """
    values = {path: get_field(new, path) for path in field_paths(new)}
    bound = [k for k in st.session_state.keys() if isinstance(k, str) and "." in k and k.split(".")[0] in SECTIONS]
    current = config()
    for section in dataclasses.fields(new):
        setattr(current, section.name, getattr(new, section.name))
    for key in bound:
        if key in values:
            st.session_state[key] = values[key]
        else:
            del st.session_state[key]


def config_file_sidebar() -> None:
    """Download the session's config as JSON, or restore one: a bad file says why and changes nothing.

    Call it before the page draws its widgets (a restored config reaches them in the same run)."""
    with st.sidebar:
        download = st.empty()  # drawn last, so that it offers a config restored in this run
        uploaded = st.file_uploader(_("Restore a config"), type=["json"], key="config_upload")
        if uploaded is not None and st.session_state.get("config_upload_id") != uploaded.file_id:
            st.session_state["config_upload_id"] = uploaded.file_id
            try:
                # Parsed and validated in full before anything changes: a bad file leaves the session as it was.
                restored = StudioConfig.from_json(uploaded.getvalue())
            except StudioError as err:
                st.error(f"{uploaded.name}: {err}")
            else:
                replace_config(restored)
                st.success(_("Restored the config from {file}.").format(file=uploaded.name))
        download.download_button(
            _("Download config (JSON)"),
            config().to_json(),
            file_name="cnn-studio-config.json",
            mime="application/json",
            key="config_download",
        )


def widget_kind(info: FieldInfo) -> str:
    """The widget a field gets: its spec's choice, else one that fits its type, choices and range."""
    spec = info.spec
    if spec.widget:
        return spec.widget
    if info.kind is bool:
        return "checkbox"
    if spec.choices:
        return "radio" if len(spec.choices) <= MAX_RADIO_CHOICES else "select"
    if spec.options:
        return "select_slider"
    if info.kind is list:
        return "number"
    if info.kind is str:
        return "text"
    return "slider"


def field_widget(path: str, label: str | None = None, **kwargs: Any) -> Any:
    """Draw the widget of a config field (``path`` is also its key), seeded from and written back to the config.

    Label, help, range, step, options and their names all come from the field table; ``label`` and
    keyword arguments (``on_change``, ``placeholder``…) override or add to them.
    """
    info = field_info(path)
    spec = info.spec
    kind = widget_kind(info)
    # The widget's default is always its current value (its state, else the config's). The browser forgets a
    # widget that a run did not draw (say while a ZIP is not uploaded yet) while the server keeps its state;
    # when it comes back the browser starts from the default, which otherwise is the slider's minimum.
    current = st.session_state[path] if path in st.session_state else get_field(config(), path)
    if label is None:
        label = _(spec.item).format(i=int(path.rsplit(".", 1)[1]) + 1) if path != info.path else info.label()
    help_text = info.help()
    if spec.low is not None and not spec.choices:
        help_text = _("{help} Allowed: {range}.").format(help=help_text, range=info.range_text())
    kwargs.setdefault("help", help_text)
    value_type = info.item_kind or info.kind
    if spec.choices and kind != "select_slider":
        kwargs["options"] = list(kwargs.get("options") or spec.choices)  # a page may offer fewer (roles)
        kwargs["index"] = kwargs["options"].index(current) if current in kwargs["options"] else 0
        if spec.names:
            # The language now, not when called: a test's AppTest formats options outside the session's run.
            words = translations(language())
            kwargs.setdefault("format_func", lambda v: words.gettext(spec.names[v]) if v in spec.names else str(v))
    else:
        kwargs["value"] = current
    if kind == "select_slider":
        kwargs["options"] = sorted({*(spec.choices or spec.options), current})
        if value_type is float:
            kwargs.setdefault("format_func", number_text)
    if kind in ("slider", "number"):
        kwargs["min_value"], kwargs["max_value"] = value_type(spec.low), value_type(spec.high)
        if spec.step is not None:
            kwargs.setdefault("step", value_type(spec.step))
    if kind == "radio":
        kwargs.setdefault("horizontal", True)
    widget = WIDGETS[kind]
    return _bind(widget, label, path, **kwargs)


def group_fields(group: str) -> list[FieldInfo]:
    """The fields of a page block that are in use now (their ``when`` holds), in declaration order."""
    return [info for info in FIELDS.values() if info.spec.group == group and _in_use(info)]


def _in_use(info: FieldInfo) -> bool:
    return shown(info, {path: get_field(config(), path) for path in info.spec.when or {}})


def field_group(group: str, columns: int = 1) -> None:
    """Draw every field of a block from the table, in declaration order, each only while it is in use (a field
    shown on a condition appears as soon as the widget it depends on changes); list fields as their used items."""
    slots = st.columns(columns) if columns > 1 else None
    drawn = 0
    for info in FIELDS.values():
        if info.spec.group != group or not _in_use(info):
            continue
        with slots[drawn % columns] if slots else contextlib.nullcontext():
            if info.kind is list:
                items = st.columns(LIST_COLUMNS)
                for i in range(get_field(config(), info.spec.count) if info.spec.count else len(info.default)):
                    with items[i % LIST_COLUMNS]:
                        field_widget(f"{info.path}.{i}")
            else:
                field_widget(info.path)
        drawn += 1


WIDGETS: dict[str, Callable[..., Any]] = {
    "checkbox": st.checkbox,
    "radio": st.radio,
    "select": st.selectbox,
    "select_slider": st.select_slider,
    "slider": st.slider,
    "number": st.number_input,
    "text": st.text_input,
}


def _bind(widget: Callable[..., Any], label: str, key: str, **kwargs: Any) -> Any:
    then = kwargs.pop("on_change", None)

    def sync() -> None:
        # Callbacks run at the start of the next script run, whichever page it is: a change followed at once
        # by a click on another page still reaches the config.
        set_field(config(), key, st.session_state[key])
        if then is not None:
            then()

    value = widget(label, key=key, on_change=sync, **kwargs)
    set_field(config(), key, value)
    return value
