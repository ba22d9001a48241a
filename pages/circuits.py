"""Circuits view: direct logit attribution, activation patching, composition scores and head types."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import functools
import hashlib
from typing import cast

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from analysis.circuits import PARTS, direct_logit_attribution, patch_effects
from analysis.importance import scores_frame
from data.inputs import CORRUPTIONS, REGIONS, corrupt
from ui import cache, state
from ui.circuits_figures import (
    badge,
    composition_graph,
    grid_map,
    signed_grid,
    sublayer_figure,
    token_map,
    types_figure,
)
from ui.context import HEAD_TYPE_INPUTS
from ui.framing import show_figure, show_head_chart
from ui.links import stop_view
from ui.pickers import head_picker, sample_size_picker
from ui.sidebar import no_model_message, page_context
from ui.stored import stored_toggle

SECTIONS = ("Direct logit attribution", "Activation patching", "Composition", "Head types")

chosen = page_context()
st.title("Circuits")
if chosen is None:
    no_model_message()
    stop_view()
ctx = chosen
model, spec, ds = ctx.model, ctx.model.spec, ctx.dataset
L, H = spec.n_layers, spec.n_heads
st.caption(
    "What a head writes and who reads it: its direct part of the logit, what patching its output between two "
    "inputs does to the prediction, which heads of earlier layers it composes with, and what type of pattern it "
    "has. Click a head in a grid to select it in every view."
)
section = st.radio("Analysis", SECTIONS, horizontal=True, key="circ_section")


def head_chart(values: np.ndarray, title: str, how: str, name: str, key: str) -> None:
    """A clickable signed L x H grid of per-head values [L, H] with its reading guide and CSV."""
    selected = state.selected_head()
    show_head_chart(
        functools.partial(signed_grid, values, title),
        (title, values.shape, values.tobytes()),
        (min(selected[0], L - 1), min(selected[1], H - 1)),
        how,
        scores_frame({name: values}),
        name,
        key=key,
    )


def dataset_run(analysis: str, default_n: int | None, key: str):
    """The stored run of `analysis` for this model and dataset when there is one and its toggle is on, else the run
    over a sample of the size picked here (default_n; None: one input, for an analysis of the weights)."""
    _, stored = stored_toggle(ctx, analysis, "Show the {run}", f"{key}_stored")
    if stored is not None:
        return cache.stored_run(str(stored.root), stored.manifest.updated)
    n = 1 if default_n is None else sample_size_picker(len(ds), default_n, key=f"{key}_{spec.modality}")
    if default_n is not None:
        st.caption(ctx.sample_note(n))
    return cache.sample_run(analysis, ctx.model_key, ds.key, n, (), model, ds)


if section == SECTIONS[0]:
    target = st.selectbox(
        "Target class", ["predicted", *spec.class_names], key="circ_dla_class", help="the logit decomposed"
    )
    cls = None if target == "predicted" else spec.class_names.index(target)
    parts = cache.memo(
        "circ_dla", (ctx.model_key, ctx.input_key, cls), lambda: direct_logit_attribution(model, ctx.batch, cls)
    )
    name = spec.class_names[int(parts["target"][0])]
    st.markdown(
        f"Logit of **{name}**: {float(parts['logit'][0]):.3f} = "
        + " + ".join(f"{k} {float(parts[k][0].sum()):.3f}" for k in PARTS)
    )
    head_chart(
        parts["heads"][0].numpy(),
        f"direct part of the {name} logit",
        "each head's output read straight through the final norm (its scale frozen) and the classifier: red "
        "pushes the class up, blue down; the parts of every head, MLP, bias and the embeddings add up to the logit.",
        "dla",
        "circ_dla_grid",
    )
    st.subheader("Mean over a dataset sample, per class")
    run = dataset_run("direct_logit_attribution", 32, "circ_dla_n")
    table = run.tables()["per_class"]
    classes = list(dict.fromkeys(table["class"]))
    shown = st.selectbox("Class", classes, key="circ_dla_mean_class")
    values = table[table["class"] == shown].pivot(index="layer", columns="head", values="value").to_numpy()
    head_chart(
        values,
        f"mean direct part, class {shown}",
        "the mean over the inputs of this class.",
        "dla_mean",
        "circ_dla_mean",
    )

elif section == SECTIONS[1]:
    direction = st.radio(
        "Direction",
        ("denoise", "noise"),
        horizontal=True,
        key="circ_patch_dir",
        help="denoise: the clean input's activation into the corrupted run; noise: the other way",
    )
    if spec.modality == "text":
        corrupted: str | Image.Image = st.text_input(
            "Corrupted text (the same number of tokens as the current input)", value=str(ctx.raw), key="circ_corrupt"
        )
    else:
        c1, c2, c3 = st.columns([2, 1, 1])
        how = c1.selectbox(
            "Corrupted input",
            ("another input", *CORRUPTIONS),
            format_func=lambda k: {
                "another input": "another input of the dataset",
                "blur": "this image, a region blurred",
                "noise": "this image, a region with noise",
                "paste": "this image, a region pasted from another input",
            }[k],
            key="circ_corrupt_how",
        )
        region = c2.selectbox("Region", tuple(REGIONS), disabled=how == "another input", key="circ_corrupt_region")
        row = c3.number_input(
            "Other input (dataset row)",
            0,
            len(ds) - 1,
            value=1,
            disabled=how in ("blur", "noise"),
            key="circ_corrupt_row",
        )
        corrupted = (
            ds.inputs[int(row)]
            if how == "another input"
            else corrupt(cast(Image.Image, ctx.raw), how, region, donor=ds.inputs[int(row)] if how == "paste" else None)
        )
        st.image(corrupted, caption="the corrupted input", width=120)
    corrupted_key = (
        corrupted if isinstance(corrupted, str) else hashlib.sha1(np.asarray(corrupted).tobytes()).hexdigest()
    )
    try:
        effects = cache.memo(
            "circ_patch",
            (ctx.model_key, ctx.input_key, corrupted_key, direction),
            lambda: patch_effects(model, ctx.batch, model.prepare([corrupted]), direction=direction),
        )
    except ValueError as e:
        st.warning(str(e))
        stop_view()
    a, b = (spec.class_names[int(effects[k][0])] for k in ("clean_class", "corrupted_class"))
    st.caption(
        f"Metric: logit({a}) - logit({b}), normalised so that 0 = the corrupted run and 1 = the clean (current) "
        "input's run (Zhang & Nanda 2023)."
        + (" Both runs predict the same class: the metric says little." if a == b else "")
    )
    head_chart(
        effects["heads"][0].numpy(),
        f"{direction}: each head's output patched",
        "1 = patching this head alone restores the clean prediction (denoise) or keeps it (noise), 0 = no effect.",
        f"patching_{direction}",
        "circ_patch_grid",
    )
    show_figure(
        sublayer_figure(effects["attn"][0].numpy(), effects["mlp"][0].numpy(), "each block's sublayer outputs"),
        "the metric with one block's whole attention or MLP output patched.",
        pd.DataFrame({"attn": effects["attn"][0].numpy(), "mlp": effects["mlp"][0].numpy()}),
        f"patching_sublayers_{direction}",
        key="circ_patch_sub",
    )
    tokens = ctx.batch.tokens[0] if ctx.batch.tokens else [str(t) for t in range(effects["resid"].shape[-1])]
    resid = effects["resid"][0].numpy()
    show_figure(
        token_map(resid[:, : len(tokens)], tokens, "the residual stream entering each block, one token at a time"),
        "where the information that separates the two inputs sits: each cell patches one token's residual stream.",
        pd.DataFrame(resid),
        f"patching_resid_{direction}",
        key="circ_patch_resid",
    )
    if spec.grid is not None:
        block = st.slider("Block (patch grid)", 0, L - 1, value=0, key="circ_patch_block")
        show_figure(
            grid_map(resid[block, spec.n_prefix :].reshape(spec.grid), f"entering block {block}, per patch"),
            "the same effects for one block, each patch at its place in the image.",
            None,
            f"patching_grid_{direction}_{block}",
            key="circ_patch_gridmap",
        )
    _, stored = stored_toggle(ctx, "patching", "Show the {run}", "circ_patch_stored")
    if stored is not None:  # over a dataset: only a stored run (python -m headscope precompute --analyses patching)
        arrays = cache.stored_run(str(stored.root), stored.manifest.updated).arrays()
        if f"{direction}_heads" in arrays:
            mean = np.nanmean(np.asarray(arrays[f"{direction}_heads"], np.float64), 0)
            head_chart(
                mean,
                f"{direction}: mean over the stored pairs",
                "the mean over every stored pair.",
                f"patching_mean_{direction}",
                "circ_patch_mean",
            )

elif section == SECTIONS[2]:
    run = dataset_run("composition", None, "circ_comp")
    edges = run.tables()["edges"]
    top = float(edges["excess"].max()) if len(edges) else 0.0
    threshold = st.slider(
        "Show edges above the random baseline by at least", 0.0, max(top, 0.01), value=round(top / 2, 3), key="circ_thr"
    )
    show_figure(
        composition_graph(edges, L, H, threshold),
        "each line joins a head (left) to a head of a later layer that reads what it writes: into its queries (Q), "
        "keys (K) or values (V); the score ||W_OV R||/(||W_OV|| ||R||) from the weights alone, minus that of random "
        "matrices of the same shapes.",
        edges,
        "composition_edges",
        key="circ_comp",
    )

else:
    run = dataset_run("head_types", HEAD_TYPE_INPUTS, "circ_types_n")
    strongest = run.tables()["strongest"]
    show_figure(
        types_figure(strongest, L, H),
        "each head's strongest pattern type over the sample and its score (1 = the whole pattern is of that type): "
        + (
            "prev / next token, attention to [CLS] / [SEP] / punctuation, broad (high entropy)."
            if spec.modality == "text"
            else "positional (one relative offset explains it), local / global (attention distance), CLS."
        ),
        run.tables()["scores"],
        "head_types",
        key="circ_types",
    )
    layer, head = head_picker(L, H, key="circ_types_head")
    st.markdown(f"Layer {layer} head {head}: **{badge(strongest, layer, head)}**")
