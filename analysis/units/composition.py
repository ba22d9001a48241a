"""Composition scores between heads (from the weights alone): Q-, K- and V-composition of every head with every head
of an earlier layer, and the random-matrix baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from analysis.circuits import COMPOSITIONS, composition_scores
from analysis.units.base import Inputs, RunOptions, Unit, option
from models import HookedModel, ModelSpec


@dataclass(frozen=True)
class CompositionOptions(RunOptions):
    label: ClassVar[str] = "composition"

    baseline_draws: int = option(16, "random Gaussian heads drawn for the baseline score (every pair of them)", low=2)


class Composition(Unit):
    name = "composition"
    description = (
        "Q/K/V composition of every head with every earlier head from the weights [L, H, L, H], with a random "
        "baseline (the same for every input: run it with --n 1)"
    )
    Options = CompositionOptions

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """q, k, v [n, L, H, L, H] (writer, reader; NaN unless the writer's layer is below the reader's) and
        baseline [n, 3] (q, k, v): weights only, so every input's row is the same."""
        s = composition_scores(model, options.baseline_draws)
        n = len(batch)
        out = {m: np.repeat(s[m].float().numpy()[None], n, 0) for m in COMPOSITIONS}
        out["baseline"] = np.tile(np.array([float(s[f"{m}_baseline"]) for m in COMPOSITIONS], np.float32), (n, 1))
        return out

    def summarise(self, arrays, options, spec: ModelSpec | None = None) -> dict[str, pd.DataFrame]:
        """edges: every (writer, reader) pair of heads and mode with its score, the baseline and score - baseline,
        strongest first."""
        return {"edges": composition_edges({m: arrays[m][0] for m in COMPOSITIONS}, arrays["baseline"][0])}


def composition_edges(scores: dict[str, np.ndarray], baseline) -> pd.DataFrame:
    """{mode: [L, H, L, H]} and baseline [3] -> DataFrame (mode, writer_layer, writer_head, reader_layer,
    reader_head, score, baseline, excess) over the pairs with a score, by excess over the baseline, strongest first."""
    frames = []
    for i, mode in enumerate(COMPOSITIONS):
        s = np.asarray(scores[mode], dtype=np.float64)
        idx = np.argwhere(~np.isnan(s))
        frames.append(
            pd.DataFrame(
                {
                    "mode": mode,
                    "writer_layer": idx[:, 0],
                    "writer_head": idx[:, 1],
                    "reader_layer": idx[:, 2],
                    "reader_head": idx[:, 3],
                    "score": s[tuple(idx.T)],
                    "baseline": float(baseline[i]),
                }
            )
        )
    edges = pd.concat(frames, ignore_index=True)
    edges["excess"] = edges["score"] - edges["baseline"]
    return edges.sort_values("excess", ascending=False, kind="stable").reset_index(drop=True)
