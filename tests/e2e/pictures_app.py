"""A page of two cell pickers showing the same picture, for tests/e2e/test_pictures_browser.py: the server sends it
whole to the first and as its id to the second, and as ids only on the next runs (a number input reruns)."""

import numpy as np
import streamlit as st

from ui.cell_picker import cell_picker, pixel_grid

st.number_input("Run", 0, 100, 0, key="run")
grid = pixel_grid(np.linspace(0, 1, 12).reshape(2, 2, 3), ["a", "b", "c", "d"], title="same")
for key in ("first", "second"):
    cell_picker(grid, None, key)
