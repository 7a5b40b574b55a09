"""Export page: not built yet (issue 6)."""

import streamlit as st

st.title("Export")
st.info("Coming next: this page is being built (issue 6). The Dataset page works now.")
