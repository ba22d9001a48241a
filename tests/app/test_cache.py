"""What the views' shared cache keeps, and the time estimates it feeds: nothing from a computation that raised or
was interrupted part way (a rerun stops a script with a BaseException at its next Streamlit call), so the next
session computes it afresh and gets what a computation alone gets; an estimate is a timed forward until a run of
the same settings has timed the analysis itself, and the default sample fits the interactive budget."""

import numpy as np
import pytest
import streamlit as st

import runs
import runs.jobs
from data import load_dataset
from ui import cache


class Interrupted(BaseException):
    """Stands for Streamlit's rerun/stop exceptions, which are BaseExceptions raised inside the running script."""


@pytest.mark.parametrize("stop", [RuntimeError("a chunk failed"), Interrupted()], ids=["raised", "interrupted"])
def test_nothing_is_cached_from_a_run_that_did_not_finish(digits_vit, monkeypatch, stop):
    ds = load_dataset("digits", "test")
    n, options = 130, (("batch_size", 16),)  # chunks of 64 inputs: 3
    alone = runs.sample("predictions", digits_vit, ds, n, batch_size=16).arrays()
    compute_shard, calls = runs.jobs.compute_shard, []

    def failing(model, dataset, manifest, shard):
        calls.append(shard.start)
        if len(calls) == 2:  # the second chunk of the first attempt
            raise stop
        return compute_shard(model, dataset, manifest, shard)

    monkeypatch.setattr(runs.jobs, "compute_shard", failing)
    st.cache_data.clear()
    with pytest.raises(type(stop)):
        cache.sample_run("predictions", "digits-vit", ds.key, n, options, digits_vit, ds)
    again = cache.sample_run("predictions", "digits-vit", ds.key, n, options, digits_vit, ds)
    assert calls == [0, 64, 0, 64, 128]  # the second call computed every chunk again
    assert again.arrays().keys() == alone.keys()
    for name, values in alone.items():
        np.testing.assert_array_equal(again.arrays()[name], values, err_msg=name)
    cache.sample_run("predictions", "digits-vit", ds.key, n, options, digits_vit, ds)
    assert len(calls) == 5  # now it is cached: no chunk computed again


def test_the_estimate_is_a_timed_forward_until_a_run_times_the_analysis(digits_vit):
    from analysis import UNITS
    from runs.plan import resolve_options
    from ui import estimate

    ds = load_dataset("digits", "test")
    st.cache_data.clear()
    rate, measured = estimate.seconds_per_input("importance", "digits-vit", ds.key, (), digits_vit, ds)
    forward = estimate.forward_seconds("digits-vit", ds.key, digits_vit, ds)  # cached: the same timing
    unit = UNITS["importance"]
    forwards = unit.forwards(digits_vit, resolve_options(unit, digits_vit))
    assert not measured and rate == pytest.approx(forwards * forward)
    assert "from a timed forward pass of digits-vit" in estimate.estimate_note(
        "importance", "digits-vit", ds.key, (), digits_vit, ds, 16
    )
    cache.sample_run("importance", "digits-vit", ds.key, 16, (), digits_vit, ds)
    rate, measured = estimate.seconds_per_input("importance", "digits-vit", ds.key, (), digits_vit, ds)
    assert measured and rate == cache.measured_rate("importance", "digits-vit", ds.key, ()) and rate > 0
    note = estimate.estimate_note("importance", "digits-vit", ds.key, (), digits_vit, ds, 16)
    assert note.startswith("About ") and "for 16 inputs on this machine (at the rate of the last run" in note


@pytest.mark.parametrize(("rate", "most", "n"), [(1.0, 32, 24), (0.001, 32, 32), (100.0, 64, 8), (0.5, 64, 56)])
def test_the_default_sample_fits_the_interactive_budget(digits_vit, monkeypatch, rate, most, n):
    from ui import estimate

    monkeypatch.setattr(estimate, "measured_rate", lambda *key: rate)
    ds = load_dataset("digits", "test")
    assert estimate.BUDGET_S == 30
    assert estimate.interactive_n("importance", "digits-vit", ds.key, (), digits_vit, ds, most) == n
    note = estimate.estimate_note("importance", "digits-vit", ds.key, (), digits_vit, ds, n)
    assert ("background run" in note) == (rate * n > 30)


def test_a_background_estimate_adds_the_start_up_measured_by_the_last_background_run(digits_vit, tmp_path):
    """Until a background run of the model and dataset has started on this server, STARTUP_S; then the time from
    its launch to its run's creation (a resumed run, created before its launch, measures nothing)."""
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for
    from ui import estimate, stored
    from ui.tour_runs import Target

    ds = load_dataset("digits", "test")
    cache._timings.clear()  # no start-up measured yet on this "server"
    cache.record_startup("digits-vit", "another dataset", 99.0)  # of another dataset: not this one's
    rate = estimate.seconds_per_input("predictions", "digits-vit", ds.key, (), digits_vit, ds)[0]
    whole = rate * len(ds)
    base = estimate.background_seconds("predictions", "digits-vit", ds.key, (), digits_vit, ds)
    assert base == pytest.approx(estimate.STARTUP_S + whole)
    run = run_job(digits_vit, ds, manifest_for(digits_vit, "digits-vit", ds, "predictions", 8), Store(tmp_path))
    st.session_state[stored.LAUNCHED] = {1: run.manifest.created + 1.0, 2: run.manifest.created - 7.0}
    target = Target(digits_vit, "digits-vit", "digits-vit", ds)  # what the run is of, as ui.stored takes it
    stored.note_startup(target, 1, run)  # launched after the run was created: a resumed run
    assert cache.measured_startup("digits-vit", ds.key) is None
    stored.note_startup(target, 2, run)
    assert cache.measured_startup("digits-vit", ds.key) == pytest.approx(7.0)
    measured = estimate.background_seconds("predictions", "digits-vit", ds.key, (), digits_vit, ds)
    assert measured == pytest.approx(7.0 + whole)
    assert not st.session_state[stored.LAUNCHED]  # each launch measured once
