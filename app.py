"""HeadScope: `streamlit run app.py`. The router: page config, sidebar pickers, the running tour, links to the
state on screen (ui.links), navigation over pages/."""

import streamlit as st

from ui import links, startup, state
from ui.navigation import VIEWS, pages

if state.PRESENT not in st.session_state:  # a link with present=1 opens the presenter layout
    st.session_state[state.PRESENT] = st.query_params.get(links.PRESENT) == "1"
st.set_page_config(
    page_title="HeadScope",
    page_icon=":material/visibility:",
    layout="wide",
    initial_sidebar_state="collapsed" if st.session_state[state.PRESENT] else "auto",
)

router = st.navigation(pages())
links.read_url()


@st.fragment(run_every=0.5)
def waiting_for_startup() -> None:
    """The sidebar of a fresh server's first page: polls the background imports, then reruns the app."""
    if startup.ready():
        st.rerun()
    st.caption("Loading PyTorch and the model code (the first page of a fresh server only)…")


if router.title == VIEWS[0].title and not startup.ready() and links.VIEW not in st.query_params:
    startup.start()  # Home needs no model: show it at once
    with st.sidebar:
        st.markdown("### HeadScope")
        waiting_for_startup()
    st.session_state[state.SIDEBAR_CONTEXT] = (None,)
    router.run()
else:
    if not startup.ready():  # a fresh server's first view says at once what it waits for (st.spinner waits 0.5 s)
        waiting = st.empty()
        waiting.status("Loading PyTorch and the model code (the first view of a fresh server)…", state="running")
        startup.wait()
        waiting.empty()
    from data import DatasetError
    from ui.present import presenter_css
    from ui.sidebar import link_and_layout, model_from_link, sidebar
    from ui.tour import tour_panel

    links.go_to_view()
    links.begin_run()
    presenter_css()  # before a link's question too: it is read on the projector
    if not model_from_link():  # a link's model folder or hub id waits for a yes
        st.stop()
    with st.spinner("Loading the model, the dataset and the input…", show_time=True):  # in the main area
        st.session_state[state.SIDEBAR_CONTEXT] = (sidebar(),)  # (the sidebar may be collapsed)
    link_and_layout()
    tour_panel()
    try:
        router.run()
    except DatasetError as e:  # e.g. a file of the user's dataset that became unreadable after it was listed
        st.error(f"{e}")
    links.end_run()  # a view that stops early ends the run itself (ui.links.stop_view)
