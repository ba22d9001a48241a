"""Home: what HeadScope is and what each view shows."""

import streamlit as st

from ui import state
from ui.navigation import VIEWS, available_views, use_router

drawn = st.session_state.pop(state.SIDEBAR_CONTEXT, None)  # (context or None,) when app.py ran first
if drawn is None:
    use_router()  # a fresh server's first request ran this file on its own: go through app.py
ctx = drawn[0] if drawn else None  # Home needs no model, so it does not wait for one
st.title("HeadScope")
st.markdown(
    "An interactive look inside transformer models: what each attention head does, and why the model "
    "predicted what it did. It runs offline on three built-in models: **digits-vit** and **shapes-vit** "
    "(Vision Transformers trained here on scikit-learn's handwritten digits and on synthetic shapes with known "
    "masks) and **minilm** (the all-MiniLM-L6-v2 sentence encoder); it also loads any Hugging Face ViT, DeiT "
    "or BERT-family model from a folder or the hub."
)
st.markdown(
    "**Start here:** pick a model and an input in the sidebar, then open a view. Your own data: choose "
    "**Dataset → Open a folder or file…** (an image folder with one sub-folder per class, a CSV/JSONL/"
    "Parquet table, or a `datasets` folder). Whole datasets: `python -m headscope precompute` (or a view's "
    "background run) stores the results, and the views show them at once."
)

present = {v.file for v in available_views()}
for view in VIEWS[1:]:
    with st.container(border=True):
        if view.file in present:
            st.page_link(str(view.path), label=view.title, icon=view.icon)
        else:
            st.markdown(f"**{view.title}** (coming soon)")
        st.caption(view.summary)

if ctx is not None:
    spec = ctx.model.spec
    st.caption(
        f"Current model: **{ctx.model_name}** ({spec.modality}, {spec.n_layers} layers × {spec.n_heads} "
        f"heads) · input: {ctx.caption}"
    )
