"""Faithfulness over a dataset: perturbation and deletion/insertion curves (and localisation with masks) of each
relevance method and a seeded random map, per input."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd

from analysis.faithfulness import (
    INSERTION_STARTS,
    RANDOM,
    FaithfulnessReport,
    insertion_starts,
    per_input_scores,
    summarise_scores,
)
from analysis.relevance import METHODS
from analysis.units.base import Inputs, RunOptions, Unit, option
from analysis.units.relevance import DEFAULT_METHODS, check_methods, map_forwards
from models import HookedModel, ModelSpec


@dataclass(frozen=True)
class FaithfulnessOptions(RunOptions):
    label: ClassVar[str] = "faithfulness"

    methods: tuple[str, ...] = option(DEFAULT_METHODS, "relevance methods to score", choices=METHODS)
    insertion_start: str | None = option(
        None, "what insertion starts from (default: blur for images, zero for text)", choices=INSERTION_STARTS
    )
    steps: int = option(16, "steps of the deletion and insertion curves", low=1, high=256)
    maps: bool = option(False, "also keep every method's map [N, T'] (map__<method>)")


class Faithfulness(Unit):
    name = "faithfulness"
    description = (
        "per input and method (plus a random map): perturbation curves (positive, negative), deletion/insertion "
        "curves, with masks the pointing game and segmentation counts; the AUC table and mean curves"
    )
    Options = FaithfulnessOptions

    def resolve(self, model: HookedModel, options):
        check_methods(model, options.methods)
        starts = insertion_starts(model.spec.modality)
        if options.insertion_start is not None and options.insertion_start not in starts:
            raise ValueError(
                f"Option 'insertion_start' got {options.insertion_start!r}: {model.spec.modality} models allow "
                f"{', '.join(starts)}."
            )
        return replace(options, insertion_start=options.insertion_start or starts[0])

    def forwards(self, model: HookedModel, options) -> float:
        """Each map, then four curves (positive, negative, deletion, insertion) of `steps` forwards per method and
        for the random map."""
        return sum(map_forwards(m) for m in options.methods) + 4.0 * options.steps * (len(options.methods) + 1)

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """<test>__<method> for test in positive / negative [n, K], deletion / insertion [n, steps+1], with masks
        pointing__<method> [n] and segmentation__<method> [n, 5]; predictions [n]; real [n, T'] (real
        tokens); with maps also map__<method> [n, T'] (analysis.faithfulness.per_input_scores). The random map of
        batch b of the run uses seed b, as in one in-memory evaluation of the whole run."""
        scores = per_input_scores(
            model,
            batch.dataset,
            options.methods,
            len(batch),
            options.batch_size,
            options.steps,
            seed=batch.start // options.batch_size,
            start=options.insertion_start,
        )
        return {
            k.replace("/", "__"): np.asarray(v, dtype=np.float32) if v.dtype.kind == "f" else v
            for k, v in scores.items()
            if options.maps or not k.startswith("map/")
        }

    def summarise(self, arrays, options, spec: ModelSpec | None = None) -> dict[str, pd.DataFrame]:
        """scores: the AUC table (one row per method, the random map last); curves: the mean curves."""
        names = list(options.methods) + [RANDOM]
        tests = ("positive", "negative", "deletion", "insertion", "pointing", "segmentation")
        scores = {f"{t}/{m}": np.asarray(arrays[f"{t}__{m}"]) for m in names for t in tests if f"{t}__{m}" in arrays}
        size = spec.image_size if spec is not None and spec.image_size else 0
        table, curves = summarise_scores(scores, size**2, options.steps)
        return {"scores": table, "curves": curves}


def as_report(arrays: dict[str, np.ndarray], tables: dict[str, pd.DataFrame], methods) -> FaithfulnessReport:
    """A faithfulness run made with maps=True as analysis.faithfulness.FaithfulnessReport (indices: dataset rows)."""
    names = [*methods, RANDOM]
    return FaithfulnessReport(
        tables["scores"],
        tables["curves"],
        {m: np.nan_to_num(np.asarray(arrays[f"map__{m}"], np.float32)) for m in names},
        np.nan_to_num(np.asarray(arrays["real"], np.float32)).astype(bool),  # NaN where a chunk was shorter
        np.asarray(arrays["row"]),
        np.asarray(arrays["predictions"]),
    )
