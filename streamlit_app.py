"""CNN Studio: build, train, evaluate and export image-classification CNNs in the browser."""

import streamlit as st

from core.i18n import _
from ui.access import identity_sidebar
from ui.i18n import choose_language, language_sidebar
from ui.jobs import sidebar_status
from ui.state import sync_link
from ui.workers import pool

st.set_page_config(page_title="CNN Studio", page_icon="🧠", layout="wide")
choose_language()  # before any text: the link's language, else the browser's (the sidebar switches it)
page = st.navigation(
    [
        st.Page("app_pages/dataset.py", title=_("Dataset"), icon=":material/photo_library:", default=True),
        st.Page("app_pages/model.py", title=_("Model"), icon=":material/account_tree:"),
        st.Page("app_pages/train.py", title=_("Train"), icon=":material/monitoring:"),
        st.Page("app_pages/sweep.py", title=_("Sweep"), icon=":material/tune:"),
        st.Page("app_pages/evaluate.py", title=_("Evaluate"), icon=":material/fact_check:"),
        st.Page("app_pages/export.py", title=_("Export"), icon=":material/download:"),
        st.Page("app_pages/live.py", title=_("Live"), icon=":material/videocam:"),
    ]
)
sync_link()  # the URL carries the session's settings and run: a reload or a shared link restores them
language_sidebar()
sidebar_status()  # every page's sidebar shows a running job's progress
identity_sidebar()  # on a server with roles: who you are and what you may do
pool()  # the warm TensorFlow workers start with the first visitor (the web process never imports it)
page.run()
