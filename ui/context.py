"""The page context: the model, dataset and input the sidebar chose for this run, and the small-sample warning."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from data import Dataset, LabelMatch
from models import HookedModel, TraceArrays
from models.trace import Batch
from ui import cache

HEAD_TYPE_INPUTS = 32  # the head pickers' pattern-type badge is read over this many inputs (the Circuits default)
SMALL_SAMPLE = 30  # below this many inputs (or with one class only) a view says its dataset scores are noisy


@dataclass
class PageContext:
    """The current model, dataset and input, as chosen in the sidebar.

    dataset: the chosen dataset split, which every dataset-level view samples; match: how its classes map
    to the model's; raw: the input as given (PIL image or string); label: its true class index (into the
    model's classes) when known; input_key: a string that identifies the input for caching; batch: the
    prepared input (B = 1)."""

    model: HookedModel
    model_name: str
    model_key: str
    dataset: Dataset
    match: LabelMatch
    raw: object
    label: int | None
    input_key: str
    batch: Batch
    caption: str
    notes: list[str] = field(default_factory=list)

    def head_types(self) -> list[str]:
        """Every head's strongest pattern type and its score over the dataset's sample of HEAD_TYPE_INPUTS, as a
        short badge ("prev 0.98"; analysis.head_types), layer by layer and head by head."""
        from ui.circuits_figures import badges

        key, data, n = self.model_key, self.dataset.key, HEAD_TYPE_INPUTS
        run = cache.sample_run("head_types", key, data, n, (), self.model, self.dataset)
        return cache.memo("head_types", (key, data), lambda: badges(run.tables()["strongest"]))

    def head_type(self, layer: int, head: int) -> str:
        """One head's badge (head_types)."""
        return self.head_types()[layer * self.model.spec.n_heads + head]

    def sample_note(self, n: int, what: str = "") -> str:
        """One line for a view: which dataset and how many inputs it used, and the label-mapping status."""
        ds = self.dataset
        rows = ds.sample_rows(n)
        known = int((self.match.to_model(ds.labels[rows]) >= 0).sum())
        labels = (
            "unlabelled: targets are the model's predictions"
            if not ds.labelled
            else f"every input has a label {self.model.spec.name} knows"
            if known == len(rows)
            else f"{known} of {len(rows)} with a label {self.model.spec.name} knows; the others are scored against "
            "the model's own prediction"
        )
        drawn = f"all {len(ds)}" if len(rows) == len(ds) else f"a seeded sample of {len(rows)} of {len(ds)}"
        stratified = ", stratified by class" if ds.labelled and len(rows) < len(ds) else ""
        return f"{what or 'Inputs'}: {drawn} in {ds.name} ({ds.split}){stratified} · {labels}."

    def warn_if_small(self, n: int, what: str) -> None:
        """warn_small_sample for the dataset's sample of n inputs (their labels mapped to the model's classes)."""
        ds = self.dataset
        labels = self.match.to_model(ds.labels[ds.sample_rows(n)]) if ds.labelled else None
        warn_small_sample(min(n, len(ds)), labels, self.model.spec.n_classes, what)

    def trace(self) -> TraceArrays:
        """Cached activations of the current input (see ui.cache.trace_arrays)."""
        return cache.trace_arrays(self.model_key, self.input_key, self.model, self.batch)


def images_of(batch: Batch) -> np.ndarray:
    """batch.images [B, S, S, C], which every batch an image model prepared has."""
    if batch.images is None:
        raise ValueError("The batch holds texts, not images.")
    return batch.images


def tokens_of(batch: Batch) -> list[list[str]]:
    """batch.tokens (per input, its token strings), which every batch a text model prepared has."""
    if batch.tokens is None:
        raise ValueError("The batch holds images, not texts.")
    return batch.tokens


def warn_small_sample(n: int, labels: np.ndarray | None, n_classes: int, what: str) -> None:
    """An st.warning when n inputs are too few for `what` (e.g. "these scores") to mean much: fewer than
    SMALL_SAMPLE, or labels [n] (model class indices, -1 = unknown; None = unlabelled) covering one class. Labels
    of which the model knows none count as none (the view says that no class matches)."""
    if labels is not None and not (labels >= 0).any():
        labels = None
    covered = 0 if labels is None else int(np.unique(labels[labels >= 0]).size)
    one_class = labels is not None and covered < min(2, n_classes)
    if n >= SMALL_SAMPLE and not one_class:
        return
    classes = "" if labels is None else f" covering {covered} of {n_classes} classes"
    st.warning(
        f"{n} inputs{classes} are too few for {what} to mean much: one input moves an accuracy by "
        f"{100 / max(n, 1):.0f} points"
        + (", and what matters for the missing classes is not measured" if one_class or 0 < covered < n_classes else "")
        + f". Raise the sample size (at least {SMALL_SAMPLE} inputs from several classes)."
    )
