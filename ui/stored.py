"""Stored runs in the views: find a finished run of the current model + dataset, start one in the background
(a subprocess of `python -m headscope precompute`), follow its progress from the store, cancel it, and open
one of its inputs as the sidebar's current input."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import streamlit as st

from runs import Run, Store
from runs.store import FORMAT_VERSION
from runs.jobs import BACKGROUND_BATCH, JOBS, dataset_fingerprint, model_fingerprint
from ui import state

ROOT = Path(__file__).resolve().parent.parent
FREE_PARAMS = ("n", "batch_size", "methods")  # a stored run of any of these fits a view
JOBS_KEY = "_background_runs"  # session: {(model_key, data_key, analysis): (pid, store folder)}


def store() -> Store:
    return Store()


def find_run(ctx, analysis: str) -> Run | None:
    """The finished run of `analysis` for the sidebar's model and dataset with the view's parameters (any
    sample size and batch size; the largest wins), or None."""
    want = json.dumps({k: v for k, v in JOBS[analysis].defaults(ctx.model, ()).items() if k not in FREE_PARAMS},
                      sort_keys=True)
    fingerprint, data = model_fingerprint(ctx.model), dataset_fingerprint(ctx.dataset)
    best = None
    for run in store().runs():
        try:
            m = run.manifest
        except Exception:  # noqa: BLE001 - a damaged run folder is skipped here and shown on the Runs page
            continue
        params = {k: v for k, v in m.params.items() if k not in FREE_PARAMS}
        if (m.state == "done" and m.format_version == FORMAT_VERSION and m.analysis == analysis
                and m.model_fingerprint == fingerprint
                and m.dataset_key == data and json.dumps(params, sort_keys=True) == want
                and (best is None or m.n_inputs > best.manifest.n_inputs)):
            best = run
    return best


def run_label(run: Run) -> str:
    m = run.manifest
    return (f"stored run: {m.n_inputs} inputs of {Path(m.dataset).name} ({m.split}), "
            f"{pd.Timestamp(m.updated, unit='s'):%Y-%m-%d %H:%M}")


def _command(ctx, analysis: str) -> list[str]:
    ds = ctx.dataset
    return [sys.executable, "-m", "headscope", "precompute", "--model", ctx.model_name, "--dataset", ds.source,
            "--split", ds.split, "--analyses", analysis, "--batch-size", str(BACKGROUND_BATCH),
            "--device", ctx.model.device.type, "--store", str(store().root.resolve())]


def start_background(ctx, analysis: str) -> None:
    """Button callback: start `headscope precompute` for the whole dataset as a subprocess of the server."""
    log = store().root / "logs"
    log.mkdir(parents=True, exist_ok=True)
    out = open(log / f"{analysis}-{os.getpid()}-{len(st.session_state.get(JOBS_KEY, {}))}.log", "w")
    proc = subprocess.Popen(_command(ctx, analysis), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "HEADSCOPE_STORE": str(store().root.resolve())})
    st.session_state.setdefault(JOBS_KEY, {})[(ctx.model_key, ctx.dataset.key, analysis)] = (proc.pid, out.name)


def _progress(ctx, analysis: str) -> tuple[int, int, str] | None:
    """(done, total, state) of the newest run of this model, dataset and analysis in the store, or None."""
    fingerprint, data = model_fingerprint(ctx.model), dataset_fingerprint(ctx.dataset)
    newest = None
    for run in store().runs():
        try:
            m = run.manifest
        except Exception:  # noqa: BLE001
            continue
        if m.analysis == analysis and m.model_fingerprint == fingerprint and m.dataset_key == data \
                and (newest is None or m.updated > newest.updated):
            newest = m
    return None if newest is None else (newest.done_inputs, newest.n_inputs, newest.state)


def background_panel(ctx, analysis: str, what: str) -> None:
    """'Run on the whole dataset in the background', and while it runs a progress bar (re-read every second
    from the store, so it survives page switches and reloads of this session) with Cancel."""
    if ctx.model_key != ctx.model_name:
        st.caption("Background runs use the model's own label set; restore it in the sidebar to start one.")
        return
    jobs = st.session_state.get(JOBS_KEY, {})
    job = jobs.get((ctx.model_key, ctx.dataset.key, analysis))
    if job is None:
        st.button(f"Run {what} on all {len(ctx.dataset)} inputs in the background", key=f"bg_start_{analysis}",
                  on_click=start_background, args=(ctx, analysis),
                  help="Starts `python -m headscope precompute` in a separate process; the result is stored "
                       f"(in {store().root}) and shown here when it is done, also after a restart.")
        return
    follow(ctx, analysis, job)


@st.fragment(run_every=1.0)
def follow(ctx, analysis: str, job: tuple[int, str]) -> None:
    pid, log = job
    alive = _alive(pid)
    prog = _progress(ctx, analysis)
    done, total, run_state = prog if prog else (0, len(ctx.dataset), "starting")
    if run_state == "done" or (not alive and prog is None):
        st.session_state[JOBS_KEY].pop((ctx.model_key, ctx.dataset.key, analysis), None)
        if run_state != "done":
            st.error(f"The background run stopped before it wrote anything; its log: {log}\n\n"
                     + Path(log).read_text()[-800:])
            return
        st.rerun()
    if not alive:
        st.session_state[JOBS_KEY].pop((ctx.model_key, ctx.dataset.key, analysis), None)
        st.warning(f"The background run ended as {run_state} at {done}/{total} inputs; start it again to resume "
                   f"from there. Log: {log}")
        return
    c1, c2 = st.columns([4, 1])
    c1.progress(done / max(total, 1), text=f"Background run of {analysis}: {done}/{total} inputs ({run_state})")
    c2.button("Cancel", key=f"bg_cancel_{analysis}", on_click=_cancel, args=(pid,))


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child once it exits
        return finished == 0
    except ChildProcessError:  # not our child (e.g. another server process started it): ask the OS
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def _cancel(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        pass


OPENED = "_opened_input"  # set by open_input: the table's fragment then reruns the whole app (the sidebar)


def open_input(ds_key: str, row: int, modality: str) -> None:
    """Button callback: make dataset row `row` the sidebar's current input (browse by index)."""
    st.session_state[f"{state.SOURCE}_{modality}"] = "dataset"
    st.session_state[state.BROWSE] = "index"
    st.session_state[f"{state.INDEX}_{ds_key}"] = int(row)
    st.session_state[OPENED] = True


def input_table(table: pd.DataFrame, ds, modality: str, key: str, name: str, height: int = 260) -> None:
    """A table of dataset inputs (column "dataset row"): selecting a row offers to open that input in the
    sidebar; the table downloads as name.csv."""
    from ui.widgets import download_button

    event = st.dataframe(table, hide_index=True, width="stretch", height=height, on_select="rerun",
                         selection_mode="single-row", key=key)
    picked = event.selection.rows if event else []
    if picked:
        row = int(table["dataset row"].iloc[picked[0]])
        st.button(f"Open {ds.names[row]} as the current input", key=f"{key}_open", on_click=open_input,
                  args=(ds.key, row, modality))
    download_button(table, name, key=f"dl_{key}")
    if st.session_state.pop(OPENED, False):  # inside a fragment only the fragment reran: redraw the sidebar too
        st.rerun()
