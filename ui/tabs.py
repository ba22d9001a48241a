"""Lazy tabs: st.tabs that draw only the open tab (and the tabs the user keeps switching between)."""

from __future__ import annotations

import streamlit as st

from ui.links import Param


def lazy_tabs(param: Param, scope, kept) -> tuple[dict, str, list[str]]:
    """The tabs of a link parameter (ui.params), titled by its options: st.tabs that rerun on a switch, so only what
    is drawn runs. Returns ({name: tab container}, the open tab's name, the names to draw this run): the open tab
    and, when this run follows the user's tab switch, the tabs of `kept` already opened in this `scope` (e.g. the
    model and dataset). Those stay drawn, hidden, while the user switches tabs, so going back to one is a switch in
    the browser instead of a redraw of its charts; any other run (a new input, say) draws the open tab only. The open
    tab is kept in session state under the tab's key."""
    names = param.values()
    switched, opened_key = f"{param.key}_switched", f"{param.key}_opened"
    containers = param.draw(on_change=lambda: st.session_state.update({switched: True}))
    tabs = dict(zip(names, containers))
    open_tab = next((name for name, tab in tabs.items() if tab.open), names[0])
    opened = st.session_state.get(opened_key)
    if opened is None or opened[0] != scope:
        opened = (scope, set())
    opened[1].add(open_tab)
    st.session_state[opened_key] = opened
    after_switch = st.session_state.pop(switched, False)
    return (
        tabs,
        open_tab,
        [name for name in names if name == open_tab or (after_switch and name in kept and name in opened[1])],
    )
