"""The stored runs a tour's steps show (a step's `run`, ui.tour.tour_runs): when the tour starts, each one that is
not stored yet is started as a background run (ui.stored), one at a time in the order of the steps, and the tour
panel shows how far each has got, so a step's view reads the stored result instead of waiting on a button. The
app's side only: its imports of the models and the store come on first use (ui.tour reads TourRun without them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import streamlit as st

from ui.text import literal

if TYPE_CHECKING:
    from data import Dataset
    from models import HookedModel

STARTED = "_tour_runs"  # session: (tour file, {TourRun: (pid, log file)}) the runs this session's tour started
TITLES = {"importance": "head importance", "direct_logit_attribution": "direct logit attribution"}


@dataclass(frozen=True)
class TourRun:
    """A stored run that steps of a tour show: `analysis` of the built-in `model` on `dataset` (a bundled set; ""
    is the model's own) and its `split` ("": the dataset's default), the dataset's seeded sample of n inputs
    (None: every input), with the unit's `options` ((name, value) pairs; the defaults for the rest). Taken from the
    step's state (model, dataset, split, n and the run's options, ui.navigation.RUN_OPTIONS)."""

    analysis: str
    model: str
    dataset: str
    split: str
    n: int | None
    options: tuple[tuple[str, str], ...] = ()


Runs = dict[TourRun, list[int]]  # run -> the numbers (1-based) of the steps that show it, in step order


@dataclass
class Target:
    """A tour run's model and dataset, as ui.stored takes them (its Subject)."""

    model: HookedModel
    model_name: str
    model_key: str
    dataset: Dataset


class Status(NamedTuple):
    state: str  # "stored", "running" (with progress), "starting", "queued", "stopped" or "refused"
    fraction: float  # of the inputs done
    note: str  # the inputs done, or why the run stopped or cannot start (plain text)


def describe(run: TourRun) -> str:
    """'head importance on digits-vit (64 inputs of digits, ablation mean)'."""
    what = TITLES.get(run.analysis, run.analysis.replace("_", " "))
    inputs = f"{run.n} inputs" if run.n else "every input"
    return f"{what} on {run.model} ({inputs} of {_dataset(run)}{''.join(f', {k} {v}' for k, v in run.options)})"


def _who(steps: list[int]) -> str:
    """'step 4' or 'steps 4, 5'."""
    return f"step{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))}"


def _dataset(run: TourRun) -> str:
    """The run's dataset: the step's, else the built-in model's own."""
    from models import BUILTINS

    return run.dataset or (BUILTINS[run.model].dataset if run.model in BUILTINS else "its own dataset")


def target(run: TourRun) -> Target:
    """The loaded model and dataset of a tour run (shared with the views' caches); ValueError with the reason when
    it cannot be run: a tour starts runs of built-in models on bundled datasets only."""
    from data import DatasetError
    from models import BUILTINS
    from ui import cache
    from ui.input_picker import default_dataset

    if run.model not in BUILTINS:
        raise ValueError(f"{run.model!r} is not a built-in model (a tour starts runs of built-in models only)")
    model = cache.get_model(run.model)
    try:
        ds = cache.get_dataset(run.dataset or default_dataset(model.spec), run.split or None)
    except DatasetError as e:
        raise ValueError(str(e)) from e
    if not ds.bundled or ds.modality != model.spec.modality:
        raise ValueError(f"{run.dataset!r} is not a bundled {model.spec.modality} dataset")
    return Target(model, run.model, run.model, ds)


def status(run: TourRun, started: tuple[int, str] | None) -> Status:
    """Where a tour run stands: stored (a finished run the step's view finds), being written, started by this
    session and still loading, stopped without a result, not started yet, or one that cannot be run."""
    from ui import stored

    try:
        t = target(run)
        found = stored.find_run(t, run.analysis, run.options)  # ValueError for an option the unit does not take
    except ValueError as e:
        return Status("refused", 0.0, str(e))
    if found is not None:
        return Status("stored", 1.0, "stored")
    active = stored.active_run(t, run.analysis, run.options)
    if active is not None:
        if started is not None:
            stored.note_startup(t, started[0], active)
        m = active.manifest
        return Status("running", m.done_inputs / max(m.n_inputs, 1), f"{m.done_inputs}/{m.n_inputs} inputs")
    if started is None:
        return Status("queued", 0.0, "starts when the run before it is done")
    if stored.alive(started[0]):
        return Status("starting", 0.0, "starting")
    tail = Path(started[1]).read_text(errors="replace").strip().splitlines()[-1:] if Path(started[1]).exists() else []
    why = tail[0] if tail else "no log"
    return Status("stopped", 0.0, f"it stopped ({why}; log: {started[1]}); start the tour again to resume it")


def advance(path: str, runs: Runs) -> list[tuple[TourRun, list[int], Status]]:
    """Each run of the tour in `path` (its steps' runs), its steps and where it stands; starts the first that is
    not started yet when none of them is being computed (one at a time: the first step's run is ready first)."""
    from ui import stored

    was, started = st.session_state.get(STARTED, ("", {}))
    if was != path:  # a tour (re)starts: runs started before are looked up afresh
        started = {}
        st.session_state[STARTED] = (path, started)
    out = [(run, steps, status(run, started.get(run))) for run, steps in runs.items()]
    if not any(s.state in ("running", "starting") for _, _, s in out):
        for k, (run, steps, s) in enumerate(out):
            if s.state == "queued":
                t = target(run)
                stored.start_background(t, run.analysis, run.options, n=run.n)
                started[run] = stored.started(t, run.analysis, run.options)
                out[k] = (run, steps, Status("starting", 0.0, "starting"))
                break
    return out


def runs_panel(path: str, runs: Runs, step: int) -> bool:
    """The runs of the tour in `path` that are not stored yet, with their progress, in the tour panel (step: the
    open step, 0-based), followed every second while one is still to come (the app reruns when none is). True when
    the open step's runs are stored (its view shows their figures)."""
    out = advance(path, runs)
    if _to_come(out):
        _follow(path, runs, step)
    else:
        _show(out, step)
    return all(s.state == "stored" for _, steps, s in out if step + 1 in steps)


@st.fragment(run_every=1.0)
def _follow(path: str, runs: Runs, step: int) -> None:
    """runs_panel's lines every second while a run is still to come; then the whole app once, so the open view
    finds its stored run."""
    out = advance(path, runs)
    _show(out, step)
    if not _to_come(out):
        st.rerun()


def _to_come(out: list[tuple[TourRun, list[int], Status]]) -> bool:
    return any(s.state in ("running", "starting", "queued") for _, _, s in out)


def _show(out: list[tuple[TourRun, list[int], Status]], step: int) -> None:
    """One line per run that is not stored: a progress bar, 'queued', or why it cannot be computed."""
    for run, steps, s in out:
        if s.state == "stored":
            continue
        line = f"{_who(steps).capitalize()} {'need' if len(steps) > 1 else 'needs'} {literal(describe(run))}"
        if s.state in ("refused", "stopped"):
            st.warning(f"{line}, which cannot be computed: {literal(s.note.rstrip('.'))}.")
        elif s.state == "queued":
            st.caption(f"{line}: {s.note}.")
        else:
            shown = f"{line}: {f'{s.fraction:.0%} ({literal(s.note)})' if s.state == 'running' else 'starting'}"
            if step + 1 in steps:
                shown += " in the background; this step shows it when it is done"
            st.progress(s.fraction, text=shown)


def overview(runs: Runs) -> None:
    """The Tour view's list of the stored runs a tour's steps show: stored, being computed, or started when the
    tour starts (with the command that stores it before the lecture), or why it cannot be computed."""
    from ui import stored

    lines = []
    for run, steps in runs.items():
        s = status(run, None)
        line = f"- {_who(steps)}: {literal(describe(run))}: "
        if s.state == "stored":
            line += "stored"
        elif s.state == "refused":
            line += f"cannot be computed ({literal(s.note)})"
        elif s.state == "running":
            line += f"being computed ({s.note})"
        else:
            command = stored.command_line(target(run), run.analysis, run.options, run.n)
            line += f"starts with the tour (or store it before the lecture: `{command}`)"
        lines.append(line)
    st.markdown(
        "**The stored runs the steps show**, computed in the background once the tour starts:\n" + "\n".join(lines)
    )


def stop_started() -> None:
    """End of a tour: stop the background runs it started that are still computing (a later start of the tour
    resumes them from their finished chunks)."""
    from ui import stored

    _, started = st.session_state.pop(STARTED, ("", {}))
    for pid, _ in started.values():
        if stored.alive(pid):
            stored.cancel(pid)
