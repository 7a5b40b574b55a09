"""CNN Studio: build, train, evaluate and export image-classification CNNs in the browser."""

import streamlit as st

st.set_page_config(page_title="CNN Studio", page_icon="🧠", layout="wide")
st.navigation(
    [
        st.Page("pages/dataset.py", title="Dataset", icon="🖼️", default=True),
        st.Page("pages/model.py", title="Model", icon="🧱"),
        st.Page("pages/train.py", title="Train", icon="📈"),
        st.Page("pages/evaluate.py", title="Evaluate", icon="🎯"),
        st.Page("pages/export.py", title="Export", icon="📦"),
    ]
).run()
