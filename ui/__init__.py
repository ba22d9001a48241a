"""Streamlit-facing helpers: caching, session state, figures and shared widgets."""
