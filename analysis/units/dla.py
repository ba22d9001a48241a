"""Direct logit attribution over a dataset: every head's, MLP's, embedding's and bias's direct part of the target
logit per input, and its mean per class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.circuits import direct_logit_attribution
from analysis.importance import scores_frame
from analysis.units.base import Inputs, RunOptions, Unit
from models import HookedModel, ModelSpec


@dataclass(frozen=True)
class DLAOptions(RunOptions):
    label: ClassVar[str] = "direct_logit_attribution"


class DirectLogitAttribution(Unit):
    name = "direct_logit_attribution"
    description = (
        "direct part of the target logit (the true class, else the prediction) of every head [N, L, H], MLP, "
        "bias and the embeddings [N, L] / [N], through the final norm with its scale frozen"
    )
    Options = DLAOptions

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """analysis.circuits.direct_logit_attribution's parts (heads [n, L, H], mlp, attn_bias, mlp_bias, norm_bias
        [n, L], embed, readout_bias, logit [n]) and target [n]."""
        parts: dict[str, list] = {}
        for idx in batch.batches(options.batch_size):
            out = direct_logit_attribution(model, batch.prepare(model, idx), torch.as_tensor(labels[idx]))
            for k, v in out.items():
                parts.setdefault(k, []).append(v.cpu().numpy())
        return {k: np.concatenate(v).astype(np.int64 if k == "target" else np.float32) for k, v in parts.items()}

    def summarise(self, arrays, options, spec: ModelSpec | None = None) -> dict[str, pd.DataFrame]:
        """per_class: the mean head part per target class, DataFrame (class, n, layer, head, metric="dla", value)."""
        return {"per_class": per_class_heads(arrays["heads"], arrays["target"], spec)}


def per_class_heads(heads, target, spec: ModelSpec | None = None) -> pd.DataFrame:
    """The mean of per-input head scores heads [N, L, H] over the inputs of each target class [N] (class names from
    spec when given): DataFrame (class, n, layer, head, metric, value)."""
    heads, target = np.asarray(heads, dtype=np.float64), np.asarray(target)
    frames = []
    for c in np.unique(target):
        f = scores_frame({"dla": heads[target == c].mean(0)})
        f.insert(0, "n", int((target == c).sum()))
        f.insert(0, "class", spec.class_names[c] if spec else int(c))
        frames.append(f)
    return pd.concat(frames, ignore_index=True)
