"""ui.figures' one-build helpers against plotly's own (make_subplots, add_hline / add_vline / add_vrect), the kept
PNG pictures, and ui.cache.memo (one kept value per slot, built again only when its key changes)."""

import base64
import io
import json

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image
from plotly.subplots import make_subplots
from streamlit.testing.v1 import AppTest

from ui.figures import (
    hline,
    png_source,
    subplot_axes,
    subplot_axis_layouts,
    subplot_layout,
    update_axes,
    vband,
    vline,
)


def _layout(fig: go.Figure) -> dict:
    out = json.loads(fig.to_json())["layout"]
    out.pop("template", None)
    return out


@pytest.mark.parametrize(
    "rows, cols, titles, options",
    [
        (1, 1, (), {}),
        (2, 4, tuple("abcdefgh"), dict(horizontal_spacing=0.02, vertical_spacing=0.08)),
        (2, 1, (), dict(shared_xaxes=True, vertical_spacing=0.08)),
        (1, 3, ("x", "y", "z"), dict(shared_yaxes=True)),
        (2, 2, (), dict(column_titles=("m1", "m2"), row_titles=("i1", "i2"))),
    ],
)
def test_subplot_layout_is_make_subplots_layout(rows, cols, titles, options):
    want = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles) or None, **options)
    got = go.Figure(layout=subplot_layout(rows, cols, titles, **options))
    assert _layout(got) == _layout(want)
    # a later change to one layout does not reach the next (the arrangement is kept, copies are handed out)
    first = subplot_layout(rows, cols, titles, **options)
    first["xaxis"]["visible"] = False
    assert "visible" not in subplot_layout(rows, cols, titles, **options)["xaxis"]


def test_subplot_axes_are_the_axes_add_trace_picks():
    fig = make_subplots(rows=2, cols=3)
    for r in (1, 2):
        for c in (1, 2, 3):
            fig.add_trace(go.Scatter(x=[0], y=[0]), row=r, col=c)
            trace = fig.data[-1]
            assert subplot_axes(r, c, 3) == dict(xaxis=trace.xaxis, yaxis=trace.yaxis)


def test_subplot_axis_layouts_are_the_layout_axes_a_trace_there_uses():
    """What fig.update_xaxes(row, col) would change: the layout axes named by the subplot's trace references."""
    layout = subplot_layout(2, 3)
    for r in (1, 2):
        for c in (1, 2, 3):
            x, y = subplot_axis_layouts(layout, r, c, 3)
            x["title"] = f"x of {r},{c}"
            fig = make_subplots(rows=2, cols=3)
            fig.update_xaxes(title=f"x of {r},{c}", row=r, col=c)
            refs = subplot_axes(r, c, 3)
            name = refs["xaxis"].replace("x", "xaxis")
            assert fig.layout[name].title.text == x["title"]
            assert y is layout[refs["yaxis"].replace("y", "yaxis")] and x is layout[name]


def test_update_axes_sets_every_axis_of_that_kind():
    layout = subplot_layout(1, 3)
    update_axes(layout, "x", visible=False)
    assert all(layout[k]["visible"] is False for k in ("xaxis", "xaxis2", "xaxis3"))
    assert all("visible" not in layout[k] for k in ("yaxis", "yaxis2", "yaxis3"))
    plain: dict = {}
    update_axes(plain, "y", range=[0, 1])  # a layout without subplots gets its one axis
    assert plain == {"yaxis": {"range": [0, 1]}}


def test_lines_and_bands_are_the_shapes_plotly_adds():
    fig = make_subplots(rows=2, cols=1)
    fig.add_trace(go.Scatter(x=[0, 3], y=[0, 1]), row=1, col=1)
    fig.add_trace(go.Scatter(x=[0, 3], y=[0, 1]), row=2, col=1)
    fig.add_hline(y=0.5, line_dash="dot", line_color="grey", row=1, col=1)
    fig.add_vline(x=1.5, line_dash="dot", line_color="red", row=2, col=1)
    fig.add_vrect(x0=1, x1=2, fillcolor="grey", opacity=0.18, line_width=0, row=2, col=1)
    ours = [
        hline(0.5, "x", "y", dash="dot", color="grey"),
        vline(1.5, "x2", "y2", dash="dot", color="red"),
        vband(1, 2, "x2", "y2", fillcolor="grey", opacity=0.18, line=dict(width=0)),
    ]
    assert json.loads(go.Figure(layout=dict(shapes=ours)).to_json())["layout"]["shapes"] == _layout(fig)["shapes"]


def test_png_source_round_trips_and_keeps_pictures_apart():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 7, 3)), rng.random((5, 7, 3))
    uri = png_source(a)
    assert png_source(a.copy()) == uri  # the same pixels: the same picture
    assert png_source(b) != uri
    assert png_source(a[:, :6]) != uri  # a different shape is another picture, not a cached one
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    np.testing.assert_array_equal(pixels, (a * 255).round().astype(np.uint8))


def _memo_app():
    import streamlit as st

    from ui import cache, state

    builds = st.session_state.setdefault("builds", [])

    def build():
        builds.append(st.session_state["key"])
        return f"value for {st.session_state['key']}"

    st.session_state[state.PRESENT] = st.session_state.get("present", False)
    st.write(cache.memo("slot", (st.session_state["key"],), build))


def test_memo_builds_again_only_when_the_key_changes():
    at = AppTest.from_function(_memo_app)
    at.session_state["key"] = "a"
    at.run()
    at.run()
    assert at.session_state["builds"] == ["a"] and at.markdown[0].value == "value for a"
    at.session_state["key"] = "b"
    at.run()
    assert at.session_state["builds"] == ["a", "b"] and at.markdown[0].value == "value for b"
    at.session_state["key"] = "a"  # one value per slot: the old key is built again
    at.run()
    assert at.session_state["builds"] == ["a", "b", "a"]
    at.session_state["present"] = True  # the presenter layout changes colour scales: part of every key
    at.run()
    assert at.session_state["builds"] == ["a", "b", "a", "a"]


def _kept_figure_app():
    import numpy as np
    import plotly.graph_objects as go
    import streamlit as st

    from ui import cache

    figure = cache.memo("chart", (st.session_state["n"],), lambda: go.Figure(go.Scatter(y=np.arange(5.0))))
    st.session_state.setdefault("shown", []).append(figure)
    st.plotly_chart(figure, key="chart")


def test_memo_keeps_a_figure_whose_plotly_json_is_made_once():
    """A memo'd figure is a KeptFigure: the same chart JSON as plotly makes of the plain figure, its dict made on
    the first run that shows it and handed out again on the next runs (no deep copy and encoding per run)."""
    import plotly.graph_objects as go
    import plotly.io as pio

    from ui.figures import KeptFigure

    at = AppTest.from_function(_kept_figure_app)
    at.session_state["n"] = 1
    at.run()
    at.run()
    first, second = at.session_state["shown"]
    assert first is second and isinstance(first, KeptFigure)
    assert first.to_dict() is second.to_dict()  # made once
    plain = go.Figure(go.Scatter(y=np.arange(5.0)))
    assert at.get("plotly_chart")[0].proto.spec == pio.to_json(plain.to_dict(), validate=False)
    assert pio.to_json(go.Figure(first), validate=False) == pio.to_json(plain, validate=False)  # copies are plain


def test_thumbnail_text_is_the_mean_of_each_block():
    """Each character is the mean of its block of pixels (a loop over the blocks here), on a non-square image."""
    from ui.embedding_figures import SHADES, thumbnail_text

    image = np.random.default_rng(0).random((23, 31, 3))
    size = 7
    grey = image.mean(-1)
    rows, cols = np.linspace(0, 23, size + 1).astype(int), np.linspace(0, 31, size + 1).astype(int)
    small = np.array(
        [[grey[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].mean() for j in range(size)] for i in range(size)]
    )
    level = np.round((small - small.min()) / (small.max() - small.min() + 1e-9) * (len(SHADES) - 1)).astype(int)
    assert thumbnail_text(image, size) == "<br>".join("".join(SHADES[v] * 2 for v in row) for row in level)
    half = np.zeros((4, 4))
    half[:, 2:] = 1.0  # dark left half, bright right half
    assert thumbnail_text(half, 2).split("<br>") == [SHADES[0] * 2 + SHADES[-1] * 2] * 2


def test_head_response_figure_puts_each_panel_on_its_own_axes():
    """Gain and eigenvalues side by side in one figure: each trace on its panel's axes, the layer's heads one grey
    trace broken by gaps, the eigenvalue panel square (anchored to its own x axis)."""
    from ui.spectral_figures import head_response_figure

    rng = np.random.default_rng(0)
    freq, layer_gains = np.linspace(0, 1, 9), rng.random((4, 9))
    eigenvalues = rng.random(16) + 1j * rng.random(16)
    figure = head_response_figure(freq, layer_gains[1], layer_gains, eigenvalues, "L0 H1")
    fig = json.loads(figure.to_json())
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert titles == ["gain of L0 H1", "eigenvalues of L0 H1"]
    axes = [(t.get("xaxis", "x"), t.get("yaxis", "y"), t["type"]) for t in fig["data"]]
    assert axes == [("x", "y", "scatter")] * 2 + [("x2", "y2", "scatter")] * 2
    grey = figure.data[0]
    curves = np.asarray(grey.y, dtype=float).reshape(4, 10)  # each head's gain, then a gap (NaN)
    assert np.allclose(curves[:, :9], layer_gains) and np.isnan(curves[:, 9]).all()
    assert np.allclose(np.asarray(grey.x, dtype=float).reshape(4, 10)[:, :9], freq)
    assert np.allclose(figure.data[3].x, eigenvalues.real) and np.allclose(figure.data[3].y, eigenvalues.imag)
    assert fig["layout"]["yaxis2"]["scaleanchor"] == "x2"


def test_response_2d_picture_has_a_cell_per_frequency_pair():
    """The 2-D response picture: one pixel per frequency pair coloured from 0 to the largest value, DC (0, 0)
    labelled in the centre, and each cell's hover naming its frequencies and value."""
    from ui.cell_picker import CellGrid
    from ui.figures import HEAT, heat_rgb
    from ui.spectral_figures import response_2d_picture

    response = np.arange(12, dtype=float).reshape(3, 4) / 11
    grid = response_2d_picture(response, "L1 H2")
    assert isinstance(grid, CellGrid) and (grid.rows, grid.cols, grid.cell) == (3, 4, 1) and not grid.pickable
    assert grid.row_labels == ["-1", "0", "1"] and grid.col_labels == ["-2", "-1", "0", "1"]
    assert grid.title == "2-D response of L1 H2" and grid.scale == (HEAT, 0.0, 1.0, "")
    assert grid.tips[0] == "frequency (row -1, col -2): 0.000" and grid.tips[-1] == "frequency (row 1, col 1): 1.000"
    png = Image.open(io.BytesIO(base64.b64decode(grid.picture.split(",", 1)[1])))
    expected = (heat_rgb(response, 0.0, 1.0, HEAT) * 255).round()
    assert np.array_equal(np.asarray(png.convert("RGB"), dtype=float), expected)
