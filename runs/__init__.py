"""Dataset-scale runs: the result store (store.py), what a run is and how a chunk is computed (plan.py), and
running units into the store or in memory (jobs.py; cluster.py on Ray). Uses data, models and analysis; never
streamlit."""

from runs.jobs import MemoryRun, precompute, sample
from runs.store import Manifest, Run, Store, StoreError, default_store

__all__ = ["Manifest", "MemoryRun", "Run", "Store", "StoreError", "default_store", "precompute", "sample"]
