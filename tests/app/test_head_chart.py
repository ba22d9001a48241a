"""ui.framing.show_head_chart and ui.cell_picker: a head grid is a cell picker whose picture is made once per
content and whose outline follows the selected head; the grid's picture, tips and colour scale say what the values
are (head grids, the Attention overview and query image, the Relevance maps of an image or a text, the class
map and the class probabilities per block)."""

import base64
import io
import json

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from ui import state
from ui.attention_figures import mosaic_cell, mosaic_picture, overview_mosaic, query_image
from ui.cell_picker import head_grid
from ui.embedding_figures import (
    CLASS_MAP_OPACITY,
    CLASS_MAP_RED,
    STRIP_LABELS,
    block_class_grid,
    class_map_picture,
    token_class_strip,
)
from ui.figures import heat_rgb
from ui.relevance_figures import map_picture, signed_over, token_pictures


def _page():
    import numpy as np
    import streamlit as st

    from ui import state
    from ui.cell_picker import head_grid
    from ui.framing import show_head_chart

    scale = st.session_state.get("scale", 1.0)
    values = np.arange(12.0).reshape(3, 4) * scale
    st.session_state["builds"] = st.session_state.get("builds", 0)

    def build():
        st.session_state["builds"] += 1
        return head_grid(values)

    show_head_chart(build, (scale,), state.selected_head(), "test grid", None, "grid", key="grid")


def _sent(at: AppTest) -> dict:
    (picker,) = at.get("bidi_component")
    return json.loads(picker.proto.json)


def _pixels(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def _alpha(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGBA"))[..., 3]


def test_the_outline_follows_the_head_and_the_picture_is_made_once_per_content():
    at = AppTest.from_function(_page).run()
    first = _sent(at)
    assert first["selected"] == [0, 0] and at.session_state["builds"] == 1
    at.session_state[state.HEAD] = (2, 3)  # chosen anywhere: a click in the grid, a picker, another view, a link
    at.run()
    moved = _sent(at)
    assert moved["selected"] == [2, 3]
    assert first["picture"].startswith("data:image/png;base64,")
    assert moved["picture"] is None and moved["picture_id"] == first["picture_id"]  # the page has it: its id only
    same = ("selected", "picture")
    assert {k: v for k, v in moved.items() if k not in same} == {k: v for k, v in first.items() if k not in same}
    assert at.session_state["builds"] == 1  # the same content: the grid was not made again

    at.session_state["scale"] = 2.0  # new content (another input, a new temperature)
    at.run()
    assert _sent(at)["scale"]["max"] == "22" and at.session_state["builds"] == 2
    assert _sent(at)["selected"] == [2, 3] and not at.exception
    assert _sent(at)["picture_id"] == first["picture_id"]  # the same colours (only the colour bar's numbers changed)
    at.session_state["scale"] = -1.0  # the colours reversed: a new picture, sent whole
    at.run()
    assert _sent(at)["picture"].startswith("data:image/png") and _sent(at)["picture_id"] != first["picture_id"]
    at.session_state["scale"] = 1.0  # back to the first picture: sent lately, so its id only
    at.run()
    assert _sent(at)["picture"] is None and _sent(at)["picture_id"] == first["picture_id"]


def test_a_head_grid_is_one_pixel_per_head_on_its_colour_scale():
    values = np.array([[0.0, 1.0, 2.0], [3.0, np.nan, 5.0]])
    grid = head_grid(values, "title", "Viridis", zmin=0, zmax=5, fmt=".1f")
    pixels = _pixels(grid.picture)
    assert pixels.shape == (2, 3, 3) and (grid.rows, grid.cols, grid.cell, grid.gap) == (2, 3, 1, 0)
    expected = (np.clip(heat_rgb(values, 0, 5, "Viridis"), 0, 1) * 255).round()
    assert np.abs(pixels.astype(int) - expected).max() <= 1  # NaN: white
    assert grid.tips[5] == "layer 1 head 2: 5.0" and grid.scale == ("Viridis", 0, 5, "")
    assert list(_alpha(grid.picture).ravel()) == [255] * 4 + [0, 255]  # NaN: clear, the page shows through


def test_the_overview_is_the_mosaic_picture_with_a_cell_per_head():
    cells = np.random.default_rng(0).random((3, 5, 4, 4))
    grid = overview_mosaic(cells, None, 480)
    cell = mosaic_cell(5, 480)[0]
    picture, gap = mosaic_picture(cells, float(cells.max()), None, cell)
    assert (grid.rows, grid.cols, grid.cell, grid.gap) == (3, 5, cell, gap)
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(grid.picture.split(",", 1)[1]))))  # RGBA
    assert np.abs(sent.astype(int) - (picture * 255).round()).max() <= 1
    assert grid.tips[1 * 5 + 4].startswith(f"layer 1 head 4 (largest {cells[1, 4].max():.3f})")


def test_the_query_image_lays_each_patch_value_over_its_pixels():
    image = np.zeros((8, 8, 3))
    heat = np.arange(4.0).reshape(2, 2)
    grid = query_image(image, heat, (2, 2), 3)
    pixels = _pixels(grid.picture)
    assert pixels.shape == (8, 8, 3) and (grid.rows, grid.cols, grid.cell) == (2, 2, 4)
    assert (pixels[:4, :4] == pixels[0, 0]).all() and (pixels[4:, 4:] == pixels[7, 7]).all()
    assert not (pixels[0, 0] == pixels[7, 7]).all()  # lowest and highest attention differ in colour
    assert grid.tips[3].startswith("patch row 1, col 1: 3.000")


def test_signed_over_lays_the_signed_scale_over_the_picture_as_plotly_does():
    """SIGNED's stops (RdBu_r, clear in the middle) laid over a grey picture: plotly's heatmap-over-image colours."""
    under = np.full((5, 3), 0.5)
    values = np.array([0.0, 2.0, -4.0, 1.0, -1.0])  # limit 2: the middle, the top, clipped bottom, half-way up and down
    out = signed_over(values, 2.0, under)
    expected = [
        under[0],
        0.95 * np.array([103, 0, 31]) / 255 + 0.05 * 0.5,
        0.95 * np.array([5, 48, 97]) / 255 + 0.05 * 0.5,
        0.7 * np.array([214, 96, 77]) / 255 + 0.3 * 0.5,
        0.7 * np.array([67, 147, 195]) / 255 + 0.3 * 0.5,
    ]
    assert np.allclose(out, expected)
    half = signed_over(values, 2.0, under, opacity=0.5)  # the heatmap's opacity scales its alpha
    assert np.allclose(half[1], 0.475 * np.array([103, 0, 31]) / 255 + 0.525 * 0.5)


def test_a_relevance_map_is_its_patches_over_the_image_with_values_on_hover():
    image = np.zeros((8, 8, 1))
    shares = np.array([[0.5, -0.25], [0.0, 0.25]])
    grid = map_picture(image, shares, 0.5, "AttnLRP")
    pixels = _pixels(grid.picture)
    assert pixels.shape == (8, 8, 3) and (grid.rows, grid.cols, grid.cell) == (2, 2, 4) and not grid.pickable
    assert (pixels[:4, :4] == pixels[0, 0]).all() and (pixels[4:, :4] == 0).all()  # no relevance: the black image
    assert np.abs(pixels[0, 0] - 0.95 * np.array([103, 0, 31])).max() <= 1  # the top of the scale
    assert grid.tips[1] == "AttnLRP, patch row 0, col 1: -0.25" and grid.scale == ("RdBu_r", -0.5, 0.5, "share")
    plain = _pixels(map_picture(image, shares, 0.5, "AttnLRP", show_image=False).picture)
    assert (plain[4:, :4] == 255).all()  # without the image: white where nothing is relevant


def test_the_class_map_tints_the_patches_that_rank_the_class_first():
    image = np.full((8, 8, 3), 0.5)
    first = np.array([[True, False], [False, False]])
    grid = class_map_picture(image, first, "seven")
    pixels = _pixels(grid.picture)
    red = ((1 - CLASS_MAP_OPACITY) * 0.5 + CLASS_MAP_OPACITY * CLASS_MAP_RED) * 255
    assert np.abs(pixels[:4, :4] - red).max() <= 1 and (np.abs(pixels[4:, :].astype(int) - 128) <= 1).all()
    assert grid.tips[0] == "patch row 0, col 0: ranks 'seven' first" and "another class" in grid.tips[1]
    assert (grid.rows, grid.cols, grid.cell, grid.pickable) == (2, 2, 4, False)


def test_a_text_map_writes_each_word_piece_in_a_cell_of_its_colour():
    tokens = ["the", "cat", "sat", "on", "a"]
    shares = {"AttnLRP": np.array([0.4, -0.4, 0.0, 0.1, -0.2])}
    (grid,) = token_pictures(tokens, shares, {"AttnLRP": 0.4}, per_row=3)
    assert (grid.rows, grid.cols, grid.cell, grid.pickable) == (2, 3, 1, False)
    assert list(grid.texts) == tokens + [""]  # read left to right, top to bottom; the last cell is empty
    pixels = _pixels(grid.picture).reshape(6, 3).astype(int)
    expected = (heat_rgb(np.array([0.4, -0.4, 0.0, 0.1, -0.2]), -0.4, 0.4, "RdBu_r") * 255).round()
    assert np.abs(pixels[:5] - expected).max() <= 1 and (pixels[5] == 255).all()  # the empty cell: white
    assert list(_alpha(grid.picture).ravel()) == [255] * 5 + [0]  # ... and clear
    assert grid.text_colours[0] == grid.text_colours[1] == "white" and grid.text_colours[2] == "black"
    assert grid.tips[1] == "AttnLRP · cat: -0.4" and grid.tips[5] == ""
    assert grid.scale == ("RdBu_r", -0.4, 0.4, "share") and grid.title == "AttnLRP"


def test_the_class_probabilities_per_block_write_each_probability_of_five_percent_or_more():
    probs = np.array([[0.5, 0.3, 0.2, 0.0], [0.96, 0.01, 0.02, 0.01]])
    grid = block_class_grid(probs, ["cat", "dog", "bird", "fish"], true_label=1)
    assert (grid.rows, grid.cols, grid.pickable) == (2, 4, False)
    assert list(grid.col_labels) == ["cat", "★ dog", "bird", "fish"] and grid.tilted  # long names slant
    assert list(grid.texts) == ["50%", "30%", "20%", "", "96%", "", "", ""]
    assert grid.tips[5] == "block 2, class ★ dog: 1.0%"
    expected = (np.clip(heat_rgb(probs, 0, 1), 0, 1) * 255).round()
    assert np.abs(_pixels(grid.picture).astype(int) - expected).max() <= 1
    many = np.eye(30)[[3, 7, 7]] * 0.9 + 0.1 / 30  # 30 classes: only those in some block's top 3
    assert len(block_class_grid(many, [str(c) for c in range(30)]).col_labels) < 30


def test_a_text_strip_marks_the_words_that_rank_the_class_first_and_labels_a_long_text_sparsely():
    first = np.array([[False, True, False], [True, True, False]])
    top = [["b", "a", "c"], ["a", "a", "c"]]
    grid = token_class_strip(first, ["the", "cat", "sat"], top)
    assert (grid.rows, grid.cols, grid.cell, grid.pickable) == (2, 3, 1, False)
    red = (_pixels(grid.picture).reshape(6, 3) == (CLASS_MAP_RED * 255).round()).all(-1)
    assert list(red) == list(first.ravel())
    assert grid.tips[1] == "block 1, 2:cat: top class a" and list(grid.col_labels) == ["1:the", "2:cat", "3:sat"]
    long = token_class_strip(np.zeros((1, 200), bool), [f"w{j}" for j in range(200)], [["x"] * 200])
    assert 0 < len([c for c in long.col_labels if c]) <= STRIP_LABELS and long.col_labels[0] == "1:w0"
