"""The only st.cache_* wrappers: models (resources) and arrays computed from them (data).

Arguments starting with an underscore are not hashed; the string keys before them identify the
model (name + label set) and the input, so a cached result is never served for another model.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.evaluation import predict
from data import load_dataset
from models import HookedModel, load_model


def model_key(name: str, labels: tuple[str, ...] | None) -> str:
    """Cache key of a model with (for prompt-head text models) its label set."""
    return f"{name}|{'/'.join(labels)}" if labels else name


@st.cache_resource(max_entries=6, show_spinner="Loading the model…")
def get_model(name: str, labels: tuple[str, ...] | None = None) -> HookedModel:
    """A loaded model; prompt-head text models get their own copy per label set."""
    m = load_model(name)
    if labels:
        m.set_labels(labels)
    return m


@st.cache_resource(max_entries=8, show_spinner="Loading the dataset…")
def get_dataset(name: str, split: str = "test"):
    return load_dataset(name, split)


@st.cache_data(max_entries=16, show_spinner=False)
def dataset_probs(key: str, dataset: str, split: str, _model: HookedModel) -> np.ndarray:
    """[N, C] class probabilities of the model `key` on a bundled dataset split."""
    bar = st.progress(0.0, text=f"Evaluating on {dataset} ({split})…")
    probs = predict(_model, get_dataset(dataset, split).inputs, progress=lambda f, msg: bar.progress(f, text=msg))
    bar.empty()
    return probs


@st.cache_data(max_entries=32, show_spinner="Running the model…")
def trace_arrays(key: str, input_key: str, _model: HookedModel, _batch) -> dict[str, np.ndarray]:
    """Captured activations of one prepared input as numpy arrays (shapes as in models/trace.py)."""
    tr = _model.run(_batch, capture=True)
    return {
        "logits": tr.logits.float().cpu().numpy(),
        "probs": tr.logits.float().softmax(-1).cpu().numpy(),
        "attentions": tr.attentions.float().cpu().numpy(),
        "resid": tr.resid.float().cpu().numpy(),
        "attn_out": tr.attn_out.float().cpu().numpy(),
        "mlp_out": tr.mlp_out.float().cpu().numpy(),
    }


# -- class-embedding view ----------------------------------------------------------------------------
@st.cache_resource(max_entries=2, show_spinner="Building the random-init baseline (same config, fresh weights)…")
def get_random_init_model(name: str, labels: tuple[str, ...] | None = None) -> HookedModel:
    """The model `name` with freshly initialised weights (seeded), with the same label set."""
    m = load_model(name, random_init=True)
    if labels:
        m.set_labels(labels)
    return m


@st.cache_data(max_entries=8, show_spinner=False)
def embedding_sample(key: str, dataset: str, split: str, n: int, where: str, _model: HookedModel):
    """analysis.embedding.embed_sample over the first n inputs of a dataset split whose label is one of the
    model's classes (labels mapped to the model's class indices); returns (SampleEmbedding, dataset rows)."""
    from analysis.embedding import align_labels, embed_sample

    ds = get_dataset(dataset, split)
    rows, labels = align_labels(ds.class_names, ds.labels, _model.spec.class_names)
    rows, labels = rows[:n], labels[:n]
    bar = st.progress(0.0, text=f"Projecting {len(rows)} inputs of {dataset} through the classifier…")
    sample = embed_sample(_model, [ds.inputs[i] for i in rows], labels,
                          where=where, progress=lambda f, msg: bar.progress(f, text=f"Projecting: {msg}"))
    bar.empty()
    return sample, rows


@st.cache_data(max_entries=8, show_spinner="Scoring separability per layer…")
def embedding_separability(key: str, dataset: str, split: str, n: int, _embeddings: np.ndarray, _labels: np.ndarray):
    """analysis.embedding.separability of a cached sample (silhouette, kNN and probe accuracy per layer)."""
    from analysis.embedding import separability

    return separability(_embeddings, _labels)


@st.cache_data(max_entries=64, show_spinner=False)
def embedding_map(key: str, dataset: str, split: str, n: int, method: str, layer: int, seed: int,
                  _embeddings: np.ndarray):
    """analysis.embedding.project of a cached sample: PCA of all layers (layer -1), or UMAP / t-SNE of one
    layer (cached per layer, so moving back to a layer is instant)."""
    from analysis.embedding import project

    x = _embeddings if layer < 0 else _embeddings[layer:layer + 1]
    slow = " (UMAP compiles its numba code the first time in a process: ~15 s)" if method == "umap" else ""
    bar = st.progress(0.0, text=f"{method.upper()} of {x.shape[1]} points{slow}…")
    result = project(x, method, seed, progress=lambda f, msg: bar.progress(f, text=f"{msg}{slow}…"))
    bar.empty()
    return result
