"""Arrays -> plotly figures shared by several views (view-specific builders live beside their view)."""

from __future__ import annotations

import base64
import copy
import functools
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from numpy.typing import ArrayLike
from PIL import Image
from plotly.colors import get_colorscale, sample_colorscale, unlabel_rgb
from plotly.subplots import make_subplots

CLICK = "rgba(0,0,0,0)"  # invisible markers that still take hovers and clicks
HEAT = "Viridis"  # the sequential colour scale of heat maps
PRESENT_HEAT = "Inferno"  # the presenter layout's: black to pale yellow, a wider lightness range for a projector
DIVERGING = "RdBu_r"
# a legend in a row above the plot: its margin grows with it, and it stays clear of the x axis's title, which the
# presenter layout sets in two lines of larger type (a legend below the plot, placed in plot fractions, ran into it)
LEGEND_ABOVE = dict(orientation="h", y=1.02, yanchor="bottom", x=0)
LUT_SIZE = 256  # colours sampled from a plotly colour scale when a heat map is drawn as an image


class KeptFigure(go.Figure):
    """A figure shown unchanged on many script runs (ui.cache.memo keeps figures as these): the plotly dict that
    st.plotly_chart asks for on every run (a deep copy with every array encoded, 5 to 40 ms a chart) is made once.
    Not to be changed once shown."""

    def to_dict(self) -> dict:
        if "_kept_dict" not in self.__dict__:
            self._kept_dict = super().to_dict()
        return self._kept_dict


# -- pictures: images and heat maps sent to the browser as PNG (a few kB) instead of arrays of numbers ------
def png_source(rgb: np.ndarray) -> str:
    """An image [h, w, 3] or with alpha [h, w, 4] (uint8, or floats in [0, 1]) as a PNG data URI; the last
    pictures are kept (the same input image is drawn again on every click)."""
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
    return _png(np.ascontiguousarray(rgb).tobytes(), rgb.shape)


@functools.lru_cache(maxsize=32)
def _png(pixels: bytes, shape: tuple[int, ...]) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.frombuffer(pixels, np.uint8).reshape(shape)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@functools.lru_cache(maxsize=16)
def colour_lut(colorscale: str) -> np.ndarray:
    """A named plotly colour scale sampled at LUT_SIZE points: [LUT_SIZE, 3] uint8."""
    colours = sample_colorscale(get_colorscale(colorscale), np.linspace(0, 1, LUT_SIZE))
    return np.array([unlabel_rgb(c) for c in colours]).round().astype(np.uint8)


def heat_scale() -> str:
    """The heat maps' colour scale in this session: HEAT, or PRESENT_HEAT in the presenter layout."""
    import streamlit as st

    from ui import state

    return PRESENT_HEAT if st.session_state.get(state.PRESENT) else HEAT


def heat_rgb(values: np.ndarray, zmin: float, zmax: float, colorscale: str | None = None) -> np.ndarray:
    """Values [...] -> their colours [..., 3] float in [0, 1] on the colour scale from zmin to zmax, as plotly
    draws a heatmap; NaN is white."""
    colorscale = colorscale or heat_scale()
    t = (np.asarray(values, dtype=float) - zmin) / max(zmax - zmin, 1e-12)
    idx = np.clip(np.nan_to_num(t, nan=0.0) * (LUT_SIZE - 1), 0, LUT_SIZE - 1).round().astype(int)
    rgb = colour_lut(colorscale)[idx] / 255.0
    rgb[np.isnan(t)] = 1.0
    return rgb


def patch_blocks(values: np.ndarray, size: int) -> np.ndarray:
    """Per-patch values [h, w] spread over the pixels of a size x size image (size a multiple of h and w): [S, S]."""
    h, w = values.shape
    return np.repeat(np.repeat(values, size // h, 0), size // w, 1)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An image [S, S, C] (C = 1 or 3, values in [0, 1]) as RGB [S, S, 3]."""
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


# -- building a figure once: plotly checks every property on each update of a figure, and make_subplots and the
# add_hline / add_vrect helpers cost more than the data; views hot on clicks build plain dicts and one go.Figure
def subplot_layout(rows: int, cols: int, titles: Sequence[str] = (), **options: Any) -> dict:
    """make_subplots' arrangement (axis domains and anchors, subplot titles; options as make_subplots takes them)
    as a plain layout dict, worked out once per arrangement. Give each trace subplot_axes(row, col, cols)."""
    return copy.deepcopy(_subplots(rows, cols, tuple(titles), tuple(sorted(options.items()))))


@functools.lru_cache(maxsize=64)
def _subplots(rows: int, cols: int, titles: tuple[str, ...], options: tuple) -> dict:
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles) or None, **dict(options))
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)  # the figure built from it gets the default template anyway
    return layout


def subplot_axes(row: int, col: int, cols: int) -> dict:
    """The axis references of the subplot at (row, col) (1-based) of a grid `cols` wide, for a trace dict."""
    k = _subplot_suffix(row, col, cols)
    return dict(xaxis=f"x{k}", yaxis=f"y{k}")


def subplot_axis_layouts(layout: dict, row: int, col: int, cols: int) -> tuple[dict, dict]:
    """The x and y axis dicts of the subplot at (row, col) in a subplot_layout `layout`, to update in place."""
    k = _subplot_suffix(row, col, cols)
    return layout[f"xaxis{k}"], layout[f"yaxis{k}"]


def _subplot_suffix(row: int, col: int, cols: int) -> str:
    k = (row - 1) * cols + col
    return str(k) if k > 1 else ""


def update_axes(layout: dict, which: str, **props: Any) -> None:
    """Set props on every x (`which`="x") or y axis of a layout dict (as fig.update_xaxes does)."""
    for name in [k for k in layout if k.startswith(which + "axis")] or [which + "axis"]:
        layout.setdefault(name, {}).update(props)


def hline(y: float, xaxis: str = "x", yaxis: str = "y", **line: Any) -> dict:
    """A horizontal line across a plot at y (a layout shape, as add_hline draws; line: dash, color, width)."""
    return dict(type="line", xref=f"{xaxis} domain", x0=0, x1=1, yref=yaxis, y0=y, y1=y, line=line)


def vline(x: float, xaxis: str = "x", yaxis: str = "y", **line: Any) -> dict:
    """A vertical line across a plot at x (a layout shape, as add_vline draws)."""
    return dict(type="line", xref=xaxis, x0=x, x1=x, yref=f"{yaxis} domain", y0=0, y1=1, line=line)


def vband(x0: float, x1: float, xaxis: str = "x", yaxis: str = "y", **props: Any) -> dict:
    """A band from x0 to x1 over a plot's height (a layout shape, as add_vrect draws; props: fillcolor, opacity,
    line)."""
    return dict(type="rect", xref=xaxis, x0=x0, x1=x1, yref=f"{yaxis} domain", y0=0, y1=1, **props)


def log_axis(values: ArrayLike, title: str, max_ticks: int = 8) -> dict:
    """A log axis (plotly layout dict) whose ticks are 1-2-5 steps labelled in full, e.g. 0.2, 0.5, 1: plotly
    labels the minor ticks of a short log range with bare digits, which crowd the axis. values: the data shown
    (any shape; non-positive and NaN ignored). Many decades keep only the powers of ten."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return dict(title=title, type="log")
    lo, hi = float(v.min()), float(v.max())
    ticks = [
        m * 10.0**e
        for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
        for m in (1, 2, 5)
        if lo / 2 <= m * 10.0**e <= hi * 2
    ]
    if len(ticks) > max_ticks:
        ticks = [t for t in ticks if np.isclose(np.log10(t), round(np.log10(t)))]
    return dict(title=title, type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])


def probability_bars(
    probs: np.ndarray, class_names: Sequence[str], k: int = 5, true_label: int | None = None
) -> go.Figure:
    """Horizontal bars of the top-k class probabilities of one input (probs [C])."""
    order = np.argsort(-probs)[:k][::-1]
    colors = ["#d62728" if true_label is not None and i == true_label else "#1f77b4" for i in order]
    fig = go.Figure(
        go.Bar(
            x=probs[order],
            y=[class_names[i] for i in order],
            orientation="h",
            marker_color=colors,
            text=[f"{probs[i]:.1%}" for i in order],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
        height=60 + 40 * len(order),
        margin=dict(l=10, r=10, t=10, b=40),
        yaxis=dict(type="category"),
    )
    return fig


def token_heatmap(
    matrix: np.ndarray,
    row_tokens: Sequence[str],
    col_tokens: Sequence[str],
    zmin: float = 0.0,
    zmax: float | None = None,
    colorscale: str | None = None,
    height: int | None = None,
    shapes: Sequence[dict] = (),
) -> go.Figure:
    """A token x token heatmap (rows = queries) with token labels; indices disambiguate repeated tokens. shapes:
    layout shapes drawn over it (e.g. ui.attention_figures.row_outline)."""
    rows = [f"{i}:{t}" for i, t in enumerate(row_tokens)]
    cols = [f"{j}:{t}" for j, t in enumerate(col_tokens)]
    heat = dict(
        type="heatmap",
        z=matrix,
        x=cols,
        y=rows,
        colorscale=colorscale or heat_scale(),
        zmin=zmin,
        zmax=zmax,
        hovertemplate="query %{y} → key %{x}: %{z:.3f}<extra></extra>",
    )
    layout = dict(
        xaxis=dict(type="category", tickangle=-60),
        yaxis=dict(autorange="reversed", type="category"),
        height=height or min(900, 200 + 14 * len(rows)),
        margin=dict(l=10, r=10, t=10, b=10),
        shapes=list(shapes),
    )
    return go.Figure(data=[heat], layout=layout)
