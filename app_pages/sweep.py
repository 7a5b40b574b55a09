"""Sweep page: search settings with Optuna over the project's config; every trial is a run in the history."""

import streamlit as st

from core.i18n import _
from ui.jobs import manager
from ui.state import config
from ui.sweep import pick_sweep, show_sweep, start_form

st.title(_("Sweep"))
st.caption(
    _(
        "Optuna's TPE sampler picks each trial's settings from the ranges below, on top of the Dataset and Model "
        "pages' settings; trials whose validation metric falls behind are pruned after an epoch. Trials wait for "
        "other training in this workspace, like any run, and appear in the Train page's history."
    )
)
workspace = manager().workspace
started = start_form(workspace, config())
if started:
    st.session_state["open_sweep"] = started
    st.session_state.pop("sweep_pick", None)
    st.rerun()
st.divider()
sweep_id = pick_sweep(workspace)
if sweep_id:
    show_sweep(workspace, sweep_id)
