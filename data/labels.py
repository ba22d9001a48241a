"""Match a dataset's class names to a model's classes, so that every view knows each input's true class.

`match_labels(model_classes, dataset_classes)` maps each dataset class to one model class:
1. by normalised name (case, spaces, `_` and `-` ignored): "Tabby-Cat" == "tabby cat" == "tabby_cat";
2. else by any comma-separated synonym of an ImageNet-style model name: "tabby, tabby cat" matches a
   folder `tabby_cat`;
3. else, when no class matched by name and every dataset class is an integer in range, by integer id
   (a CSV whose labels are 0..C-1 against a fine-tuned model's classes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


def normalise(name: str) -> str:
    """A class name compared loosely: Unicode NFC (macOS writes é as e + accent), lower case, `_`/`-`/runs of
    spaces as one space, stripped."""
    return re.sub(r"[\s_\-]+", " ", unicodedata.normalize("NFC", str(name))).strip().lower()


@dataclass(frozen=True)
class LabelMatch:
    """How a dataset's classes map to a model's.

    mapping: [C_dataset] model class index of each dataset class, -1 where none matched;
    how: [C_dataset] "name", "synonym", "id" or "" (unmatched); ambiguous: dataset classes whose name fits
    more than one model class (the first is used)."""

    model_classes: tuple[str, ...]
    dataset_classes: tuple[str, ...]
    mapping: np.ndarray
    how: tuple[str, ...]
    ambiguous: tuple[str, ...] = ()

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
        ways = sorted({h for h in self.how if h})
        text = f"{len(self.matched)} of {len(self.dataset_classes)} dataset classes match the model's classes"
        return text + (f" (by {', '.join(ways)})" if ways else "")


def _synonyms(name: str) -> list[str]:
    return [normalise(s) for s in str(name).split(",") if s.strip()]


def match_labels(model_classes: Sequence[str], dataset_classes: Sequence[str]) -> LabelMatch:
    """Map dataset class names to model class indices by name, synonym, then integer id (see module doc)."""
    model_classes, dataset_classes = tuple(map(str, model_classes)), tuple(map(str, dataset_classes))
    by_name: dict[str, list[int]] = {}
    by_synonym: dict[str, list[int]] = {}
    for i, c in enumerate(model_classes):
        by_name.setdefault(normalise(c), []).append(i)
        for s in _synonyms(c):
            by_synonym.setdefault(s, []).append(i)
    mapping, how, ambiguous = [], [], []
    for c in dataset_classes:
        key = normalise(c)
        hits, kind = by_name.get(key), "name"
        if not hits:
            hits, kind = by_synonym.get(key), "synonym"
        if hits:
            mapping.append(hits[0])
            how.append(kind)
            if len(set(hits)) > 1:
                ambiguous.append(c)
        else:
            mapping.append(-1)
            how.append("")
    ids_in_range = all(re.fullmatch(r"\d+", c) and int(c) < len(model_classes) for c in dataset_classes)
    if dataset_classes and all(m < 0 for m in mapping) and ids_in_range:
        mapping, how = [int(c) for c in dataset_classes], ["id"] * len(dataset_classes)
    return LabelMatch(model_classes, dataset_classes, np.asarray(mapping, dtype=np.int64), tuple(how), tuple(ambiguous))
