"""The Attention view's Patterns tab: one vector per (input, head) of the dataset sample, clustered and mapped
(analysis.patterns), with each cluster's heads, inputs and prototype."""

import numpy as np
import pandas as pd
import streamlit as st

from analysis.patterns import pattern_layout, unpack
from ui import cache, links, state
from ui.attention_figures import pattern_map, prototype_grid
from ui.cell_picker import head_grid
from ui.clicks import on_click
from ui.context import PageContext
from ui.framing import download_button, show_figure, show_head_chart
from ui.params import CLUSTERING, CLUSTERS, PATTERN_EMBEDDING, PATTERN_MAP
from ui.pickers import synced

AGGLOMERATIVE_MAX = 6000


@links.fragment
def patterns_panel(ctx: PageContext, n: int, a: dict[str, np.ndarray]) -> None:
    """Pattern clusters of the sample's pattern vectors a["vectors"] [n, L, H, F]: the controls, the 2-D map
    coloured by cluster, the selected cluster's heads and inputs, and every cluster's prototype."""
    ds, spec = ctx.dataset, ctx.model.spec
    L, H, image = spec.n_layers, spec.n_heads, spec.grid is not None
    vectors = a["vectors"]
    n_rows = int(np.prod(vectors.shape[:3]))
    c = st.columns(4)
    k = CLUSTERS.draw(c[0])
    embedding = PATTERN_EMBEDDING.draw(c[1])
    clustering = CLUSTERING.draw(c[2])
    projection = PATTERN_MAP.draw(c[3])
    if clustering == "agglomerative" and n_rows > AGGLOMERATIVE_MAX:
        st.warning(
            f"Agglomerative clustering of {n_rows} patterns needs too much memory; using k-means. Lower the "
            f"sample size to at most {AGGLOMERATIVE_MAX // (L * H)} inputs to use it."
        )
        clustering = "kmeans"
    s = cache.attention_patterns(ctx.model_key, ds.key, n, k, embedding, clustering, projection, vectors)
    k = len(s.prototypes)
    sel_key = "attn_cluster"
    cluster = min(int(st.session_state.get(sel_key, 0)), k - 1)
    layout = pattern_layout(spec.grid)
    parts = unpack(s.prototypes, layout)
    counts = np.bincount(s.labels, minlength=k)
    left, right = st.columns([1, 1])
    with left:
        st.subheader("Pattern map")
        table = pd.DataFrame(
            {
                "x": s.coords[:, 0],
                "y": s.coords[:, 1],
                "cluster": s.labels,
                "input": s.input,
                "layer": s.layer,
                "head": s.head,
            }
        )
        show_figure(
            pattern_map(s.coords, s.labels, s.layer, s.head, s.input, cluster, "PC" if projection == "pca" else "UMAP"),
            f"each point is one head's pattern on one input ({n_rows} = {n} inputs × {L * H} heads), placed "
            "by similarity and coloured by cluster. Click a point to open its cluster.",
            table,
            "pattern_map",
            key="attn_map",
            selection_mode="points",
            on_select=on_click("attn_map", lambda data: st.session_state.update({sel_key: int(data[0])})),
        )
    with right:
        st.subheader("The selected cluster")
        st.selectbox(
            "Cluster",
            range(k),
            key=synced("attn_cluster_pick", cluster),
            format_func=lambda c: f"cluster {c} ({counts[c]} patterns)",
            on_change=lambda: st.session_state.update({sel_key: st.session_state["attn_cluster_pick"]}),
        )
        cluster_members(ctx, s, cluster, ds.sample(n))
    st.subheader("Cluster prototypes")
    what = (
        (
            "top row: the CLS token's attention on the patch grid; bottom row: where a patch looks relative to "
            "itself (centre = itself)"
        )
        if image
        else "mass at each offset from the query token (0 = itself)"
    )
    show_figure(
        prototype_grid(parts, counts, image),
        f"the mean pattern of each cluster (number of patterns in brackets); {what}.",
        {"prototypes": s.prototypes, "counts": counts, **parts},
        "pattern_prototypes",
        key="attn_protos",
    )


def cluster_members(ctx: PageContext, s, cluster: int, sample) -> None:
    """The heads (share of inputs) and the inputs behind one cluster; sample: the analysed data.Dataset sample."""
    spec = ctx.model.spec
    L, H, image = spec.n_layers, spec.n_heads, spec.grid is not None
    layer, head = state.selected_head()
    layer, head = min(layer, L - 1), min(head, H - 1)
    show_head_chart(
        lambda: head_grid(s.share[cluster], fmt=".0%", zmin=0, zmax=1, height=60 + 26 * L if H > 6 else None),
        (s.share[cluster].shape, s.share[cluster].tobytes()),
        (layer, head),
        f"share of the inputs whose pattern at that head falls in cluster {cluster}; heads near 100% always "
        "behave this way. Click a head to open it in 'Heads of this input'.",
        {"share": s.share},
        "cluster_heads",
        key="attn_cluster_heads",
    )
    idx, counts = s.inputs_of(cluster)
    med = s.medoids[cluster]
    st.markdown(
        f"**Inputs in cluster {cluster}** ({len(idx)} of {int(s.input.max()) + 1} have at least one head "
        f"in it); its most typical member is input #{s.input[med]} at layer {s.layer[med]}, head "
        f"{s.head[med]}."
    )
    shown = idx[:12]
    if image:
        st.image(
            [np.asarray(sample.inputs[i].convert("RGB")) for i in shown],
            width=56,
            caption=[f"#{i}: {c} heads" for i, c in zip(shown, counts[:12])],
        )
    else:
        st.dataframe(
            pd.DataFrame({"input": shown, "heads in cluster": counts[:12], "text": [sample.inputs[i] for i in shown]}),
            hide_index=True,
            width="stretch",
            height=250,
        )
    download_button(
        pd.DataFrame({"input": idx, "name": np.asarray(sample.names)[idx], "heads_in_cluster": counts}),
        f"cluster_{cluster}_inputs",
        key="dl_attn_cluster_inputs",
    )
