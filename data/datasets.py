"""Bundled datasets. Every dataset is real or seeded-synthetic and needs no download.

`load_dataset(name, split)` returns a `Dataset` whose `.inputs` are what `model.prepare` takes:
PIL images for image datasets, strings for text datasets.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass
class Dataset:
    """A labelled collection of inputs.

    inputs: list of PIL images or strings; labels: int array [N]; class_names: list of C names;
    masks: optional bool array [N, H, W] of object pixels (same size as the images).
    """

    name: str
    split: str
    modality: str
    inputs: list
    labels: np.ndarray
    class_names: list[str]
    masks: np.ndarray | None = None
    captions: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, idx) -> "Dataset":
        """The rows `idx` (indices into this dataset) as a new Dataset."""
        idx = [int(i) for i in idx]
        return Dataset(
            name=self.name,
            split=self.split,
            modality=self.modality,
            inputs=[self.inputs[i] for i in idx],
            labels=self.labels[idx],
            class_names=self.class_names,
            masks=None if self.masks is None else self.masks[idx],
            captions=[self.captions[i] for i in idx] if self.captions else [],
        )


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
    return Dataset("digits", split, "image", pil, labels, [str(i) for i in range(10)],
                   captions=[f"digit {y}" for y in labels])


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


def _sentences(text: str) -> list[str]:
    """Split an RST description into plain prose sentences of 6 to 60 words."""
    text = re.sub(r"\.\. _[^:]+:", " ", text)
    text = re.sub(r"[=\-~*|`_]{2,}", " ", text)
    text = re.sub(r":\w+:", " ", text)
    text = re.sub(r"\s+", " ", text)
    out = []
    for s in re.split(r"(?<=[.!?])\s+", text):
        s = s.strip()
        words = s.split()
        code_like = any(mark in s for mark in (">>>", "::", "`", "http", "=", "..."))
        if 8 <= len(words) <= 60 and sum(c.isalpha() for c in s) > 0.7 * len(s) and not code_like:
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
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    order = rng.permutation(len(texts))
    n_test = int(round(len(texts) * 0.5))
    chosen = {"test": order[:n_test], "train": order[n_test:], "all": order}[split] if split in ("test", "train", "all") else None
    if chosen is None:
        raise ValueError(f"Unknown split {split!r}: use 'train', 'test' or 'all'.")
    chosen = np.sort(chosen)
    return Dataset("prose", split, "text", [texts[i] for i in chosen], labels[chosen], topics,
                   captions=[texts[i][:60] for i in chosen])


@lru_cache(maxsize=8)
def _shapes(split: str) -> Dataset:
    """Seeded synthetic shapes over cluttered backgrounds, with object masks (see data/shapes.py)."""
    from data.shapes import CLASS_NAMES, arrays

    images, labels, masks = arrays(split)
    pil = [Image.fromarray(img) for img in images]
    return Dataset("shapes", split, "image", pil, labels, list(CLASS_NAMES), masks=masks,
                   captions=[CLASS_NAMES[y] for y in labels])


# name -> (modality, loader(split) -> Dataset)
DATASETS = {"digits": ("image", _digits), "prose": ("text", _prose), "shapes": ("image", _shapes)}


def list_datasets() -> dict[str, str]:
    """Names of the bundled datasets and their modality ("image" or "text")."""
    return {name: modality for name, (modality, _) in DATASETS.items()}


def load_dataset(name: str, split: str = "test") -> Dataset:
    """A bundled dataset by name ("digits", "prose", "shapes", ...) and split ("train", "test", "all")."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Bundled datasets: {', '.join(sorted(DATASETS))}.")
    return DATASETS[name][1](split)
