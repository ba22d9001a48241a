"""Match a dataset's class names to a model's classes, so that every view knows each input's true class.

`match_labels(model_classes, dataset_classes)` maps each dataset class to one model class:
1. a WordNet id (`n02123045`, ImageNet's folder names) through the ImageNet-1k table (`imagenet_classes()`):
   to the model class of that index when it has that name, else by the synset's names as in 2 and 3;
2. by normalised name (Unicode NFC, case, spaces, `_` and `-` ignored): "Tabby-Cat" == "tabby cat" == "tabby_cat";
3. else by any comma-separated synonym of an ImageNet-style model name: "tabby, tabby cat" matches a
   folder `tabby_cat`;
4. else, when no class matched by name and every dataset class is an integer, by integer id: 0..C-1 (a CSV
   whose labels are 0..C-1 against a fine-tuned model's classes), or 1..C when C is among them (one-based).
A name that fits several model classes (ImageNet has two `crane`s, and `cardigan` is a sweater and a corgi's
synonym) is not matched: it is listed in `ambiguous`, with the classes it fits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

WNID = re.compile(r"n\d{8}")


def normalise(name: str) -> str:
    """A class name compared loosely: Unicode NFC (macOS writes é as e + accent), lower case, `_`/`-`/runs of
    spaces as one space, stripped."""
    return re.sub(r"[\s_\-]+", " ", unicodedata.normalize("NFC", str(name))).strip().lower()


@lru_cache(maxsize=1)
def imagenet_classes() -> list[tuple[str, str]]:
    """The 1000 ImageNet-1k classes in class-index order: (WordNet id, names), e.g. ("n01440764", "tench,
    Tinca tinca"); read from data/imagenet_classes.tsv (its header names the source)."""
    text = (resources.files("data") / "imagenet_classes.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return [(wnid, names) for wnid, _, names in rows[1:]]  # after the header


@dataclass(frozen=True)
class LabelMatch:
    """How a dataset's classes map to a model's.

    mapping: [C_dataset] model class index of each dataset class, -1 where none matched; how: [C_dataset]
    "wnid", "name", "synonym", "id", "id (one-based)", "ambiguous" or "" (unmatched); ambiguous: the dataset
    classes whose name fits more than one model class (left unmatched), with the model classes each fits."""

    model_classes: tuple[str, ...]
    dataset_classes: tuple[str, ...]
    mapping: np.ndarray
    how: tuple[str, ...]
    ambiguous: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def matched(self) -> list[str]:
        return [c for c, m in zip(self.dataset_classes, self.mapping) if m >= 0]

    @property
    def unmatched(self) -> list[str]:
        return [c for c, m in zip(self.dataset_classes, self.mapping) if m < 0]

    def to_model(self, labels) -> np.ndarray:
        """Dataset labels [N] (indices into dataset_classes, -1 = unlabelled) -> [N] model class indices,
        -1 where the input has no label or its class matched none of the model's."""
        labels = np.asarray(labels, dtype=np.int64)
        if not len(self.mapping):
            return np.full(labels.shape, -1, dtype=np.int64)
        out = self.mapping[np.clip(labels, 0, None)]
        return np.where(labels >= 0, out, -1).astype(np.int64)

    def fits(self) -> list[str]:
        """One line per ambiguous dataset class: 'crane: model classes 134 (crane) or 517 (crane)'."""
        return [
            f"{c}: model classes " + " or ".join(f"{i} ({self.model_classes[i]})" for i in hits)
            for c, hits in self.ambiguous
        ]

    def table(self) -> pd.DataFrame:
        """One row per dataset class: its name, the model class it maps to (or empty) and how."""
        return pd.DataFrame(
            {
                "dataset class": list(self.dataset_classes),
                "model class": [self.model_classes[m] if m >= 0 else "" for m in self.mapping],
                "matched by": [h or "unmatched" for h in self.how],
            }
        )

    def summary(self) -> str:
        """One line for the UI: how many classes matched, and how."""
        if not self.dataset_classes:
            return "unlabelled dataset: every input's target is the model's own prediction"
        ways = sorted({h for h in self.how if h and h != "ambiguous"})
        text = f"{len(self.matched)} of {len(self.dataset_classes)} dataset classes match the model's classes"
        text += f" (by {', '.join(ways)})" if ways else ""
        return text + (f"; {len(self.ambiguous)} fit several (left unmatched)" if self.ambiguous else "")


def _synonyms(name: str) -> list[str]:
    return [normalise(s) for s in str(name).split(",") if s.strip()]


def _by_id(dataset_classes: tuple[str, ...], n: int) -> tuple[list[int], str] | None:
    """Integer class names as class ids: zero-based when all are below n, one-based when all are in 1..n and n is
    among them; else None."""
    if not dataset_classes or not all(re.fullmatch(r"\d+", c) for c in dataset_classes):
        return None
    ids = [int(c) for c in dataset_classes]
    if max(ids) < n:
        return ids, "id"
    if min(ids) >= 1 and max(ids) == n:
        return [i - 1 for i in ids], "id (one-based)"
    return None


def match_labels(model_classes: Sequence[str], dataset_classes: Sequence[str]) -> LabelMatch:
    """Map dataset class names to model class indices by WordNet id, name, synonym, then integer id (see the
    module doc)."""
    model_classes, dataset_classes = tuple(map(str, model_classes)), tuple(map(str, dataset_classes))
    by_name: dict[str, list[int]] = {}
    by_synonym: dict[str, list[int]] = {}
    for i, c in enumerate(model_classes):
        by_name.setdefault(normalise(c), []).append(i)
        for s in _synonyms(c):
            by_synonym.setdefault(s, []).append(i)
    imagenet = {wnid: (i, names) for i, (wnid, names) in enumerate(imagenet_classes())}
    mapping, how, ambiguous = [], [], []
    for c in dataset_classes:
        key = normalise(c)
        if WNID.fullmatch(c) and c in imagenet:
            index, names = imagenet[c]
            if index < len(model_classes) and normalise(model_classes[index]) == normalise(names):
                mapping.append(index)
                how.append("wnid")
                continue
            key = normalise(names) if normalise(names) in by_name else _synonyms(names)[0]
        hits, kind = by_name.get(key, []), "name"
        if not hits:
            hits, kind = by_synonym.get(key, []), "synonym"
        fits = sorted({*hits, *by_synonym.get(key, [])})  # `cardigan`: a sweater's name, a corgi's synonym
        if len(fits) > 1:
            mapping.append(-1)
            how.append("ambiguous")
            ambiguous.append((c, tuple(fits)))
        elif hits:
            mapping.append(hits[0])
            how.append(kind)
        else:
            mapping.append(-1)
            how.append("")
    ids = _by_id(dataset_classes, len(model_classes))
    if ids is not None and all(m < 0 for m in mapping) and not ambiguous:
        mapping, how = ids[0], [ids[1]] * len(dataset_classes)
    return LabelMatch(model_classes, dataset_classes, np.asarray(mapping, dtype=np.int64), tuple(how), tuple(ambiguous))
