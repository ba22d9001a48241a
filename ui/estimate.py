"""How long a dataset analysis will take here, said before the button that starts it, and the sample size that
fits an interactive budget. The rate of a unit on a model and dataset is measured: by the last sample run of the
same settings on this server (any session), else by one timed forward pass of the model on the dataset times the
unit's own count of forward passes per input (Unit.forwards)."""

from __future__ import annotations

import time

import streamlit as st

from analysis import UNITS
from data import Dataset
from models import HookedModel
from ui.cache import measured_rate, measured_startup, time_left

BUDGET_S = 30.0  # an interactive computation: what a user waits for at a button (more: a stored background run)
PROBE_INPUTS = 8  # inputs of the dataset's sample one forward is timed on
STEP = 8  # a default sample size is a multiple of this
STARTUP_S = 10.0  # a background run's start-up (imports, model and dataset) until one is measured: 8-10 s here


@st.cache_data(max_entries=32, show_spinner=False)
def forward_seconds(key: str, data_key: str, _model: HookedModel, _dataset: Dataset) -> float:
    """Seconds per input of one plain forward of the model over the first PROBE_INPUTS of the dataset's sample
    (after an untimed warm-up forward)."""
    batch = _model.prepare(list(_dataset.sample(PROBE_INPUTS).inputs))
    _model.run(batch, capture=False)
    start = time.perf_counter()
    _model.run(batch, capture=False)
    return (time.perf_counter() - start) / len(batch)


def seconds_per_input(
    analysis: str, key: str, data_key: str, options: tuple, model: HookedModel, dataset: Dataset
) -> tuple[float, bool]:
    """(seconds per input of `analysis` with `options` on this model and dataset, whether a run measured it)."""
    measured = measured_rate(analysis, key, data_key, options)
    if measured is not None:
        return measured, True
    from runs.plan import resolve_options

    unit = UNITS[analysis]
    forwards = unit.forwards(model, resolve_options(unit, model, dict(options)))
    return forwards * forward_seconds(key, data_key, model, dataset), False


def background_seconds(
    analysis: str, key: str, data_key: str, options: tuple, model: HookedModel, dataset: Dataset
) -> float:
    """Seconds a background run of `analysis` over the whole dataset takes: its process's start-up (the last one
    measured on this server for this model and dataset, else STARTUP_S) and the inputs at seconds_per_input."""
    rate, _ = seconds_per_input(analysis, key, data_key, options, model, dataset)
    startup = measured_startup(key, data_key)
    return (STARTUP_S if startup is None else startup) + rate * len(dataset)


def interactive_n(
    analysis: str, key: str, data_key: str, options: tuple, model: HookedModel, dataset: Dataset, most: int
) -> int:
    """The default sample size: the largest multiple of STEP (at least STEP, at most `most`) that the rate says
    takes at most BUDGET_S."""
    rate, _ = seconds_per_input(analysis, key, data_key, options, model, dataset)
    fits = int(BUDGET_S / max(rate, 1e-9)) // STEP * STEP
    return max(STEP, min(most, fits))


def estimate_note(
    analysis: str, key: str, data_key: str, options: tuple, model: HookedModel, dataset: Dataset, n: int, of: str = ""
) -> str:
    """'About 40 s for n inputs{of} on this machine (how it was measured).', and past BUDGET_S a pointer to the
    stored background run."""
    rate, measured = seconds_per_input(analysis, key, data_key, options, model, dataset)
    seconds = rate * n
    how = (
        "at the rate of the last run with these settings"
        if measured
        else f"from a timed forward pass of {model.spec.name}; the first run times it"
    )
    note = f"About {time_left(seconds)} for {n} inputs{of} on this machine ({how})."
    if seconds > BUDGET_S:
        note += " For more inputs than a short wait allows, start a background run below: it is stored for every view."
    return note
