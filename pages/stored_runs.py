"""Runs view: every stored run (model, dataset, analysis, inputs, size, time, state); show, download, delete."""

from ui.navigation import route_first

route_first()  # a fresh server's /<view>: through app.py before the imports below

import pandas as pd
import streamlit as st

from runs import StoreError
from ui.framing import download_button
from ui.links import stop_view
from ui.navigation import RUN_VIEWS, VIEWS
from ui.sidebar import page_context
from ui.stored import store

MAX_NPZ_MB = 200

page_context()  # draws the sidebar, which this view does not need otherwise
st.title("Runs")
st.caption(
    f"Dataset-scale results computed once and stored in **{store().root.resolve()}** (`HEADSCOPE_STORE` or "
    "`--store` moves it): by `headscope precompute`, from any folder, or by a view's background run. A view "
    "shows a stored run by itself when the sidebar's model and dataset match it. Select a run to see its "
    "files, download or delete it."
)
for old in store().also:
    st.info(
        f"Also listed: the runs in **{old}**, this folder's `headscope-runs` (earlier versions' store). "
        f"Move them into {store().root.resolve()} to see them from any folder."
    )

index = store().index()
if index.empty:
    st.info(
        "No stored runs yet. Start one from the Head importance view (**Run … in the background**) or on the "
        "command line: `headscope precompute --model digits-vit --dataset digits --analyses "
        "importance,relevance`."
    )
    stop_view()

shown = index.drop(columns=["params"]).assign(progress=lambda d: d.done / d.inputs)
event = st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="runs_table",
    column_config={
        "progress": st.column_config.ProgressColumn(format="percent", min_value=0, max_value=1),
        "size_mb": st.column_config.NumberColumn("size (MB)", format="%.2f"),
    },
)
picked = event.selection.rows if event else []
if picked:
    st.session_state["runs_selected"] = shown["key"].iloc[picked[0]]
key = st.session_state.get("runs_selected")
if not isinstance(key, str) or key not in set(shown["key"]):
    st.caption("Select a row to see the run.")
    stop_view()
row = list(shown["key"]).index(key)
run = store().run(key)
try:
    m = run.manifest
except StoreError as e:
    st.error(str(e))
    stop_view()
st.subheader(f"{m.analysis} of {m.model} on {m.dataset} ({m.split})")
st.caption(
    f"{m.done_inputs}/{m.n_inputs} inputs · {index.state.iloc[row]} · parameters {m.params} · "
    f"folder {run.root}" + (f" · error: {m.error}" if m.error else "")
)
view = next((v for v in VIEWS if v.name == RUN_VIEWS.get(m.analysis)), None)
if view and m.state == "done":
    st.page_link(
        f"pages/{view.file}",
        label=f"Open the {view.title} view (pick {m.model} and {m.dataset} in the sidebar)",
        icon=":material/open_in_new:",
    )

if m.state == "done":
    arrays = run.arrays()
    st.dataframe(
        pd.DataFrame(
            {
                "array": [f"arrays/{k}.npy" for k in arrays],
                "shape": [str(list(a.shape)) for a in arrays.values()],
                "dtype": [str(a.dtype) for a in arrays.values()],
            }
        ),
        hide_index=True,
    )
    for name, table in run.tables().items():
        st.markdown(f"**tables/{name}.parquet** · {len(table)} rows")
        st.dataframe(table.head(200), hide_index=True, width="stretch", height=220)
        download_button(table, f"{key}_{name}", key=f"dl_run_{name}")
    size = sum(a.nbytes for a in arrays.values()) / 2**20
    if size <= MAX_NPZ_MB:
        download_button(arrays, key, key="dl_run_npz")  # every array
    else:
        st.caption(
            f"The arrays take {size:.0f} MB: read them from {run.root / 'arrays'} (numpy .npy files) or "
            f"export with `headscope runs export {key}`."
        )


def delete(key: str) -> None:
    """Button callback (a callback survives the router's rerun): delete the run, or say why not."""
    try:
        store().delete(key)
    except StoreError as e:
        st.session_state["runs_delete_error"] = str(e)
    else:
        st.session_state.pop("runs_selected", None)
        st.session_state["runs_delete_sure"] = False


with st.expander("Delete this run"):
    sure = st.checkbox(f"Yes, delete {key} ({index.size_mb.iloc[row]:.1f} MB)", key="runs_delete_sure")
    st.button("Delete", key="runs_delete", disabled=not sure, on_click=delete, args=(key,))
    if "runs_delete_error" in st.session_state:
        st.error(st.session_state.pop("runs_delete_error"))
