"""Dataset-scale runs: the result store (store.py) and the jobs that fill it (jobs.py). Uses data, models and
analysis; never streamlit."""

from runs.jobs import JOBS, model_fingerprint, precompute
from runs.store import Manifest, Run, Store, StoreError, default_store

__all__ = ["JOBS", "Manifest", "Run", "Store", "StoreError", "default_store", "model_fingerprint", "precompute"]
