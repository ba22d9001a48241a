"""Datasets: the bundled ones (real or seeded-synthetic, no download) and the user's own (data/sources.py), as
a data.dataset.Dataset.

`load_dataset(source, split)` returns a `Dataset` whose `.inputs` are what `model.prepare` takes:
PIL images for image datasets, strings for text datasets.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from data.dataset import SPLIT_SEED, Dataset, DatasetError
from data.sources import load_source

TEST_FRACTION = 0.2


def _bundled(name: str, split: str, n: int) -> dict:
    """The Dataset fields every bundled set fills the same way."""
    return {"names": [f"{name} #{i}" for i in range(n)], "source": name, "key": f"{name}/{split}"}


def _split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """Seeded stratified train/test split shared by training scripts and the app."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels)
    if split == "train":
        return np.sort(train)
    if split == "test":
        return np.sort(test)
    if split == "all":
        return idx
    raise ValueError(f"Unknown split {split!r}: use 'train', 'test' or 'all'.")


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits as float images in [0, 1] [N, 8, 8] and labels [N]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = _split_indices(d.target, split)
    return (d.images[idx] / 16.0).astype(np.float32), d.target[idx].astype(np.int64)


@lru_cache(maxsize=8)
def _digits(split: str) -> Dataset:
    images, labels = digits_arrays(split)
    pil = [Image.fromarray((img * 255).round().astype(np.uint8), mode="L") for img in images]
    return Dataset(
        "digits",
        split,
        "image",
        pil,
        labels,
        [str(i) for i in range(10)],
        captions=[f"digit {y}" for y in labels],
        **_bundled("digits", split, len(pil)),
    )


# Topics of the dataset descriptions that scikit-learn ships (sklearn/datasets/descr/*.rst):
# real English prose written by people, grouped by subject.
_PROSE_SOURCES = {
    "medicine": ["breast_cancer", "diabetes"],
    "nature": ["iris", "species_distributions", "covtype"],
    "chemistry": ["wine_data"],
    "images": ["digits", "lfw", "olivetti_faces"],
    "text and news": ["twenty_newsgroups", "rcv1"],
    "housing and networks": ["california_housing", "kddcup99"],
}


# a bibliography entry, author list, address or reference marker, not prose about the topic
_CITATION = re.compile(
    r"Proceedings|Journal|Transactions|Conference|\bpp\b|@|\[\d+\]|\]\s*$|\(\d{4}\)|\d+-\d+\]|^\w+, \"|"
    r"\b[A-Z][a-z]+, [A-Z]\.|\b(?:19|20)\d\d\]"
)


def _sentences(text: str) -> list[str]:
    """Split an RST description into plain prose sentences of 8 to 60 words (references, author lists,
    addresses and code left out)."""
    text = re.sub(r"\.\. _[^:]+:", " ", text)
    text = re.sub(r"[=\-~*|`_]{2,}", " ", text)
    text = re.sub(r":\w+:", " ", text)
    text = re.sub(r"\s+", " ", text)
    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        s = s.strip()
        words = s.split()
        code_like = any(mark in s for mark in (">>>", "::", "`", "http", "=", "..."))
        prose = 8 <= len(words) <= 60 and sum(c.isalpha() for c in s) > 0.7 * len(s)
        if prose and not code_like and not _CITATION.search(s):
            out.append(s)
    return out


@lru_cache(maxsize=8)
def _prose(split: str) -> Dataset:
    from importlib import resources

    descr = resources.files("sklearn.datasets") / "descr"
    texts, labels = [], []
    topics = list(_PROSE_SOURCES)
    for label, topic in enumerate(topics):
        for stem in _PROSE_SOURCES[topic]:
            for s in _sentences((descr / f"{stem}.rst").read_text(encoding="utf-8")):
                texts.append(s)
                labels.append(label)
    label_ids = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(len(texts))
    n_test = int(round(len(texts) * 0.5))
    chosen = (
        {"test": order[:n_test], "train": order[n_test:], "all": order}[split]
        if split in ("test", "train", "all")
        else None
    )
    if chosen is None:
        raise ValueError(f"Unknown split {split!r}: use 'train', 'test' or 'all'.")
    chosen = np.sort(chosen)
    return Dataset(
        "prose",
        split,
        "text",
        [texts[i] for i in chosen],
        label_ids[chosen],
        topics,
        captions=[texts[i][:60] for i in chosen],
        **_bundled("prose", split, len(chosen)),
    )


@lru_cache(maxsize=8)
def _shapes(split: str) -> Dataset:
    """Seeded synthetic shapes over cluttered backgrounds, with object masks (see data/shapes.py)."""
    from data.shapes import CLASS_NAMES, arrays

    images, labels, masks = arrays(split)
    pil = [Image.fromarray(img) for img in images]
    return Dataset(
        "shapes",
        split,
        "image",
        pil,
        labels,
        list(CLASS_NAMES),
        masks=masks,
        captions=[CLASS_NAMES[y] for y in labels],
        **_bundled("shapes", split, len(pil)),
    )


# name -> (modality, loader(split) -> Dataset)
DATASETS = {"digits": ("image", _digits), "prose": ("text", _prose), "shapes": ("image", _shapes)}


def list_datasets() -> dict[str, str]:
    """Names of the bundled datasets and their modality ("image" or "text")."""
    return {name: modality for name, (modality, _) in DATASETS.items()}


def load_dataset(
    source: str,
    split: str | None = None,
    *,
    masks: str | None = None,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
) -> Dataset:
    """A bundled dataset by name ("digits", "prose", "shapes"; split "train", "test" (default) or "all"), or
    the user's own data: an image folder, a table file (.csv/.tsv/.jsonl/.parquet), a `datasets` folder
    written by save_to_disk or a hub id in the local cache (see data/sources.py). User sources are lazy:
    images are decoded when indexed. masks: a folder of object masks beside an image folder; the column
    arguments name a table's or `datasets` dataset's columns (in any case) when the detected ones are not
    the right ones; label_column="" reads no labels.

    Raises DatasetError (a ValueError) with what was tried and what to do."""
    source = str(source).strip()
    if not source:
        raise DatasetError("No dataset given: pick a bundled dataset or type a folder, a file or a hub id.")
    if source in DATASETS:
        split = split or "test"
        if split not in ("train", "test", "all"):
            raise DatasetError(f"Unknown split {split!r} of {source}: use 'train', 'test' or 'all'.")
        return DATASETS[source][1](split)
    try:
        return load_source(source, split, masks, text_column, image_column, label_column)
    except DatasetError as e:
        if Path(source).expanduser().exists():
            raise
        raise DatasetError(f"{e} Bundled datasets: {', '.join(sorted(DATASETS))}.") from e
