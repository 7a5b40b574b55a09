"""Model page: not built yet (issue 3)."""

import streamlit as st

st.title("Model")
st.info("Coming next: this page is being built (issue 3). The Dataset page works now.")
