"""Live page: the camera stream classified continuously in the browser with a run's TF.js model."""

import streamlit as st

from core.i18n import _
from ui.jobs import pick_run
from ui.live import live_view

st.title(_("Live"))
run = pick_run(
    "live_run", _("No trained run yet: train one on the Train page, then classify your camera with it here.")
)
live_view(run.run_id)
