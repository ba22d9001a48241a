"""The cell picker: a picture of rows x cols cells (the heads of a model, or the patches of an image) where a click
picks a cell, drawn by a small Streamlit component (ui/cell_picker.js, .css). A grid that is not pickable is a
picture with a value per cell on hover (the Relevance maps, the class map), its cells may hold a word (a text's
relevance); every picture has a PNG download.

Why not a plotly chart: Streamlit mounts a plotly chart anew whenever its figure changes (the figure is part of the
element's identity), so every click that outlined another head or patch paid a full plotly draw in the browser
(0.1 to 0.4 s per chart on the benchmark machine). The picker stays mounted: a new picture swaps one image, a new
selection moves one outline, and a click outlines its cell at once, before the server answers."""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from ui import state
from ui.figures import colour_lut, heat_rgb, heat_scale, png_source

HERE = Path(__file__).parent
FONT, PRESENT_FONT = 13, 20  # px: the labels' size, in the normal and the presenter layout
SCALE_STOPS = 11  # colours of the colour scale's gradient
# pictures sent to the page, sent again as their id only (the page keeps twice as many: ui/cell_picker.js's KEPT)
PICTURES_SENT = 16
_component = st.components.v2.component(
    "headscope_cell_picker", js=(HERE / "cell_picker.js").read_text(), css=(HERE / "cell_picker.css").read_text()
)


@dataclass(frozen=True)
class CellGrid:
    """What a cell picker draws. picture: a data URI of rows x cols cells of `cell` picture pixels with `gap` pixels
    between them; tips: one hover text per cell, row by row; row_labels, col_labels: one per row and column (none by
    default); height: pixels of the cell area, whose width then fills the column (None: the picture's aspect ratio,
    at most max_width pixels wide); ruled: thin lines of the page's background between the cells; smooth: scale
    the picture smoothly instead of in blocks; scale: the colour bar, (colour scale name, low, high, title) or
    None; pickable: a click picks a cell (off: a picture with a value per cell on hover); texts: a word written in
    each cell, row by row ("" for none), in text_colours (see text_colours()); tilted: column labels slanted (long
    names)."""

    picture: str
    rows: int
    cols: int
    cell: int
    gap: int
    tips: Sequence[str]
    row_labels: Sequence[str] = ()
    col_labels: Sequence[str] = ()
    row_title: str = ""
    col_title: str = ""
    title: str = ""
    height: int | None = None
    max_width: int | None = None
    ruled: bool = False
    smooth: bool = False
    scale: tuple[str, float, float, str] | None = None
    pickable: bool = True
    texts: Sequence[str] = ()
    text_colours: Sequence[str] = ()
    tilted: bool = False


def head_grid(
    values: np.ndarray,
    title: str = "",
    colorscale: str | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
    fmt: str = ".3g",
    height: int | None = None,
) -> CellGrid:
    """An L x H grid of heads coloured by values [L, H] (NaN clear) from zmin to zmax (default: their range), one
    picture pixel per head; hover: layer, head and the value formatted with fmt; height: pixels (default 30 per
    layer)."""
    L, H = values.shape
    lo = float(np.nanmin(values)) if zmin is None else zmin
    hi = float(np.nanmax(values)) if zmax is None else zmax
    colorscale = colorscale or heat_scale()
    return pixel_grid(
        heat_rgb(values, lo, hi, colorscale),
        [f"layer {l} head {h}: {format(values[l, h], fmt)}" for l in range(L) for h in range(H)],
        clear=np.isnan(values),
        row_labels=[str(l) for l in range(L)],
        col_labels=[str(h) for h in range(H)],
        row_title="layer",
        col_title="head",
        title=title,
        height=height or 30 * L,
        ruled=True,
        scale=(colorscale, lo, hi, ""),
    )


def pixel_grid(rgb: np.ndarray, tips: Sequence[str], clear: np.ndarray | None = None, **options: Any) -> CellGrid:
    """A grid of one picture pixel per cell, coloured rgb [rows, cols, 3] (floats in [0, 1]), tips row by row; the
    cells where clear [rows, cols] (bool) is set are see-through (no value: the page's background, light or dark,
    shows); options: the other CellGrid fields (labels, title, height, scale, texts, ...)."""
    if clear is not None:
        rgb = np.concatenate([rgb, ~clear[..., None]], axis=-1)
    return CellGrid(picture=png_source(rgb), rows=rgb.shape[0], cols=rgb.shape[1], cell=1, gap=0, tips=tips, **options)


def patch_grid(picture: np.ndarray, patches: tuple[int, int], tips: Sequence[str], **options: Any) -> CellGrid:
    """An image's picture [S, S, 3] (floats in [0, 1]; S a multiple of the grid) with a cell per patch of the h x w
    grid `patches`, tips row by row, no labels; options: the other CellGrid fields (title, max_width, scale, ...)."""
    gh, gw = patches
    return CellGrid(
        picture=png_source(picture),
        rows=gh,
        cols=gw,
        cell=picture.shape[1] // gw,
        gap=0,
        tips=tips,
        **options,
    )


def text_colours(rgb: np.ndarray) -> list[str]:
    """The colour of a word on each cell colour of rgb [..., 3] (floats in [0, 1]): white on dark cells, black on
    light ones (lightness by ITU-R BT.601's weights)."""
    light = (rgb @ np.array([0.299, 0.587, 0.114])).ravel() > 0.5
    return ["black" if w else "white" for w in light]


def _scale(colorscale: str, lo: float, hi: float, title: str) -> dict:
    lut = colour_lut(colorscale)[np.linspace(0, len(colour_lut(colorscale)) - 1, SCALE_STOPS).round().astype(int)]
    return {"colours": [f"rgb({r},{g},{b})" for r, g, b in lut], "min": f"{lo:.3g}", "max": f"{hi:.3g}", "title": title}


def cell_picker(
    grid: CellGrid,
    selected: tuple[int, int | None] | None,
    key: str,
    on_pick: Callable[[int, int], None] | None = None,
    name: str = "",
) -> None:
    """Draw `grid` with the `selected` (row, col) outlined (row, None: the whole row); a click on a cell of a
    pickable grid calls on_pick(row, col) before the script (or the fragment the picker is in) reruns. name: the
    file name (without .png) of the picture's PNG download (none without a name)."""
    lists = ("tips", "row_labels", "col_labels", "texts", "text_colours")
    picture_id = _picture_id(grid.picture)
    data = {k: v for k, v in grid.__dict__.items() if k not in ("scale", *lists)} | {
        **{k: list(getattr(grid, k)) for k in lists},
        "picture": _picture_to_send(picture_id, grid.picture),
        "picture_id": picture_id,
        "scale": _scale(*grid.scale) if grid.scale else None,
        "font": PRESENT_FONT if st.session_state.get(state.PRESENT) else FONT,
        "selected": list(selected) if selected is not None else None,
        "name": name,
    }

    def missing() -> None:  # the page lacks a picture sent as its id: the rerun sends it whole
        st.session_state.get(state.PICTURES, {}).pop((st.session_state.get(key) or {}).get("missing"), None)

    if on_pick is None:
        _component(data=data, key=key, on_missing_change=missing)
        return

    def picked() -> None:
        cell = (st.session_state.get(key) or {}).get("pick")
        if cell is not None:
            on_pick(int(cell[0]), int(cell[1]))

    _component(data=data, key=key, on_missing_change=missing, on_pick_change=picked)


@functools.lru_cache(maxsize=4 * PICTURES_SENT)
def _picture_id(picture: str) -> str:
    """A short id of a picture's data URI (hashed once per picture string: pictures are kept, ui.figures.png_source)."""
    return hashlib.blake2b(picture.encode(), digest_size=8).hexdigest()


def _picture_to_send(picture_id: str, picture: str) -> str | None:
    """The picture to send to the page, or None where this session sent it lately: the page keeps the pictures it
    got (ui/cell_picker.js) and draws it from its id, so a click that only moves an outline does not send the
    picture again (0.1 MB for a built-in's Attention overview, 0.75 MB for ViT-B/16's, on every click: slow over a
    remote link). The page asks for a picture it lacks (the "missing" trigger), and the rerun sends it whole."""
    sent = st.session_state.setdefault(state.PICTURES, OrderedDict())
    if picture_id in sent:
        sent.move_to_end(picture_id)
        return None
    sent[picture_id] = None
    while len(sent) > PICTURES_SENT:
        sent.popitem(last=False)
    return picture
