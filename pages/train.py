"""Train page: not built yet (issue 4)."""

import streamlit as st

st.title("Train")
st.info("Coming next: this page is being built (issue 4). The Dataset page works now.")
