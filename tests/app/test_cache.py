"""What the views' shared cache keeps: nothing from a computation that raised or was interrupted part way (a
rerun stops a script with a BaseException at its next Streamlit call), so the next session computes it afresh
and gets what a computation alone gets."""

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
    assert cache.sample_run("predictions", "digits-vit", ds.key, n, options, digits_vit, ds) is not None
    assert len(calls) == 5  # now it is cached
