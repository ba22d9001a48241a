"""Tour view: guided tours through the real views, written as TOML files (tours/README.md)."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import streamlit as st

from runs.store import home
from ui import state
from ui.links import stop_view
from ui.navigation import VIEWS
from ui.sidebar import page_context
from ui.text import literal, prose
from ui.tour import keys, read_tour, request_step, tour_files, tour_runs
from ui.tour_runs import overview

page_context()  # the sidebar (a tour step sets its model and input)
yours = literal(str(home() / "tours"))
st.title("Tour")
st.caption(
    "A tour walks through the views in the states a teacher chose, one step at a time: what to look at, why, the "
    "paper it comes from and something to try. Next and Back also answer PageDown and PageUp (a presentation "
    "clicker); the presenter layout (sidebar) enlarges text and figures for a projector. Write your own tour as a "
    f"TOML file in {yours} (format: tours/README.md in the repository)."
)
files = tour_files()
if not files:
    st.info(f"No tour files found: HeadScope's own are in its tours/ folder, yours go in {yours}.")
    stop_view()
tours = {str(p): read_tour(p) for p in files}
chosen = st.selectbox(
    "Tour",
    list(tours),
    format_func=lambda p: f"{tours[p].title} ({len(tours[p].steps)} step{'' if len(tours[p].steps) == 1 else 's'})",
    key="tour_file",
)
tour = tours[chosen]
if tour.summary:
    st.markdown(prose(tour.summary))
if tour.problems:
    st.warning(
        f"{literal(tour.path.name)} has {len(tour.problems)} problem(s); the other steps run:\n\n"
        + "\n".join(f"- {literal(p)}" for p in tour.problems)
    )
titles = {v.name: v.title for v in VIEWS}
for k, step in enumerate(tour.steps, 1):
    source = f" · _{prose(step.source)}_" if step.source else ""
    st.markdown(f"{k}. **{literal(step.title)}** · {titles[step.view]}{source}")
if runs := tour_runs(tour):
    overview(runs)
if tour.steps:
    st.button("Start the tour", type="primary", key="tour_start", on_click=request_step, args=(tour.path, 0))
if st.session_state.get(state.TOUR):
    st.caption("A tour is running: its panel sits above every view until you end it.")
else:
    keys()  # loaded before the tour starts (the running tour's panel draws them)
