"""Figures of the Spectral view: HC/DC per layer, Park & Kim's Fourier profiles and high-frequency end
point, a head's frequency response (gain, 2-D response, eigenvalues), rank collapse, temperature sweeps,
length collapse and the activation lab (waveform, spectrum with analytic values)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ui.cell_picker import CellGrid, pixel_grid
from ui.figures import (
    LEGEND_ABOVE,
    heat_rgb,
    heat_scale,
    hline,
    log_axis,
    subplot_axes,
    subplot_axis_layouts,
    subplot_layout,
    vband,
    vline,
)

STREAM_COLORS = {"resid": "#1f77b4", "attn_out": "#d62728", "mlp_out": "#2ca02c"}
STREAM_NAMES = {"resid": "residual stream", "attn_out": "attention output", "mlp_out": "MLP output"}
WHATIF_COLORS = {"model": "#1f77b4", "no skip": "#ff7f0e", "no MLP": "#2ca02c", "attention only": "#d62728"}
# rank-collapse norm (analysis.spectral.RANK_NORMS) -> y-axis title
RANK_AXIS = {"fro": "‖X − 1x̄ᵀ‖<sub>F</sub> / ‖X‖<sub>F</sub> (log)", "l1inf": "minₓ ‖X − 1xᵀ‖₁,∞ / ‖X‖₁,∞ (log)"}
MARGIN = dict(l=10, r=10, t=30, b=10)
RESPONSE_2D_PX = 300  # the widest a head's 2-D response picture is drawn


def _layer_ticks(n_layers: int) -> dict:
    return dict(
        tickmode="array", tickvals=list(range(-1, n_layers)), ticktext=["emb"] + [str(l) for l in range(n_layers)]
    )


def hc_dc_figure(
    current: dict[str, np.ndarray], sample: dict[str, np.ndarray] | None = None, height: int = 360
) -> go.Figure:
    """HC/DC per layer: {stream: values}, resid [L+1] (embeddings at x = -1, block l's output at x = l),
    attn_out / mlp_out [L] at their block. Solid: the current input; dashed: the sample mean."""
    data = [
        dict(
            type="scatter",
            x=np.arange(len(v)) - (1 if stream == "resid" else 0),
            y=v,
            mode="lines+markers",
            name=f"{STREAM_NAMES[stream]} ({who})",
            line=dict(color=STREAM_COLORS[stream], dash=dash),
            hovertemplate="layer %{x}: HC/DC %{y:.3g}<extra>" + STREAM_NAMES[stream] + f" ({who})</extra>",
        )
        for values, dash, who in ((current, "solid", "input"), (sample or {}, "dash", "sample mean"))
        for stream, v in values.items()
    ]
    n_layers = len(current["attn_out"])
    layout = dict(
        height=height,
        margin=MARGIN,
        legend=LEGEND_ABOVE,
        xaxis=dict(title="layer (block output; emb = embeddings)", **_layer_ticks(n_layers)),
        yaxis=log_axis(
            np.concatenate([np.ravel(v) for d in (current, sample or {}) for v in d.values()]), "‖HC‖ / ‖DC‖ (log)"
        ),
    )
    return go.Figure(data=data, layout=layout)


@functools.lru_cache(maxsize=16)
def depth_colors(n: int) -> list[str]:
    """n colours from shallow (dark) to deep (yellow) on Plasma."""
    return sample_colorscale("Plasma", [0.85 * i / max(n - 1, 1) for i in range(n)])


NYQUIST_AXIS = "frequency along the diagonal, per axis<br>(×π; 1 = the Nyquist corner (π, π))"


def diagonal_end(top: float) -> tuple[str, str, str]:
    """(axis title, short name, caption words) for a Fourier profile whose last point is `top` π per axis: the
    Nyquist corner (π, π) on an even grid; an odd grid has no Nyquist bin, and ends at its last bin (1 − 1/n)π."""
    if np.isclose(top, 1.0):
        return NYQUIST_AXIS, "(π, π)", "the Nyquist corner (π, π) (π on each axis, √2·π in radius)"
    corner = f"({top:.2f}π, {top:.2f}π)"
    return (
        f"frequency along the diagonal, per axis<br>(×π; it ends at the last bin {corner}: an odd grid has no "
        "Nyquist bin)",
        corner,
        f"the last bin of the diagonal {corner} (an odd grid has no Nyquist corner)",
    )


def fourier_profile_figure(
    freq: np.ndarray, profiles: np.ndarray, labels: Sequence[str], height: int = 380, x_title: str = NYQUIST_AXIS
) -> go.Figure:
    """Park & Kim's figure: delta log amplitude vs normalised frequency, one line per state [S, K]
    coloured from shallow (dark) to deep (yellow)."""
    data = [
        dict(
            type="scatter",
            x=freq,
            y=p,
            mode="lines+markers",
            name=label,
            line=dict(color=color),
            hovertemplate=f"{label}<br>frequency %{{x:.2f}}π: Δ log amplitude %{{y:.3f}}<extra></extra>",
        )
        for p, label, color in zip(profiles, labels, depth_colors(len(labels)))
    ]
    layout = dict(
        height=height,
        margin=MARGIN,
        legend=dict(font=dict(size=10)),
        xaxis=dict(title=x_title, range=[0, 1.02]),
        yaxis=dict(title="Δ log amplitude"),
    )
    return go.Figure(data=data, layout=layout)


def endpoint_figure(
    endpoint: np.ndarray,
    variance: np.ndarray,
    labels: Sequence[str],
    kinds: Sequence[str],
    height: int = 380,
    end: str = "(π, π)",
) -> go.Figure:
    """High-frequency end point of the Fourier profile (top; `end` names where it is read) and feature-map
    variance (bottom) per state [S], with the steps made by attention sublayers shaded."""
    layout = subplot_layout(2, 1, shared_xaxes=True, vertical_spacing=0.08)
    x = np.arange(len(labels))
    data = []
    # each panel's title on two lines: one line of it is taller than its panel in the presenter layout's font
    for row, y, name, fmt in (
        (1, endpoint, f"Δ log amplitude<br>at {end}", ".3f"),
        (2, variance, "feature-map<br>variance", ".3g"),
    ):
        data.append(
            dict(
                type="scatter",
                x=x,
                y=y,
                mode="lines+markers",
                name=name,
                line=dict(color="#444"),
                marker=dict(color=depth_colors(len(x)), size=9),
                customdata=np.asarray(labels),
                hovertemplate="%{customdata}: %{y:" + fmt + "}<extra></extra>",
            )
            | subplot_axes(row, 1, 1)
        )
        subplot_axis_layouts(layout, row, 1, 1)[1]["title"] = dict(text=name)
    layout["shapes"] = [
        vband(i - 1, i, xaxis=xaxis, yaxis=yaxis, fillcolor="grey", opacity=0.18, line=dict(width=0))
        for i, kind in enumerate(kinds)
        if kind == "attention"
        for xaxis, yaxis in (("x", "y"), ("x2", "y2"))
    ]
    layout["xaxis2"].update(tickmode="array", tickvals=list(x), ticktext=list(labels), tickangle=-45)
    layout.update(height=height, margin=MARGIN, showlegend=False)
    return go.Figure(data=data, layout=layout)


def head_response_figure(
    freq: np.ndarray,
    gain: np.ndarray,
    layer_gains: np.ndarray,
    eigenvalues: np.ndarray,
    head: str = "",
    height: int = 340,
) -> go.Figure:
    """A head's frequency response in one figure (one chart to draw again per head click), side by side: its 1-D
    gain G(k) [K] over normalised frequency with the other heads of its layer [H, K] in grey, and the eigenvalues
    [T] (complex) of its attention matrix with the unit circle. head: names the head in the panel titles. (The 2-D
    response of a patch grid is a picture beside it: response_2d_picture.)"""
    layout = subplot_layout(1, 2, [f"{p} of {head}".strip() for p in ("gain", "eigenvalues")], horizontal_spacing=0.14)
    layout.update(height=height, margin=dict(MARGIN, t=40), showlegend=False)
    # the layer's heads as one grey trace, broken by gaps (NaN) between heads: one trace draws faster than H
    gaps = np.full((len(layer_gains), 1), np.nan)
    grey_x = np.hstack([np.broadcast_to(freq, layer_gains.shape), gaps]).ravel()
    grey_y = np.hstack([layer_gains, gaps]).ravel()
    data = [
        dict(type="scatter", x=grey_x, y=grey_y, mode="lines", line=dict(color="lightgrey", width=1), hoverinfo="skip"),
        dict(
            type="scatter",
            x=freq,
            y=gain,
            mode="lines+markers",
            line=dict(color="#d62728"),
            hovertemplate="frequency %{x:.2f}π: gain %{y:.3f}<extra></extra>",
        ),
    ]
    layout["xaxis"].update(title=dict(text="normalised frequency over tokens (×π)"))
    layout["yaxis"].update(title=dict(text="gain G(k)"), rangemode="tozero")
    layout["shapes"] = [hline(1.0, dash="dot", color="grey")]
    axes = subplot_axes(1, 2, 2)
    theta = np.linspace(0, 2 * np.pi, 181)
    data.append(
        dict(
            type="scatter",
            x=np.cos(theta),
            y=np.sin(theta),
            mode="lines",
            line=dict(color="grey", dash="dot"),
            hoverinfo="skip",
            **axes,
        )
    )
    data.append(
        dict(
            type="scatter",
            x=eigenvalues.real,
            y=eigenvalues.imag,
            mode="markers",
            marker=dict(
                color=np.abs(eigenvalues),
                colorscale=heat_scale(),
                cmin=0,
                cmax=1,
                size=7,
                line=dict(width=0.5, color="black"),
            ),
            hovertemplate="λ = %{x:.3f} %{y:+.3f}i<extra></extra>",
            **axes,
        )
    )
    x_eig, y_eig = subplot_axis_layouts(layout, 1, 2, 2)
    x_eig.update(title=dict(text="real"), range=[-1.1, 1.1], zeroline=True, constrain="domain")
    y_eig.update(title=dict(text="imaginary"), range=[-1.1, 1.1], scaleanchor=axes["xaxis"], zeroline=True)
    return go.Figure(data=data, layout=layout)


def response_2d_picture(response_2d: np.ndarray, head: str = "") -> CellGrid:
    """A head's 2-D response [h, w] (fftshifted |fft2| of its attention rows over the patch grid, DC in the centre)
    as a picture with a cell per frequency pair, from 0 to its largest value; hover: the frequencies and the value.
    (A picture, not a plotly heatmap: a head click swaps an image instead of drawing a chart anew.)"""
    h, w = response_2d.shape
    rows, cols = np.arange(h) - h // 2, np.arange(w) - w // 2
    top = max(float(np.nanmax(response_2d)), 1e-12)
    return pixel_grid(
        heat_rgb(response_2d, 0.0, top),
        [
            f"frequency (row {r}, col {c}): {response_2d[i, j]:.3f}"
            for i, r in enumerate(rows)
            for j, c in enumerate(cols)
        ],
        row_labels=[str(r) for r in rows],
        col_labels=[str(c) for c in cols],
        row_title="row frequency",
        col_title="column frequency",
        title=f"2-D response of {head}".strip(),
        max_width=RESPONSE_2D_PX,
        scale=(heat_scale(), 0.0, top, ""),
        pickable=False,
    )


def rank_collapse_figure(ratios: dict[str, np.ndarray], norm: str, height: int = 340) -> go.Figure:
    """Rank-collapse ratio per layer [L+1] for each what-if forward (log y) under `norm` (a RANK_NORMS key)."""
    fig = go.Figure()
    for name, r in ratios.items():
        fig.add_trace(
            go.Scatter(
                x=np.arange(len(r)) - 1,
                y=r,
                mode="lines+markers",
                name=name,
                line=dict(color=WHATIF_COLORS.get(name)),
                hovertemplate="layer %{x}: %{y:.3g}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        height=height,
        margin=MARGIN,
        legend=LEGEND_ABOVE,
        xaxis=dict(title="layer (block output; emb = embeddings)", **_layer_ticks(len(r) - 1)),
        yaxis=log_axis(np.concatenate([np.ravel(r) for r in ratios.values()]), RANK_AXIS[norm]),
    )
    return fig


def attention_rank_figure(
    stable: np.ndarray, effective: np.ndarray, selected: tuple[int, int] | None = None, height: int = 340
) -> go.Figure:
    """Stable and effective rank of every head [L, H] per layer: head means as lines, heads as dots,
    the selected head circled."""
    L, H = stable.shape
    fig = go.Figure()
    for name, v, color in (("effective rank", effective, "#9467bd"), ("stable rank", stable, "#8c564b")):
        layer = np.repeat(np.arange(L), H)
        fig.add_trace(
            go.Scatter(
                x=layer + np.tile(np.linspace(-0.15, 0.15, H), L),
                y=v.ravel(),
                mode="markers",
                marker=dict(color=color, size=5, opacity=0.45),
                showlegend=False,
                customdata=np.tile(np.arange(H), L),
                hovertemplate="head %{customdata}: %{y:.2f}<extra>" + name + "</extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=np.arange(L), y=v.mean(1), mode="lines+markers", name=f"{name} (head mean)", line=dict(color=color)
            )
        )
        if selected is not None:
            l, h = selected
            fig.add_trace(
                go.Scatter(
                    x=[l + np.linspace(-0.15, 0.15, H)[h]],
                    y=[v[l, h]],
                    mode="markers",
                    marker=dict(symbol="circle-open", size=13, color="red", line=dict(width=2)),
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
    fig.update_layout(
        height=height,
        margin=MARGIN,
        legend=LEGEND_ABOVE,
        xaxis=dict(title="layer", dtick=1),
        yaxis=log_axis(np.concatenate([stable.ravel(), effective.ravel()]), "rank of the attention matrix"),
    )
    return fig


def temperature_sweep_figure(sweep: dict[str, np.ndarray], tau: float, height: int = 360) -> go.Figure:
    """Left: residual HC/DC of each block output vs tau; right: mean attention entropy, last-layer rank
    ratio and prediction agreement vs tau. The current tau is marked."""
    layout = subplot_layout(1, 2, ("residual HC/DC per block", "entropy, rank, agreement"))
    taus = sweep["taus"]
    r = sweep["resid_ratio"]
    colors = depth_colors(r.shape[1] - 1)
    data = [
        dict(
            type="scatter",
            x=taus,
            y=r[:, l],
            mode="lines+markers",
            name=f"block {l - 1}",
            line=dict(color=colors[l - 1]),
            legendgroup="hc",
        )
        | subplot_axes(1, 1, 2)
        for l in range(1, r.shape[1])
    ]
    for name, y, color in (
        ("attention entropy (mean, 1 = uniform)", sweep["entropy"].mean(1), "#9467bd"),
        ("rank ratio, Frobenius (last layer)", sweep["rank"][:, -1], "#8c564b"),
        ("prediction agreement with τ = 1", sweep["agreement"], "#17becf"),
    ):
        data.append(
            dict(type="scatter", x=taus, y=y, mode="lines+markers", name=name, line=dict(color=color))
            | subplot_axes(1, 2, 2)
        )
    ticks = dict(
        title=dict(text="temperature τ (log)"), type="log", tickvals=list(taus), ticktext=[f"{t:g}" for t in taus]
    )
    layout["xaxis"].update(ticks)
    layout["xaxis2"].update(ticks)
    layout["shapes"] = [vline(tau, x, y, dash="dot", color="red") for x, y in (("x", "y"), ("x2", "y2"))]
    hc_axis = log_axis(r[:, 1:], "‖HC‖ / ‖DC‖")
    layout["yaxis"].update(title=dict(text=hc_axis.pop("title")), **hc_axis)
    layout["yaxis2"].update(range=[0, 1.05])
    layout.update(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(font=dict(size=10)))
    return go.Figure(data=data, layout=layout)


def length_collapse_figure(df: pd.DataFrame, height: int = 340) -> go.Figure:
    """Mean pairwise cosine similarity of sentence embeddings vs input length (tokens), one line per tau."""
    fig = go.Figure()
    ticks = sorted(df.groupby("words")["tokens"].mean())
    for tau, g in df.groupby("tau", sort=True):
        fig.add_trace(
            go.Scatter(
                x=g["tokens"],
                y=g["mean_cos"],
                mode="lines+markers",
                name=f"τ = {tau:g}",
                line=dict(dash="dash" if tau == 1.0 else "solid", color="#1f77b4" if tau == 1.0 else "#d62728"),
                customdata=g[["words", "n_texts"]].to_numpy(),
                hovertemplate="%{x:.0f} tokens (%{customdata[0]} words, %{customdata[1]} texts): "
                "mean cos %{y:.3f}<extra></extra>",
            )
        )
    fig.update_layout(
        height=height,
        margin=MARGIN,
        legend=LEGEND_ABOVE,
        xaxis=dict(
            title="input length (tokens, log)", type="log", tickvals=ticks, ticktext=[f"{t:.0f}" for t in ticks]
        ),
        yaxis=dict(title="mean pairwise cosine similarity"),
    )
    return fig


def waveform_figure(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, name: str, periods_shown: float, f0: float, height: int = 300
) -> go.Figure:
    """Input x(t) and output act(x(t)) over the first `periods_shown` periods of the lowest tone f0."""
    keep = t <= periods_shown / f0
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=t[keep], y=x[keep], mode="lines", name="input x(t)", line=dict(color="grey")))
    fig.add_trace(go.Scatter(x=t[keep], y=y[keep], mode="lines", name=f"{name}(x(t))", line=dict(color="#d62728")))
    fig.update_layout(
        height=height, margin=MARGIN, legend=LEGEND_ABOVE, xaxis=dict(title="time (s)"), yaxis=dict(title="value")
    )
    return fig


def activation_spectrum_figure(
    freq: np.ndarray, spectrum: np.ndarray, harmonics: pd.DataFrame, max_freq: float | None = None, height: int = 300
) -> go.Figure:
    """One-sided amplitude spectrum as stems; the harmonics' analytic values as open diamonds."""
    keep = freq <= (max_freq if max_freq is not None else freq[-1])
    f, s = freq[keep], spectrum[keep]
    xs = np.repeat(f, 3)
    ys = np.column_stack([np.zeros_like(s), s, np.full_like(s, np.nan)]).ravel()
    fig = go.Figure(
        go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#1f77b4"), name="measured 2/N |FFT|", hoverinfo="skip")
    )
    fig.add_trace(
        go.Scatter(
            x=f,
            y=s,
            mode="markers",
            marker=dict(size=4, color="#1f77b4"),
            showlegend=False,
            hovertemplate="%{x:g} Hz: %{y:.4g}<extra></extra>",
        )
    )
    known = harmonics[harmonics["analytic"].notna()]
    if len(known):
        fig.add_trace(
            go.Scatter(
                x=known["frequency"],
                y=known["analytic"],
                mode="markers",
                name="analytic",
                marker=dict(symbol="diamond-open", size=12, color="#d62728", line=dict(width=2)),
                customdata=known["harmonic"],
                hovertemplate="harmonic %{customdata}: analytic %{y:.4g}<extra></extra>",
            )
        )
    fig.update_layout(
        height=height,
        margin=MARGIN,
        legend=LEGEND_ABOVE,
        xaxis=dict(title="frequency (Hz)"),
        yaxis=dict(title="amplitude"),
    )
    return fig


def token_spectrum_figure(freq: np.ndarray, spectra: dict[str, np.ndarray], height: int = 300) -> go.Figure:
    """Amplitude spectra over the token axis relative to their DC ({name: [K]}, log y), e.g. an MLP
    activation's input and output."""
    fig = go.Figure()
    for (name, s), color in zip(spectra.items(), ("grey", "#d62728", "#1f77b4")):
        fig.add_trace(
            go.Scatter(
                x=freq,
                y=s,
                mode="lines+markers",
                name=name,
                line=dict(color=color),
                hovertemplate="frequency %{x:.2f}π: %{y:.3g}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        height=height,
        margin=MARGIN,
        legend=LEGEND_ABOVE,
        xaxis=dict(title="normalised frequency over tokens (×π)"),
        yaxis=log_axis(np.concatenate([np.ravel(s) for s in spectra.values()]), "amplitude relative to DC (log)"),
    )
    return fig
