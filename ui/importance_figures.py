"""Figures of the head-importance view: score grids, agreement matrix, partial and cumulative pruning
curves, per-class scores (arrays and DataFrames from analysis.importance in, plotly figures out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from analysis.importance import GRADIENT, METRIC_TITLES, SIGN
from ui.cell_picker import CellGrid, head_grid
from ui.figures import DIVERGING, LEGEND_ABOVE, heat_scale

CURVE_COLORS = dict(
    zip(("accuracy", "loss", "true_prob", "cosine", "gradient", "gradient_norm"), px.colors.qualitative.D3)
)
RANDOM_COLOR = "#7f7f7f"


MEANING = {
    "accuracy": "drop in accuracy when the head is removed",
    "loss": "rise in loss when the head is removed",
    "true_prob": "drop in the target class's probability when the head is removed",
    "cosine": "cosine distance the pooled embedding moves when the head is removed",
    "gradient": "mean |dL/dg| of the head's gate at g = 1",
    "gradient_norm": "mean |dL/dg| at g = 1 over its layer's L2 norm",
}


SHORT = {"true_prob": "target prob.", "cosine": "cosine dist.", "gradient_norm": "gradient (layer-norm.)"}


def short_label(metric: str) -> str:
    """A few characters for axes and legends."""
    return SHORT.get(metric, metric)


def metric_label(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric)


ABLATION_LABELS = {  # what a removed head's output becomes (analysis.importance.ABLATIONS)
    "zero": "zero (Michel et al. 2019)",
    "mean": "its mean output (Wang et al. 2022)",
    "resample": "its output on another input (Chan et al. 2022)",
}


def ablation_label(kind: str) -> str:
    return ABLATION_LABELS.get(kind, kind)


def score_meaning(metric: str) -> str:
    """What a score of `metric` measures, in words (for the 'how to read this' lines)."""
    return MEANING.get(metric, metric_label(metric))


def score_grid(values: np.ndarray, metric: str, width: int = 380) -> CellGrid:
    """The clickable L x H grid of one importance score [L, H]; its height makes the cells about square in a
    column `width` pixels wide (they fill whatever width they get).

    Ablation scores are signed (blue: removing the head helps, red: it hurts) on a scale centred at 0;
    gradient scores are magnitudes (viridis)."""
    L, H = values.shape
    height = int(max(12, min(44, (width - 110) / H))) * L
    if metric in GRADIENT:
        return head_grid(values, metric_label(metric), heat_scale(), zmin=0.0, height=height)
    top = float(np.nanmax(np.abs(values))) or 1.0
    return head_grid(values, metric_label(metric), DIVERGING, zmin=-top, zmax=top, height=height)


def agreement_figure(corr: pd.DataFrame) -> go.Figure:
    """Spearman rank correlations between scores (a metric x metric frame), -1..1 with the values written in."""
    names = [short_label(m) for m in corr.columns]
    z = corr.to_numpy(dtype=float)
    many = len(names) > 4  # narrow cells: one decimal, smaller type
    digits = 1 if many else 2
    rounded = np.round(np.nan_to_num(z), digits) + 0.0  # + 0.0: no "-0.0"
    text = np.where(np.isnan(z), "n/a", np.vectorize(lambda v: f"{v:.{digits}f}")(rounded))
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            zmin=-1,
            zmax=1,
            colorscale=DIVERGING,
            text=text,
            texttemplate="%{text}",
            textfont_size=11 if many else 13,
            xgap=1,
            ygap=1,
            hovertemplate="%{y} vs %{x}: ρ = %{z:.3f}<extra></extra>",
            colorbar=dict(thickness=12, title="ρ"),
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_layout(height=160 + 56 * len(names), margin=dict(l=10, r=10, t=10, b=10))
    return fig


def _quality_axis(fig: go.Figure, metric: str) -> None:
    """The y axis of a quality curve: accuracy as 0-100%, other metrics on their own scale."""
    if metric == "accuracy":
        fig.update_yaxes(title="accuracy", tickformat=".0%", range=[-0.02, 1.04])
    else:
        fig.update_yaxes(title=metric_label(metric))


def partial_pruning_figure(df: pd.DataFrame, metric: str, layer: int, head: int) -> go.Figure:
    """The metric of the whole sample as the gate of one head goes 1 -> 0 (df: gate, metric, value)."""
    d = df[df.metric == metric]
    fig = go.Figure(
        go.Scatter(
            x=d.gate,
            y=d.value,
            mode="lines+markers",
            line=dict(color="#d62728"),
            hovertemplate="gate %{x:.2f}: %{y:.4g}<extra></extra>",
        )
    )
    fig.update_xaxes(title=f"gate of layer {layer} head {head} (1 = intact, 0 = removed)", autorange="reversed")
    _quality_axis(fig, metric)
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10))
    return fig


def pruning_curves_figure(curves: pd.DataFrame, metric: str) -> go.Figure:
    """Cumulative pruning: the metric vs the fraction of heads removed, one line per pruning order
    (curves: order, fraction, n_removed, metric, value). The random order is dashed grey."""
    fig = go.Figure()
    d = curves[curves.metric == metric]
    for order, g in d.groupby("order", sort=False):
        fig.add_trace(
            go.Scatter(
                x=g.fraction,
                y=g.value,
                mode="lines+markers",
                name=f"by {short_label(order)}" if order != "random" else "random order",
                line=dict(color=CURVE_COLORS.get(order, RANDOM_COLOR), dash="dash" if order == "random" else "solid"),
                customdata=g.n_removed,
                hovertemplate="%{customdata} heads removed: %{y:.4g}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_xaxes(title="fraction of heads removed (least important first)", tickformat=".0%", range=[-0.02, 1.02])
    _quality_axis(fig, metric)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10), legend=LEGEND_ABOVE)
    return fig


def per_class_figure(frame: pd.DataFrame, metric: str, selected: tuple[int, int] | None = None) -> go.Figure:
    """Importance of every head (columns) for each class (rows) under one metric (frame: class, n, layer,
    head, metric, value); the selected head's column is marked."""
    d = frame[frame.metric == metric]
    classes = list(dict.fromkeys(d["class"]))
    heads: list[tuple[int, ...]] = list(dict.fromkeys(zip(d["layer"], d["head"])))
    z = d.pivot_table(index="class", columns=["layer", "head"], values="value", sort=False).loc[classes, heads]
    cols = [f"L{l}H{h}" for l, h in heads]
    rows = [f"{c} (n={n})" for c, n in d.groupby("class", sort=False)["n"].first().loc[classes].items()]
    signed = metric not in GRADIENT
    top = float(np.nanmax(np.abs(z.to_numpy()))) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=z.to_numpy(),
            x=cols,
            y=rows,
            colorscale=DIVERGING if signed else heat_scale(),
            zmin=-top if signed else 0,
            zmax=top,
            colorbar=dict(thickness=12),
            hovertemplate="class %{y}, %{x}: %{z:.4g}<extra></extra>",
        )
    )
    if selected is not None and tuple(selected) in heads:
        i = heads.index(tuple(selected))
        fig.add_vrect(x0=i - 0.5, x1=i + 0.5, line=dict(color="red", width=2))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", tickangle=-90 if len(cols) > 24 else 0)
    fig.update_layout(height=120 + 28 * len(rows), margin=dict(l=10, r=10, t=10, b=10))
    return fig


def signed_note(metrics: Sequence[str]) -> str:
    """One line on how the signs of the shown scores read."""
    kinds = []
    if any(m in SIGN for m in metrics):
        kinds.append("ablation scores: red = removing the head hurts, blue = removing it helps, white = no effect")
    if any(m in GRADIENT for m in metrics):
        kinds.append("gradient scores: brighter = the loss is more sensitive to the head's gate")
    return "; ".join(kinds)
