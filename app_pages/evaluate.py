"""Evaluate page: not built yet (issue 5)."""

import streamlit as st

st.title("Evaluate")
st.info("Coming next: this page is being built (issue 5). The Dataset page works now.")
