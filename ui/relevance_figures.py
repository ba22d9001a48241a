"""Figures of the Relevance view: map overlays, coloured tokens, conservation, faithfulness curves, the
disagreement gallery and the highlighted faithfulness table."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.faithfulness import METRICS, RANDOM, best_methods, method_label
from ui.cell_picker import CellGrid, patch_grid, pixel_grid, text_colours
from ui.figures import (
    DIVERGING,
    as_rgb,
    heat_rgb,
    patch_blocks,
    png_source,
    subplot_axes,
    subplot_layout,
    update_axes,
)

# RdBu_r with a transparent middle: the input stays visible where relevance is about zero. Its stops: position,
# red, green, blue (0-255), opacity (0-1); SIGNED is the same scale as plotly reads it
_SIGNED_STOPS = np.array(
    [
        [0.0, 5, 48, 97, 0.95],
        [0.25, 67, 147, 195, 0.7],
        [0.5, 255, 255, 255, 0],
        [0.75, 214, 96, 77, 0.7],
        [1.0, 103, 0, 31, 0.95],
    ]
)
SIGNED = [[float(at), f"rgba({r:.0f},{g:.0f},{b:.0f},{a:g})"] for at, r, g, b, a in _SIGNED_STOPS]
MAP_PX = 300  # the widest a map picture is drawn

TOKENS_PER_ROW = 8
TOKEN_ROW_PX = 30  # height of one line of word pieces
CONSERVATION_CLASSES = 32  # the conservation scatter's classes: the highest logits (and the target)
CONSERVATION_NAMED = 3
NAME_CLEARANCE = 0.08  # a name is left off when its point is closer than this (share of the axes) to a named one
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#000000",
]


def shares(maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each map [..., T'] divided by its total absolute relevance (signed shares; an all-zero map stays 0),
    so that maps of different methods, in different units, can share one colour scale."""
    out = {}
    for k, v in maps.items():
        v = np.asarray(v, dtype=np.float32)
        total = np.abs(v).sum(-1, keepdims=True)
        out[k] = np.where(total > 0, v / np.where(total > 0, total, 1), 0.0)
    return out


def colour_limits(maps: dict[str, np.ndarray], shared: bool) -> dict[str, float]:
    """Symmetric colour limit per map: the largest |value| over all maps (shared) or of each map."""
    lims = {k: float(np.abs(v).max()) or 1.0 for k, v in maps.items()}
    if shared:
        top = max(lims.values(), default=1.0)
        lims = {k: top for k in lims}
    return lims


def _overlay(
    rgb: np.ndarray,
    grid: np.ndarray,
    limit: float,
    name: str,
    showscale: bool = False,
    opacity: float = 1.0,
    show_image: bool = True,
) -> list[dict]:
    """Trace dicts of one map grid [h, w] on the signed scale +-limit, over the image rgb [S, S, 3] (0-255)
    unless show_image is off, at `opacity`."""
    s, (gh, gw) = rgb.shape[0], grid.shape
    image = [dict(type="image", source=png_source(rgb.astype(np.uint8)), hoverinfo="skip")] if show_image else []
    return image + [
        dict(
            type="heatmap",
            opacity=opacity,
            z=grid,
            x0=(s / gw - 1) / 2,
            dx=s / gw,
            y0=(s / gh - 1) / 2,
            dy=s / gh,
            colorscale=SIGNED,
            zmin=-limit,
            zmax=limit,
            showscale=showscale,
            colorbar=dict(thickness=10, tickformat=".2g", title=dict(text="share", side="right")),
            hovertemplate=f"{name}: %{{z:.3g}}<extra></extra>",
        )
    ]


def signed_over(values: np.ndarray, limit: float, under: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """Values [...] on the SIGNED scale from -limit to +limit laid over the picture under [..., 3] (floats in
    [0, 1]) as plotly lays a heatmap of that scale at `opacity` over it: colours [..., 3] in [0, 1]."""
    t = np.clip((np.asarray(values, dtype=float) / limit + 1) / 2, 0, 1)
    rgba = np.stack([np.interp(t, _SIGNED_STOPS[:, 0], _SIGNED_STOPS[:, i]) for i in range(1, 5)], axis=-1)
    alpha = opacity * rgba[..., 3:]
    return alpha * rgba[..., :3] / 255 + (1 - alpha) * under


def map_picture(
    image: np.ndarray, grid_map: np.ndarray, limit: float, name: str, opacity: float = 1.0, show_image: bool = True
) -> CellGrid:
    """One method's map [h, w] on the signed scale +-limit (red: for the class, blue: against) over the image
    [S, S, C] (S a multiple of the grid; on white without show_image) at `opacity`, as a picture with one cell per
    patch and its value on hover (a cell picker that picks nothing: it stays mounted when only its picture
    changes, where a plotly chart is drawn anew)."""
    gh, gw = grid_map.shape
    s = image.shape[0]
    under = as_rgb(image) if show_image else np.ones((s, s, 3))
    return patch_grid(
        signed_over(patch_blocks(grid_map, s), limit, under, opacity),
        (gh, gw),
        [f"{name}, patch row {r}, col {c}: {grid_map[r, c]:.3g}" for r in range(gh) for c in range(gw)],
        title=name,
        max_width=MAP_PX,
        scale=(DIVERGING, -limit, limit, "share"),
        pickable=False,
    )


def _square_axes(layout: dict, s: int) -> None:
    """Every subplot of a layout dict shows an S x S image (no axes); subplot titles in 12 px."""
    update_axes(layout, "x", visible=False, range=[-0.5, s - 0.5])
    update_axes(layout, "y", visible=False, range=[s - 0.5, -0.5])
    for note in layout.get("annotations", []):
        note["font"] = dict(size=12)


def top_tokens(tokens: Sequence[str], maps: dict[str, np.ndarray], k: int) -> pd.DataFrame:
    """The k most relevant word pieces of each method (maps: {method: [T'] shares}) as one table: per method a
    column "token (share)", rank 1 first."""
    out: dict[str, np.ndarray | list[str]] = {"rank": np.arange(1, min(k, len(tokens)) + 1)}
    for name, v in maps.items():
        order = np.argsort(-np.asarray(v))[:k]
        out[name] = [f"{tokens[i]} ({v[i]:+.1%})" for i in order]
    return pd.DataFrame(out)


def token_pictures(
    tokens: Sequence[str], maps: dict[str, np.ndarray], limits: dict[str, float], per_row: int = TOKENS_PER_ROW
) -> list[CellGrid]:
    """Each method's relevance as coloured word pieces (maps: {method: [T'] shares}; read left to right, top to
    bottom, per_row to a line; red: for the class, blue: against, on the scale +-limits[method]), one picture per
    method with the word in each cell and its share on hover (cell pickers that pick nothing)."""
    n = len(tokens)
    lines = int(np.ceil(n / per_row)) or 1
    texts = list(tokens) + [""] * (lines * per_row - n)
    pictures = []
    for name, shares_ in maps.items():
        z = np.full(lines * per_row, np.nan)
        z[:n] = shares_[:n]
        rgb = heat_rgb(z.reshape(lines, per_row), -limits[name], limits[name], DIVERGING)
        pictures.append(
            pixel_grid(
                rgb,
                [f"{name} · {t}: {v:.3g}" for t, v in zip(tokens, z)] + [""] * (lines * per_row - n),
                clear=np.isnan(z).reshape(lines, per_row),  # the cells after the last word
                title=name,
                height=TOKEN_ROW_PX * lines,
                ruled=True,
                scale=(DIVERGING, -limits[name], limits[name], "share"),
                pickable=False,
                texts=texts,
                text_colours=text_colours(rgb),
            )
        )
    return pictures


def conservation_figure(df: pd.DataFrame, predicted: int) -> go.Figure:
    """AttnLRP total input relevance vs the logit, one point per class of df (class, name, logit, total_relevance),
    the predicted class red; named: the predicted class and the highest logits; the diagonal is exact conservation.
    (Not the target class: a new target then leaves the chart as it is, and Streamlit does not draw it again.)"""
    lo = float(min(df["logit"].min(), df["total_relevance"].min()))
    hi = float(max(df["logit"].max(), df["total_relevance"].max()))
    pad = 0.05 * (hi - lo or 1)
    colours = ["#d62728" if c == predicted else "#1f77b4" for c in df["class"]]
    # names on the predicted class and the CONSERVATION_NAMED highest logits only (all of them overlap), and not on a
    # point too close to one already named; hover shows every one
    span = np.array([df["logit"].max() - df["logit"].min(), df["total_relevance"].max() - df["total_relevance"].min()])
    xy = df[["logit", "total_relevance"]].to_numpy(dtype=float) / np.where(span > 0, span, 1.0)
    named: list = []
    for c in [predicted] + [c for c in df.nlargest(CONSERVATION_NAMED, "logit")["class"] if c != predicted]:
        here = xy[df["class"].to_numpy() == c][0]
        if all(np.hypot(*(here - xy[df["class"].to_numpy() == o][0])) > NAME_CLEARANCE for o in named):
            named.append(c)
    fig = go.Figure(
        [
            go.Scatter(
                x=[lo - pad, hi + pad],
                y=[lo - pad, hi + pad],
                mode="lines",
                name="relevance = logit",
                line=dict(color="grey", dash="dash"),
                hoverinfo="skip",
            ),
            go.Scatter(
                x=df["logit"],
                y=df["total_relevance"],
                mode="markers+text",
                text=[n if c in named else "" for c, n in zip(df["class"], df["name"])],
                textposition="top center",
                marker=dict(size=10, color=colours),
                name="classes",
                customdata=df["name"],
                hovertemplate="%{customdata}: logit %{x:.3g}, relevance %{y:.3g}<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        xaxis_title="class logit",
        yaxis_title="total input relevance (AttnLRP)",
        height=360,
        margin=dict(l=10, r=10, t=10, b=40),
        showlegend=False,
    )
    return fig


def curves_figure(curves: pd.DataFrame, tests: Sequence[str], y_title: str, x_title: str) -> go.Figure:
    """Faithfulness curves: one colour per method, solid for the first test, dashed for the second."""
    fig = go.Figure()
    methods = list(dict.fromkeys(curves["method"]))
    dashes = ["solid", "dash"]
    for i, m in enumerate(methods):
        colour = "#7f7f7f" if m == RANDOM else PALETTE[i % len(PALETTE)]
        for test, dash in zip(tests, dashes):
            c = curves[(curves["method"] == m) & (curves["test"] == test)]
            fig.add_trace(
                go.Scatter(
                    x=c["fraction"],
                    y=c["value"],
                    mode="lines+markers",
                    name=f"{method_label(m)} · {test}",
                    legendgroup=m,
                    line=dict(color=colour, dash=dash),
                    marker=dict(size=4),
                )
            )
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=380,
        margin=dict(l=10, r=10, t=10, b=40),
        legend=dict(font=dict(size=10)),
    )
    return fig


def gallery_figure(images: np.ndarray, grid_maps: dict[str, np.ndarray], captions: Sequence[str]) -> go.Figure:
    """Rows: inputs (images [N, S, S, C]); columns: methods (grid maps [N, h, w], each scaled to its own
    max |value|): the inputs where methods disagree most."""
    methods = list(grid_maps)
    n, k = len(images), len(methods)
    layout = subplot_layout(
        n,
        k,
        column_titles=tuple(methods),
        row_titles=tuple(captions),
        horizontal_spacing=0.01,
        vertical_spacing=0.02,
    )
    data = []
    for i in range(n):
        rgb = as_rgb(images[i]) * 255
        for j, m in enumerate(methods):
            g = grid_maps[m][i]
            axes = subplot_axes(i + 1, j + 1, k)
            data += [t | axes for t in _overlay(rgb, g, float(np.abs(g).max()) or 1.0, m)]
    _square_axes(layout, images.shape[1])
    for note in layout.get("annotations", []):
        if note.get("textangle") == 90:  # row titles: read across, not up
            note.update(textangle=0, xanchor="left", xshift=-4)
    layout.update(height=40 + 130 * n, margin=dict(l=10, r=150, t=50, b=10))
    return go.Figure(data=data, layout=layout)


def faithfulness_display(table: pd.DataFrame) -> pd.DataFrame:
    """The table with readable column names, metrics that are all NaN dropped."""
    cols = {"label": "Method"} | {k: v[0] for k, v in METRICS.items()}
    keep = ["label"] + [k for k in METRICS if table[k].notna().any()]
    return table[keep].rename(columns=cols)


def highlight_best(table: pd.DataFrame):
    """faithfulness_display of a summarise_scores table as a pandas Styler that bolds and colours, per metric, the
    best method's value when it beats the random map (analysis.faithfulness.best_methods); a column where no method
    beats chance has no highlight."""
    best, display = best_methods(table), faithfulness_display(table)
    columns = {METRICS[m][0]: m for m in METRICS}

    def mark(col: pd.Series):
        winner = best.get(columns.get(str(col.name), ""))
        return ["font-weight: bold; background-color: #c7e9c0" if m == winner else "" for m in table["method"]]

    return display.style.apply(mark).format({c: "{:.3g}" for c in display.columns if c != "Method"})
