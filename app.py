"""HeadScope: `streamlit run app.py`. The router: page config, sidebar pickers, navigation over pages/."""

import streamlit as st

from ui import startup, state
from ui.navigation import VIEWS, pages

st.set_page_config(page_title="HeadScope", page_icon=":material/visibility:", layout="wide")

router = st.navigation(pages())


@st.fragment(run_every=0.5)
def waiting_for_startup() -> None:
    """The sidebar of a fresh server's first page: polls the background imports, then reruns the app."""
    if startup.ready():
        st.rerun()
    st.caption("Loading PyTorch and the model code (the first page of a fresh server only)…")


if router.title == VIEWS[0].title and not startup.ready():  # Home needs no model: show it at once
    startup.start()
    with st.sidebar:
        st.markdown("### HeadScope")
        waiting_for_startup()
    st.session_state[state.SIDEBAR_CONTEXT] = (None,)
    router.run()
else:
    startup.wait()
    from data import DatasetError
    from ui.widgets import sidebar

    st.session_state[state.SIDEBAR_CONTEXT] = (sidebar(),)
    try:
        router.run()
    except DatasetError as e:  # e.g. a file of the user's dataset that became unreadable after it was listed
        st.error(f"{e}")
