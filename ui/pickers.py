"""The views' shared pickers: the selected head, a dataset sample's size, and widgets kept in step with a value
chosen elsewhere."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import state
from ui.params import SAMPLE_SIZE


def synced(key: str, value: object) -> str:
    """Give the widget with this key `value` before it is drawn (when the value was chosen elsewhere: a click,
    another view); returns the key."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value
    return key


def head_picker(
    n_layers: int, n_heads: int, key: str, badge: Callable[[int, int], str] | None = None
) -> tuple[int, int]:
    """Layer and head number inputs bound to the shared selected head (state.HEAD): they show it, and a change
    selects the new head in a callback, so one run (of the page, or of the fragment the picker is in) draws it.
    badge(layer, head): a short line under them (the head's pattern type, PageContext.head_type)."""
    layer, head = state.selected_head()
    layer, head = min(layer, n_layers - 1), min(head, n_heads - 1)
    keys = (synced(f"{key}_layer", layer), synced(f"{key}_head", head))
    c1, c2 = st.columns(2)
    c1.number_input("Layer", 0, n_layers - 1, key=keys[0], on_change=_pick_head, args=keys)
    c2.number_input("Head", 0, n_heads - 1, key=keys[1], on_change=_pick_head, args=keys)
    if badge is not None:
        st.caption(
            f"Pattern type: **{badge(layer, head)}**",
            help="The head's strongest pattern type over a sample of the dataset, and its score (1 = the whole "
            "pattern is of that type). The Circuits view shows every head's.",
        )
    return layer, head


def _pick_head(layer_key: str, head_key: str) -> None:
    state.select_head(st.session_state[layer_key], st.session_state[head_key])


def sample_size_picker(dataset_len: int, default: int, key: str, label: str = "Dataset sample size") -> int:
    """How many inputs of the sidebar's dataset to analyse; larger than the dataset is clamped to it with a note.
    A link sets it with n=."""
    SAMPLE_SIZE.bind(key, hi=dataset_len)  # the box itself takes more, and says so below
    n = int(
        SAMPLE_SIZE.draw(
            scope=key,
            label=label,
            value=min(default, dataset_len),
            help=f"Inputs of the dataset chosen in the sidebar ({dataset_len} available): a seeded sample that "
            "takes each class in turn, so even a small sample covers the classes; a larger sample keeps the rows "
            "of a smaller one.",
        )
    )
    if n > dataset_len:
        st.warning(f"The dataset has {dataset_len} inputs; using all of them.")
        n = dataset_len
    return n
