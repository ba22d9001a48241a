"""Shared widgets: the sidebar pickers (model, dataset, input), the page context, and figure export.

Every page starts with `ctx = page_context()`: through app.py it returns what the router's sidebar
built in this run; run standalone (AppTest.from_file on one page) it draws the sidebar itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import ImageOps

from data import Dataset, DatasetError, InputError, LabelMatch, list_datasets, load_image, match_labels
from models import BUILTINS, HookedModel, ModelLoadError, TraceArrays, list_models
from models.adapter import check_labels
from models.trace import Batch
from ui import cache, links, state
from ui.cell_picker import CellGrid, cell_picker
from ui.navigation import use_router

LOAD_OTHER = "Load a model from a folder or hub id…"
OPEN_DATASET = "Open a folder or file…"
BROWSE_LABELS = {"index": "by index", "class": "by class", "name": "by file name"}
MAX_NAME_MATCHES = 200
SMALL_SAMPLE = 30  # below this many inputs (or with one class only) a view says its dataset scores are noisy
PRESENT_TOGGLE = "presenter_toggle"  # the toggle's own key: state.PRESENT outlives pages that do not draw it
PRESENT_FONT = 20  # presenter layout: figure font size (px), and the page's CSS below
PRESENT_LINE = 4  # presenter layout: line width of line plots (px)
PRESENT_TITLE = 24  # presenter layout: the longest axis title (characters) kept on one line
PRESENT_HEIGHT = 1.3  # presenter layout: a chart's height, times its normal height (room for the larger text)
# two clicks on a clickable chart closer than this are a double click, which clears the chart's selection and reruns
# (plotly's 500 ms made a quick click on a second head or patch one)
CLICK_DOUBLE_MS = 150
PRESENTER_CSS = """<style>
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.45rem; line-height: 1.5; }
[data-testid="stCaptionContainer"] p, [data-testid="stCaptionContainer"] { font-size: 1.25rem; }
[data-testid="stWidgetLabel"] p { font-size: 1.25rem; }
[data-testid="stHeading"] h1 { font-size: 3.4rem; }
[data-testid="stHeading"] h2, [data-testid="stHeading"] h3, [data-testid="stHeading"] h4 { font-size: 2.2rem; }
</style>"""


@dataclass
class PageContext:
    """The current model, dataset and input, as chosen in the sidebar.

    dataset: the chosen dataset split, which every dataset-level view samples; match: how its classes map
    to the model's; raw: the input as given (PIL image or string); label: its true class index (into the
    model's classes) when known; input_key: a string that identifies the input for caching; batch: the
    prepared input (B = 1)."""

    model: HookedModel
    model_name: str
    model_key: str
    dataset: Dataset
    match: LabelMatch
    raw: object
    label: int | None
    input_key: str
    batch: Batch
    caption: str
    notes: list[str] = field(default_factory=list)

    def sample_note(self, n: int, what: str = "") -> str:
        """One line for a view: which dataset and how many inputs it used, and the label-mapping status."""
        ds = self.dataset
        rows = ds.sample_rows(n)
        known = int((self.match.to_model(ds.labels[rows]) >= 0).sum())
        labels = (
            "unlabelled: targets are the model's predictions"
            if not ds.labelled
            else f"every input has a label {self.model.spec.name} knows"
            if known == len(rows)
            else f"{known} of {len(rows)} with a label {self.model.spec.name} knows; the others are scored against "
            "the model's own prediction"
        )
        drawn = f"all {len(ds)}" if len(rows) == len(ds) else f"a seeded sample of {len(rows)} of {len(ds)}"
        stratified = ", stratified by class" if ds.labelled and len(rows) < len(ds) else ""
        return f"{what or 'Inputs'}: {drawn} in {ds.name} ({ds.split}){stratified} · {labels}."

    def warn_if_small(self, n: int, what: str) -> None:
        """warn_small_sample for the dataset's sample of n inputs (their labels mapped to the model's classes)."""
        ds = self.dataset
        labels = self.match.to_model(ds.labels[ds.sample_rows(n)]) if ds.labelled else None
        warn_small_sample(min(n, len(ds)), labels, self.model.spec.n_classes, what)

    def trace(self) -> TraceArrays:
        """Cached activations of the current input (see ui.cache.trace_arrays)."""
        return cache.trace_arrays(self.model_key, self.input_key, self.model, self.batch)


def warn_small_sample(n: int, labels: np.ndarray | None, n_classes: int, what: str) -> None:
    """An st.warning when n inputs are too few for `what` (e.g. "these scores") to mean much: fewer than
    SMALL_SAMPLE, or labels [n] (model class indices, -1 = unknown; None = unlabelled) covering one class."""
    covered = 0 if labels is None else int(np.unique(labels[labels >= 0]).size)
    one_class = labels is not None and covered < min(2, n_classes)
    if n >= SMALL_SAMPLE and not one_class:
        return
    classes = "" if labels is None else f" covering {covered} of {n_classes} classes"
    st.warning(
        f"{n} inputs{classes} are too few for {what} to mean much: one input moves an accuracy by "
        f"{100 / max(n, 1):.0f} points"
        + (", and what matters for the missing classes is not measured" if one_class or 0 < covered < n_classes else "")
        + f". Raise the sample size (at least {SMALL_SAMPLE} inputs from several classes)."
    )


def page_context() -> PageContext | None:
    """The sidebar's model and input for this run (drawing the sidebar if app.py did not)."""
    drawn = st.session_state.pop(state.SIDEBAR_CONTEXT, None)  # (context,) when app.py drew the sidebar
    if drawn is not None:
        return drawn[0]
    use_router()
    return sidebar()


def sidebar() -> PageContext | None:
    """Draw the model, dataset and input pickers; returns None (after an st.error) if nothing usable is chosen."""
    with st.sidebar:
        st.markdown("### HeadScope")
        model, name = _model_picker()
        if model is None:
            return None
        _link_head(model.spec.n_layers, model.spec.n_heads)
        dataset, match = _dataset_picker(model, name)
        st.divider()
        return _input_picker(model, name, dataset, match)


def _link_head(n_layers: int, n_heads: int) -> None:
    """A link's layer and head (clamped to the model) select the head; the URL gets the selected head back."""
    layer, head = links.value("layer"), links.value("head")
    if layer is not None or head is not None:
        cur = state.selected_head()
        new_layer = links.clamp("layer", layer, 0, n_layers - 1) if layer is not None else None
        new_head = links.clamp("head", head, 0, n_heads - 1) if head is not None else None
        state.select_head(cur[0] if new_layer is None else new_layer, cur[1] if new_head is None else new_head)
    links.live("layer", lambda: str(state.selected_head()[0]))
    links.live("head", lambda: str(state.selected_head()[1]))


def _link_model(builtins: list[str]) -> None:
    """A link's model: a built-in name, or a folder / hub id typed into "load a model"; anything else is noted."""
    wanted = links.value("model")
    if not wanted:
        return
    if wanted in builtins:
        st.session_state[state.MODEL] = wanted
    elif "/" in wanted or Path(wanted).expanduser().exists():  # a folder or a hub id (owner/name)
        st.session_state[state.MODEL] = LOAD_OTHER
        st.session_state[state.CUSTOM_MODEL] = wanted
    else:
        links.note(
            f"model {wanted!r} is not a built-in model ({', '.join(builtins)}), a folder or a hub id; opened "
            f"{st.session_state.get(state.MODEL, builtins[0])}."
        )


def _model_picker() -> tuple[HookedModel | None, str]:
    builtins = list(list_models())
    _link_model(builtins)
    choice = st.selectbox(
        "Model",
        builtins + [LOAD_OTHER],
        key=state.MODEL,
        help="Built-in: " + "; ".join(f"{n}: {BUILTINS[n].description}" for n in builtins) + ". "
        "Built-in models work offline. Any Hugging Face ViT/DeiT image classifier or "
        "BERT-family encoder can be loaded from a local folder or a hub id.",
    )
    name = choice
    if choice == LOAD_OTHER:
        typed = st.text_input(
            "Folder or hub id",
            key=state.CUSTOM_MODEL,
            placeholder="/path/to/saved_model or google/vit-base-patch16-224",
        )
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
    st.caption(
        f"{spec.architecture} · {spec.n_layers} layers × {spec.n_heads} heads · width {spec.d_model} · "
        f"{len(spec.class_names)} classes · {model.device.type}"
    )
    if spec.head == "prompts":
        _label_editor(model, name)
    links.live("model", name)
    return model, name


def _label_editor(model: HookedModel, name: str) -> None:
    """Edit the label set of a prompt-head text model (one label per line)."""
    with st.expander("Class labels (prompt head)"):
        st.caption(
            f'Each label becomes the prompt "{model.prompt_template.format("<label>")}"; a text\'s class '
            "scores are its cosine similarities to those prompts."
        )
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


def _dataset_picker(model: HookedModel, name: str) -> tuple[Dataset, LabelMatch]:
    """The dataset every view samples: the model's bundled set (default), another bundled set of the same
    modality, a recently opened source, or a folder / table file / hub id typed by the user. A source that
    cannot be used gives an st.error and the default set is used instead."""
    spec = model.spec
    bundled = [d for d, modality in list_datasets().items() if modality == spec.modality]
    default = spec.dataset if spec.dataset in bundled else bundled[0]
    recent = [r["source"] for r in state.recent_datasets() if r["modality"] == spec.modality]
    options = [default] + [d for d in bundled if d != default] + [r for r in recent if r not in bundled]
    opened = st.session_state.get(f"{state.DATASET}_{name}")
    if opened and opened not in options and opened != OPEN_DATASET:  # opened, but the recent file is not writable
        options.append(opened)
    wanted = links.peek("dataset")
    if wanted and wanted not in options and Path(wanted).expanduser().exists():  # a link to the user's own data
        options.append(wanted)
    links.param("dataset", f"{state.DATASET}_{name}", options=options)
    choice = st.selectbox(
        "Dataset",
        options + [OPEN_DATASET],
        key=f"{state.DATASET}_{name}",
        format_func=lambda o: f"{o} (bundled)" if o in bundled else o,
        help="Every dataset-level view (statistics, importance, faithfulness, embeddings) runs on "
        "this dataset. Your own data: an image folder (class sub-folders give labels), a "
        ".csv/.tsv/.jsonl/.parquet table, a folder saved with `datasets`' save_to_disk, or "
        "a Hugging Face dataset id in your local cache.",
    )
    source = choice
    if choice == OPEN_DATASET:
        typed = st.text_input(
            "Folder, table file or hub id",
            key=state.CUSTOM_DATASET,
            placeholder="/data/imagenet/val or reviews.csv",
            on_change=_open_typed,
            args=(name, spec.modality),
        )
        source = typed.strip() or default
        if not typed.strip():
            st.info(
                "Type the path of an image folder or a table file (or a cached hub id) and press Enter. "
                f"Until then the views use {default}."
            )
    try:
        ds = cache.get_dataset(source, None)
        if len(ds.splits) > 1:
            links.param("split", f"{state.SPLIT}_{source}", options=ds.splits)
            split = st.selectbox("Split", ds.splits, index=ds.splits.index(ds.split), key=f"{state.SPLIT}_{source}")
            ds = cache.get_dataset(source, split)
        if ds.modality != spec.modality:
            raise DatasetError(f"{source} holds {ds.modality}s, but {spec.name} reads {spec.modality}s.")
    except DatasetError as e:
        st.error(f"{e} The views use {default} instead.")
        ds = cache.get_dataset(default, None)
    else:
        if source not in bundled:
            state.remember_dataset(source, ds.modality)
            st.button(
                "Re-read the files",
                key="dataset_reread",
                on_click=cache.get_dataset.clear,
                help="The listing is kept while the app runs; re-read it after adding, removing or changing files.",
            )
    match = match_labels(spec.class_names, ds.class_names)
    _dataset_status(ds, match)
    links.live("dataset", ds.source)
    links.live("split", ds.split if len(ds.splits) > 1 else None)
    return ds, match


def _open_typed(name: str, modality: str) -> None:
    """Text-input callback: a typed source that opens and fits the model becomes a recent dataset and the
    picker's choice (a source that fails stays typed, and the picker shows why)."""
    typed = st.session_state.get(state.CUSTOM_DATASET, "").strip()
    try:
        ok = bool(typed) and cache.get_dataset(typed, None).modality == modality
    except DatasetError:
        ok = False
    if ok:
        state.remember_dataset(typed, modality)
        st.session_state[f"{state.DATASET}_{name}"] = typed


def _dataset_status(ds: Dataset, match: LabelMatch) -> None:
    """Size, label mapping (with the table when a class did not match) and skipped files of the dataset."""
    st.caption(f"{len(ds)} {ds.modality} inputs · {match.summary()}.")
    if ds.class_names and (match.unmatched or match.ambiguous or match.how[0] != "name"):
        with st.expander(f"Label mapping: {len(match.matched)} matched, {len(match.unmatched)} unmatched"):
            if match.unmatched:
                st.caption(
                    "Unmatched classes (their inputs are scored against the model's own prediction): "
                    + ", ".join(match.unmatched[:30])
                    + (" …" if len(match.unmatched) > 30 else "")
                )
            if match.ambiguous:
                st.caption("Names that fit several model classes (the first is used): " + ", ".join(match.ambiguous))
            st.dataframe(match.table(), hide_index=True, height=200)
    if ds.problems:
        st.warning(f"{len(ds.problems)} file(s) or row(s) of {ds.name} were skipped.")
        with st.expander("Skipped files"):
            st.dataframe(pd.DataFrame(ds.problems, columns=["file", "reason"]), hide_index=True, height=200)


def _dataset_row(ds: Dataset) -> int:
    """Pick one input of the dataset: by index, by class (k-th input of a class) or by file name."""
    ways = ["index"] + (["class"] if ds.labelled else []) + (["name"] if ds.source not in list_datasets() else [])
    if links.peek("input") is not None:
        st.session_state[state.BROWSE] = "index"
    how = (
        st.radio("Browse", ways, format_func=BROWSE_LABELS.get, key=state.BROWSE, horizontal=True)
        if len(ways) > 1
        else "index"
    )
    if how == "class":
        present = [c for c in range(len(ds.class_names)) if (ds.labels == c).any()]
        c = st.selectbox("Class", present, format_func=lambda i: ds.class_names[i], key=f"input_class_{ds.key}")
        rows = np.flatnonzero(ds.labels == c)
        k = int(
            st.number_input(
                f"Input of class {ds.class_names[c]} ({len(rows)} inputs)",
                0,
                len(rows) - 1,
                0,
                key=f"input_class_index_{ds.key}_{c}",
            )
        )
        return int(rows[k])
    if how == "name":
        typed = st.text_input("File name contains", key=f"input_name_filter_{ds.key}").strip().lower()
        rows = [i for i, n in enumerate(ds.names) if typed in n.lower()][:MAX_NAME_MATCHES]
        if not rows:
            st.warning(f"No file name contains {typed!r}; showing the first input.")
            return 0
        return int(
            st.selectbox(
                f"File ({len(rows)} shown)", rows, format_func=lambda i: ds.names[i], key=f"input_name_{ds.key}"
            )
        )
    links.param("input", f"{state.INDEX}_{ds.key}", lo=0, hi=len(ds) - 1, parse=int)
    return int(
        st.number_input(
            f"Input of {ds.name} ({ds.split}, {len(ds)} inputs)", 0, len(ds) - 1, 0, key=f"{state.INDEX}_{ds.key}"
        )
    )


def _input_picker(model: HookedModel, name: str, ds: Dataset, match: LabelMatch) -> PageContext | None:
    spec = model.spec
    key = cache.model_key(name, st.session_state.get(state.LABELS, {}).get(name))
    sources = ["dataset", "upload" if spec.modality == "image" else "text"]
    labels = {"dataset": f"From {ds.name}", "upload": "Upload an image", "text": "Type a text"}
    _link_source(spec.modality)
    source = st.radio("Input", sources, format_func=labels.get, key=f"{state.SOURCE}_{spec.modality}", horizontal=True)
    if source == "dataset":
        idx = _dataset_row(ds)
        try:
            raw = ds.inputs[idx]
        except DatasetError as e:
            st.error(str(e))
            return None
        true = int(ds.labels[idx])
        mapped = int(match.to_model([true])[0])
        label = mapped if mapped >= 0 else None
        label_text = f"label {ds.class_names[true]}" if true >= 0 else "no label"
        caption = (
            f"{ds.names[idx]} · {label_text}"
            if ds.source not in list_datasets()
            else f"{ds.name} #{idx} · {label_text}"
        )
        input_key = f"{ds.key}/{idx}"
        links.live("input", str(idx))
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
            if st.checkbox(
                "Invert (dark ink on light paper)",
                value=light_paper,
                key="input_invert",
                help="The model was trained on light strokes over a dark background.",
            ):
                raw = ImageOps.invert(raw.convert("L"))
                input_key += "/inverted"
    else:
        raw = st.text_area(
            "Text",
            "The patient was given insulin to control the level of glucose in the blood.",
            key=state.TEXT,
            height=120,
        )
        label, caption = None, "typed text"
        input_key = "text/" + hashlib.sha1(raw.encode()).hexdigest()
        links.live("text", raw)
    try:
        batch = model.prepare([raw])
    except InputError as e:
        st.error(str(e))
        return None
    _show_input(raw, batch, caption, spec.modality)
    for note in batch.notes:
        st.warning(note)
    return PageContext(model, name, key, ds, match, raw, label, input_key, batch, caption, list(batch.notes))


def _link_source(modality: str) -> None:
    """A link's text opens "Type a text" with it (text models); a link's input opens the dataset input."""
    key = f"{state.SOURCE}_{modality}"
    text = links.value("text")
    if text is not None and modality == "text":
        st.session_state[key], st.session_state[state.TEXT] = "text", text
    elif text is not None:
        links.note("text= is for text models; this model reads images.")
    elif links.peek("input") is not None:
        st.session_state[key] = "dataset"


def link_and_layout() -> None:
    """The sidebar's presenter toggle and "Copy link" (filled when the view has run and its state is known);
    applies the presenter layout's CSS."""
    with st.sidebar:
        st.divider()
        st.toggle(
            "Presenter layout",
            value=st.session_state[state.PRESENT],
            key=PRESENT_TOGGLE,
            on_change=lambda: st.session_state.update({state.PRESENT: st.session_state[PRESENT_TOGGLE]}),
            help="For a projector: larger type and figure fonts, thicker lines; collapse the sidebar with its "
            "arrow. A link with present=1 opens in this layout with the sidebar collapsed.",
        )
        slot = st.empty()
    if st.session_state[state.PRESENT]:
        st.html(PRESENTER_CSS)

    def show(link: str) -> None:  # opening the popover reruns the app, so a fragment's changes are in the link
        if not link:
            return
        with slot.container(), st.popover("Copy link", icon=":material/link:", width="stretch", on_change="rerun"):
            st.caption(
                "This address reopens the view as it is now: model, dataset, input, selected head and the view's "
                "options. Copy it with the button at the right of the box."
            )
            st.code(link, language=None, wrap_lines=True)

    links.show_link_with(show)


def stop_view() -> NoReturn:
    """st.stop() for a view: the link to its state is written first (nothing can be drawn after st.stop)."""
    links.end_run()
    st.stop()


def _show_input(raw, batch: Batch, caption: str, modality: str) -> None:
    if modality == "image":
        st.image(batch.images[0], caption=f"{caption} (as the model sees it)", width=160, clamp=True)
    else:
        st.caption(f"{caption} · {len(batch.tokens[0])} tokens")


# -- figures: every figure with its "how to read this" line and its numbers as a download ------------
def show_figure(
    fig,
    how_to_read: str,
    data: pd.DataFrame | dict[str, np.ndarray] | None,
    name: str,
    key: str | None = None,
    **chart_kwargs,
):
    """Plot `fig` with a one-line reading guide and a CSV (DataFrame) or NPZ (dict of arrays) download (none when
    empty / None: a `guided` frame around several figures gives them one of each).

    Returns what st.plotly_chart returns (the selection when on_select is given)."""
    if st.session_state.get(state.PRESENT):
        fig = _for_projector(fig)
    with guided(how_to_read, data, name, key or name):
        event = st.plotly_chart(
            fig,
            width="stretch",
            key=key,
            config={"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}
            | ({"doubleClickDelay": CLICK_DOUBLE_MS} if "on_select" in chart_kwargs else {}),
            **chart_kwargs,
        )
    return event


@contextlib.contextmanager
def guided(how_to_read: str, data: pd.DataFrame | dict[str, np.ndarray] | None, name: str, key: str):
    """A figure's frame (or several figures' frame, e.g. a chart and a picture side by side): its reading guide above
    (none when empty), the download of its numbers below (none when data is None); the download's key is dl_<key>."""
    if how_to_read:
        st.caption(f"**How to read this:** {how_to_read}")
    yield
    if data is not None:
        download_button(data, name, key=f"dl_{key}")


def _for_projector(fig) -> go.Figure:
    """A copy of `fig` (figures may be cached) with the presenter layout's larger fonts, thicker lines and more
    height. Every text's size is set where it is drawn (axes, legend, subplot titles, colour bars), not only the
    figure's font: Streamlit's chart theme sets those sizes itself, and the figure's font alone reached none of them.
    A long axis title goes on two lines (one would not fit beside its axis at that size)."""
    fig = go.Figure(fig)
    fig.update_layout(font_size=PRESENT_FONT, legend_font_size=PRESENT_FONT, hoverlabel_font_size=PRESENT_FONT)
    for axis in (*fig.select_xaxes(), *fig.select_yaxes()):
        axis.update(tickfont_size=PRESENT_FONT, title_font_size=PRESENT_FONT, title_text=_two_lines(axis.title.text))
    fig.update_annotations(font_size=PRESENT_FONT)
    fig.update_traces(colorbar_tickfont_size=PRESENT_FONT, selector=lambda t: "colorbar" in t)
    if fig.layout.height:
        fig.update_layout(height=round(fig.layout.height * PRESENT_HEIGHT))
    fig.update_traces(line_width=PRESENT_LINE, selector=lambda t: t.type == "scatter" and "lines" in (t.mode or ""))
    return fig


def _two_lines(title: str | None) -> str | None:
    """A title longer than PRESENT_TITLE characters on one line broken at the space nearest its middle."""
    if not title or len(title) <= PRESENT_TITLE or "<br>" in title or " " not in title:
        return title
    at = min((i for i, c in enumerate(title) if c == " "), key=lambda i: abs(i - len(title) / 2))
    return f"{title[:at]}<br>{title[at + 1 :]}"


def download_button(data: pd.DataFrame | dict[str, np.ndarray], name: str, key: str | None = None) -> None:
    """A CSV (DataFrame) or NPZ (dict of arrays) download of a figure's numbers. The file is written only when
    the button is clicked (Streamlit's deferred download data), and the click does not rerun the page."""
    ext, mime, write = (
        ("csv", "text/csv", _csv) if isinstance(data, pd.DataFrame) else ("npz", "application/octet-stream", _npz)
    )
    st.download_button(
        f"Download {name}.{ext}", lambda: write(data), f"{name}.{ext}", mime, key=key or f"dl_{name}", on_click="ignore"
    )


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def no_model_message() -> None:
    """What a page shows when the sidebar has no usable model or input."""
    st.info("Pick a model and an input in the sidebar to start.")


def clicked_data(event) -> list | None:
    """The customdata of the first clicked point that has one in a chart's selection event, or None."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    return next((p["customdata"] for p in points if p.get("customdata") is not None), None)


def on_click(chart_key: str, apply):
    """An on_select callback for the chart with this key: apply(customdata) of the clicked point runs before the
    script reruns, so that one rerun draws what the click chose (a click that deselects does nothing)."""

    def callback() -> None:
        data = clicked_data(st.session_state.get(chart_key))
        if data is not None:
            apply(data)

    return callback


def on_head_click(chart_key: str):
    """An on_select callback: a click on a head's point (customdata layer, head, ...) selects that head."""

    def callback() -> None:
        data = clicked_data(st.session_state.get(chart_key))
        if data is not None:
            state.select_head(int(data[0]), int(data[1]))

    return callback


def show_cells(grid: CellGrid, selected, how_to_read: str, data, name: str, key: str, on_pick=None) -> None:
    """A cell picker (ui.cell_picker) with the selected (row, col) outlined, its reading guide and the downloads of
    its picture and numbers (as show_figure); a click on a pickable grid calls on_pick(row, col) before the rerun."""
    with guided(how_to_read, data, name, key):
        cell_picker(grid, selected, key, on_pick, name)


def show_pictures(grids: Sequence[CellGrid], how_to_read: str, data, name: str, key: str, per_row: int = 4) -> None:
    """Pictures (ui.cell_picker grids that pick nothing, a value per cell on hover) side by side, per_row to a
    row, with one reading guide and one download of their numbers (as show_figure)."""
    with guided(how_to_read, data, name, key):
        for i, grid in enumerate(grids):
            if i % per_row == 0:
                columns = st.columns(per_row)
            with columns[i % per_row]:
                title = re.sub(r"\W+", "_", grid.title).strip("_") or str(i)  # a file name's part
                cell_picker(grid, None, f"{key}_{i}", name=f"{name}_{title}")


def show_head_chart(build, content: tuple, head: tuple[int, int], how_to_read: str, data, name: str, key: str) -> None:
    """show_cells of a head grid (build() makes its ui.cell_picker.CellGrid for `content`, a key of plain values,
    kept with ui.cache.memo) with `head` outlined, where a click selects a head. A click outlines the cell in the
    browser at once; the grid stays drawn, and only a new picture or selection is sent to it."""
    grid = cache.memo(f"head_chart_{key}", content, build)
    show_cells(grid, head, how_to_read, data, name, key, state.select_head)


def synced(key: str, value) -> str:
    """Give the widget with this key `value` before it is drawn (when the value was chosen elsewhere: a click,
    another view); returns the key."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value
    return key


def head_picker(n_layers: int, n_heads: int, key: str) -> tuple[int, int]:
    """Layer and head number inputs bound to the shared selected head (state.HEAD): they show it, and a change
    selects the new head in a callback, so one run (of the page, or of the fragment the picker is in) draws it."""
    layer, head = state.selected_head()
    layer, head = min(layer, n_layers - 1), min(head, n_heads - 1)
    keys = (synced(f"{key}_layer", layer), synced(f"{key}_head", head))
    c1, c2 = st.columns(2)
    c1.number_input("Layer", 0, n_layers - 1, key=keys[0], on_change=_pick_head, args=keys)
    c2.number_input("Head", 0, n_heads - 1, key=keys[1], on_change=_pick_head, args=keys)
    return layer, head


def _pick_head(layer_key: str, head_key: str) -> None:
    state.select_head(st.session_state[layer_key], st.session_state[head_key])


def sample_size_picker(dataset_len: int, default: int, key: str, label: str = "Dataset sample size") -> int:
    """How many inputs of the sidebar's dataset to analyse; larger than the dataset is clamped to it with a note.
    A link sets it with n=."""
    links.param("n", key, lo=1, hi=dataset_len, parse=int)
    n = int(
        st.number_input(
            label,
            min_value=1,
            value=min(default, dataset_len),
            step=16,
            key=key,
            help=f"Inputs of the dataset chosen in the sidebar ({dataset_len} available): a seeded sample that "
            "takes each class in turn, so even a small sample covers the classes; a larger sample keeps the rows "
            "of a smaller one.",
        )
    )
    if n > dataset_len:
        st.warning(f"The dataset has {dataset_len} inputs; using all of them.")
        n = dataset_len
    return n


def lazy_tabs(names: list[str], key: str, scope, kept) -> tuple[dict, str, list[str]]:
    """st.tabs that rerun on a switch, so only what is drawn runs. Returns ({name: tab container}, the open tab's
    name, the names to draw this run): the open tab and, when this run follows the user's tab switch, the tabs of
    `kept` already opened in this `scope` (e.g. the model and dataset). Those stay drawn, hidden, while the user
    switches tabs, so going back to one is a switch in the browser instead of a redraw of its charts; any other run
    (a new input, say) draws the open tab only. The open tab is kept in session state under `key`."""
    switched, opened_key = f"{key}_switched", f"{key}_opened"
    containers = st.tabs(names, key=key, on_change=lambda: st.session_state.update({switched: True}))
    tabs = dict(zip(names, containers))
    open_tab = next((name for name, tab in tabs.items() if tab.open), names[0])
    opened = st.session_state.get(opened_key)
    if opened is None or opened[0] != scope:
        opened = (scope, set())
    opened[1].add(open_tab)
    st.session_state[opened_key] = opened
    after_switch = st.session_state.pop(switched, False)
    return (
        tabs,
        open_tab,
        [name for name in names if name == open_tab or (after_switch and name in kept and name in opened[1])],
    )
