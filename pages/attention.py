"""Attention view: every head's pattern for the current input, attention distance and neighbourhood
strength per head over a dataset sample, and clusters of attention patterns."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import numpy as np
import pandas as pd
import streamlit as st

from analysis.attention import SINK_THRESHOLD, ring_sizes, uniform_distance
from ui import cache, links, state
from ui.attention_figures import (
    LINE_VIEW_MAX,
    default_query,
    distance_dots,
    line_view,
    overview_mosaic,
    pooled,
    query_image,
    query_maps,
    query_options,
    ring_profiles,
    ring_trend,
    row_outline,
)
from ui.cell_picker import head_grid
from ui.clicks import on_click, on_head_click
from ui.context import images_of, tokens_of
from ui.figures import token_heatmap
from ui.framing import download_button, show_cells, show_figure, show_head_chart
from ui.links import stop_view
from ui.params import ATTENTION_TAB, MATRIX, QUERY
from ui.patterns_panel import patterns_panel
from ui.pickers import head_picker, sample_size_picker, synced
from ui.sidebar import no_model_message, page_context
from ui.stored import background_panel, stored_toggle
from ui.tabs import lazy_tabs

chosen = page_context()
st.title("Attention")
if chosen is None:
    no_model_message()
    stop_view()
ctx = chosen  # a PageContext from here on, in the functions below too

m = ctx.model
spec = m.spec
L, H = spec.n_layers, spec.n_heads
grid = spec.grid  # (rows, columns) of patches; None for a text model
image = grid is not None
P = spec.n_prefix
st.caption(
    "Each attention head decides, for every token, how much to read from every other token. Below: all "
    "heads for the current input (click one to open it), how far and how locally each head looks over a "
    "dataset sample (distance, rings, entropy, CLS mass), and which kinds of pattern the heads share."
)

attn = ctx.trace().attentions[:, 0]  # [L, H, T, T]
T = attn.shape[-1]
tokens = tokens_of(ctx.batch)[0] if not image else None
if not image and T - P <= 2:
    st.info(
        f"This text has {T - P - 1} word piece(s) between [CLS] and [SEP], so every head can only look at a "
        "handful of tokens: distances are short and patterns trivial. Type a longer sentence to see more."
    )
if P == 0:
    st.info(
        "This model has no CLS token: the overview shows the mean attention each patch receives, and "
        "'CLS mass' is the attention to the first token."
    )


def current_head() -> tuple[int, int]:
    layer, head = state.selected_head()
    return min(layer, L - 1), min(head, H - 1)


def current_query() -> int:
    options = query_options(P, spec.grid, tokens)
    q = st.session_state.get(state.QUERY, default_query(P, spec.grid))
    return q if q in options else default_query(P, spec.grid)


def set_query(q: int) -> None:
    st.session_state[state.QUERY] = int(q)


QUERY.bind(options=list(query_options(P, spec.grid, tokens)))


def query_from_widget() -> None:
    """Selectbox callback. A choice made in the browser while the input changed (its label no longer among the
    options: Streamlit hands over the label text) is ignored; the box then shows the current query again."""
    q = st.session_state["attn_query"]
    if isinstance(q, int):
        set_query(q)


# -- heads of the current input ----------------------------------------------------------------------------
@links.fragment
def heads_panel() -> None:
    layer, head = current_head()
    options = query_options(P, spec.grid, tokens)
    query = current_query()
    st.selectbox(
        "Query token" + (" (or click a patch on the image at the right)" if image else ""),
        list(options),
        format_func=options.__getitem__,
        key=synced("attn_query", query),
        on_change=query_from_widget,
        help="Whose attention to show: the row of the attention matrix for this token.",
    )
    stats = cache.input_head_statistics(ctx.model_key, ctx.input_key, attn, spec.grid, P, spec.patch_size)
    wide = H > 6  # many heads: the overview gets the full width, the head below it
    left, right = (st.container(), st.container()) if wide else st.columns([1.15, 1])
    with left:
        st.subheader("All heads")
        if grid is not None:
            cells = query_maps(attn, query, P, grid)
            what = f"{options[query]}'s attention over the patch grid, laid over the image"
        else:
            cells = pooled(attn)
            what = "the token × token attention matrix (rows = queries" + (
                f"; {T} tokens averaged into {cells.shape[-1]} blocks)" if cells.shape[-1] < T else ")"
            )
        under, width = (images_of(ctx.batch)[0] if image else None), (1000 if wide else 500)
        show_head_chart(
            lambda: overview_mosaic(cells, under, width, ctx.head_types()),
            (ctx.model_key, ctx.input_key, query if image else None, width, ctx.dataset.key),  # a text: every query
            (layer, head),
            f"one cell per head (rows = layers, columns = heads): {what}, all on one colour scale. "
            "Click a cell to open that head.",
            {"attention": attn, "cells": cells},
            "attention_overview",
            key="attn_overview",
        )
    with right:
        st.subheader(f"Layer {layer}, head {head}")
        head_picker(L, H, key="attn_head", badge=ctx.head_type)  # in this fragment: only this tab shows the head
        unit = "px" if image else "tokens"
        dist = stats["distance_px" if image else "distance"][0, layer, head]
        c = st.columns(2) + st.columns(2)
        c[0].metric(
            "Attention distance",
            f"{dist:.1f} {unit}",
            help="Mean over queries of the attention-weighted "
            "distance to the keys (prefix tokens left out, each row renormalised).",
        )
        c[1].metric(
            "Entropy",
            f"{stats['entropy'][0, layer, head]:.2f} nats",
            help=f"0 = every query looks at one token; log T = {np.log(T):.2f} = uniform.",
        )
        c[2].metric(
            "CLS mass" if P else "First-token mass",
            f"{stats['cls_mass'][0, layer, head]:.0%}",
            help="Mean attention the queries give to token 0.",
        )
        sink = stats["sink_mass"][0, layer, head]
        c[3].metric(
            "Sink",
            f"{sink:.0%}",
            delta="sink candidate" if sink > SINK_THRESHOLD else None,
            delta_color="off",
            help="The largest mean attention one token receives; above "
            f"{SINK_THRESHOLD:.0%} the head mostly parks its attention there (a 'no-op' head).",
        )
        one_head(attn[layer, head], query, layer, head)


def one_head(matrix: np.ndarray, query: int, layer: int, head: int) -> None:
    """The selected head's pattern: the query map over the image or the line view of a text, and the full matrix
    behind a toggle (a text too long for the line view shows the matrix at once)."""
    name = f"attention_L{layer}H{head}"
    if grid is not None:
        labels = ["CLS", "DIST"][:P] + [f"r{i // grid[1]}c{i % grid[1]}" for i in range(T - P)]
        heat = query_maps(matrix[None, None], query, P, grid)[0, 0]
        prefix_share = "" if query < 0 or P == 0 else f" This query gives {matrix[query, :P].sum():.0%} to the prefix."
        show_cells(
            query_image(images_of(ctx.batch)[0], heat, grid, query - P if query >= P else None),
            (divmod(query - P, grid[1]) if query >= P else None),
            "brighter patches get more of the query's attention (the query is outlined in red); click a "
            f"patch to make it the query.{prefix_share}",
            {"matrix": matrix, "query": np.array(query), "map": heat},
            name,
            key="attn_query_image",
            on_pick=lambda row, col: set_query(P + row * grid[1] + col),
        )
    else:
        assert tokens is not None  # set above for a text model
        labels = tokens
        if T <= LINE_VIEW_MAX:
            k = st.slider(
                "Lines per query (top-k keys)",
                1,
                min(10, T),
                min(3, T),
                key="attn_topk",
                help="Only each query's k strongest keys get a line, so the view stays readable.",
            )
            show_figure(
                line_view(matrix, labels, query, k),
                f"each query (left) is joined to its {k} strongest keys (right); darker, thicker lines = "
                "more attention. The query's lines are red; click a word on the left to follow it.",
                {"matrix": matrix, "tokens": np.array(labels)},
                name + "_lines",
                key="attn_lines",
                on_select=on_click("attn_lines", lambda data: set_query(int(data[0]))),
                selection_mode="points",
            )
        else:
            st.info(
                f"This text has {T} tokens: the line view is drawn up to {LINE_VIEW_MAX}; the matrix shows them all."
            )
    if image or T <= LINE_VIEW_MAX:
        if not MATRIX.draw(label=f"Full {T} × {T} attention matrix"):
            return
    order = " (CLS first, then patches row by row)" if image else ""
    show_figure(
        token_heatmap(matrix, labels, labels, height=560 if image else None, shapes=row_outline(query, T)),
        f"rows = queries, columns = keys{order}; brighter = more attention; the query row is outlined in red.",
        pd.DataFrame(matrix, index=labels, columns=labels).reset_index(names="query"),
        name + "_matrix",
        key="attn_matrix",
    )


# -- dataset sample ------------------------------------------------------------------------------------
ds = ctx.dataset


def head_table(a: dict[str, np.ndarray]) -> pd.DataFrame:
    layer, head = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    cols = {"layer": layer.ravel(), "head": head.ravel()}
    for k in ("distance_px", "distance", "prefix_mass", "entropy", "cls_mass", "sink_mass"):
        if k in a:
            cols[k + "_mean"] = a[k].mean(0).ravel()
            cols[k + "_std"] = a[k].std(0).ravel()
    return pd.DataFrame(cols)


@links.fragment
def distance_panel(n: int, a: dict[str, np.ndarray], source: str) -> None:
    """Distance, rings, entropy and CLS mass per head over n inputs (arrays a); source names what a was computed
    from: the figures are kept for it while the tab is closed and opened again."""
    layer, head = current_head()
    dist = a["distance_px" if image else "distance"]
    unit = "px" if image else "tokens"
    if image:
        rows, cols, patch_size, _, _ = spec.image_layout()
        reference = uniform_distance((rows, cols), T - P) * patch_size
    else:
        reference = float(np.mean([uniform_distance(None, int(t) - P) for t in a["n_tokens"]]))
    colour, colour_name = (a["prefix_mass"], "CLS mass") if P else (a["entropy"], "entropy")
    table = head_table(a)
    st.subheader("Attention distance per head")
    kept = (ctx.model_key, source, layer, head)
    show_figure(
        cache.memo(
            "attn_dots",
            kept,
            lambda: distance_dots(
                dist.mean(0), dist.std(0), colour.mean(0), unit, colour_name, reference, (layer, head)
            ),
        ),
        f"one dot per head: how far (in {unit}) its queries look on average over {n} inputs, by layer (bars = "
        f"spread over inputs; dashed = uniform attention). Colour: {colour_name}. Click a dot to select that "
        "head.",
        table,
        "attention_distance",
        key="attn_dots",
        on_select=on_head_click("attn_dots"),
        selection_mode="points",
    )
    ring, pooled_last = a["ring"].mean(0), not image  # [L, H, R]
    c1, c2 = st.columns([3, 2])
    with c1:
        st.subheader("Ring strength per head")
        per_token = st.toggle(
            "Per token in the ring",
            key="attn_ring_per_token",
            help="Divide each ring's mass by how many tokens it holds: far rings hold more "
            "patches, so raw mass grows with r even for uniform attention (flat per token).",
        )
        shown, what = ring, "mass a query gives to the tokens r steps away"
        if per_token:
            sizes = (
                ring_sizes(spec.grid, T - P)
                if image
                else np.stack([ring_sizes(None, int(t) - P, ring.shape[-1]) for t in a["n_tokens"]])[:, None, None]
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                shown = np.nanmean(np.where(sizes > 0, a["ring"] / sizes, np.nan), 0)
            what = "mean attention per token r steps away"
        show_figure(
            cache.memo("attn_rings", (*kept, per_token), lambda: ring_profiles(shown, (layer, head), pooled_last)),
            f"{what} (Chebyshev rings on the patch grid; text: r positions away), one line per head, "
            "selected head red. Local heads peak at r ≤ 1.",
            {"ring_shown": shown, "ring_per_input": a["ring"]},
            "ring_strength",
            key="attn_rings",
        )
    with c2:
        st.subheader("Trend across layers")
        show_figure(
            cache.memo("attn_trend", kept[:2], lambda: ring_trend(ring, a["prefix_mass"].mean(0), pooled_last)),
            "per layer, the head-averaged mass by ring plus the mass on the prefix: watch local (r ≤ 1) "
            "attention give way to global attention, or not, with depth.",
            {"ring_mean": ring, "prefix_mass": a["prefix_mass"].mean(0)},
            "ring_trend",
            key="attn_trend",
        )
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Entropy")
        show_head_chart(
            lambda: head_grid(a["entropy"].mean(0), fmt=".2f"),
            (*kept[:2], "entropy"),
            (layer, head),
            f"mean row entropy in nats (0 = one token per query, {np.log(T):.1f} = uniform over this input's "
            "tokens). Click a head to select it.",
            table[["layer", "head", "entropy_mean", "entropy_std"]],
            "entropy",
            key="attn_entropy",
        )
    with c2:
        st.subheader("CLS mass" if P else "First-token mass")
        show_head_chart(
            lambda: head_grid(a["cls_mass"].mean(0), fmt=".0%", zmin=0, zmax=1),
            (*kept[:2], "cls_mass"),
            (layer, head),
            "mean attention to token 0" + (" (CLS)" if P else "") + "; heads near 100% park their attention "
            "there. Click a head to select it.",
            table[["layer", "head", "cls_mass_mean", "cls_mass_std"]],
            "cls_mass",
            key="attn_cls",
        )
    sinks(a)


def sinks(a: dict[str, np.ndarray]) -> None:
    mass = a["sink_mass"]
    token = a["sink_token"]
    last = (a["n_tokens"] - 1)[:, None, None]
    flagged = np.argwhere(mass.mean(0) > SINK_THRESHOLD)
    if not len(flagged):
        st.caption(
            f"No head puts more than {SINK_THRESHOLD:.0%} of its attention on one token on average: no sink candidates."
        )
        return
    rows = []
    for l, h in flagged:
        rows.append(
            {
                "layer": l,
                "head": h,
                "mean sink mass": mass[:, l, h].mean(),
                "sink is token 0" + (" (CLS)" if P else ""): (token[:, l, h] == 0).mean(),
                ("sink is the last token ([SEP])" if not image else "sink is a patch"): (
                    token[:, l, h] == last[:, 0, 0]
                ).mean()
                if not image
                else (token[:, l, h] >= P).mean(),
            }
        )
    df = pd.DataFrame(rows)
    st.markdown(
        f"**Sink candidates** (more than {SINK_THRESHOLD:.0%} of the attention on one token, mean over the "
        "sample): heads that may learn to do nothing (Bondarenko et al. 2023)."
    )
    st.dataframe(
        df,
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1) for c in df.columns[2:]
        },
    )
    download_button(df, "sink_candidates", key="dl_attn_sinks")


# lazy tabs (ui.tabs.lazy_tabs): a tab runs only once opened (the dataset sample is computed only when a tab
# that shows it is opened); Heads and Distance stay drawn while the user switches between them, Patterns (a point
# per head and input) only while open. The sample size lives in session state while no tab shows its picker. The
# panels are fragments inside the tabs' fragment: a click in one reruns that panel only.
TABS = ATTENTION_TAB.values()
if "attn_n" in st.session_state:
    st.session_state["attn_n"] = st.session_state["attn_n"]
ATTENTION_TAB.bind()


@links.fragment
def tabbed() -> None:
    """The tabs in a fragment: opening one reruns only the tabs, not the sidebar and the page above them."""
    tabs, open_tab, shown = lazy_tabs(ATTENTION_TAB, (ctx.model_key, ds.key), kept=TABS[:2])
    if TABS[0] in shown:
        with tabs[TABS[0]]:
            heads_panel()
    sample_tabs = [name for name in shown if name != TABS[0]]
    if sample_tabs:
        with tabs[open_tab if open_tab in sample_tabs else sample_tabs[0]]:
            n = sample_size_picker(
                len(ds),
                128 if image else 256,
                key="attn_n",
                label=f"Inputs from {ds.name} for distance, strength and patterns",
            )
            st.caption(ctx.sample_note(n))
            arrays = cache.sample_run("attention", ctx.model_key, ds.key, n, (("patterns", True),), m, ds).arrays()
    if TABS[1] in shown:
        with tabs[TABS[1]]:
            stored, used = stored_toggle(
                ctx,
                "attention",
                "Distance and strength from the {run}",
                "attn_use_stored",
                help="A precomputed attention run of this model on this dataset; the patterns tab still uses the "
                "sample above.",
            )
            if used is not None:
                whole = cache.stored_run(str(used.root), used.manifest.updated).arrays()
                distance_panel(len(whole["row"]), whole, f"stored {used.root} {used.manifest.updated}")
            else:
                if stored is None:
                    background_panel(ctx, "attention", "the attention statistics")
                distance_panel(n, arrays, f"sample {ds.key} {n}")
    if TABS[2] in shown:
        with tabs[TABS[2]]:
            patterns_panel(ctx, n, arrays)


tabbed()
