"""The presenter layout (for a projector): its sidebar toggle, the page's larger type and larger figures."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from ui import state

PRESENT_TOGGLE = "presenter_toggle"  # the toggle's own key: state.PRESENT outlives pages that do not draw it
PRESENT_FONT = 20  # presenter layout: figure font size (px), and the page's CSS below
PRESENT_LINE = 4  # presenter layout: line width of line plots (px)
PRESENT_TITLE = 24  # presenter layout: the longest axis title (characters) kept on one line
PRESENT_HEIGHT = 1.3  # presenter layout: a chart's height, times its normal height (room for the larger text)
PRESENTER_CSS = """<style>
[data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li { font-size: 1.45rem; line-height: 1.5; }
[data-testid="stCaptionContainer"] p, [data-testid="stCaptionContainer"] { font-size: 1.25rem; }
[data-testid="stWidgetLabel"] p { font-size: 1.25rem; }
[data-testid="stHeading"] h1 { font-size: 3.4rem; }
[data-testid="stHeading"] h2, [data-testid="stHeading"] h3, [data-testid="stHeading"] h4 { font-size: 2.2rem; }
[data-testid="stMetricValue"] [data-testid="stMarkdownContainer"] p { font-size: 2.6rem; line-height: 1.25; }
[data-testid="stSelectbox"] input, [data-testid="stMultiSelect"] input, [data-testid="stMultiSelect"] span,
[role="option"], [data-testid="stNumberInput"] input, [data-testid="stTextInput"] input,
[data-testid="stTextArea"] textarea { font-size: 1.25rem !important; }
[data-testid="stSliderThumbValue"] [data-testid="stMarkdownContainer"] p { font-size: 1.25rem; line-height: 1.2; }
[data-testid="stSliderThumbValue"] { white-space: nowrap; }
[data-testid="stSliderTickBarMin"], [data-testid="stSliderTickBarMax"] { font-size: 1.1rem; }
</style>"""


def presenter_toggle() -> None:
    """The sidebar's "Presenter layout" toggle (state.PRESENT outlives the pages that do not draw it)."""
    st.toggle(
        "Presenter layout",
        value=st.session_state[state.PRESENT],
        key=PRESENT_TOGGLE,
        on_change=lambda: st.session_state.update({state.PRESENT: st.session_state[PRESENT_TOGGLE]}),
        help="For a projector: larger type and figure fonts, thicker lines; collapse the sidebar with its "
        "arrow. A link with present=1 opens in this layout with the sidebar collapsed.",
    )


def presenter_css() -> None:
    """The presenter layout's larger type for the page, when it is on."""
    if st.session_state[state.PRESENT]:
        st.html(PRESENTER_CSS)


def for_projector(fig: go.Figure) -> go.Figure:
    """A copy of `fig` (figures may be cached) with the presenter layout's larger fonts, thicker lines and more
    height. Every text's size is set where it is drawn (axes, legend, subplot titles, colour bars), not only the
    figure's font: Streamlit's chart theme sets those sizes itself, and the figure's font alone reached none of them.
    A long axis title goes on two lines (one would not fit beside its axis at that size)."""
    fig = go.Figure(fig)
    fig.update_layout(font_size=PRESENT_FONT, legend_font_size=PRESENT_FONT, hoverlabel_font_size=PRESENT_FONT)
    for axis in (*fig.select_xaxes(), *fig.select_yaxes()):
        axis.update(tickfont_size=PRESENT_FONT, title_font_size=PRESENT_FONT, title_text=_two_lines(axis.title.text))
    fig.update_annotations(font_size=PRESENT_FONT)
    fig.update_traces(textfont_size=PRESENT_FONT, selector=lambda t: "text" in (getattr(t, "mode", None) or ""))
    fig.update_traces(colorbar_tickfont_size=PRESENT_FONT, selector=lambda t: "colorbar" in t)
    if fig.layout.height:
        fig.update_layout(height=round(fig.layout.height * PRESENT_HEIGHT))
    fig.update_traces(line_width=PRESENT_LINE, selector=lambda t: t.type == "scatter" and "lines" in (t.mode or ""))
    return fig


def _two_lines(title: str | None) -> str | None:
    """A title longer than PRESENT_TITLE characters on one line broken at the space nearest its middle."""
    if not title or len(title) <= PRESENT_TITLE or "<br>" in title or " " not in title:
        return title
    at = min((i for i, c in enumerate(title) if c == " "), key=lambda i: abs(i - len(title) / 2))
    return f"{title[:at]}<br>{title[at + 1 :]}"
