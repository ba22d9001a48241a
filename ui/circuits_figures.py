"""Figures of the Circuits view: signed head grids (direct logit attribution, patching), the layer x token patching
map, the sublayer bars, the composition graph and the head-type grid. Arrays in, figures out (no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ui.cell_picker import CellGrid, head_grid
from ui.figures import DIVERGING

MODE_COLOURS = {"q": "#1f77b4", "k": "#d62728", "v": "#2ca02c"}
TYPE_SHORT = {
    "previous": "prev",
    "next": "next",
    "cls": "CLS",
    "sep": "SEP",
    "punctuation": "punct",
    "broad": "broad",
    "positional": "pos",
    "local": "local",
    "global": "global",
}


def signed_grid(values: np.ndarray, title: str, width: int = 420) -> CellGrid:
    """The clickable L x H grid of a signed per-head score [L, H] on a scale centred at 0 (red > 0, blue < 0)."""
    L, H = values.shape
    top = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    height = int(max(12, min(44, (width - 110) / H))) * L
    return head_grid(values, title, DIVERGING, zmin=-(top or 1.0), zmax=top or 1.0, height=height)


def token_map(values: np.ndarray, tokens: list[str], title: str) -> go.Figure:
    """Patching effects of the residual stream [L, T] (rows = the block it enters, columns = tokens), 0 = corrupted,
    1 = clean."""
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=[f"{t}:{tok}" for t, tok in enumerate(tokens)],
            y=[f"block {l}" for l in range(values.shape[0])],
            zmin=-1,
            zmax=1,
            colorscale=DIVERGING,
            hovertemplate="%{y}, token %{x}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_layout(title=title, height=120 + 28 * values.shape[0], margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(autorange="reversed")
    return fig


def grid_map(values: np.ndarray, title: str) -> go.Figure:
    """Patching effects of the patch tokens of one block [gh, gw] laid out on the image's patch grid."""
    fig = go.Figure(
        go.Heatmap(
            z=values, zmin=-1, zmax=1, colorscale=DIVERGING, hovertemplate="row %{y} col %{x}: %{z:.3f}<extra></extra>"
        )
    )
    fig.update_layout(title=title, height=340, width=380, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    return fig


def sublayer_figure(attn: np.ndarray, mlp: np.ndarray, title: str) -> go.Figure:
    """Bars of the patching effect of each block's attention and MLP output ([L] each)."""
    layers = [f"block {l}" for l in range(len(attn))]
    fig = go.Figure([go.Bar(x=layers, y=attn, name="attention output"), go.Bar(x=layers, y=mlp, name="MLP output")])
    fig.update_layout(title=title, barmode="group", height=300, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_yaxes(title="normalised logit difference")
    return fig


def composition_graph(edges: pd.DataFrame, n_layers: int, n_heads: int, threshold: float) -> go.Figure:
    """Heads as dots (x = layer, y = head) and the composition edges whose score exceeds the random baseline by more
    than `threshold` as lines from writer to reader, coloured by mode (Q, K, V), wider when stronger."""
    fig = go.Figure()
    strong = edges[edges["excess"] > threshold]
    top = float(strong["excess"].max()) if len(strong) else 1.0
    for mode, colour in MODE_COLOURS.items():
        part = strong[strong["mode"] == mode]
        for row in part.itertuples():
            offset = {"q": -0.15, "k": 0.0, "v": 0.15}[mode]
            fig.add_trace(
                go.Scatter(
                    x=[row.writer_layer, row.reader_layer],
                    y=[row.writer_head + offset, row.reader_head + offset],
                    mode="lines",
                    line=dict(color=colour, width=1 + 5 * row.excess / top),
                    hovertext=f"{mode.upper()}: L{row.writer_layer}H{row.writer_head} -> L{row.reader_layer}"
                    f"H{row.reader_head}: {row.score:.3f} (baseline {row.baseline:.3f})",
                    hoverinfo="text",
                    showlegend=False,
                )
            )
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=colour), name=f"{mode.upper()}"))
    layer, head = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    fig.add_trace(
        go.Scatter(
            x=layer.ravel(),
            y=head.ravel(),
            mode="markers",
            marker=dict(size=9, color="#444"),
            hovertemplate="layer %{x} head %{y}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_layout(
        title=f"{len(strong)} edges more than {threshold:.2f} above the random baseline",
        height=max(320, 26 * n_heads + 120),
        margin=dict(l=10, r=10, t=40, b=10),
    )
    fig.update_xaxes(title="layer", dtick=1)
    fig.update_yaxes(title="head", dtick=1, autorange="reversed")
    return fig


def types_figure(strongest: pd.DataFrame, n_layers: int, n_heads: int) -> go.Figure:
    """Each head's strongest type as a badge in an L x H grid, coloured by its score (0..1)."""
    score = np.full((n_layers, n_heads), np.nan)
    text = np.full((n_layers, n_heads), "", dtype=object)
    for row in strongest.itertuples():
        score[row.layer, row.head] = row.score
        text[row.layer, row.head] = TYPE_SHORT.get(row.type, row.type)
    fig = go.Figure(
        go.Heatmap(
            z=score,
            text=text,
            texttemplate="%{text}",
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            hovertemplate="layer %{y} head %{x}: %{text} %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(height=80 + 34 * n_layers, margin=dict(l=10, r=10, t=20, b=10))
    fig.update_xaxes(title="head", dtick=1)
    fig.update_yaxes(title="layer", dtick=1, autorange="reversed")
    return fig


def badge(strongest: pd.DataFrame, layer: int, head: int) -> str:
    """A head's strongest type and score as a short badge ("prev 0.98")."""
    return badges(strongest[(strongest["layer"] == layer) & (strongest["head"] == head)])[0]


def badges(strongest: pd.DataFrame) -> list[str]:
    """The badge of every head in `strongest` (see badge), layer by layer and head by head."""
    rows = strongest.sort_values(["layer", "head"])
    return [f"{TYPE_SHORT.get(t, t)} {s:.2f}" for t, s in zip(rows["type"], rows["score"])]
