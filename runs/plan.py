"""What a run is and how one chunk of it is computed: the manifest of a unit over a dataset, its shards, and
the per-input arrays of a shard. runs.jobs runs the shards into the store or in memory; runs.cluster computes
them on Ray workers. The same shard gives the same arrays wherever it is computed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.units import Inputs, RunOptions, Unit, get_unit
from data import Dataset, match_labels
from models import HookedModel, model_fingerprint
from runs.store import Manifest, run_key

CHUNK_INPUTS = 64  # inputs per stored chunk (rounded up to whole batches, so chunks keep the batch composition)
RUN_PARAMS = ("n",)  # manifest params that are not options of the unit


def run_rows(ds: Dataset, n: int | None) -> np.ndarray:
    """The dataset rows a run covers: all of them (n None), else the dataset's sample of n (Dataset.sample_rows)."""
    return np.arange(len(ds)) if n is None or n >= len(ds) else ds.sample_rows(n)


def resolve_options(unit: Unit, model: HookedModel, options: RunOptions | dict[str, Any] | None = None) -> RunOptions:
    """The unit's options (an Options, or a dict of given values checked by Options.make) with the model-dependent
    defaults filled in (Unit.resolve)."""
    if not isinstance(options, RunOptions):
        options = unit.Options.make(**(options or {}))
    return unit.resolve(model, options)


def manifest_for(
    model: HookedModel,
    model_name: str,
    ds: Dataset,
    analysis: str,
    n: int | None,
    chunk_size: int | None = None,
    **options: Any,
) -> Manifest:
    """What a run of `analysis` over `ds` (its sample of n, or all of it) with these options would be; its key
    fixes the model, the data and every option. Unknown or bad options raise TypeError / ValueError."""
    unit = get_unit(analysis)
    resolved = resolve_options(unit, model, options)
    rows = run_rows(ds, n)
    params = resolved.params() | {"n": int(len(rows))}
    data = ds.fingerprint()
    batch = resolved.batch_size
    return Manifest(
        key=run_key(model_fingerprint(model), data, analysis, params),
        analysis=analysis,
        model=model_name,
        model_fingerprint=model_fingerprint(model),
        dataset=ds.source,
        dataset_key=data,
        split=ds.split,
        params=params,
        n_inputs=len(rows),
        chunk_size=int(chunk_size or batch * -(-CHUNK_INPUTS // batch)),
    )


def options_of(manifest: Manifest) -> RunOptions:
    """The unit options a manifest records (already resolved for its model)."""
    unit = get_unit(manifest.analysis)
    return unit.Options.make(**{k: v for k, v in manifest.params.items() if k not in RUN_PARAMS})


@dataclass(frozen=True)
class Shard:
    """One chunk of a run to compute: start (its first position in the run), rows [n] dataset rows, labels [n]
    model class indices (-1 = unknown). Ray workers get shards: indices, never decoded inputs."""

    start: int
    rows: np.ndarray
    labels: np.ndarray

    def describe(self, ds: Dataset) -> str:
        """'inputs 64-127 (first: cat/001.jpg)' for error messages."""
        first = ds.names[int(self.rows[0])] if len(self.rows) else ""
        return f"inputs {self.start}-{self.start + len(self.rows) - 1} (first: {first})"


def shards(ds: Dataset, manifest: Manifest, class_names, done: Collection[int] = ()) -> list[Shard]:
    """The run's chunks not in `done`, as shards (the run's rows and their labels in the model's classes)."""
    rows = run_rows(ds, manifest.params["n"])
    labels = match_labels(class_names, ds.class_names).to_model(np.asarray(ds.labels)[rows])
    size = manifest.chunk_size
    return [Shard(s, rows[s : s + size], labels[s : s + size]) for s in manifest.chunk_starts() if s not in done]


def compute_shard(model: HookedModel, ds: Dataset, manifest: Manifest, shard: Shard) -> dict[str, np.ndarray]:
    """One chunk's per-input arrays [n, ...] (the unit's), with its dataset rows and model labels. An input that
    fails to decode (a truncated file) is left out of the arrays and added to ds.problems; the chunk goes on."""
    rows, decoded = ds.decoded(shard.rows)
    labels = shard.labels[np.isin(shard.rows, rows)]
    found = {"row": rows, "label": labels}
    if not len(rows):
        return found
    arrays = get_unit(manifest.analysis).per_input(model, Inputs(decoded, shard.start), labels, options_of(manifest))
    return arrays | found


def skipped_inputs(ds: Dataset, manifest: Manifest, rows: np.ndarray) -> list[list[str]]:
    """[name, reason] of the run's inputs that its arrays' `rows` leave out: they failed to decode (on this
    machine or a Ray worker; here they are tried again, which adds them to ds.problems)."""
    missing = np.setdiff1d(run_rows(ds, manifest.params["n"]), rows)
    if not len(missing):
        return []
    ds.decoded(missing)
    names = {ds.names[int(r)] for r in missing}
    return [[name, why] for name, why in ds.problems if name in names]


def run_tables(model: HookedModel, ds: Dataset, manifest: Manifest, arrays: dict[str, np.ndarray]):
    """The tables of a finished run: "inputs" (row, file name, label, label name) and the unit's summaries."""
    label = np.asarray(arrays["label"])
    inputs = pd.DataFrame(
        {
            "row": arrays["row"],
            "name": np.asarray(ds.names)[np.asarray(arrays["row"])],
            "label": label,
            "label_name": [model.spec.class_names[c] if c >= 0 else "" for c in label],
        }
    )
    unit = get_unit(manifest.analysis)
    return {"inputs": inputs} | unit.summarise(arrays, options_of(manifest), model.spec)
