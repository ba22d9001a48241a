"""Shared widgets: the sidebar pickers (model, input), the page context, and figure export.

Every page starts with `ctx = page_context()`: through app.py it returns what the router's sidebar
built in this run; run standalone (AppTest.from_file on one page) it draws the sidebar itself.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import streamlit as st
from PIL import ImageOps

from data import InputError, load_image
from models import BUILTINS, HookedModel, ModelLoadError, list_models
from models.adapter import check_labels
from models.trace import Batch
from ui import cache, state

LOAD_OTHER = "Load a model from a folder or hub id…"


@dataclass
class PageContext:
    """The current model and input, as chosen in the sidebar.

    raw: the input as given (PIL image or string); label: its true class index when known;
    input_key: a string that identifies the input for caching; batch: the prepared input (B = 1)."""

    model: HookedModel
    model_name: str
    model_key: str
    raw: object
    label: int | None
    input_key: str
    batch: Batch
    caption: str
    notes: list[str] = field(default_factory=list)

    def trace(self) -> dict[str, np.ndarray]:
        """Cached activations of the current input (see ui.cache.trace_arrays)."""
        return cache.trace_arrays(self.model_key, self.input_key, self.model, self.batch)


def page_context() -> PageContext | None:
    """The sidebar's model and input for this run (drawing the sidebar if app.py did not)."""
    _use_router()
    drawn = st.session_state.pop(state.SIDEBAR_CONTEXT, None)  # (context,) when app.py drew the sidebar
    return drawn[0] if drawn is not None else sidebar()


def _use_router() -> None:
    """Streamlit's legacy pages/ discovery runs a view without app.py when a fresh server's first request is
    /<view>; switch the server to app.py's st.navigation and rerun, which lands on the same view."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def sidebar() -> PageContext | None:
    """Draw the model and input pickers; returns None (after an st.error) if nothing usable is chosen."""
    with st.sidebar:
        st.markdown("### HeadScope")
        model, name = _model_picker()
        if model is None:
            return None
        st.divider()
        return _input_picker(model, name)


def _model_picker() -> tuple[HookedModel | None, str]:
    builtins = list(list_models())
    choice = st.selectbox("Model", builtins + [LOAD_OTHER], key=state.MODEL,
                          help="Built-in: " + "; ".join(f"{n}: {BUILTINS[n].description}" for n in builtins) + ". "
                               "Built-in models work offline. Any Hugging Face ViT/DeiT image classifier or "
                               "BERT-family encoder can be loaded from a local folder or a hub id.")
    name = choice
    if choice == LOAD_OTHER:
        typed = st.text_input("Folder or hub id", key=state.CUSTOM_MODEL,
                              placeholder="/path/to/saved_model or google/vit-base-patch16-224")
        if not typed.strip():
            st.info("Type a local folder (saved with save_pretrained) or a Hugging Face hub id, then press Enter.")
            return None, ""
        name = typed.strip()
    labels = st.session_state.get(state.LABELS, {}).get(name)
    try:
        model = cache.get_model(name, labels)
    except ModelLoadError as e:
        st.error(str(e))
        return None, name
    except InputError as e:
        st.error(f"The label set was refused: {e}")
        return None, name
    spec = model.spec
    st.caption(f"{spec.architecture} · {spec.n_layers} layers × {spec.n_heads} heads · width {spec.d_model} · "
               f"{len(spec.class_names)} classes · {model.device.type}")
    if spec.head == "prompts":
        _label_editor(model, name)
    return model, name


def _label_editor(model: HookedModel, name: str) -> None:
    """Edit the label set of a prompt-head text model (one label per line)."""
    with st.expander("Class labels (prompt head)"):
        st.caption(f'Each label becomes the prompt "{model.prompt_template.format("<label>")}"; a text\'s class '
                   "scores are its cosine similarities to those prompts.")
        st.text_area("One label per line", "\n".join(model.spec.class_names), key=f"labels_{name}")
        st.button("Apply labels", key=f"apply_labels_{name}", on_click=_apply_labels, args=(name,))
        error = st.session_state.pop(state.LABEL_ERROR, None)
        if error:
            st.error(error)


def _apply_labels(name: str) -> None:
    """Button callback: validate the typed labels and make them the model's label set."""
    text = st.session_state.get(f"labels_{name}", "")
    try:
        labels = tuple(check_labels(text.splitlines()))
    except InputError as e:
        st.session_state[state.LABEL_ERROR] = f"Labels not applied: {e}"
        return
    st.session_state[state.LABELS] = {**st.session_state.get(state.LABELS, {}), name: labels}


def _input_picker(model: HookedModel, name: str) -> PageContext | None:
    spec = model.spec
    key = cache.model_key(name, st.session_state.get(state.LABELS, {}).get(name))
    sources = ["dataset", "upload" if spec.modality == "image" else "text"]
    labels = {"dataset": f"Sample from {spec.dataset}" if spec.dataset else "Sample from a dataset",
              "upload": "Upload an image", "text": "Type a text"}
    default_dataset = spec.dataset or ("digits" if spec.modality == "image" else "prose")
    source = st.radio("Input", sources, format_func=labels.get, key=f"{state.SOURCE}_{spec.modality}",
                      horizontal=True)
    if source == "dataset":
        ds = cache.get_dataset(default_dataset, "test")
        idx = int(st.number_input(f"Sample of {default_dataset} (held-out split, {len(ds)} inputs)", 0,
                                  len(ds) - 1, 0, key=f"{state.INDEX}_{default_dataset}"))
        raw, label = ds.inputs[idx], int(ds.labels[idx])
        label_name = ds.class_names[label]
        label = spec.class_names.index(label_name) if label_name in spec.class_names else None
        caption = f"{default_dataset} #{idx} · label {label_name}"
        input_key = f"{default_dataset}/test/{idx}"
    elif source == "upload":
        up = st.file_uploader("Image (PNG, JPEG, BMP, GIF, WebP)", type=None, key="input_upload")
        if up is None:
            st.info("Upload an image to analyse it.")
            return None
        data = up.getvalue()
        try:
            raw = load_image(data, up.name)
        except InputError as e:
            st.error(str(e))
            return None
        label, caption = None, f"upload {up.name}"
        input_key = "upload/" + hashlib.sha1(data).hexdigest()
        if spec.channels == 1:  # e.g. digits-vit reads light ink on a dark background, like its training scans
            light_paper = float(np.asarray(raw.convert("L")).mean()) > 127
            if st.checkbox("Invert (dark ink on light paper)", value=light_paper, key="input_invert",
                           help="The model was trained on light strokes over a dark background."):
                raw = ImageOps.invert(raw.convert("L"))
                input_key += "/inverted"
    else:
        raw = st.text_area("Text", "The patient was given insulin to control the level of glucose in the blood.",
                           key=state.TEXT, height=120)
        label, caption = None, "typed text"
        input_key = "text/" + hashlib.sha1(raw.encode()).hexdigest()
    try:
        batch = model.prepare([raw])
    except InputError as e:
        st.error(str(e))
        return None
    _show_input(raw, batch, caption, spec.modality)
    for note in batch.notes:
        st.warning(note)
    return PageContext(model, name, key, raw, label, input_key, batch, caption, list(batch.notes))


def _show_input(raw, batch: Batch, caption: str, modality: str) -> None:
    if modality == "image":
        st.image(batch.images[0], caption=f"{caption} (as the model sees it)", width=160, clamp=True)
    else:
        st.caption(f"{caption} · {len(batch.tokens[0])} tokens")


# -- figures: every figure with its "how to read this" line and its numbers as a download ------------
def show_figure(fig, how_to_read: str, data: pd.DataFrame | dict[str, np.ndarray] | None, name: str,
                key: str | None = None, **chart_kwargs):
    """Plot `fig` with a one-line reading guide and a CSV (DataFrame) or NPZ (dict of arrays) download.

    Returns what st.plotly_chart returns (the selection when on_select is given)."""
    st.caption(f"**How to read this:** {how_to_read}")
    event = st.plotly_chart(fig, width="stretch", key=key, config={
        "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}, **chart_kwargs)
    if data is not None:
        download_button(data, name, key=f"dl_{key or name}")
    return event


def download_button(data: pd.DataFrame | dict[str, np.ndarray], name: str, key: str | None = None) -> None:
    """A CSV (DataFrame) or NPZ (dict of arrays) download of a figure's numbers."""
    if isinstance(data, pd.DataFrame):
        st.download_button(f"Download {name}.csv", data.to_csv(index=False).encode(), f"{name}.csv", "text/csv",
                           key=key or f"dl_{name}")
    else:
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: np.asarray(v) for k, v in data.items()})
        st.download_button(f"Download {name}.npz", buf.getvalue(), f"{name}.npz", "application/octet-stream",
                           key=key or f"dl_{name}")


def no_model_message() -> None:
    """What a page shows when the sidebar has no usable model or input."""
    st.info("Pick a model and an input in the sidebar to start.")


def clicked_head(event) -> tuple[int, int] | None:
    """(layer, head) of the cell clicked in a `ui.figures.head_grid` chart (st.plotly_chart on_select), or None."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for p in points:
        cd = p.get("customdata")
        if cd is not None and len(cd) >= 2:
            return int(cd[0]), int(cd[1])
    return None


def head_picker(n_layers: int, n_heads: int, key: str) -> tuple[int, int]:
    """Layer and head number inputs bound to the shared selected head (state.HEAD)."""
    layer, head = state.selected_head()
    layer, head = min(layer, n_layers - 1), min(head, n_heads - 1)
    c1, c2 = st.columns(2)
    new_layer = c1.number_input("Layer", 0, n_layers - 1, layer, key=f"{key}_layer_{layer}_{head}")
    new_head = c2.number_input("Head", 0, n_heads - 1, head, key=f"{key}_head_{layer}_{head}")
    if (new_layer, new_head) != (layer, head):
        state.select_head(new_layer, new_head)
        st.rerun()
    return int(new_layer), int(new_head)


def sample_size_picker(dataset_len: int, default: int, key: str, label: str = "Dataset sample size") -> int:
    """How many held-out inputs to analyse; larger than the dataset is clamped to it with a note."""
    n = int(st.number_input(label, min_value=1, value=min(default, dataset_len), step=16, key=key,
                            help=f"Inputs from the held-out split ({dataset_len} available), first n in order."))
    if n > dataset_len:
        st.warning(f"The dataset has {dataset_len} inputs; using all of them.")
        n = dataset_len
    return n


def progress_callback(text: str):
    """An st.progress bar and the plain `progress(fraction, message)` callable analyses take; call
    `.empty()` on the returned bar when done."""
    bar = st.progress(0.0, text=text)
    return bar, lambda frac, msg="": bar.progress(float(min(max(frac, 0.0), 1.0)), text=f"{text} {msg}".strip())
