"""The Dataset type: inputs (a list, or a LazySequence that decodes an image when it is read), labels, class
names, masks and where they came from; its seeded stratified samples and its fingerprint. The bundled sets are in
data/datasets.py, the user's own sources in data/sources.py."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from PIL import Image

SPLIT_SEED = 0
DECODE_THREADS = max(2, min(8, os.cpu_count() or 1))
_BUNDLED_FINGERPRINTS: dict[str, str] = {}  # a bundled set's key -> its content hash (fixed per process)


class DatasetError(ValueError):
    """A dataset source that cannot be used, or an input of it that cannot be decoded; the message says what was
    tried and what to do."""


class LazySequence(Sequence):
    """Items made on access: item i is `load(keys[i])`. A slice or a list/array of indices gives another view
    (nothing is loaded); an int index loads that one item; iterating (`list(view)`, as a batch does) loads the
    items on DECODE_THREADS threads (Pillow decodes and resizes without holding the GIL), in order."""

    def __init__(self, load: Callable, keys: Sequence):
        self.load, self.keys = load, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self):
        if len(self.keys) < 2:
            return (self.load(k) for k in self.keys)
        return decode_pool().map(self.load, self.keys)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazySequence(self.load, self.keys[i])
        if isinstance(i, (list, tuple, np.ndarray)):
            return LazySequence(self.load, [self.keys[int(j)] for j in i])
        return self.load(self.keys[int(i)])

    def load_each(self) -> list:
        """Every item (loaded as iterating does), or the DatasetError its load raised in its place."""

        def attempt(key):
            try:
                return self.load(key)
            except DatasetError as e:
                return e

        return list(decode_pool().map(attempt, self.keys))


@lru_cache(maxsize=1)
def decode_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="headscope-decode")


@dataclass
class Dataset:
    """A collection of inputs, with labels when known.

    inputs: a sequence of PIL images or strings (a list, or a lazy `data.dataset.LazySequence` that decodes
    an image when it is indexed); labels: int array [N] of indices into class_names, -1 = no label;
    class_names: C names ([] for an unlabelled dataset); masks: optional object masks, a bool array
    [N, H, W] or a lazy sequence of bool [H_i, W_i] (each in its image's own size); captions / names: [N]
    a short description / the file name or row of each input; problems: (path, reason) of every file or
    row that was skipped (names escaped: see data.sources.shown); source: the bundled name, path or hub id; splits:
    the source's splits; key: identifies source, split and content (file list, sizes, mtimes) for caching;
    bundled: one of the bundled sets, held in memory (a user source is read lazily and keyed by its files);
    reading: one line on how a user source was read (layout, encoding, columns); columns: a table's or `datasets`
    dataset's columns, and chosen: the ones used ({"input": ..., "label": ...}); load_args: the column and mask
    arguments it was opened with (to open it again elsewhere, e.g. on a Ray worker)."""

    name: str
    split: str
    modality: str
    inputs: Sequence
    labels: np.ndarray
    class_names: list[str]
    masks: Sequence | np.ndarray | None = None
    captions: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    source: str = ""
    splits: tuple[str, ...] = ("train", "test", "all")
    key: str = ""
    bundled: bool = True
    reading: str = ""
    columns: tuple[str, ...] = ()
    chosen: dict[str, str | None] = field(default_factory=dict)
    load_args: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.inputs)

    @property
    def labelled(self) -> bool:
        """At least one input has a label."""
        return bool(self.class_names) and bool((np.asarray(self.labels) >= 0).any())

    def fingerprint(self) -> str:
        """What identifies the content: a user source's key (file list, sizes, mtimes), or a hash of a bundled set's
        inputs and labels (computed once per bundled set and process: the views ask on every run)."""
        if not self.bundled:
            return self.key
        if self.key in _BUNDLED_FINGERPRINTS:
            return _BUNDLED_FINGERPRINTS[self.key]
        h = hashlib.sha256(self.key.encode())  # in memory, so hash what is there
        for x in self.inputs:
            h.update(x.encode() if isinstance(x, str) else np.asarray(x).tobytes())
        h.update(np.asarray(self.labels).tobytes())
        fingerprint = f"{self.key}|{h.hexdigest()[:16]}"
        if self.key:  # a key names the content; a set made without one is hashed every time
            _BUNDLED_FINGERPRINTS[self.key] = fingerprint
        return fingerprint

    def subset(self, idx) -> Dataset:
        """The rows `idx` (indices into this dataset) as a new Dataset (lazy inputs stay lazy)."""
        idx = [int(i) for i in idx]
        inputs = self.inputs[idx] if isinstance(self.inputs, LazySequence) else [self.inputs[i] for i in idx]
        masks = (
            None
            if self.masks is None
            else (
                self.masks[idx] if isinstance(self.masks, (np.ndarray, LazySequence)) else [self.masks[i] for i in idx]
            )
        )
        return replace(
            self,
            inputs=inputs,
            labels=np.asarray(self.labels)[idx],
            masks=masks,
            captions=[self.captions[i] for i in idx] if self.captions else [],
            names=[self.names[i] for i in idx] if self.names else [],
            key=f"{self.key}|rows{hashlib.sha1(np.asarray(idx).tobytes()).hexdigest()[:12]}",
        )

    def decoded(self, idx) -> tuple[np.ndarray, Dataset]:
        """The rows idx that decode, and their subset with the inputs decoded (once, on the decode threads). An input
        that fails to decode (a truncated file, say) is left out and added to `problems` (once)."""
        sub = self.subset(idx)
        if not isinstance(sub.inputs, LazySequence):
            return np.asarray(idx, dtype=np.int64), sub
        items = sub.inputs.load_each()
        ok = [i for i, x in enumerate(items) if not isinstance(x, DatasetError)]
        for i, x in enumerate(items):
            if isinstance(x, DatasetError) and (sub.names[i], str(x)) not in self.problems:
                self.problems.append((sub.names[i], str(x)))
        kept = sub.subset(ok) if len(ok) < len(items) else sub
        return np.asarray(idx, dtype=np.int64)[ok], replace(kept, inputs=[items[i] for i in ok])

    def sample_order(self, seed: int = SPLIT_SEED) -> np.ndarray:
        """[N] every row once, in the order samples take them: seeded, and stratified by label (one row of each
        class in turn, the classes and each class's rows in a seeded random order; unlabelled rows form one
        more group), so the first n rows cover as many classes as n allows, in proportion."""
        rng = np.random.default_rng(seed)
        shuffled = rng.permutation(len(self))
        labels = np.asarray(self.labels)[shuffled]
        groups, group_of = np.unique(labels, return_inverse=True)
        group_rank = rng.permutation(len(groups))[group_of]  # each class's turn within a round
        by_group = np.argsort(group_of, kind="stable")
        sizes = np.bincount(group_of)
        within = np.empty(len(self), dtype=np.int64)  # the row's round: its rank among its class's rows
        within[by_group] = np.arange(len(self)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return shuffled[np.lexsort((group_rank, within))]

    def sample_rows(self, n: int, seed: int = SPLIT_SEED) -> np.ndarray:
        """[min(n, N)] the rows the dataset-level views analyse, in file order: the first n of `sample_order`
        (stratified across classes and seeded; the rows of a smaller sample are among those of a larger one)."""
        return np.sort(self.sample_order(seed)[: min(int(n), len(self))])

    def sample(self, n: int) -> Dataset:
        """The subset at `sample_rows(n)`."""
        return self.subset(self.sample_rows(n))

    def mask_batch(self, idx, size: int) -> np.ndarray:
        """bool [b, size, size]: the masks of rows idx resized (nearest) to the model's square input, the
        same resize the image gets in `model.prepare`."""
        out = []
        for i in idx:
            assert self.masks is not None, "mask_batch needs a dataset with masks"
            m = np.asarray(self.masks[int(i)]).astype(bool)
            if m.shape != (size, size):
                small = Image.fromarray(m.astype(np.uint8) * 255).resize((size, size), Image.Resampling.NEAREST)
                m = np.asarray(small) > 127
            out.append(m)
        return np.stack(out)
