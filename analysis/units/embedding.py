"""Class embedding over a dataset: identifiability of each input's class per layer (logit lens) and the summary
token's class scores and embeddings per layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from analysis.embedding import WHERE, Identifiability, SampleEmbedding, embed_sample, summary_names
from analysis.units.base import Inputs, RunOptions, Unit, option
from models import HookedModel


@dataclass(frozen=True)
class EmbeddingOptions(RunOptions):
    label: ClassVar[str] = "embedding"

    where: str = option("resid", "what the classifier reads after each block", choices=WHERE)


class Embedding(Unit):
    name = "embedding"
    description = (
        "identifiability per layer [N, L] of the true class (the predicted one where no label is known), class "
        "scores and embeddings of the summary token per layer"
    )
    Options = EmbeddingOptions

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """identifiability [n, L], token_identifiability [n, L, T] (float16, NaN past the input's end),
        summary_scores [n, L, C], embeddings [n, L+1, D] and target [n]: the class scored, the label where the
        model knows it, else the model's prediction."""
        s = embed_sample(model, list(batch.dataset.inputs), labels, where=options.where, batch_size=options.batch_size)
        return {
            "identifiability": s.ident.summary.T.astype(np.float32),
            "token_identifiability": np.moveaxis(s.ident.tokens, 1, 0).astype(np.float16),
            "summary_scores": np.moveaxis(s.summary_scores, 1, 0).astype(np.float32),
            "embeddings": np.moveaxis(s.embeddings, 1, 0).astype(np.float32),
            "target": s.labels,
        }


def as_sample_embedding(model: HookedModel, arrays: dict[str, np.ndarray]) -> SampleEmbedding:
    """An embedding run's arrays [N, ...] as analysis.embedding.SampleEmbedding over all N inputs (labels = the
    scored target: the true class where known, else the prediction)."""
    ident = Identifiability(
        np.asarray(arrays["identifiability"]).T.astype(np.float64),
        np.moveaxis(np.asarray(arrays["token_identifiability"]), 0, 1).astype(np.float64),
        summary_names(model),
    )
    return SampleEmbedding(
        ident,
        np.moveaxis(np.asarray(arrays["summary_scores"]), 0, 1),
        np.moveaxis(np.asarray(arrays["embeddings"]), 0, 1),
        np.asarray(arrays["target"]),
    )
