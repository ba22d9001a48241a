"""Figures of the Attention view: the L x H overview mosaic, one head (image query map, token heatmap,
BertViz-style line view), distance dot plot, ring profiles and trend, and the pattern map with prototypes.

The overview and the query image are cell pickers (ui.cell_picker: a click picks a head or a patch). Plotly
heatmap clicks do not reach Streamlit, so the clickable plotly figures carry transparent scatter points whose
customdata says what a click picks: (layer, head) in the dot plot, the token in the line view, (cluster, ...) in
the pattern map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ui.cell_picker import CellGrid, patch_grid
from ui.figures import (
    as_rgb,
    heat_rgb,
    heat_scale,
    patch_blocks,
    png_source,
    subplot_axes,
    subplot_axis_layouts,
    subplot_layout,
)

MAX_CELL = 24  # overview cells of text are pooled to at most this many tokens a side
LINE_VIEW_MAX = 64  # the line view is drawn for texts up to this many tokens
PALETTE = qualitative.Plotly + qualitative.D3


# -- small helpers -------------------------------------------------------------------------------------
def query_options(n_prefix: int, grid: tuple[int, int] | None, tokens: Sequence[str] | None) -> dict[int, str]:
    """Query choices -> labels. Images: -1 (mean over patch queries: what each patch receives), the prefix
    tokens and every patch; text: every token."""
    if grid is None:
        return {i: f"{i}: {t}" for i, t in enumerate(tokens or [])}
    names = ["CLS", "distillation"] + [f"prefix {i}" for i in range(2, n_prefix)]
    out = {-1: "mean over all patch queries (what each patch receives)"}
    out.update({i: f"{names[i]} token" for i in range(n_prefix)})
    out.update({n_prefix + i: f"patch row {i // grid[1]}, col {i % grid[1]}" for i in range(grid[0] * grid[1])})
    return out


def default_query(n_prefix: int, grid: tuple[int, int] | None) -> int:
    """CLS when the model has a prefix token; for an image model without one, the mean over queries."""
    return 0 if n_prefix > 0 or grid is None else -1


def query_maps(attn: np.ndarray, query: int, n_prefix: int, grid: tuple[int, int]) -> np.ndarray:
    """One input's attention [L, H, T, T] -> the chosen query's attention over the patch grid [L, H, h, w]
    (query -1: the mean over patch queries of the attention each patch receives)."""
    rows = attn[:, :, n_prefix:, n_prefix:].mean(2) if query < 0 else attn[:, :, query, n_prefix:]
    return rows.reshape(*rows.shape[:2], *grid)


def pooled(matrix: np.ndarray, size: int = MAX_CELL) -> np.ndarray:
    """[..., T, T] block-averaged to at most size x size (tokens grouped in consecutive runs)."""
    t = matrix.shape[-1]
    if t <= size:
        return matrix
    groups = np.array_split(np.arange(t), size)
    rows = np.stack([matrix[..., g, :].mean(-2) for g in groups], -2)
    return np.stack([rows[..., g].mean(-1) for g in groups], -1)


# -- overview -------------------------------------------------------------------------------------------
OVERLAY = 0.6  # opacity of attention laid over the image
CELL_PX = (32, 96)  # smallest and largest overview cell, in picture pixels
QUERY_IMAGE_PX = 420  # the widest the query image is drawn, in screen pixels


def mosaic_cell(n_heads: int, width: int) -> tuple[int, int]:
    """(cell, gap) in picture pixels of an overview `width` screen pixels wide with n_heads columns."""
    cell = int(np.clip((width - 120) // n_heads, *CELL_PX))
    return cell, mosaic_gap(cell)


def mosaic_gap(cell: int) -> int:
    """White pixels between two overview cells of `cell` pixels."""
    return max(2, cell // 8)


def mosaic_picture(cells: np.ndarray, zmax: float, image: np.ndarray | None, cell: int) -> tuple[np.ndarray, int]:
    """The L x H cells [L, H, r, c] as one RGBA picture [L (cell + gap) - gap, H (cell + gap) - gap, 4] in [0, 1]:
    each cell coloured on the shared scale [0, zmax], scaled to cell x cell pixels (blocks, as a heatmap
    draws them) and, with an image [S, S, C], laid over it at OVERLAY opacity; clear gaps (the page's background,
    light or dark, shows through). Returns (picture, gap)."""
    L, H, r, c = cells.shape
    gap = mosaic_gap(cell)
    rows, cols = np.minimum(np.arange(cell) * r // cell, r - 1), np.minimum(np.arange(cell) * c // cell, c - 1)
    colours = heat_rgb(cells[:, :, rows][:, :, :, cols], 0.0, zmax)  # [L, H, cell, cell, 3]
    if image is not None:
        under = (
            np.asarray(
                Image.fromarray((as_rgb(image) * 255).round().astype(np.uint8)).resize(
                    (cell, cell), Image.Resampling.BILINEAR
                )
            )
            / 255.0
        )
        colours = OVERLAY * colours + (1 - OVERLAY) * under
    colours = np.concatenate([colours, np.ones(colours.shape[:-1] + (1,))], axis=-1)  # opaque cells
    picture = np.zeros((L * (cell + gap) - gap, H * (cell + gap) - gap, 4))
    for l in range(L):
        for h in range(H):
            picture[l * (cell + gap) : l * (cell + gap) + cell, h * (cell + gap) : h * (cell + gap) + cell] = colours[
                l, h
            ]
    return picture, gap


def overview_mosaic(
    cells: np.ndarray, image: np.ndarray | None = None, width: int = 480, badges: Sequence[str] = ()
) -> CellGrid:
    """L x H small heatmaps cells [L, H, r, c] on one shared colour scale [0, largest cell value] (optionally
    laid over an image [S, S, C]), drawn as one picture in a cell picker where a click opens a head. width: the
    most screen pixels the cells take; cells come out square. badges: each head's pattern type, row by row, for
    the hover text."""
    L, H = cells.shape[:2]
    zmax = float(np.nanmax(cells))
    cell = mosaic_cell(H, width)[0]
    picture, gap = mosaic_picture(cells, zmax, image, cell)
    largest = np.nanmax(cells, (2, 3))
    return CellGrid(
        picture=png_source(picture),
        rows=L,
        cols=H,
        cell=cell,
        gap=gap,
        tips=[
            f"layer {l} head {h} (largest {largest[l, h]:.3f})"
            + (f"\npattern type: {badges[l * H + h]}" if badges else "")
            + "\nclick to open this head"
            for l in range(L)
            for h in range(H)
        ],
        row_labels=[f"layer {l}" if H <= 6 else f"L{l}" for l in range(L)],
        col_labels=[f"head {h}" if H <= 6 else f"h{h}" for h in range(H)],
        max_width=width,
        scale=(heat_scale(), 0.0, zmax, "attention"),
    )


# -- one head ------------------------------------------------------------------------------------------
def query_image(image: np.ndarray, heat: np.ndarray, grid: tuple[int, int], query_patch: int | None) -> CellGrid:
    """One head's attention heat [h, w] over the image [S, S, C] (S a multiple of the grid), one cell per patch in a
    cell picker (a click makes that patch the query), the query patch outlined by the picker."""
    gh, gw = grid
    zmax = float(heat.max())
    return patch_grid(
        OVERLAY * heat_rgb(patch_blocks(heat, image.shape[0]), 0.0, zmax) + (1 - OVERLAY) * as_rgb(image),
        grid,
        [f"patch row {r}, col {c}: {heat[r, c]:.3f}\nclick to make it the query" for r in range(gh) for c in range(gw)],
        max_width=QUERY_IMAGE_PX,
        scale=(heat_scale(), 0.0, zmax, "attention"),
    )


def line_view(
    matrix: np.ndarray, tokens: Sequence[str], query: int | None = None, top_k: int = 3, height: int | None = None
) -> go.Figure:
    """BertViz-style head view of one head's attention matrix [T, T]: queries on the left, keys on the
    right, for every query a line to each of its top_k keys with opacity = weight; the chosen query's lines
    are red and labelled. Left tokens are invisible-point clickable (customdata = token index)."""
    T = len(tokens)
    data = []
    top = np.argsort(-matrix, axis=1)[:, :top_k]
    levels = np.linspace(0, 1, 6)
    for lo, hi in zip(levels[:-1], levels[1:]):
        xs, ys = [], []
        for i in range(T):
            if i == query:
                continue
            for j in top[i]:
                if lo < matrix[i, j] <= hi:
                    xs += [0, 1, None]
                    ys += [i, j, None]
        if xs:
            line = dict(color=f"rgba(31,119,180,{0.15 + 0.85 * hi:.2f})", width=1 + 3 * hi)
            data.append(dict(type="scatter", x=xs, y=ys, mode="lines", hoverinfo="skip", line=line))
    if query is not None and 0 <= query < T:
        for j in top[query]:
            line = dict(color="rgba(214,39,40,0.9)", width=1.5 + 5 * float(matrix[query, j]))
            data.append(dict(type="scatter", x=[0, 1], y=[query, j], mode="lines", hoverinfo="skip", line=line))
    font = 13 if T <= 32 else 10
    data.append(
        dict(
            type="scatter",
            x=np.zeros(T),
            y=np.arange(T),
            mode="markers+text",
            text=list(tokens),
            textposition="middle left",
            textfont=dict(size=font),
            marker=dict(color=["red" if i == query else "rgba(31,119,180,0.5)" for i in range(T)], size=8),
            customdata=np.stack([np.arange(T), np.arange(T)], -1).tolist(),
            hovertemplate="query %{customdata[0]}: %{text}<br>click to follow it<extra></extra>",
        )
    )
    strength = matrix[query] if query is not None and 0 <= query < T else matrix.mean(0)
    data.append(
        dict(
            type="scatter",
            x=np.ones(T),
            y=np.arange(T),
            mode="markers+text",
            text=list(tokens),
            textposition="middle right",
            textfont=dict(size=font),
            hoverinfo="skip",
            marker=dict(color=strength, colorscale=heat_scale(), cmin=0, cmax=max(float(strength.max()), 1e-6), size=8),
        )
    )
    layout = dict(
        xaxis=dict(visible=False, range=[-0.9, 1.9]),
        yaxis=dict(visible=False, range=[T - 0.5, -0.5]),
        height=height or 80 + (22 if T <= 32 else 15) * T,
        margin=dict(l=10, r=10, t=10, b=10),
        showlegend=False,
        clickmode="event+select",
        plot_bgcolor="white",
    )
    return go.Figure(data=data, layout=layout)


def row_outline(row: int | None, n_cols: int) -> list[dict]:
    """The layout shape outlining row `row` of a category-axis heatmap (e.g. ui.figures.token_heatmap) in red;
    none for no row."""
    if row is None or row < 0:
        return []
    line = dict(color="red", width=2)
    return [dict(type="rect", xref="x", yref="y", x0=-0.5, x1=n_cols - 0.5, y0=row - 0.5, y1=row + 0.5, line=line)]


# -- distance and strength over a sample ------------------------------------------------------------------
def distance_dots(
    mean: np.ndarray,
    std: np.ndarray,
    colour: np.ndarray,
    unit: str,
    colour_name: str,
    reference: float | None = None,
    selected: tuple[int, int] | None = None,
    height: int = 420,
) -> go.Figure:
    """The classic ViT figure: x = layer, y = mean attention distance, one dot per head (mean [L, H] with
    std [L, H] over the sample as error bars), coloured by colour [L, H]; customdata (layer, head)."""
    L, H = mean.shape
    layer, head = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    x = layer + (head - (H - 1) / 2) * (0.5 / max(H, 1))
    fig = go.Figure(
        go.Scatter(
            x=x.ravel(),
            y=mean.ravel(),
            mode="markers",
            error_y=dict(type="data", array=std.ravel(), thickness=1, width=0, color="rgba(0,0,0,0.25)"),
            marker=dict(
                size=11,
                color=colour.ravel(),
                colorscale="Plasma",
                cmin=0,
                cmax=max(float(colour.max()), 1e-6),
                line=dict(width=0.5, color="black"),
                colorbar=dict(thickness=12, title=colour_name),
            ),
            customdata=np.stack([layer.ravel(), head.ravel(), colour.ravel(), std.ravel()], -1).tolist(),
            hovertemplate="layer %{customdata[0]} head %{customdata[1]}<br>distance %{y:.2f} ± %{customdata[3]:.2f} "
            + unit
            + "<br>"
            + colour_name
            + " %{customdata[2]:.2f}<extra></extra>",
        )
    )
    if reference is not None:
        fig.add_hline(
            y=reference,
            line_dash="dash",
            line_color="grey",
            annotation_text="uniform attention",
            annotation_position="top left",
        )
    if selected is not None:
        l, h = selected
        fig.add_trace(
            go.Scatter(
                x=[x[l, h]],
                y=[mean[l, h]],
                mode="markers",
                hoverinfo="skip",
                marker=dict(symbol="circle-open", size=20, color="red", line=dict(width=3)),
            )
        )
    fig.update_xaxes(title="layer", tickmode="linear", dtick=1, range=[-0.6, L - 0.4])
    fig.update_yaxes(title=f"mean attention distance ({unit})", rangemode="tozero")
    fig.update_layout(height=height, showlegend=False, margin=dict(l=10, r=10, t=10, b=10), clickmode="event+select")
    return fig


def ring_label(r: int, n_rings: int, pooled_last: bool, short: bool = False) -> str:
    if pooled_last and r == n_rings - 1:
        return f"≥{r}" if short else f"r ≥ {r}"
    return str(r) if short else f"r = {r}"


def ring_profiles(
    ring: np.ndarray, selected: tuple[int, int] | None = None, pooled_last: bool = False, height: int = 330
) -> go.Figure:
    """Per layer (one panel each), every head's ring-strength profile S[r] from ring [L, H, R]; the
    selected head is the thick red line."""
    L, H, R = ring.shape
    layout = subplot_layout(1, L, [f"layer {l}" for l in range(L)], shared_yaxes=True, horizontal_spacing=0.02)
    r = np.arange(R)
    data = []
    for l in range(L):
        for h in range(H):
            sel = selected == (l, h)
            data.append(
                dict(
                    type="scatter",
                    x=r,
                    y=ring[l, h],
                    mode="lines+markers" if sel else "lines",
                    name=f"head {h}",
                    legendgroup=str(h),
                    showlegend=l == 0 and H <= 16,
                    line=dict(color="red" if sel else PALETTE[h % len(PALETTE)], width=4 if sel else 1.5),
                    opacity=1.0 if sel or selected is None else 0.55,
                    hovertemplate=f"layer {l} head {h}<br>ring %{{x}}: %{{y:.3f}}<extra></extra>",
                )
                | subplot_axes(1, l + 1, L)
            )
        subplot_axis_layouts(layout, 1, l + 1, L)[0].update(
            title=dict(text="ring r") if l == L // 2 else None,
            tickmode="array",
            tickvals=r[:: max(1, R // 4)],
            ticktext=[ring_label(int(v), R, pooled_last, short=True) for v in r[:: max(1, R // 4)]],
        )
    layout["yaxis"].update(title=dict(text="mean attention mass"), rangemode="tozero")
    layout.update(height=height, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.3))
    return go.Figure(data=data, layout=layout)


def ring_trend(
    ring: np.ndarray, prefix_mass: np.ndarray, pooled_last: bool = False, shown: int = 4, height: int = 330
) -> go.Figure:
    """Trend across layers (VA view C): per layer, the head-averaged mass by ring (rings >= shown - 1 pooled)
    stacked with the mass on the prefix tokens. ring [L, H, R], prefix_mass [L, H]."""
    L, H, R = ring.shape
    m = ring.mean(1)  # [L, R]
    shown = min(shown, R)
    parts = [(ring_label(r, R, pooled_last), m[:, r]) for r in range(shown - 1)]
    parts.append((f"r ≥ {shown - 1}" if shown < R or pooled_last else f"r = {shown - 1}", m[:, shown - 1 :].sum(1)))
    parts.append(("prefix (CLS)", prefix_mass.mean(1)))
    colours = ["#08306b", "#2171b5", "#6baed6", "#c6dbef", "#fdae6b"]
    fig = go.Figure(
        [
            go.Bar(
                x=np.arange(L),
                y=v,
                name=n,
                marker_color=colours[i % len(colours)],
                hovertemplate=f"layer %{{x}} · {n}: %{{y:.3f}}<extra></extra>",
            )
            for i, (n, v) in enumerate(parts)
        ]
    )
    fig.update_layout(
        barmode="stack", height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25)
    )
    fig.update_xaxes(title="layer", tickmode="linear", dtick=1)
    fig.update_yaxes(title="mean attention mass (heads averaged)", range=[0, 1.0])
    return fig


# -- patterns -------------------------------------------------------------------------------------------
def pattern_map(
    coords: np.ndarray,
    labels: np.ndarray,
    layer: np.ndarray,
    head: np.ndarray,
    inputs: np.ndarray,
    selected: int | None = None,
    axis: str = "PC",
    height: int = 480,
) -> go.Figure:
    """The 2-D map of (input, head) patterns (coords [N, 2]) coloured by cluster (labels [N]); customdata
    (cluster, layer, head, input); the selected cluster is drawn on top, the others faded."""
    fig = go.Figure()
    order = sorted(np.unique(labels), key=lambda c: c == selected)  # the selected cluster is drawn last, on top
    for c in order:
        idx = np.flatnonzero(labels == c)
        faded = selected is not None and c != selected
        fig.add_trace(
            go.Scattergl(
                x=coords[idx, 0],
                y=coords[idx, 1],
                mode="markers",
                name=f"cluster {c}",
                marker=dict(size=6, color=PALETTE[int(c) % len(PALETTE)], opacity=0.15 if faded else 0.8),
                customdata=np.stack([labels[idx], layer[idx], head[idx], inputs[idx]], -1).tolist(),
                hovertemplate="cluster %{customdata[0]} · layer %{customdata[1]} head %{customdata[2]} · "
                "input %{customdata[3]}<extra></extra>",
            )
        )
    fig.update_xaxes(title=f"{axis} 1", zeroline=False)
    fig.update_yaxes(title=f"{axis} 2", zeroline=False)
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=10, b=10),
        clickmode="event+select",
        legend=dict(title="cluster", itemsizing="constant"),
        dragmode="pan",
    )
    return fig


def prototype_grid(parts: dict[str, np.ndarray], counts: np.ndarray, image_grid: bool) -> go.Figure:
    """Cluster prototypes (analysis.patterns.unpack of the prototype vectors): images get two rows of small
    heatmaps, the CLS map on the grid and the relative-offset kernel (centre = the query itself); text gets
    the offset profile as bars (0 = the token itself)."""
    k = len(counts)
    titles = [f"{c} ({counts[c]})" for c in range(k)]
    offsets = parts["offsets"]
    if image_grid:
        fig = make_subplots(rows=2, cols=k, subplot_titles=titles, vertical_spacing=0.08, horizontal_spacing=0.02)
        zmax_cls = float(parts["cls_map"].max())
        zmax_off = float(offsets.max())
        for c in range(k):
            fig.add_trace(
                go.Heatmap(
                    z=parts["cls_map"][c],
                    colorscale=heat_scale(),
                    zmin=0,
                    zmax=zmax_cls,
                    showscale=False,
                    hovertemplate="CLS → row %{y} col %{x}: %{z:.3f}<extra></extra>",
                ),
                row=1,
                col=c + 1,
            )
            kr, kc = (offsets.shape[1] - 1) // 2, (offsets.shape[2] - 1) // 2
            fig.add_trace(
                go.Heatmap(
                    z=offsets[c],
                    x=np.arange(-kc, kc + 1),
                    y=np.arange(-kr, kr + 1),
                    colorscale=heat_scale(),
                    zmin=0,
                    zmax=zmax_off,
                    showscale=False,
                    hovertemplate="offset (%{y}, %{x}): %{z:.3f}<extra></extra>",
                ),
                row=2,
                col=c + 1,
            )
        for i in range(2 * k):
            fig.update_yaxes(
                scaleanchor=f"x{i + 1 if i else ''}",
                autorange="reversed",
                showticklabels=False,
                row=i // k + 1,
                col=i % k + 1,
            )
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(title="CLS map", row=1, col=1)
        fig.update_yaxes(title="offsets", row=2, col=1)
        height = 90 + 2 * max(70, min(170, 1100 // max(k, 1)))
    else:
        fig = make_subplots(rows=1, cols=k, subplot_titles=titles, shared_yaxes=True, horizontal_spacing=0.02)
        kc = (offsets.shape[-1] - 1) // 2
        for c in range(k):
            fig.add_trace(
                go.Bar(
                    x=np.arange(-kc, kc + 1),
                    y=offsets[c, 0],
                    marker_color=PALETTE[c % len(PALETTE)],
                    hovertemplate="offset %{x}: %{y:.3f}<extra></extra>",
                ),
                row=1,
                col=c + 1,
            )
        fig.update_xaxes(title=None, tickvals=[-kc, 0, kc], ticktext=[f"≤{-kc}", "self", f"≥+{kc}"])
        fig.update_yaxes(title="mass at offset", row=1, col=1)
        height = 260
    fig.update_layout(height=height, showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    return fig
