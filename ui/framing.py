"""Figure framing: every figure or picture with its "how to read this" line and its numbers as a download."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import cache, state
from ui.cell_picker import CellGrid, cell_picker
from ui.present import for_projector

# two clicks on a clickable chart closer than this are a double click, which clears the chart's selection and reruns
# (plotly's 500 ms made a quick click on a second head or patch one)
CLICK_DOUBLE_MS = 150
FigureData: TypeAlias = pd.DataFrame | dict[str, np.ndarray] | None  # a figure's numbers for its download (None: none)


def show_figure(
    fig: go.Figure,
    how_to_read: str,
    data: pd.DataFrame | dict[str, np.ndarray] | None,
    name: str,
    key: str | None = None,
    **chart_kwargs: Any,
) -> Any:
    """Plot `fig` with a one-line reading guide and a CSV (DataFrame) or NPZ (dict of arrays) download (none when
    empty / None: a `guided` frame around several figures gives them one of each).

    Returns what st.plotly_chart returns (the selection when on_select is given)."""
    if st.session_state.get(state.PRESENT):
        fig = for_projector(fig)
    with guided(how_to_read, data, name, key or name):
        event = st.plotly_chart(
            fig,
            width="stretch",
            key=key,
            config={"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}
            | ({"doubleClickDelay": CLICK_DOUBLE_MS} if "on_select" in chart_kwargs else {}),
            **chart_kwargs,
        )
    return event


@contextlib.contextmanager
def guided(how_to_read: str, data: pd.DataFrame | dict[str, np.ndarray] | None, name: str, key: str) -> Iterator[None]:
    """A figure's frame (or several figures' frame, e.g. a chart and a picture side by side): its reading guide above
    (none when empty), the download of its numbers below (none when data is None); the download's key is dl_<key>."""
    if how_to_read:
        st.caption(f"**How to read this:** {how_to_read}")
    yield
    if data is not None:
        download_button(data, name, key=f"dl_{key}")


def download_button(data: pd.DataFrame | dict[str, np.ndarray], name: str, key: str | None = None) -> None:
    """A CSV (DataFrame) or NPZ (dict of arrays) download of a figure's numbers. The file is written only when
    the button is clicked (Streamlit's deferred download data), and the click does not rerun the page."""
    ext, mime, write = (
        ("csv", "text/csv", _csv) if isinstance(data, pd.DataFrame) else ("npz", "application/octet-stream", _npz)
    )
    st.download_button(
        f"Download {name}.{ext}", lambda: write(data), f"{name}.{ext}", mime, key=key or f"dl_{name}", on_click="ignore"
    )


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    # numpy's stub lets ** arguments also fill the keyword allow_pickle: bool, so a dict of arrays is refused
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buf.getvalue()


def show_cells(
    grid: CellGrid,
    selected: tuple[int, int | None] | None,
    how_to_read: str,
    data: FigureData,
    name: str,
    key: str,
    on_pick: Callable[[int, int], None] | None = None,
) -> None:
    """A cell picker (ui.cell_picker) with the selected (row, col) outlined, its reading guide and the downloads of
    its picture and numbers (as show_figure); a click on a pickable grid calls on_pick(row, col) before the rerun."""
    with guided(how_to_read, data, name, key):
        cell_picker(grid, selected, key, on_pick, name)


def show_pictures(
    grids: Sequence[CellGrid], how_to_read: str, data: FigureData, name: str, key: str, per_row: int = 4
) -> None:
    """Pictures (ui.cell_picker grids that pick nothing, a value per cell on hover) side by side, per_row to a
    row, with one reading guide and one download of their numbers (as show_figure)."""
    with guided(how_to_read, data, name, key):
        for i, grid in enumerate(grids):
            if i % per_row == 0:
                columns = st.columns(per_row)
            with columns[i % per_row]:
                title = re.sub(r"\W+", "_", grid.title).strip("_") or str(i)  # a file name's part
                cell_picker(grid, None, f"{key}_{i}", name=f"{name}_{title}")


def show_head_chart(
    build: Callable[[], CellGrid],
    content: tuple,
    head: tuple[int, int],
    how_to_read: str,
    data: FigureData,
    name: str,
    key: str,
) -> None:
    """show_cells of a head grid (build() makes its ui.cell_picker.CellGrid for `content`, a key of plain values,
    kept with ui.cache.memo) with `head` outlined, where a click selects a head. A click outlines the cell in the
    browser at once; the grid stays drawn, and only a new picture or selection is sent to it."""
    grid = cache.memo(f"head_chart_{key}", content, build)
    show_cells(grid, head, how_to_read, data, name, key, state.select_head)
