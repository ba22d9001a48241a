"""ui.widgets.show_head_chart: the figure a head chart sends stays the same after a click in it (the browser
outlines the clicked cell itself), and is sent again, outlining the head, when the head was chosen elsewhere
or the chart's content changed."""

import json

import numpy as np
from streamlit.testing.v1 import AppTest

from ui import state
from ui.figures import HEAD_POINTS, head_grid, with_head_mark
from ui.widgets import CLICK_DOUBLE_MS


def _page():
    import numpy as np
    import streamlit as st

    from ui import state
    from ui.figures import head_grid
    from ui.widgets import show_head_chart

    values = np.arange(12.0).reshape(3, 4) * st.session_state.get("scale", 1.0)
    show_head_chart(
        lambda: head_grid(values),
        (st.session_state.get("scale", 1.0),),
        state.selected_head(),
        "test grid",
        None,
        "grid",
        key="grid",
    )


def _sent(at: AppTest) -> str:
    (chart,) = at.get("plotly_chart")
    return chart.proto.spec


def _outlined(spec: str) -> list:
    """customdata (layer, head) of the figure's mark."""
    (mark,) = [t for t in json.loads(spec)["data"] if t.get("name") == "selected head"]
    return mark["customdata"]


def test_a_click_in_the_chart_keeps_the_figure_and_a_head_chosen_elsewhere_sends_it_again():
    at = AppTest.from_function(_page).run()
    first = _sent(at)
    assert _outlined(first) == [[0, 0]]
    # a quick click on a second head is not a double click (which clears the selection and sends the chart again)
    assert json.loads(at.get("plotly_chart")[0].proto.config)["doubleClickDelay"] == CLICK_DOUBLE_MS

    # what ui.widgets.on_head_click does for a click on (1, 2) in this chart: the browser outlines it
    at.session_state[state.HEAD] = (1, 2)
    at.session_state[state.HEAD_MARKS]["grid"].shows = (1, 2)
    at.run()
    assert _sent(at) == first  # the same figure: the browser keeps the chart and its selection

    at.session_state[state.HEAD] = (2, 3)  # chosen elsewhere: a picker, another chart, a link
    at.run()
    moved = _sent(at)
    assert moved != first and _outlined(moved) == [[2, 3]]
    at.run()
    assert _sent(at) == moved  # nothing changed: nothing sent anew

    # back to the head the figure outlines while the browser showed a click elsewhere: sent again all the same
    at.session_state[state.HEAD_MARKS]["grid"].shows = (0, 1)
    at.session_state[state.HEAD] = (0, 1)
    at.run()
    at.session_state[state.HEAD] = (2, 3)
    at.run()
    assert _sent(at) != moved and _outlined(_sent(at)) == [[2, 3]]

    # a click on the cell selected in the browser deselects it there: the next run outlines the head again
    again = _sent(at)
    at.session_state[state.HEAD_MARKS]["grid"].shows = None
    at.run()
    assert _sent(at) != again and _outlined(_sent(at)) == [[2, 3]]

    # new content (another input, a new temperature): sent again, with the head outlined
    before = _sent(at)
    at.session_state["scale"] = 2.0
    at.run()
    assert _sent(at) != before and _outlined(_sent(at)) == [[2, 3]]
    assert not at.exception


def test_the_mark_is_the_head_cell_drawn_visible():
    values = np.arange(12.0).reshape(3, 4)
    fig = head_grid(values, fmt=".1f")
    marked = with_head_mark(fig, (2, 1), revision=5)
    cells = next(marked.select_traces(selector=dict(name=HEAD_POINTS)))
    (mark,) = marked.select_traces(selector=dict(name="selected head"))
    i = 2 * 4 + 1
    assert [list(map(int, c)) for c in mark.customdata] == [[2, 1]]
    assert mark.x[0] == cells.x[i] == 1 and mark.base[0] == cells.base[i] == 1.5 and mark.y[0] == cells.y[i] == 1
    assert mark.text == ("9.0",)
    assert cells.marker.opacity == 0 and mark.marker.opacity == 1  # only the mark is drawn until a click
    assert mark.unselected.marker.opacity == 0  # and it hides while a clicked cell is selected
    assert marked.layout.meta == {"head_mark": 5}
    assert len(fig.data) == 2 and fig.layout.meta is None  # the figure it was made from is left as it was
