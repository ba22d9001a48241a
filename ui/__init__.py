"""Streamlit-facing helpers: caching, session state, the sidebar, pickers, figures and their framing."""
