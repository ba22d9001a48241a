"""The least a click can cost: a Streamlit app with one number input, one line of text and `?charts=N` plotly
heatmaps (20 x 20) that change with it. `python bench/ui.py --floor` times it with the same harness as HeadScope.
"""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

n = st.number_input("Head", 0, 1000, 0)
st.write(f"value {n}")
for i in range(int(st.query_params.get("charts", 0))):
    z = np.random.default_rng(n * 10 + i).random((20, 20))
    st.plotly_chart(go.Figure(go.Heatmap(z=z)), width="stretch", key=f"chart{i}")
