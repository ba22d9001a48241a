"""Run a unit (analysis.units) over a dataset, chunk by chunk: into the store (`run_job`, `precompute`) or in
memory (`sample`, what a view shows). Both compute the same shards (runs.plan), so a view's sample and a stored
run of the same model, dataset, n and options hold the same numbers.

    from runs import precompute, sample
    runs = precompute("digits-vit", "digits", analyses=["importance", "relevance"], n=256, methods=["attnlrp"])
    runs[0].arrays()["accuracy"]      # [N, L, H] per-input drop in accuracy when each head is removed
    sample("importance", "digits-vit", "digits", 64).arrays()   # the same computation, not stored
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch

from analysis.units import UNITS
from data import Dataset, load_dataset
from models import HookedModel, load_model, model_fingerprint
from runs.faults import Faults
from runs.plan import Shard, compute_shard, manifest_for, run_tables, shards, skipped_inputs
from runs.store import Manifest, Run, Store, StoreError, concat_chunks

Progress = Callable[[int, int], None] | None  # (inputs done, inputs in total)
BACKGROUND_BATCH = 32  # the app's background runs

# computes the given shards and yields (start, arrays) as each finishes, in any order; raises after the last
# one when some could not be computed (runs.cluster.RayExecutor is one)
Executor = Callable[[list[Shard]], Iterator[tuple[int, dict[str, np.ndarray]]]]


def check_analyses(names: Sequence[str]) -> list[str]:
    if not names:
        raise ValueError(f"Name at least one analysis: {', '.join(UNITS)}.")
    unknown = [a for a in names if a not in UNITS]
    if unknown:
        raise ValueError(f"Unknown analysis {', '.join(map(repr, unknown))}: choose from {', '.join(UNITS)}.")
    return list(names)


def run_job(
    model: HookedModel,
    ds: Dataset,
    manifest: Manifest,
    store: Store,
    force: bool = False,
    progress: Progress = None,
    executor: Executor | None = None,
) -> Run:
    """Compute (or resume) one run into the store; returns it finished. A finished run with the same key is
    returned as it is unless force. Chunks are computed here one after another, or by `executor` (e.g. on a Ray
    cluster); either way this process alone writes the run."""
    found = store.find(manifest.key)
    if found is not None and not force:
        if progress:
            progress(manifest.n_inputs, manifest.n_inputs)
        return found
    faults = Faults.from_env()
    run = store.open_or_create(manifest)
    with run.lock():
        run.tidy()
        if not force and store.find(manifest.key) is not None:  # another process finished it while we waited
            if progress:
                progress(manifest.n_inputs, manifest.n_inputs)
            return run
        if force:
            run.save_manifest(manifest)
        done = set(run.done_chunks())
        finished = sum(min(manifest.chunk_size, manifest.n_inputs - s) for s in done)
        run.update(state="running", error="", done_inputs=finished, workers=manifest.workers)
        todo = shards(ds, manifest, model.spec.class_names, done)
        size = {s.start: len(s.rows) for s in todo}
        if progress:
            progress(finished, manifest.n_inputs)
        try:
            results = executor(todo) if executor else ((s.start, compute_shard(model, ds, manifest, s)) for s in todo)
            for written, (start, arrays) in enumerate(results, 1):
                run.write_chunk(start, arrays)
                finished += size[start]
                run.update(done_inputs=finished)
                if progress:
                    progress(finished, manifest.n_inputs)
                faults.after_chunk(written)
            run.finish(lambda arrays: run_tables(model, ds, manifest, arrays), partial(skipped_inputs, ds, manifest))
        except (KeyboardInterrupt, SystemExit):
            run.update(state="cancelled")
            raise
        except StoreError:
            raise
        except Exception as e:
            run.update(state="failed", error=f"{type(e).__name__}: {e}")
            raise
    return run


@dataclass
class MemoryRun:
    """A run computed in memory, not stored: what a view's sample is. Reads like a stored runs.Run: manifest (the
    stored run's, key included), arrays() {name: [N, ...]} and tables() {name: DataFrame}."""

    manifest: Manifest
    _arrays: dict[str, np.ndarray] = field(repr=False)
    _tables: dict[str, pd.DataFrame] = field(repr=False)

    def arrays(self) -> dict[str, np.ndarray]:
        return self._arrays

    def tables(self) -> dict[str, pd.DataFrame]:
        return self._tables


def run_in_memory(model: HookedModel, ds: Dataset, manifest: Manifest, progress: Progress = None) -> MemoryRun:
    """The run `manifest` describes, computed chunk by chunk here (as run_job computes it) and kept in memory."""
    parts = []
    done = 0
    for shard in shards(ds, manifest, model.spec.class_names):
        if progress:
            progress(done, manifest.n_inputs)
        parts.append(compute_shard(model, ds, manifest, shard))
        done += len(shard.rows)
    if progress:
        progress(done, manifest.n_inputs)
    arrays = concat_chunks(parts)
    manifest.state, manifest.done_inputs = "done", manifest.n_inputs
    manifest.skipped = skipped_inputs(ds, manifest, arrays["row"])
    return MemoryRun(manifest, arrays, run_tables(model, ds, manifest, arrays))


def sample(
    analysis: str,
    model: HookedModel | str,
    dataset: Dataset | str,
    n: int | None,
    progress: Progress = None,
    **options: Any,
) -> MemoryRun:
    """The in-memory run of `analysis` over the dataset's sample of n (all of it when n is None): the same arrays,
    names and shapes as the stored run of the same model, dataset, n and options. model / dataset: loaded objects,
    or a name / source to load. Unknown or bad options raise TypeError / ValueError naming the option."""
    m = load_model(model) if isinstance(model, str) else model
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    name = model if isinstance(model, str) else m.spec.name
    return run_in_memory(m, ds, manifest_for(m, name, ds, analysis, n, **options), progress)


def precompute(
    model_name: str,
    source: str,
    split: str | None = None,
    analyses: Sequence[str] = ("importance",),
    n: int | None = None,
    device: str | None = None,
    store: str | None = None,
    force: bool = False,
    progress: Callable[[Manifest], Progress] | None = None,
    threads: int | None = None,
    ray: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    columns: dict[str, str] | None = None,
    **options: Any,
) -> list[Run]:
    """Load the model and the dataset, and run each analysis into the store (see run_job). options: the units'
    options (analysis.units), each applied to every chosen analysis that has it (methods= to relevance and
    faithfulness, say); one that none of them has raises TypeError. progress(manifest) returns the (done, total)
    callback of that run; threads: torch's CPU threads (per Ray worker with ray).

    ray: compute on a Ray cluster instead of this process ("local", "auto" or an address; runs.cluster), with
    `workers` workers (default: the cluster's GPUs, else its CPUs / threads), each shard tried 1 + `retries`
    times. The results and keys are those of a single-process run. columns: the dataset's text_column,
    image_column or label_column (data.load_dataset's), when the detected ones are not right."""
    analyses = check_analyses(analyses)
    per_analysis = split_options(analyses, options)
    check_place(device, store)
    if threads is not None and ray is None:
        torch.set_num_threads(threads)
    with contextlib.ExitStack() as stack:
        if ray:  # a wrong address, or no Ray, fails before the model loads
            from runs.cluster import RayExecutor, check_cluster, connect

            check_cluster(ray)
        model = load_model(model_name, device="cpu" if ray else device)  # with ray this process only writes
        ds = load_dataset(source, split, **(columns or {}))
        if ds.modality != model.spec.modality:
            raise ValueError(f"{source} holds {ds.modality}s, but {model_name} reads {model.spec.modality}s.")
        manifests = [manifest_for(model, model_name, ds, a, n, **per_analysis[a]) for a in analyses]
        st = Store(store)
        executor = None
        if ray and any(force or st.find(m.key) is None for m in manifests):  # a finished run needs no cluster
            stack.enter_context(connect(ray, cpus=workers * (threads or 1) if workers else None))
            executor = RayExecutor(
                model_name, ds, model_fingerprint(model), workers, threads or 1, gpu=device != "cpu", retries=retries
            )
            stack.callback(executor.close)
        out = []
        for m in manifests:
            m.workers = executor.description if executor else ""
            on = executor.on(m) if executor else None
            out.append(run_job(model, ds, m, st, force, progress(m) if progress else None, executor=on))
    return out


def check_place(device: str | None, store: str | None) -> None:
    """Before anything loads: a CUDA device that this machine lacks, or a store path that is a file, is a
    ValueError saying so (not an error about the model or the disk minutes later)."""
    if device and device.startswith("cuda"):
        index = int(device.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has no such CUDA GPU that torch can use; try cpu.")
    root = Store(store).root
    if root.exists() and not root.is_dir():
        raise ValueError(f"The store {root} is a file, not a folder; give --store a folder (it is created if new).")


def split_options(analyses: Sequence[str], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{analysis: the options it has}; TypeError naming an option that none of the analyses has."""
    fields = {a: {f.name for f in UNITS[a].Options.fields()} for a in analyses}
    unused = [k for k in options if not any(k in f for f in fields.values())]
    if unused:
        valid = sorted(set().union(*fields.values()))
        raise TypeError(
            f"Unknown option{'s' if len(unused) > 1 else ''} {', '.join(map(repr, unused))} for "
            f"{', '.join(analyses)}: valid options are {', '.join(valid)}."
        )
    return {a: {k: v for k, v in options.items() if k in fields[a]} for a in analyses}
