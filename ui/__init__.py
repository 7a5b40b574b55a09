"""Streamlit-side helpers shared by the pages: config binding, caching and shared sidebar bits."""
