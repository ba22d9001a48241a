"""The sidebar's dataset and input pickers: the dataset every view samples, and the current input (a dataset
input by index, class or file name, an uploaded image, or a typed text)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
from PIL import ImageOps

from data import Dataset, DatasetError, InputError, LabelMatch, list_datasets, load_image, match_labels
from models import HookedModel, ModelSpec
from models.trace import Batch
from ui import cache, links, state
from ui.context import PageContext, images_of, tokens_of
from ui.params import DATASET, INPUT, SPLIT
from ui.text import excerpt, literal

OPEN_DATASET = "Open a folder or file…"
NO_LABEL = "(no labels)"
BROWSE_LABELS = {"index": "by index", "class": "by class", "name": "by file name"}
MAX_NAME_MATCHES = 200


def default_dataset(spec: ModelSpec) -> str:
    """The bundled set a model opens with: its own, else the first of its modality."""
    bundled = [d for d, modality in list_datasets().items() if modality == spec.modality]
    return spec.dataset if spec.dataset in bundled else bundled[0]


def dataset_picker(model: HookedModel, name: str) -> tuple[Dataset, LabelMatch]:
    """The dataset every view samples: the model's bundled set (default), another bundled set of the same
    modality, a recently opened source, or a folder / table file / hub id typed by the user. A source that
    cannot be used gives an st.error and the default set is used instead."""
    spec = model.spec
    bundled = [d for d, modality in list_datasets().items() if modality == spec.modality]
    default = default_dataset(spec)
    recent = [r["source"] for r in state.recent_datasets() if r["modality"] == spec.modality]
    options = [default] + [d for d in bundled if d != default] + [r for r in recent if r not in bundled]
    opened = st.session_state.get(DATASET.key_of(name))
    if opened and opened not in options and opened != OPEN_DATASET:  # opened, but the recent file is not writable
        options.append(opened)
    wanted = links.peek("dataset")
    if wanted and wanted not in options:  # a link to the user's own data
        if refused := state.outside_link_roots(wanted):
            links.value("dataset")
            links.note(f"dataset={wanted!r}: {refused}; not opened.")
        elif Path(wanted).expanduser().exists():
            options.append(wanted)
    DATASET.bind(name, options)  # a link opens one of these, not "Open a folder or file…"
    choice = DATASET.draw(
        scope=name, options=options + [OPEN_DATASET], format_func=lambda o: f"{o} (bundled)" if o in bundled else o
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
            split = SPLIT.draw(scope=source, options=ds.splits, index=ds.splits.index(ds.split))
            ds = cache.get_dataset(source, split)
        ds = _columns(ds, spec.modality)
        if ds.modality != spec.modality:
            raise DatasetError(f"{source} holds {ds.modality}s, but {spec.name} reads {spec.modality}s.")
    except DatasetError as e:
        st.error(f"{literal(str(e))} The views use {default} instead.")
        ds = cache.get_dataset(default, None)
    else:
        if source not in bundled:
            st.caption(f"Read as: {literal(ds.reading)}.")
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


def _columns(ds: Dataset, modality: str) -> Dataset:
    """A table's or `datasets` dataset's input and label columns, chosen in two selectboxes (default: the detected
    ones); the dataset read with the chosen columns. A choice that cannot be read gives an st.error, and the
    detected columns are used."""
    if not ds.columns:
        return ds
    columns = list(ds.columns)
    given = st.selectbox(
        "Text column" if modality == "text" else "Image column",
        columns,
        index=columns.index(str(ds.chosen["input"])),
        key=f"dataset_input_column_{ds.source}",
        help="The column of texts, or of image files (paths relative to the table, or a `datasets` Image column).",
    )
    label = st.selectbox(
        "Label column",
        [NO_LABEL, *columns],
        index=columns.index(str(ds.chosen["label"])) + 1 if ds.chosen["label"] is not None else 0,
        key=f"dataset_label_column_{ds.source}",
        help="The column of class names or class ids; without one, every input is scored against the model's "
        "own prediction.",
    )
    wanted = (f"{modality}_column", given), ("label_column", "" if label == NO_LABEL else label)
    if {"input": given, "label": wanted[1][1] or None} == ds.chosen:
        return ds
    try:
        return cache.get_dataset(ds.source, ds.split, wanted)
    except DatasetError as e:
        st.error(f"{literal(str(e))} The detected columns are used.")
        return ds


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
        st.session_state[DATASET.key_of(name)] = typed


def _dataset_status(ds: Dataset, match: LabelMatch) -> None:
    """Size, label mapping (with the table when a class did not match) and skipped files of the dataset."""
    st.caption(f"{len(ds)} {ds.modality} inputs · {literal(match.summary())}.")
    if ds.class_names and (match.unmatched or match.ambiguous or match.how[0] != "name"):
        with st.expander(f"Label mapping: {len(match.matched)} matched, {len(match.unmatched)} unmatched"):
            if match.unmatched:
                st.caption(
                    "Unmatched classes (their inputs are scored against the model's own prediction): "
                    + literal(", ".join(match.unmatched[:30]))
                    + (" …" if len(match.unmatched) > 30 else "")
                )
            if match.ambiguous:
                st.caption(
                    "Names that fit several model classes (left unmatched: name the folder by the class's WordNet "
                    "id or full name): " + literal("; ".join(match.fits()))
                )
            st.dataframe(match.table(), hide_index=True, height=200)
    if ds.problems:
        st.warning(f"{len(ds.problems)} file(s) or row(s) of {literal(ds.name)} were skipped.")
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
        matches = [i for i, n in enumerate(ds.names) if typed in n.lower()][:MAX_NAME_MATCHES]
        if not matches:
            st.warning(f"No file name contains {literal(repr(typed))}; showing the first input.")
            return 0
        return int(
            st.selectbox(
                f"File ({len(matches)} shown)", matches, format_func=lambda i: ds.names[i], key=f"input_name_{ds.key}"
            )
        )
    return int(
        INPUT.draw(scope=ds.key, hi=len(ds) - 1, label=f"Input of {ds.name} ({ds.split}, {len(ds)} inputs)", value=0)
    )


def input_picker(model: HookedModel, name: str, ds: Dataset, match: LabelMatch) -> PageContext | None:
    """The input picker (from the dataset, an upload or a typed text); the page context of the chosen input, or None
    (after an st.error or st.info) while there is none."""
    spec = model.spec
    key = cache.model_key(name, st.session_state.get(state.LABELS, {}).get(name))
    sources = ["dataset", "upload" if spec.modality == "image" else "text"]
    # fixed labels: a label that names the dataset makes a new widget when another dataset opens, shown unselected
    labels = {"dataset": "From the dataset", "upload": "Upload an image", "text": "Type a text"}
    _link_source(spec.modality)
    source = st.radio("Input", sources, format_func=labels.get, key=f"{state.SOURCE}_{spec.modality}", horizontal=True)
    if source == "dataset":
        idx = _dataset_row(ds)
        try:
            raw = ds.inputs[idx]
        except DatasetError as e:
            refused(literal(str(e)), f"Input {idx} of {literal(ds.name)} cannot be read: pick another one.")
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
            refused(None, "Upload an image in the sidebar, or choose **From the dataset**, to start.")
            return None
        data = up.getvalue()
        try:
            raw = load_image(data, up.name)
        except InputError as e:
            refused(literal(str(e)), "The uploaded file cannot be read: upload another or choose **From the dataset**.")
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
        refused(literal(str(e)), "This input cannot be analysed: pick or type another one.")
        return None
    _show_input(raw, batch, caption, spec.modality, shown_text=source == "dataset")
    for note in batch.notes:
        st.warning(literal(note))
    return PageContext(model, name, key, ds, match, raw, label, input_key, batch, caption, list(batch.notes))


def refused(error: str | None, for_the_page: str) -> None:
    """No usable input this run: an st.error in the sidebar (when error is given) and, for the page's
    `no_model_message`, what to do (both Markdown, user-supplied parts already escaped)."""
    if error:
        st.error(error)
    st.session_state[state.NO_CONTEXT] = f"{for_the_page} The sidebar says why." if error else for_the_page


def _link_source(modality: str) -> None:
    """A link's text opens "Type a text" with it (text models); a link's input opens the dataset input."""
    key = f"{state.SOURCE}_{modality}"
    text = links.value("text")
    if text is not None and modality == "text":
        st.session_state[key], st.session_state[state.TEXT] = "text", text
    elif text is not None:
        links.note("text=… is for text models (this model reads images); ignored.")
    elif links.peek("input") is not None:
        st.session_state[key] = "dataset"


def _show_input(raw, batch: Batch, caption: str, modality: str, shown_text: bool) -> None:
    """The input as the model sees it (an image), or its caption and token count and, for a text not typed in the
    sidebar (shown_text), the text itself."""
    if modality == "image":
        st.image(images_of(batch)[0], caption=f"{literal(caption)} (as the model sees it)", width=160, clamp=True)
        return
    if shown_text:
        st.caption(literal(excerpt(raw)))
    st.caption(f"{literal(caption)} · {len(tokens_of(batch)[0])} tokens")


CHECK_INPUTS = 32  # inputs of a user's labelled dataset the model is tried on when it is opened
NEAR_CHANCE = 0.2  # accuracy below chance + this share of the way from chance to 100% is "near chance"


def near_chance_warning(model: HookedModel, name: str, ds: Dataset) -> None:
    """When the model scores near chance on a labelled user dataset (a sample of CHECK_INPUTS, the same computation
    as the Model view's), one sidebar warning that every view shows, with the likely reasons: the numbers of every
    view are about a model that does not recognise these inputs."""
    if ds.bundled or not ds.labelled:
        return
    key = cache.model_key(name, st.session_state.get(state.LABELS, {}).get(name))
    arrays = cache.sample_run("predictions", key, ds.key, CHECK_INPUTS, (), model, ds).arrays()
    known = arrays["label"] >= 0
    if known.sum() < 8:
        return
    accuracy = float((arrays["top_classes"][known, 0] == arrays["label"][known]).mean())
    chance = 1.0 / len(np.unique(arrays["label"][known]))
    if accuracy >= chance + NEAR_CHANCE * (1 - chance):
        return
    why = (
        "the images may not be prepared like its training data: their size and how they were enlarged (a digit "
        "enlarged with nearest-neighbour blocks reads badly to digits-vit, trained on 8x8 scans enlarged "
        "smoothly), the intensity scale, light strokes on dark or the reverse"
        if model.spec.modality == "image"
        else "the texts may differ from what it was trained on"
    )
    st.warning(
        f"{model.spec.name} gets {accuracy:.0%} on {int(known.sum())} inputs of {ds.name} (chance {chance:.0%}): "
        f"{why}; or the class names match but mean other things. Every view's numbers describe a model that does "
        "not recognise these inputs."
    )
