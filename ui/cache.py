"""The only st.cache_* wrappers: models (resources) and arrays computed from them (data).

Arguments starting with an underscore are not hashed; the string keys before them identify the
model (name + label set) and the input, so a cached result is never served for another model.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from analysis.attention import head_statistics
from analysis.patterns import PatternSummary, summarise_patterns
from analysis.units import UNITS
from data import Dataset, InputError, load_dataset
from models import Batch, HookedModel, TextModel, TraceArrays, load_model
from runs.jobs import MemoryRun
from runs.store import Manifest

T = TypeVar("T")


@contextlib.contextmanager
def progress_bar(text: str, label: str) -> Iterator[Callable[..., None]]:
    """An st.progress bar shown while a computation runs (removed when it ends, also on error). Yields the
    `progress(fraction, message="")` callable the analyses take; the bar then reads "label: message", and once
    the rate is known (after a second and 2%), the time left at that rate."""
    bar = st.progress(0.0, text=text)
    start = time.monotonic()

    def progress(fraction: float, message: str = "") -> None:
        fraction = float(min(max(fraction, 0.0), 1.0))
        shown = f"{label}: {message}" if message else text
        elapsed = time.monotonic() - start
        if 0.02 <= fraction < 1 and elapsed >= 1:
            shown += f" · about {time_left(elapsed * (1 - fraction) / fraction)} left"
        bar.progress(fraction, text=shown)

    try:
        yield progress
    finally:
        bar.empty()


def time_left(seconds: float) -> str:
    """'8 s', '3 min' or '1.2 h': a duration as a progress bar says it."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{round(seconds / 60)} min" if seconds < 3600 else f"{seconds / 3600:.1f} h"


def memo(slot: str, key: tuple, build: Callable[[], T]) -> T:
    """build(), built again only when `key` (plain values: names, numbers) differs from the key this session last
    used for `slot`, else the value built then. One entry per slot, so a figure that a click does not change is
    not rebuilt, and nothing else is kept. The presenter layout is part of every key (it changes colour scales). A
    plotly figure is kept as a ui.figures.KeptFigure (its plotly dict made once, not on every run that shows it)."""
    from ui import state
    from ui.figures import KeptFigure

    key = (*key, bool(st.session_state.get(state.PRESENT)))
    store = st.session_state.setdefault(state.MEMO, {})
    if slot in store and store[slot][0] == key:
        return store[slot][1]
    value = build()
    if isinstance(value, go.Figure):
        value = KeptFigure(value)
    store[slot] = (key, value)
    return value


def model_key(name: str, labels: tuple[str, ...] | None) -> str:
    """Cache key of a model with (for prompt-head text models) its label set."""
    return f"{name}|{'/'.join(labels)}" if labels else name


@st.cache_resource(max_entries=6, show_spinner="Loading the model…")
def get_model(name: str, labels: tuple[str, ...] | None = None) -> HookedModel:
    """A loaded model; prompt-head text models get their own copy per label set."""
    return _with_labels(load_model(name), labels)


def _with_labels(m: HookedModel, labels: tuple[str, ...] | None) -> HookedModel:
    """m with its label set replaced by `labels` (prompt-head text models only; raises data.InputError)."""
    if not labels:
        return m
    if not isinstance(m, TextModel):
        raise InputError(f"{m.spec.name} has its own classifier; its labels cannot be edited.")
    m.set_labels(labels)
    return m


@st.cache_resource(max_entries=8, show_spinner="Listing the dataset…")
def get_dataset(source: str, split: str | None = None, columns: tuple[tuple[str, str], ...] = ()) -> Dataset:
    """data.load_dataset(source, split, **dict(columns)): a bundled name, or a folder, table file or hub id (lazy:
    images are decoded when a view needs them); columns: (argument, column) pairs such as ("label_column", "y")."""
    return load_dataset(source, split, **dict(columns))


@st.cache_data(max_entries=32, show_spinner="Running the model…")
def trace_arrays(key: str, input_key: str, _model: HookedModel, _batch: Batch) -> TraceArrays:
    """Captured activations of one prepared input (models.trace.TraceArrays)."""
    return _model.run(_batch, capture=True).to_numpy()


@st.cache_data(max_entries=32, show_spinner=False)
def input_head_statistics(
    key: str, input_key: str, _attn: np.ndarray, grid: tuple[int, int] | None, n_prefix: int, patch_size: int | None
) -> dict[str, np.ndarray]:
    """analysis.attention.head_statistics of one input's attention _attn [L, H, T, T] (values [1, L, H, ...])."""
    return head_statistics(torch.from_numpy(_attn[:, None]), grid, n_prefix, patch_size)


# -- dataset-level analyses: a stored run or a sample run, read through the same code ----------------------
def sample_run(
    analysis: str, key: str, data_key: str, n: int, options: tuple, model: HookedModel, dataset: Dataset
) -> MemoryRun:
    """runs.sample: the in-memory run of `analysis` (an analysis.units name) over the dataset's sample of n with
    `options` ((name, value) pairs): the same arrays and tables as the stored run of the same parameters, cached
    by the model key, the dataset key, n and the options. Options the unit refuses (an unknown name, a value out
    of range or not for this model) are one error naming the option, and the view stops there."""
    from runs.plan import manifest_for

    try:
        manifest = manifest_for(model, key, dataset, analysis, n, **dict(options))
    except (TypeError, ValueError) as e:
        st.error(f"{UNITS[analysis].name.capitalize()}: {e}")
        st.stop()
    return _sample_run(analysis, key, data_key, n, options, manifest, model, dataset)


@st.cache_data(max_entries=16, show_spinner=False)
def _sample_run(
    analysis: str,
    key: str,
    data_key: str,
    n: int,
    options: tuple,
    _manifest: Manifest,
    _model: HookedModel,
    _dataset: Dataset,
) -> MemoryRun:
    """sample_run's computation, with a progress bar (nothing is cached from a run that raised)."""
    from runs.jobs import run_in_memory

    label = UNITS[analysis].name.capitalize()
    start = time.monotonic()
    with progress_bar(f"{label} of {_manifest.n_inputs} inputs of {_dataset.name}…", label) as bar:
        run = run_in_memory(
            _model, _dataset, _manifest, lambda done, total: bar(done / max(total, 1), f"{done}/{total} inputs")
        )
    _record((analysis, key, data_key, options), (time.monotonic() - start) / max(_manifest.n_inputs, 1))
    return run


@st.cache_resource(show_spinner=False)
def _timings() -> tuple[dict, threading.Lock]:
    """{(analysis, model key, dataset key, options): seconds per input of the last sample run of these settings, and
    ("start-up", model key, dataset key): the last background run's start-up}, shared by every session of this
    server (ui.estimate reads it), with its lock."""
    return {}, threading.Lock()


def _record(key: tuple, seconds: float) -> None:
    timings, lock = _timings()
    with lock:
        timings[key] = seconds


def _measured(key: tuple) -> float | None:
    timings, lock = _timings()
    with lock:
        return timings.get(key)


def measured_rate(analysis: str, key: str, data_key: str, options: tuple) -> float | None:
    """Seconds per input of the last sample run of these settings on this server, or None."""
    return _measured((analysis, key, data_key, options))


def record_startup(key: str, data_key: str, seconds: float) -> None:
    """Remember how long a background run of this model and dataset took to start (to load them, from its launch to
    its run's creation), for every session of this server (measured_startup)."""
    _record(("start-up", key, data_key), seconds)


def measured_startup(key: str, data_key: str) -> float | None:
    """Seconds the last background run of this model and dataset took to start on this server, or None."""
    return _measured(("start-up", key, data_key))


@st.cache_data(max_entries=8, show_spinner="Reading the stored run…")
def stored_run(run_root: str, updated: float) -> MemoryRun:
    """A finished stored run read into memory (its manifest, arrays and tables), keyed by its folder and last
    update: a view reads it as it reads a sample_run."""
    from runs import Run

    run = Run(Path(run_root))
    arrays = {k: np.array(v) for k, v in run.arrays().items()}  # in memory, writable
    return MemoryRun(run.manifest, arrays, run.tables())


# -- class-embedding view ----------------------------------------------------------------------------
HOVER_THUMBNAILS = 3000  # above this many points the hover shows file names instead of thumbnails


@st.cache_resource(max_entries=2, show_spinner="Building the random-init baseline (same config, fresh weights)…")
def get_random_init_model(name: str, labels: tuple[str, ...] | None = None) -> HookedModel:
    """The model `name` with freshly initialised weights (seeded), with the same label set."""
    return _with_labels(load_model(name, random_init=True), labels)


@st.cache_data(max_entries=8, show_spinner="Scoring separability per layer…")
def embedding_separability(key: str, data_key: str, n: int, _embeddings: np.ndarray, _labels: np.ndarray):
    """analysis.embedding.separability of a cached sample (silhouette, kNN and probe accuracy per layer)."""
    from analysis.embedding import separability

    return separability(_embeddings, _labels)


@st.cache_data(max_entries=64, show_spinner=False)
def embedding_map(key: str, data_key: str, n: int, method: str, layer: int, seed: int, _embeddings: np.ndarray):
    """analysis.embedding.project of a cached sample: PCA of all layers (layer -1), or UMAP / t-SNE of one
    layer (cached per layer, so moving back to a layer is instant)."""
    from analysis.embedding import project

    x = _embeddings if layer < 0 else _embeddings[layer : layer + 1]
    slow = " (UMAP compiles its numba code the first time in a process: ~15 s)" if method == "umap" else ""
    with progress_bar(f"{method.upper()} of {x.shape[1]} points{slow}…", f"{method.upper()}{slow}") as progress:
        return project(x, method, seed, progress=progress)


@st.cache_data(max_entries=8, show_spinner=False)
def sample_hover_texts(data_key: str, n: int, _rows: np.ndarray, _dataset: Dataset) -> list[str]:
    """The hover label of each analysed input (dataset rows _rows, identified by data_key and n): a shaded
    thumbnail of an image, the wrapped text of a text, or the file name above HOVER_THUMBNAILS inputs (decoding
    every image of a large stored run costs too much)."""
    from ui.embedding_figures import text_hover, thumbnail_text

    ds = _dataset
    if len(_rows) > HOVER_THUMBNAILS:
        return [ds.names[i] for i in _rows]
    inputs = [ds.inputs[i] for i in _rows]
    if ds.modality == "image":
        return [
            thumbnail_text(np.asarray(img.convert("L"), dtype=np.float32) / 255.0, min(10, *img.size)) for img in inputs
        ]
    return [text_hover(t) for t in inputs]


# -- spectral view -----------------------------------------------------------------------------------
LENGTH_TEXTS = 1000  # texts joined into the stream that length collapse cuts into windows


@st.cache_data(max_entries=32, show_spinner="Computing the spectral metrics…")
def spectral_metrics(
    key: str, input_key: str, temps: tuple[float, ...], head_spectra: bool, _model: HookedModel, _batch: Batch
):
    """analysis.spectral.spectral_metrics of a prepared batch under per-layer temperatures `temps`; with
    head_spectra the attention responses with eigenvalues, else the layer metrics and Fourier profiles only."""
    from analysis.spectral import spectral_metrics as metrics

    return metrics(_model, _batch, temperature=list(temps), eig=head_spectra, attention=head_spectra)


@st.cache_data(max_entries=16, show_spinner=False)
def spectral_whatif(
    key: str,
    input_key: str,
    temps: tuple[float, ...],
    variants: tuple[str, ...],
    norm: str,
    _model: HookedModel,
    _batch: Batch,
) -> dict[str, np.ndarray]:
    """analysis.spectral.rank_collapse_whatif: rank-collapse ratio [L+1, B] per what-if forward under `norm`."""
    from analysis.spectral import rank_collapse_whatif

    with progress_bar("Running the what-if forwards…", "Rank collapse") as progress:
        return rank_collapse_whatif(_model, _batch, variants, temperature=list(temps), norm=norm, progress=progress)


@st.cache_data(max_entries=16, show_spinner=False)
def spectral_sweep(
    key: str,
    input_key: str,
    taus: tuple[float, ...],
    layers: tuple[int, ...] | None,
    _model: HookedModel,
    _batch: Batch,
) -> dict[str, np.ndarray]:
    """analysis.spectral.temperature_sweep over `taus` at `layers` (all when None)."""
    from analysis.spectral import temperature_sweep

    with progress_bar("Sweeping the attention temperature…", "Sweeping the temperature") as progress:
        return temperature_sweep(_model, _batch, taus, layers, progress=progress)


@st.cache_data(max_entries=16, show_spinner="Measuring length collapse…")
def spectral_length_collapse(
    key: str,
    data_key: str,
    tau: float,
    layers: tuple[int, ...] | None,
    lengths: tuple[int, ...],
    _model: HookedModel,
    _dataset: Dataset,
):
    """analysis.spectral.length_collapse on the texts of a dataset's sample of LENGTH_TEXTS at one temperature."""
    from analysis.spectral import length_collapse

    return length_collapse(_model, _dataset.sample(LENGTH_TEXTS).inputs, lengths, [tau], n_windows=6, layers=layers)


@st.cache_data(max_entries=16, show_spinner="Recording the MLP activations…")
def spectral_mlp_activation(key: str, input_key: str, _model: HookedModel, _batch: Batch) -> dict[str, np.ndarray]:
    """analysis.spectral.mlp_activation_spectrum of one prepared input."""
    from analysis.spectral import mlp_activation_spectrum

    return mlp_activation_spectrum(_model, _batch)


# -- head-importance view ------------------------------------------------------------------------------
@st.cache_resource(max_entries=2, show_spinner="Preparing the sample…")
def importance_sample(key: str, data_key: str, n: int, _model: HookedModel, _dataset: Dataset):
    """analysis.importance.Sample of the dataset's sample of n inputs (labels mapped to the model's), decoded and
    prepared once for the scores, the partial-pruning clicks and the curves."""
    from analysis.importance import make_sample

    sub = _dataset.sample(n)
    return make_sample(_model, sub.inputs, sub.labels.tolist(), sub.class_names)


@st.cache_data(max_entries=64, show_spinner="Turning the head's gate down from 1 to 0…")
def importance_partial(
    key: str,
    data_key: str,
    n: int,
    layer: int,
    head: int,
    metrics: tuple[str, ...],
    ablation: str,
    _model: HookedModel,
    _dataset: Dataset,
):
    """analysis.pruning.partial_pruning of one head over the dataset's sample of n inputs (gate 1 -> 0, towards
    the `ablation` kind's value over that sample)."""
    from analysis.pruning import partial_pruning

    sample = importance_sample(key, data_key, n, _model, _dataset)
    return partial_pruning(_model, sample, layer, head, metrics=metrics, ablation=ablation)


@st.cache_data(max_entries=16, show_spinner=False)
def importance_curves(
    key: str,
    data_key: str,
    n: int,
    run_key: str,
    metrics: tuple[str, ...],
    iterative: bool,
    seed: int,
    ablation: str,
    _scores: dict[str, np.ndarray],
    _model: HookedModel,
    _dataset: Dataset,
):
    """analysis.pruning.pruning_curves over the dataset's sample of n inputs, one curve per score in `_scores`
    ({name: [L, H]}, the scores of the run `run_key`: a sample or a stored run, which may cover more inputs) and a
    seeded random order."""
    from analysis.pruning import pruning_curves

    orders = {name: (name if iterative else s) for name, s in _scores.items()} | {"random": "random"}
    how = "iteratively, re-scoring between steps" if iterative else "cumulatively"
    with progress_bar(f"Pruning heads {how}…", f"Pruning heads {how}") as progress:
        return pruning_curves(
            _model,
            importance_sample(key, data_key, n, _model, _dataset),
            orders,
            iterative,
            metrics=metrics,
            seed=seed,
            progress=progress,
            ablation=ablation,
        )


# -- relevance view ------------------------------------------------------------------------------------
@st.cache_data(max_entries=128, show_spinner=False)
def relevance_maps(
    key: str,
    input_key: str,
    method: str,
    classes: tuple[int, ...] | None,
    read_at: str,
    _model: HookedModel,
    _batch: Batch,
) -> np.ndarray:
    """analysis.relevance.explain of one prepared input for one method: [len(classes), T'] raw relevance for each
    of `classes` in one batched pass, or [1, T'] for the predicted class (classes None). read_at: where a text
    model's LRP relevance is read (analysis.relevance.READ_AT)."""
    from analysis.relevance import explain
    from analysis.units.relevance import method_options

    options = method_options(method, read_at)
    if classes is None:
        return explain(_model, _batch, method, **options)
    return explain(_model, _batch.repeat(len(classes)), method, target=list(classes), **options)


@st.cache_data(max_entries=32, show_spinner="Propagating AttnLRP relevance for every class…")
def relevance_conservation(
    key: str, input_key: str, read_at: str, classes: tuple[int, ...], _model: HookedModel, _batch: Batch
):
    """AttnLRP total input relevance vs the logit, for each of `classes` of one input (one batched pass):
    DataFrame (class, name, logit, total_relevance = what the maps show) and where the rest goes
    (analysis.conservation.conservation_split's other parts: one column each)."""
    import pandas as pd

    from analysis.conservation import SPLIT_PARTS, conservation_split

    split = conservation_split(_model, _batch.repeat(len(classes)), list(classes), read_at)
    arrays = {k: v.detach().cpu().numpy() for k, v in split.items()}
    parts = {k: arrays[k] for k in SPLIT_PARTS if k in arrays and k != "maps"}
    return pd.DataFrame(
        {"class": arrays["target"], "name": [_model.spec.class_names[c] for c in classes], "logit": arrays["logit"]}
        | {"total_relevance": arrays["maps"]}
        | parts
    )


@st.cache_data(max_entries=16, show_spinner=False)
def attention_patterns(
    key: str, data_key: str, n: int, k: int, embedding: str, clustering: str, projection: str, _vectors: np.ndarray
) -> PatternSummary:
    """analysis.patterns.summarise_patterns of a cached sample's pattern vectors."""
    slow = " (UMAP compiles its numba code the first time: ~15 s)" if projection == "umap" else ""
    with progress_bar(f"Embedding {int(np.prod(_vectors.shape[:3]))} patterns{slow}…", f"Patterns{slow}") as progress:
        return summarise_patterns(
            _vectors, k, embedding, clustering=clustering, projection=projection, progress=progress
        )
