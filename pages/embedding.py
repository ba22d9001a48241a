"""Class-embedding view: tokens read through the model's own classifier after every block, identifiability of
the true class per block, per-input token class maps, 2-D maps of the embeddings per layer and separability."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import numpy as np
import pandas as pd
import streamlit as st

from analysis.embedding import (
    CHANCE,
    class_projection,
    summary_names,
    summary_projection,
    token_class_map,
    top_classes,
)
from analysis.units.embedding import as_sample_embedding
from models import ModelLoadError, Trace
from ui import cache, links, state
from ui.context import images_of, tokens_of, warn_small_sample
from ui.embedding_figures import (
    block_class_grid,
    class_map_picture,
    embedding_scatter,
    identifiability_boxes,
    selected_rows,
    separability_curves,
    token_class_strip,
)
from ui.framing import download_button, show_cells, show_figure
from ui.links import stop_view
from ui.params import BASELINE, BLOCK, EMBEDDING_WHERE, PROJ_LAYER, PROJECTION
from ui.pickers import sample_size_picker
from ui.sidebar import no_model_message, page_context
from ui.stored import background_panel, stored_toggle

chosen = page_context()
st.title("Class embedding")
if chosen is None:
    no_model_message()
    stop_view()
ctx = chosen  # a PageContext from here on, in the functions below too

m = ctx.model
spec = m.spec
L = spec.n_layers
summary_name, tokens_name = summary_names(m)
st.caption(
    f"Every token is read through the model's own final norm and classifier"
    f"{' (here: the label-prompt head)' if spec.head == 'prompts' else ''} after each block (the logit lens): "
    f"the sooner the true class ranks first, the earlier the network has decided. Identifiability "
    f"1 − rank/|C| is 1 when the true class ranks first and 0.5 by chance; the maps below show how the "
    f"{summary_name} embeddings of a dataset sample sort themselves by class, layer by layer."
)

where = EMBEDDING_WHERE.draw() or "resid"


def _tags(true: bool, predicted: bool) -> str:
    tags = [t for t, on in (("true", true), ("predicted", predicted)) if on]
    return f" ({', '.join(tags)})" if tags else ""


# -- current input ------------------------------------------------------------------------------------
@links.fragment
def current_input() -> None:
    st.subheader("The current input, block by block")
    arrays = ctx.trace()
    trace = Trace.from_arrays(arrays)
    scores = class_projection(m, trace, where)[:, 0]  # [L, T, C]
    summary = summary_projection(m, trace, where)[:, 0]  # [L, C]
    predicted = int(arrays.logits[0].argmax())
    default = ctx.label if ctx.label is not None else predicted
    c1, c2 = st.columns([1, 1])
    cls = c1.selectbox(
        "Class to track",
        range(spec.n_classes),
        index=default,
        key=f"emb_class_{ctx.input_key}",
        format_func=lambda c: spec.class_names[c] + _tags(c == ctx.label, c == predicted),
    )
    first = token_class_map(scores, spec.grid, cls, spec.n_prefix)
    numbers = {"token_scores": scores.cpu().numpy(), "summary_scores": summary.cpu().numpy(), "ranks_first": first}
    left, right = st.columns([1, 1])
    if spec.grid is not None:
        block = BLOCK.draw(c2, hi=L, value=L)
        with left:
            n_first = int(first[block - 1].sum())
            show_cells(
                class_map_picture(images_of(ctx.batch)[0], first[block - 1], spec.class_names[cls]),
                None,
                f"red patches already rank '{spec.class_names[cls]}' first after block {block} "
                f"({n_first} of {first[block - 1].size}); move the slider to watch the class spread.",
                numbers,
                "token_class_map",
                key="emb_token_map",
            )
    else:
        block = None
        tops = np.asarray(spec.class_names, dtype=object)[scores[:, spec.n_prefix :].argmax(-1).cpu().numpy()]
        with left:
            show_cells(
                token_class_strip(first, tokens_of(ctx.batch)[0][spec.n_prefix :], tops),
                None,
                f"red cells: the word token already ranks '{spec.class_names[cls]}' first after that block; "
                "hover for each token's top class.",
                numbers,
                "token_class_map",
                key="emb_token_map",
            )
    probs = summary.float().softmax(-1).cpu().numpy()
    with right:
        show_cells(
            block_class_grid(probs, spec.class_names, ctx.label),
            (block - 1, None) if block is not None else None,
            f"class probabilities of the {summary_name} token read after each block (★ = true class"
            + ("; the block on the left is outlined" if block is not None else "")
            + "); the last block is the model's prediction.",
            top_classes(summary, spec.class_names, k=min(3, spec.n_classes)),
            "top_classes_per_block",
            key="emb_top_classes",
        )


current_input()

# -- dataset sample -----------------------------------------------------------------------------------
ds = ctx.dataset
n_known = int((ctx.match.to_model(ds.labels) >= 0).sum())
RULE = (
    "identifiability, the maps' colours and separability use the model's own prediction as their class (marked "
    "'predicted' in the tables), which measures how early the model settles on its answer, not on the truth"
)
if ds.labelled and n_known == 0:
    st.warning(
        f"The model's classes ({', '.join(spec.class_names[:10])}{' …' if spec.n_classes > 10 else ''}) "
        f"do not include the classes of {ds.name} ({', '.join(ds.class_names[:10])}"
        f"{' …' if len(ds.class_names) > 10 else ''}), so no input's true class is known: {RULE}. Pick a dataset "
        "of the model's classes (or, for a prompt head, restore its label set) in the sidebar for true classes."
    )
elif not ds.labelled:
    st.info(
        f"{ds.name} has no labels: {RULE}. For true classes, open a folder with one sub-folder per class, or a "
        "table with a label column, in the sidebar."
    )
elif n_known < len(ds):
    st.info(
        f"{len(ds) - n_known} of the {len(ds)} inputs of {ds.name} have no label {spec.name} knows "
        f"({ctx.match.summary()}): for those, {RULE}."
    )

st.divider()
c1, c2 = st.columns([1, 2])
with c1:
    n = sample_size_picker(len(ds), min(len(ds), 1000), key="emb_n", label=f"Inputs from {ds.name} ({ds.split})")
with c2:
    baseline_on = BASELINE.draw()

stored, used = (
    stored_toggle(
        ctx,
        "embedding",
        "Use the {run}",
        "emb_use_stored",
        help="A precomputed embedding run (residual stream) of this model on this dataset: every input. "
        "Switch off to use the sample size above.",
    )
    if where == "resid"
    else (None, None)
)
if used is not None:
    run = cache.stored_run(str(used.root), used.manifest.updated)
    sample_key = f"{ds.key}|stored"
else:
    if stored is None and where == "resid":
        background_panel(ctx, "embedding", "the class embeddings")
    run = cache.sample_run("embedding", ctx.model_key, ds.key, n, (("where", where),), m, ds)
    sample_key = ds.key
arrays = run.arrays()
sample, rows, known = as_sample_embedding(m, arrays), arrays["row"], arrays["label"] >= 0
n = len(rows)
warn_small_sample(n, sample.labels, spec.n_classes, "identifiability and separability")
st.caption(
    f"{n} inputs of {ds.name} ({ds.split}); "
    + (
        "each scored against its true class."
        if known.all()
        else f"{int((~known).sum())} of them have no label {spec.name} knows and are scored against its prediction."
    )
)
baseline = None
if baseline_on:
    try:
        labels = st.session_state.get(state.LABELS, {}).get(ctx.model_name)
        rand = cache.get_random_init_model(ctx.model_name, labels)
        runs = cache.sample_run("embedding", ctx.model_key + "|random-init", ds.key, n, (("where", where),), rand, ds)
        baseline = as_sample_embedding(rand, runs.arrays())
    except ModelLoadError as e:
        st.warning(f"No random-init baseline for this model: {e}")

st.subheader("Identifiability per block")
rates = sample.ident.rates()
if baseline is not None:
    rates = pd.concat([rates, baseline.ident.rates().assign(group=lambda d: d.group + " (random init)")])
numbers = {
    "r_" + summary_name: sample.ident.summary,
    "r_tokens": sample.ident.tokens,
    "labels": sample.labels,
    "dataset_rows": rows,
}
if baseline is not None:
    numbers.update(
        {"random_init_r_" + summary_name: baseline.ident.summary, "random_init_r_tokens": baseline.ident.tokens}
    )
show_figure(
    identifiability_boxes(sample.ident.groups(), baseline.ident.groups() if baseline is not None else None),
    f"per block, the spread over {len(rows)} inputs of 1 − rank/|C| of the true class, for the "
    f"{summary_name} token and for the {tokens_name}; 1 = ranks first, dashed line = chance ({CHANCE}).",
    numbers,
    "identifiability",
    key="emb_ident",
)
last = rates[rates.block == L].set_index("group")
st.markdown("**Identifiable after the last block** (share whose true class ranks first)")
for col, (group, row) in zip(st.columns(len(last)), last.iterrows()):
    col.metric(group, f"{row['rate']:.0%}", help=f"Mean identifiability {row['mean r']:.2f} over {row['n']} tokens.")
with st.expander("Identifiability rate per block and group"):
    st.dataframe(
        rates,
        hide_index=True,
        width="stretch",
        column_config={"rate": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1)},
    )
    download_button(rates, "identifiability_rates", key="dl_emb_rates")


# -- embedding map ------------------------------------------------------------------------------------
@links.fragment
def embedding_map() -> None:
    st.subheader(f"Embedding map of the {summary_name} token")
    c1, c2 = st.columns([1, 2])
    method = PROJECTION.draw(c1)
    layer = PROJ_LAYER.draw(c2, hi=L, value=L)
    if method == "pca":
        mp = cache.embedding_map(ctx.model_key, sample_key, n, "pca", -1, 0, sample.embeddings)
        coords, axis = mp.coords[layer], "PC"
        note = (
            f"one PCA for all layers (explains {mp.explained.sum():.0%} of the variance of all layers "
            "together): positions compare across layers"
        )
    else:
        mp = cache.embedding_map(ctx.model_key, sample_key, n, method, layer, 0, sample.embeddings)
        coords, axis = mp.coords[0], PROJECTION.label_of(method)
        note = f"{PROJECTION.label_of(method)} is fitted per layer: axes and distances are not comparable across layers"
    predicted = sample.summary_scores[-1].argmax(-1)
    hover = cache.sample_hover_texts(sample_key, n, rows, ds)
    fig = embedding_scatter(
        coords,
        sample.labels,
        spec.class_names,
        hover,
        predicted,
        axis=axis,
        title=f"layer {layer}" + (" (embeddings)" if layer == 0 else f" (after block {layer})"),
    )
    table = pd.DataFrame(
        {
            "row": np.arange(len(rows)),
            "dataset_index": rows,
            "name": [ds.names[i] for i in rows],
            "x": coords[:, 0],
            "y": coords[:, 1],
            "label": [spec.class_names[c] + ("" if k else " (predicted)") for c, k in zip(sample.labels, known)],
            "predicted": [spec.class_names[c] for c in predicted],
        }
    )
    event = show_figure(
        fig,
        f"each point is one input's {summary_name} embedding at this layer, coloured by its "
        f"label; {note}. Drag a box (or pick the lasso in the mode bar) to list inputs.",
        table,
        f"embedding_map_{method}_layer{layer}",
        key="emb_map",
        on_select="rerun",
        selection_mode=("box", "lasso", "points"),
    )
    chosen = selected_rows(event)
    if not chosen:
        st.caption("No inputs selected.")
        return
    picked = table.iloc[chosen]
    st.markdown(
        f"**{len(chosen)} selected inputs** · labels: "
        + ", ".join(f"{k} ({v})" for k, v in picked.label.value_counts().items())
    )
    if spec.modality == "image":
        shown = chosen[:60]
        st.image(
            [np.asarray(ds.inputs[rows[i]].convert("RGB")) for i in shown],
            width=56,
            caption=[f"#{rows[i]} {table.label[i]}→{table.predicted[i]}" for i in shown],
        )
        if len(chosen) > len(shown):
            st.caption(f"First {len(shown)} shown; the download lists all {len(chosen)}.")
    else:
        picked = picked.assign(text=[ds.inputs[rows[i]] for i in chosen])
    st.dataframe(picked, hide_index=True, width="stretch", height=min(400, 40 + 35 * len(chosen)))
    download_button(picked, "selected_inputs", key="dl_emb_selected")


embedding_map()

# -- separability -------------------------------------------------------------------------------------
st.subheader("Separability per layer")
try:
    sep = cache.embedding_separability(ctx.model_key, sample_key, n, sample.embeddings, sample.labels)
    sep_base = (
        None
        if baseline is None
        else cache.embedding_separability(
            ctx.model_key + "|random-init", sample_key, n, baseline.embeddings, baseline.labels
        )
    )
except ValueError as e:
    st.warning(f"Separability needs a larger sample: {e}")
else:
    table = sep if sep_base is None else pd.concat([sep.assign(model="trained"), sep_base.assign(model="random init")])
    show_figure(
        separability_curves(sep, sep_base, spec.n_classes),
        f"how well the {summary_name} embeddings separate the classes at each layer: silhouette (cosine), "
        "leave-one-out kNN accuracy (cosine, k = 20) and a linear probe scored on a held-out 30%; "
        + ("dashed = random-init model." if sep_base is not None else "the random-init baseline adds dashed lines."),
        table,
        "separability",
        key="emb_sep",
    )
