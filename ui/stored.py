"""Stored runs in the views: find a finished run of the current model + dataset, start one in the background
(a subprocess of `python -m headscope precompute`), follow its progress from the store, cancel it, and open
one of its inputs as the sidebar's current input."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pandas as pd
import streamlit as st

from analysis import UNITS
from headscope import option_args
from models import model_fingerprint
from runs import Run, Store
from runs.jobs import BACKGROUND_BATCH
from runs.plan import resolve_options
from runs.store import FORMAT_VERSION
from ui import state
from ui.cache import record_startup, time_left
from ui.estimate import background_seconds

if TYPE_CHECKING:
    from data import Dataset
    from models import HookedModel

ROOT = Path(__file__).resolve().parent.parent
FREE_PARAMS = ("n", "batch_size", "methods", "maps")  # a stored run of any of these fits a view
RAY_ENV = "HEADSCOPE_RAY"  # background runs compute on this Ray cluster (local, auto or an address) when set
JOBS_KEY = "_background_runs"  # session: {(model_key, data_key, analysis, params): (pid, log file)}
LAUNCHED = "_background_launched"  # session: {pid: when it was launched}, until its run is seen (note_startup)


class Subject(Protocol):
    """What a run is of: a view's PageContext, or a tour's run (ui.tour_runs)."""

    model: HookedModel
    model_name: str  # as the command line takes it
    model_key: str  # model_name with an edited label set, else the same
    dataset: Dataset


def store() -> Store:
    return Store()


def find_run(ctx: Subject, analysis: str, options: tuple = ()) -> Run | None:
    """The finished run of `analysis` for the sidebar's model and dataset with the view's parameters (`options`,
    (name, value) pairs, else the unit's defaults; any sample size and batch size; the largest wins), or None. A
    run whose files no longer match their checksums is not used: the view says so (a background run of it
    computes it again)."""
    best = None
    for run in matching(ctx, analysis, options):
        m = run.manifest
        if (
            m.state == "done"
            and m.format_version == FORMAT_VERSION
            and (best is None or m.n_inputs > best.manifest.n_inputs)
        ):
            damage = run.damage()
            if damage:
                st.warning(
                    f"The stored {analysis} run {m.key} is damaged ({'; '.join(damage)}), so this view does not use "
                    "it. Run it again (the background run below, or the same `headscope precompute`) to repair it."
                )
                continue
            best = run
    return best


def stored_toggle(
    ctx: Subject, analysis: str, label: str, key: str, help: str | None = None, options: tuple = ()
) -> tuple[Run | None, Run | None]:
    """The finished run of `analysis` for the sidebar's model and dataset (find_run), and that run again when the
    view uses it (else None): a toggle, on by default, shown only when there is such a run. label: the toggle's
    text, "{run}" standing for the run's label (run_label)."""
    run = find_run(ctx, analysis, options)
    if run is None:
        return None, None
    used = st.toggle(label.format(run=run_label(run)), value=True, key=key, help=help)
    return run, run if used else None


def run_label(run: Run) -> str:
    m = run.manifest
    return (
        f"stored run: {m.n_inputs} inputs of {Path(m.dataset).name} ({m.split}), "
        f"{pd.Timestamp(m.updated, unit='s'):%Y-%m-%d %H:%M}"
    )


def _command(ctx: Subject, analysis: str, options: tuple = (), n: int | None = None) -> list[str]:
    """`headscope precompute` of the view's analysis with `options` ((name, value) pairs, as their command-line
    flags) on the whole dataset (or its seeded sample of n); on Ray when $HEADSCOPE_RAY is set (local, auto or a
    cluster address)."""
    ds = ctx.dataset
    ray = ["--ray", os.environ[RAY_ENV]] if os.environ.get(RAY_ENV) else ["--device", ctx.model.device.type]
    return [
        sys.executable,
        "-m",
        "headscope",
        "precompute",
        "--model",
        ctx.model_name,
        "--dataset",
        ds.source,
        "--split",
        ds.split,
        "--analyses",
        analysis,
        "--batch-size",
        str(BACKGROUND_BATCH),
        "--store",
        str(store().root.resolve()),
        *ray,
        *(["--n", str(n)] if n is not None else []),
        *option_args(options),
    ]


def command_line(ctx: Subject, analysis: str, options: tuple = (), n: int | None = None) -> str:
    """The `headscope precompute` command that stores the same run as start_background, as a user types it."""
    return shlex.join(["headscope", *_command(ctx, analysis, options, n)[3:]])


def start_background(ctx: Subject, analysis: str, options: tuple = (), n: int | None = None) -> None:
    """Button callback: start `headscope precompute` for the whole dataset (or its sample of n) as a subprocess of
    the server (its pid and log file in the session: started())."""
    log = store().root / "logs"
    log.mkdir(parents=True, exist_ok=True)
    out = open(log / f"{analysis}-{os.getpid()}-{len(st.session_state.get(JOBS_KEY, {}))}.log", "w")
    launched = time.time()
    proc = subprocess.Popen(
        _command(ctx, analysis, options, n),
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "HEADSCOPE_STORE": str(store().root.resolve())},
    )
    st.session_state.setdefault(JOBS_KEY, {})[_job(ctx, analysis, options)] = (proc.pid, out.name)
    st.session_state.setdefault(LAUNCHED, {})[proc.pid] = launched


def note_startup(ctx: Subject, pid: int, run: Run) -> None:
    """The first time a background run this session launched (process `pid`) is seen writing `run`: remember how
    long it took to start (ui.cache.record_startup), when it created the run (a resumed run was created before)."""
    launched = st.session_state.get(LAUNCHED, {}).pop(pid, None)
    if launched is not None and run.manifest.created >= launched:
        record_startup(ctx.model_key, ctx.dataset.key, run.manifest.created - launched)


def _job(ctx: Subject, analysis: str, options: tuple) -> tuple[str, str, str, str]:
    """The session's key of a background run: model, dataset, analysis and parameters (_params)."""
    return ctx.model_key, ctx.dataset.key, analysis, _params(ctx, analysis, options)


def started(ctx: Subject, analysis: str, options: tuple = ()) -> tuple[int, str] | None:
    """(pid, log file) of the background run of this model, dataset, analysis and parameters this session
    started, until its progress bar saw it end."""
    return st.session_state.get(JOBS_KEY, {}).get(_job(ctx, analysis, options))


def _params(ctx: Subject, analysis: str, options: tuple) -> str:
    """The parameters a run of `analysis` with the view's `options` stores (the unit's defaults filled in), less
    the free ones (sample and batch size), as one comparable string."""
    return _comparable(resolve_options(UNITS[analysis], ctx.model, dict(options)).params())


def _comparable(params: dict) -> str:
    """A run's parameters less the free ones (FREE_PARAMS), as one string that compares equal for equal runs."""
    return json.dumps({k: v for k, v in params.items() if k not in FREE_PARAMS}, sort_keys=True)


def matching(ctx: Subject, analysis: str, options: tuple = ()) -> list[Run]:
    """Every run in the store of this model, dataset and analysis with the view's parameters (`options`, as in
    find_run), newest first."""
    fingerprint, data = model_fingerprint(ctx.model), ctx.dataset.fingerprint()
    want = _params(ctx, analysis, options)
    found = []
    for run in store().runs():
        try:
            m = run.manifest
        except Exception:  # noqa: BLE001 - a damaged run folder is shown on the Runs page
            continue
        same = m.analysis == analysis and m.model_fingerprint == fingerprint and m.dataset_key == data
        if same and _comparable(m.params) == want:
            found.append((m.updated, run))
    return [run for _, run in sorted(found, key=lambda x: -x[0])]


def active_run(ctx: Subject, analysis: str, options: tuple = ()) -> Run | None:
    """The run of this model, dataset, analysis and parameters that a process is writing now (it holds the run's
    lock)."""
    return next((r for r in matching(ctx, analysis, options) if r.manifest.state == "running" and r.is_locked()), None)


def background_panel(ctx: Subject, analysis: str, what: str, options: tuple = ()) -> bool:
    """'Run on the whole dataset in the background', and while a run of this model, dataset, analysis and the
    view's parameters (`options`) is being written (started here, in another session, by a tour or on the command
    line) a progress bar re-read every second from the store, so it survives page switches and reloads, with
    Cancel. True while such a run goes: a run of other parameters is not this view's."""
    if ctx.model_key != ctx.model_name:
        st.caption("Background runs use the model's own label set; restore it in the sidebar to start one.")
        return False
    if started(ctx, analysis, options) is None and active_run(ctx, analysis, options) is None:
        about = time_left(background_seconds(analysis, ctx.model_key, ctx.dataset.key, options, ctx.model, ctx.dataset))
        st.button(
            f"Run {what} on all {len(ctx.dataset)} inputs in the background (about {about})",
            key=f"bg_start_{analysis}",
            on_click=start_background,
            args=(ctx, analysis, options),
            help="Starts `python -m headscope precompute` in a separate process"
            + (f" on the Ray cluster {os.environ[RAY_ENV]!r} ({RAY_ENV})" if os.environ.get(RAY_ENV) else "")
            + f"; the result is stored (in {store().root}) and shown here when it is done, also after a "
            "restart.",
        )
        return False
    follow(ctx, analysis, what, options)
    return True


@st.fragment(run_every=1.0)
def follow(ctx: Subject, analysis: str, what: str, options: tuple = ()) -> None:
    """background_panel's progress bar and Cancel, re-read every second (what: the analysis in words)."""
    ours = started(ctx, analysis, options)
    active = active_run(ctx, analysis, options)
    c1, c2 = st.columns([4, 1])
    if active is not None:
        if ours is not None:
            note_startup(ctx, ours[0], active)
        m = active.manifest
        where = f", shards {m.chunks_done()}/{m.n_chunks} on {m.workers}" if m.workers else ""
        c1.progress(
            m.done_inputs / max(m.n_inputs, 1),
            text=f"Running {what} in the background: {m.done_inputs}/{m.n_inputs} inputs{where}",
        )
        c2.button("Cancel", key=f"bg_cancel_{analysis}", on_click=cancel, args=(active.holder_pid(),))
        return
    if ours is not None and alive(ours[0]):  # the process is still loading the model and the data
        c1.progress(0.0, text=f"Running {what} in the background: starting…")
        c2.button("Cancel", key=f"bg_cancel_{analysis}", on_click=cancel, args=(ours[0],))
        return
    st.session_state.get(JOBS_KEY, {}).pop(_job(ctx, analysis, options), None)
    newest = next(iter(matching(ctx, analysis, options)), None)
    if ours is not None and newest is None:
        st.error(
            f"The background run stopped before it wrote anything; its log: {ours[1]}\n\n"
            + Path(ours[1]).read_text()[-800:]
        )
    elif ours is not None and newest is not None and newest.manifest.state != "done":
        m = newest.manifest
        st.warning(
            f"The background run ended as {m.state} at {m.done_inputs}/{m.n_inputs} inputs; start it again "
            f"to resume from there. Log: {ours[1]}"
        )
    else:
        st.rerun()  # finished (or ended elsewhere): the view now finds the stored run or offers a new one


def alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reap our own child once it exits
        return finished == 0
    except ChildProcessError:  # not our child (e.g. another server process started it): ask the OS
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def cancel(pid: int | None) -> None:
    """Stop a run's process (SIGTERM: it marks the run cancelled); its process group when it leads one (runs
    started by the app), else the process itself (runs started on the command line)."""
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGTERM) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGTERM)
    except OSError:
        pass


OPENED = "_opened_input"  # set by open_input: the table's fragment then reruns the whole app (the sidebar)


def open_input(ds_key: str, row: int, modality: str) -> None:
    """Button callback: make dataset row `row` the sidebar's current input (browse by index)."""
    st.session_state[f"{state.SOURCE}_{modality}"] = "dataset"
    st.session_state[state.BROWSE] = "index"
    st.session_state[f"{state.INDEX}_{ds_key}"] = int(row)
    st.session_state[OPENED] = True


def input_table(table: pd.DataFrame, ds: Dataset, modality: str, key: str, name: str, height: int = 260) -> None:
    """A table of dataset inputs (column "dataset row"): selecting a row offers to open that input in the
    sidebar; the table downloads as name.csv."""
    from ui.framing import download_button

    event = st.dataframe(
        table, hide_index=True, width="stretch", height=height, on_select="rerun", selection_mode="single-row", key=key
    )
    picked = event.selection.rows if event else []
    if picked:
        row = int(table["dataset row"].iloc[picked[0]])
        st.button(
            f"Open {ds.names[row]} as the current input",
            key=f"{key}_open",
            on_click=open_input,
            args=(ds.key, row, modality),
        )
    download_button(table, name, key=f"dl_{key}")
    if st.session_state.pop(OPENED, False):  # inside a fragment only the fragment reran: redraw the sidebar too
        st.rerun()
