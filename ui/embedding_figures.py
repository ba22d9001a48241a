"""Figures of the class-embedding view: identifiability boxplots, token class maps, per-block class
probabilities, the embedding map with hover thumbnails, and separability curves."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from ui.cell_picker import CellGrid, patch_grid, pixel_grid, text_colours
from ui.figures import LEGEND_ABOVE, as_rgb, heat_rgb, heat_scale, patch_blocks

CLASS_MAP_RED = np.array([214, 39, 40]) / 255  # #d62728
CLASS_MAP_OPACITY = 0.4
CLASS_MAP_PX = 340  # the widest the class map is drawn
STRIP_GREY = np.array([240, 240, 240]) / 255  # a word that does not rank the class first
STRIP_LABELS = 40  # the most column labels a text's strip writes

GROUP_COLORS = ("#1f77b4", "#ff7f0e")  # summary token, other tokens
BASELINE_COLORS = ("#9ecae1", "#fdd0a2")  # the same, random-init model
SHADES = " ░▒▓█"
CLASS_COLORS = qualitative.Plotly + qualitative.D3[1::2]


def box_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row box statistics of values [L, n] (NaN ignored): q1, median, q3, mean, and Tukey whiskers
    (the furthest data within 1.5 IQR of the box)."""
    out: dict[str, list[float]] = {k: [] for k in ("q1", "median", "q3", "mean", "lowerfence", "upperfence")}
    for row in values:
        v = row[~np.isnan(row)]
        if v.size == 0:
            v = np.array([np.nan])
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        iqr = q3 - q1
        inside = v[(v >= q1 - 1.5 * iqr) & (v <= q3 + 1.5 * iqr)]
        for k, x in zip(
            out, (q1, med, q3, v.mean(), inside.min() if inside.size else q1, inside.max() if inside.size else q3)
        ):
            out[k].append(float(x))
    return {k: np.asarray(x) for k, x in out.items()}


def identifiability_boxes(
    groups: dict[str, np.ndarray], baseline: dict[str, np.ndarray] | None = None, height: int = 380
) -> go.Figure:
    """Boxplots of identifiability per block for each token group ({name: [L, n]}), optionally beside the
    same groups of a random-init model; a dashed line at chance (0.5). Box statistics are computed here,
    so the browser gets a few numbers per box, not every token."""
    fig = go.Figure()
    series = [(name, r, GROUP_COLORS[i % 2]) for i, (name, r) in enumerate(groups.items())]
    if baseline:
        series += [(f"{name} (random init)", r, BASELINE_COLORS[i % 2]) for i, (name, r) in enumerate(baseline.items())]
    for name, r, color in series:
        stats = box_stats(r)
        blocks = [f"block {l + 1}" for l in range(r.shape[0])]
        fig.add_trace(go.Box(x=blocks, name=name, marker_color=color, boxpoints=False, offsetgroup=name, **stats))
    fig.add_hline(
        y=0.5, line_dash="dash", line_color="grey", annotation_text="chance 0.5", annotation_position="bottom right"
    )
    fig.update_layout(
        boxmode="group",
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        yaxis=dict(title="identifiability 1 − rank/|C|", range=[-0.02, 1.04]),
        legend=LEGEND_ABOVE,
    )
    return fig


def class_map_picture(image: np.ndarray, first: np.ndarray, class_name: str) -> CellGrid:
    """One input's image [S, S, C] (S a multiple of the grid) with the patches that rank the class first ([h, w]
    bool) tinted red, as a picture with a cell per patch that says so on hover (a cell picker that picks nothing)."""
    gh, gw = first.shape
    rgb = as_rgb(image)
    ranks = patch_blocks(first, image.shape[0])[..., None]  # [S, S, 1]: each patch's flag
    return patch_grid(
        np.where(ranks, (1 - CLASS_MAP_OPACITY) * rgb + CLASS_MAP_OPACITY * CLASS_MAP_RED, rgb),
        (gh, gw),
        [
            f"patch row {r}, col {c}: ranks " + (f"'{class_name}'" if first[r, c] else "another class") + " first"
            for r in range(gh)
            for c in range(gw)
        ],
        max_width=CLASS_MAP_PX,
        pickable=False,
    )


def token_class_strip(first: np.ndarray, tokens: Sequence[str], top: Sequence[Sequence[str]]) -> CellGrid:
    """Blocks x words as a picture: which word tokens rank the class first (first [L, W] bool, red), hover = each
    token's top class at that block (top [L][W]); a column label on every word, or on every k-th of a long text."""
    L, W = first.shape
    cols = [f"{j + 1}:{t}" for j, t in enumerate(tokens)]
    every = int(np.ceil(W / STRIP_LABELS))
    return pixel_grid(
        np.where(first[..., None], CLASS_MAP_RED, STRIP_GREY),
        [f"block {l + 1}, {cols[j]}: top class {top[l][j]}" for l in range(L) for j in range(W)],
        row_labels=[f"block {l + 1}" for l in range(L)],
        col_labels=[c if j % every == 0 else "" for j, c in enumerate(cols)],
        height=28 * L,
        ruled=True,
        pickable=False,
        tilted=True,
    )


def block_class_grid(
    probs: np.ndarray, class_names: Sequence[str], true_label: int | None = None, max_classes: int = 20
) -> CellGrid:
    """Class probabilities of the summary token per block (probs [L, C]) as a blocks x classes picture with each
    probability of 5% or more written in its cell and every one on hover; with more than max_classes classes, only
    those in some block's top 3 are shown; the true class is starred. Outline a block with cell_picker's selected
    (block - 1, None)."""
    L, C = probs.shape
    keep = np.arange(C) if C <= max_classes else np.unique(np.argsort(-probs, -1)[:, :3])
    names = [("★ " if c == true_label else "") + str(class_names[c]) for c in keep]
    z = probs[:, keep]
    rgb = heat_rgb(z, 0.0, 1.0)
    return pixel_grid(
        rgb,
        [f"block {l + 1}, class {names[j]}: {z[l, j]:.1%}" for l in range(L) for j in range(len(keep))],
        row_labels=[f"block {l + 1}" for l in range(L)],
        col_labels=names,
        height=30 * L,
        scale=(heat_scale(), 0.0, 1.0, "probability"),
        pickable=False,
        texts=[f"{p:.0%}" if p >= 0.05 else "" for p in z.ravel()],
        text_colours=text_colours(rgb),
        tilted=max(map(len, names)) > 4,
    )


def thumbnail_text(image: np.ndarray, size: int = 8) -> str:
    """A hover-sized picture of an image [H, W, C] or [H, W] in [0, 1] (size <= H, W): size x size shaded block
    characters, each the mean of its block of pixels (dark ink = dense shade), lines joined by <br> for plotly
    hover labels (set a monospace hover font)."""
    grey = image.mean(-1) if image.ndim == 3 else image
    rows, cols = (np.linspace(0, n, size + 1).astype(int) for n in grey.shape)
    sums = np.add.reduceat(np.add.reduceat(grey, rows[:-1], 0), cols[:-1], 1)
    small = sums / np.outer(np.diff(rows), np.diff(cols))
    lo, hi = small.min(), small.max()
    level = np.round((small - lo) / (hi - lo + 1e-9) * (len(SHADES) - 1)).astype(int)
    return "<br>".join("".join(SHADES[v] * 2 for v in row) for row in level)


def text_hover(text: str, width: int = 48, max_lines: int = 5) -> str:
    """A text wrapped for a hover label (lines joined by <br>, at most max_lines)."""
    return "<br>".join(textwrap.wrap(str(text), width, max_lines=max_lines, placeholder=" …"))


def embedding_scatter(
    coords: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    hover: Sequence[str],
    predicted: np.ndarray | None = None,
    title: str = "",
    axis: str = "",
    height: int = 520,
) -> go.Figure:
    """2-D map of one layer's embeddings (coords [N, 2]) coloured by label (one legend entry per class);
    customdata = the point's row in the sample (read back from st.plotly_chart selections); hover shows
    `hover[i]` (a thumbnail or a text). Box selection is the default drag mode; lasso is in the mode bar."""
    fig = go.Figure()
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        pred = [""] * len(idx) if predicted is None else [f"<br>predicted {class_names[predicted[i]]}" for i in idx]
        fig.add_trace(
            go.Scattergl(
                x=coords[idx, 0],
                y=coords[idx, 1],
                mode="markers",
                name=str(class_names[c]),
                marker=dict(
                    size=7, color=CLASS_COLORS[int(c) % len(CLASS_COLORS)], line=dict(width=0.5, color="white")
                ),
                customdata=idx,
                text=[f"#{i} · {class_names[c]}{p}" for i, p in zip(idx, pred)],
                hovertext=[hover[int(i)] for i in idx],
                hovertemplate="%{text}<br>%{hovertext}<extra></extra>",
            )
        )
    fig.update_layout(
        height=height,
        dragmode="select",
        title=title or None,
        hoverlabel=dict(font_family="monospace", font_color="#222", bgcolor="white"),
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(title="label", itemsizing="constant"),
    )
    fig.update_xaxes(title=f"{axis} 1".strip(), zeroline=False)
    fig.update_yaxes(title=f"{axis} 2".strip(), zeroline=False)
    return fig


def selected_rows(event: Any) -> list[int]:
    """Sample rows (customdata) of the points selected with box / lasso / click in an embedding_scatter."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    rows = []
    for p in points:
        cd = p.get("customdata")
        if cd is not None:
            rows.append(int(cd[0] if isinstance(cd, (list, tuple)) else cd))
    return sorted(set(rows))


def separability_curves(
    df: pd.DataFrame, baseline: pd.DataFrame | None = None, n_classes: int | None = None, height: int = 360
) -> go.Figure:
    """Silhouette (cosine), kNN and linear-probe accuracy per layer (layer 0 = embeddings); a random-init
    baseline dashed; chance accuracy 1/|C| dotted."""
    fig = go.Figure()
    metrics = ("silhouette", "kNN accuracy", "probe accuracy")
    colors = ("#2ca02c", "#1f77b4", "#9467bd")
    for name, color in zip(metrics, colors):
        fig.add_trace(
            go.Scatter(
                x=df.layer,
                y=df[name],
                name=name,
                mode="lines+markers",
                line=dict(color=color),
                hovertemplate="layer %{x}: %{y:.3f}<extra>" + name + "</extra>",
            )
        )
        if baseline is not None:
            fig.add_trace(
                go.Scatter(
                    x=baseline.layer,
                    y=baseline[name],
                    name=f"{name} (random init)",
                    mode="lines",
                    line=dict(color=color, dash="dash"),
                    opacity=0.6,
                    hovertemplate="layer %{x}: %{y:.3f}<extra>random init</extra>",
                )
            )
    if n_classes:
        fig.add_hline(
            y=1 / n_classes,
            line_dash="dot",
            line_color="grey",
            annotation_text="chance accuracy",
            annotation_position="top left",
        )
    fig.update_xaxes(title="layer (0 = embeddings)", tickmode="linear", dtick=1)
    lowest = min(df.silhouette.min(), baseline.silhouette.min() if baseline is not None else 0.0)
    fig.update_yaxes(title="score", range=[min(-0.1, float(lowest) - 0.05), 1.05])
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=LEGEND_ABOVE)
    return fig
