"""What every dataset-level analysis is: a `Unit` with typed, validated `Options`.

A unit computes per-input arrays over a chunk of inputs (`per_input`) and summary tables over the finished
arrays (`summarise`). runs/ runs units chunk by chunk: into the store (`runs.precompute`) or in memory
(`runs.sample`, what a view shows), so a stored run and a view's sample are one computation.

    from analysis import UNITS
    unit = UNITS["importance"]
    options = unit.Options.make(metrics=["loss"])            # TypeError / ValueError naming the option
    arrays = unit.per_input(model, Inputs(ds.subset(range(8))), labels, unit.resolve(model, options))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from analysis.options import Options, option
from data import Dataset
from models import HookedModel, ModelSpec

SEED_DOC = (
    "seed of the unit's random draws (importance: resample donors; patching: partners), offset by the batch's start "
    "in the run"
)


@dataclass(frozen=True)
class RunOptions(Options):
    """Base of every unit's options. batch_size: inputs per forward."""

    batch_size: int = option(32, "inputs per batch (a chunk of a run is computed in batches of this size)", low=1)


@dataclass(frozen=True)
class Inputs:
    """A chunk of a run's inputs: dataset (the chunk's rows as a Dataset: raw inputs, masks, names) and start
    (where the chunk starts in the run, for randomness that must not depend on how a run is chunked)."""

    dataset: Dataset
    start: int = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def batches(self, size: int) -> list[np.ndarray]:
        """Consecutive index ranges [b] of at most `size` inputs covering the chunk."""
        n = len(self.dataset)
        return [np.arange(i, min(i + size, n)) for i in range(0, n, size)]

    def prepare(self, model: HookedModel, idx: np.ndarray | None = None):
        """The inputs at idx (all by default) prepared for `model` (a models.Batch)."""
        rows = range(len(self.dataset)) if idx is None else idx
        return model.prepare([self.dataset.inputs[int(i)] for i in rows])


class Unit(ABC):
    """One dataset-level analysis. Subclasses set name, description and Options, and define per_input (and
    summarise when the run has summary tables); resolve fills the options that depend on the model."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[RunOptions]] = RunOptions

    def resolve(self, model: HookedModel, options: RunOptions) -> RunOptions:
        """The options with every model-dependent default filled in and checked against `model` (what a run's
        key records). Raises ValueError naming the option when a value does not apply to the model."""
        return options

    @abstractmethod
    def per_input(
        self, model: HookedModel, batch: Inputs, labels: np.ndarray, options: RunOptions
    ) -> dict[str, np.ndarray]:
        """Per-input arrays {name: [n, ...]} of the n inputs of `batch`; labels [n]: model class indices, -1 where
        the model knows no label for the input (scored against the model's prediction)."""

    def summarise(
        self, arrays: dict[str, np.ndarray], options: RunOptions, spec: ModelSpec | None = None
    ) -> dict[str, pd.DataFrame]:
        """Summary tables {name: DataFrame} of a finished run's arrays [N, ...] (spec: the model's, for names)."""
        return {}

    def forwards(self, model: HookedModel, options: RunOptions) -> float:
        """Roughly how many forward passes of `model` one input costs with `options` (resolved): what a time
        estimate multiplies a measured forward by before the unit has been timed itself."""
        return 1.0

    def __repr__(self) -> str:
        return f"<unit {self.name}>"
