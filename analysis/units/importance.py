"""Head importance over a dataset: each head's ablation effect and the gradient score, per input."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.importance import (
    ABLATIONS,
    METRICS,
    Sample,
    ablation_cost,
    available_metrics,
    head_scores,
    scores_frame,
    summarise,
)
from analysis.units.base import SEED_DOC, Inputs, RunOptions, Unit, option
from models import HookedModel, ModelSpec


@dataclass(frozen=True)
class ImportanceOptions(RunOptions):
    label: ClassVar[str] = "importance"

    metrics: tuple[str, ...] | None = option(
        None, "ablation metrics (default: every one that applies to the model)", choices=METRICS
    )
    gradient: bool = option(True, "also Michel et al.'s gradient score |dL/dg| per head")
    ablation: str = option(
        "zero",
        "what a removed head's output becomes: zero, its mean over the batch's inputs per token position, or its "
        "output on another (seeded) input of the batch",
        choices=ABLATIONS,
    )
    seed: int = option(0, SEED_DOC, low=0)


class Importance(Unit):
    name = "importance"
    description = "per-input ablation deltas of every head under each metric, and the gradient score [N, L, H]"
    Options = ImportanceOptions

    def resolve(self, model: HookedModel, options) -> ImportanceOptions:
        allowed = available_metrics(model)
        metrics = allowed if options.metrics is None else options.metrics
        bad = [m for m in metrics if m not in allowed]
        if bad or not metrics:
            raise ValueError(f"Option 'metrics' got {bad or 'nothing'}: {model.spec.name} allows {', '.join(allowed)}.")
        return replace(options, metrics=tuple(metrics))

    def forwards(self, model: HookedModel, options) -> float:
        """The ablations (analysis.importance.ablation_cost), the gradient score (a forward and a backward) and, for a
        mean or resample ablation, the forward that reads the replacement outputs."""
        return ablation_cost(model) + 3.0 + (options.ablation != "zero")

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """{metric: [n, L, H]} the drop of each metric when each head is removed, and "gradient" [n, L, H]. A mean
        or resample ablation draws on the input's batch (batches sit at the same run positions however the run is
        cut into chunks)."""
        parts: dict[str, list] = {}
        for idx in batch.batches(options.batch_size):
            known = labels[idx]
            sample = Sample(batch.prepare(model, idx), torch.as_tensor(known) if (known >= 0).any() else None)
            scores = head_scores(
                model,
                sample,
                options.metrics,
                gradient=options.gradient,
                batch_size=options.batch_size,
                ablation=options.ablation,
                seed=options.seed + batch.start + int(idx[0]),
            )
            for k, v in scores.items():
                parts.setdefault(k, []).append(np.moveaxis(v, -1, 0).astype(np.float32))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def summarise(self, arrays, options, spec: ModelSpec | None = None) -> dict[str, pd.DataFrame]:
        """summary: the mean of each score per head (analysis.importance.scores_frame)."""
        names = list(options.metrics) + (["gradient"] if options.gradient else [])
        return {"summary": scores_frame(summarise({k: per_head(arrays[k]) for k in names}))}


def per_head(array) -> np.ndarray:
    """A stored score [N, L, H] as analysis.importance's layout [L, H, N] (float64)."""
    return np.moveaxis(np.asarray(array, dtype=np.float64), 0, -1)


def as_scores(arrays: dict[str, np.ndarray], metrics: tuple[str, ...]) -> dict:
    """An importance run's arrays in analysis.importance's layout: {"scores": {score: [L, H, N]} (the ablation
    metrics and the gradient), "metrics": the ablation metrics, "labels": [N] model class indices (-1 = unknown,
    scored against the prediction) or None when none is known, "rows": [N] dataset rows}."""
    labels = np.asarray(arrays["label"])
    return {
        "scores": {k: per_head(arrays[k]) for k in (*metrics, "gradient") if k in arrays},
        "metrics": metrics,
        "labels": labels if (labels >= 0).any() else None,
        "rows": np.asarray(arrays["row"]),
    }
