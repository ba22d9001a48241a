"""HeadScope: `streamlit run app.py`. The router: page config, sidebar pickers, navigation over pages/."""
import streamlit as st

from data import DatasetError
from ui import state
from ui.navigation import pages
from ui.widgets import sidebar

st.set_page_config(page_title="HeadScope", page_icon=":material/visibility:", layout="wide")

router = st.navigation(pages())
st.session_state[state.SIDEBAR_CONTEXT] = (sidebar(),)
try:
    router.run()
except DatasetError as e:  # e.g. a file of the user's dataset that became unreadable after it was listed
    st.error(f"{e}")
