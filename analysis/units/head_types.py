"""Head types over a dataset: per input and head, the score of each pattern type (previous / next token, [CLS],
[SEP], punctuation, broad for text; positional, local, global, CLS for images) and each head's strongest type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.head_types import IMAGE_TYPES, TEXT_TYPES, image_types, text_types, token_marks
from analysis.importance import scores_frame
from analysis.units.base import Inputs, RunOptions, Unit
from models import HookedModel, ModelSpec


@dataclass(frozen=True)
class HeadTypeOptions(RunOptions):
    label: ClassVar[str] = "head_types"


def types_of(modality: str) -> tuple[str, ...]:
    """The head types scored for a model reading `modality`."""
    return TEXT_TYPES if modality == "text" else IMAGE_TYPES


class HeadTypes(Unit):
    name = "head_types"
    description = (
        "per input and head, the score in [0, 1] of each attention pattern type [N, L, H] (text: previous / next "
        "token, [CLS], [SEP], punctuation, broad; images: positional with its offset, local, global, CLS)"
    )
    Options = HeadTypeOptions

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """{type: [n, L, H]} (analysis.head_types) and, for images, offset [n, L, H, 2] (dy, dx) in patches."""
        spec = model.spec
        parts: dict[str, list] = {}
        for idx in batch.batches(options.batch_size):
            prepared = batch.prepare(model, idx)
            with torch.no_grad():
                trace = model.run(prepared, capture=True)
            if spec.grid is None:
                sep = getattr(getattr(model, "tokenizer", None), "sep_token", None)
                marks = token_marks(prepared.tokens or [], trace.token_mask.shape[1], sep)
                scores = text_types(trace.attentions, trace.token_mask, marks)
            else:
                scores = image_types(trace.attentions, spec.grid, spec.n_prefix)
            for k, v in scores.items():
                parts.setdefault(k, []).append(v.cpu().numpy())
        return {k: np.concatenate(v).astype(np.int64 if k == "offset" else np.float32) for k, v in parts.items()}

    def summarise(self, arrays, options, spec: ModelSpec | None = None) -> dict[str, pd.DataFrame]:
        """scores: the mean score of each type per head, DataFrame (layer, head, metric = type, value);
        strongest: each head's strongest type (layer, head, type, score)."""
        types = [t for t in (*TEXT_TYPES, *IMAGE_TYPES) if t in arrays]
        means = {t: np.asarray(arrays[t], dtype=np.float64).mean(0) for t in dict.fromkeys(types)}
        return {"scores": scores_frame(means), "strongest": strongest_types(means)}


def strongest_types(means: dict[str, np.ndarray]) -> pd.DataFrame:
    """{type: [L, H]} mean scores -> each head's strongest type: DataFrame (layer, head, type, score)."""
    types = list(means)
    stacked = np.stack([means[t] for t in types], -1)  # [L, H, K]
    L, H = stacked.shape[:2]
    best = stacked.argmax(-1)
    layer, head = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
    return pd.DataFrame(
        {
            "layer": layer.ravel(),
            "head": head.ravel(),
            "type": [types[i] for i in best.ravel()],
            "score": stacked.max(-1).ravel(),
        }
    )
