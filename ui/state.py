"""The session's one StudioConfig, and widgets bound to its fields by key.

Streamlit drops a widget's state when a page that does not draw it runs, so the config (a plain
session_state entry) is the lasting copy: each bound widget is seeded from it and written back to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.config import BOUNDS, StudioConfig, get_field, set_field

CONFIG_KEY = "studio_config"


def config() -> StudioConfig:
    if CONFIG_KEY not in st.session_state:
        st.session_state[CONFIG_KEY] = StudioConfig()
    return st.session_state[CONFIG_KEY]


def replace_config(new: StudioConfig) -> None:
    """Adopt a whole config (an uploaded file): every bound widget is re-seeded from it."""
    st.session_state[CONFIG_KEY] = new
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and "." in key and key.split(".")[0] in ("data", "augment", "model", "training"):
            del st.session_state[key]


def bound(widget: Callable[..., Any], label: str, key: str, **kwargs: Any) -> Any:
    """Draw ``widget`` with ``key`` = the config field path, seeded from and written back to the config."""
    if key not in st.session_state:
        st.session_state[key] = get_field(config(), key)
    field = key.rsplit(".", 1)[0] if key.rsplit(".", 1)[-1].isdigit() else key
    if field in BOUNDS and widget in (st.slider, st.number_input):
        # The config's own range, in the field's type: any config that validates fits its widget.
        kind = type(get_field(config(), key))
        kwargs["min_value"], kwargs["max_value"] = (kind(v) for v in BOUNDS[field])
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
