"""Dataset-scale runs: the result store (store.py), what a run is and how a chunk is computed (plan.py), and
running units into the store or in memory (jobs.py; cluster.py on Ray). Uses data, models and analysis; never
streamlit. The runners (precompute, sample, MemoryRun) are imported on first use: the store alone (listing,
showing, exporting runs) does not need torch."""

from typing import Any

from runs.store import Manifest, Run, Store, StoreError, default_store

_RUNNERS = ("MemoryRun", "precompute", "sample")


def __getattr__(name: str) -> Any:
    if name in _RUNNERS:
        from runs.jobs import MemoryRun, precompute, sample

        return {"MemoryRun": MemoryRun, "precompute": precompute, "sample": sample}[name]
    raise AttributeError(f"module 'runs' has no attribute {name!r}")


__all__ = ["Manifest", "MemoryRun", "Run", "Store", "StoreError", "default_store", "precompute", "sample"]
