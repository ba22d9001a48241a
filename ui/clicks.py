"""Clicks on charts: the clicked point's data, and on_select callbacks that apply a click before the rerun."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ui import state


def clicked_data(event: Any) -> list | None:
    """The customdata of the first clicked point that has one in a chart's selection event, or None."""
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    return next((p["customdata"] for p in points if p.get("customdata") is not None), None)


def on_click(chart_key: str, apply: Callable[[list], object]) -> Callable[[], None]:
    """An on_select callback for the chart with this key: apply(customdata) of the clicked point runs before the
    script reruns, so that one rerun draws what the click chose (a click that deselects does nothing)."""

    def callback() -> None:
        data = clicked_data(st.session_state.get(chart_key))
        if data is not None:
            apply(data)

    return callback


def on_head_click(chart_key: str) -> Callable[[], None]:
    """An on_select callback: a click on a head's point (customdata layer, head, ...) selects that head."""

    def callback() -> None:
        data = clicked_data(st.session_state.get(chart_key))
        if data is not None:
            state.select_head(int(data[0]), int(data[1]))

    return callback
