"""Predictions over a dataset: the top classes and the probability and loss of the true class per input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from analysis.evaluation import predict
from analysis.units.base import Inputs, RunOptions, Unit, option
from models import HookedModel, ModelSpec


@dataclass(frozen=True)
class PredictionOptions(RunOptions):
    label: ClassVar[str] = "predictions"

    top_k: int = option(5, "how many of the most probable classes to keep per input", low=1)


class Predictions(Unit):
    name = "predictions"
    description = "top-k classes and probabilities, probability and loss of the true class [N]; accuracy per class"
    Options = PredictionOptions

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """top_classes / top_probs [n, k], true_prob and loss [n] (NaN where the label is unknown)."""
        probs = predict(model, batch.dataset.inputs, batch_size=options.batch_size)  # [n, C]
        k = min(options.top_k, probs.shape[1])
        top = np.argsort(-probs, axis=1)[:, :k]
        known = labels >= 0
        true_prob = np.where(known, probs[np.arange(len(probs)), np.clip(labels, 0, None)], np.nan)
        return {
            "top_classes": top,
            "top_probs": np.take_along_axis(probs, top, 1).astype(np.float32),
            "true_prob": true_prob.astype(np.float32),
            "loss": (-np.log(np.clip(true_prob, 1e-12, 1))).astype(np.float32),
        }

    def summarise(self, arrays, options, spec: ModelSpec | None = None) -> dict[str, pd.DataFrame]:
        """per_class: accuracy per class over the inputs with a known label (class name when spec is given)."""
        return {"per_class": per_class_accuracy(arrays["label"], arrays["top_classes"][:, 0], spec)}


def per_class_accuracy(label, pred, spec: ModelSpec | None = None) -> pd.DataFrame:
    """DataFrame (class, n, accuracy) of predictions pred [N] against labels [N] (-1 = unknown, left out)."""
    label, pred = np.asarray(label), np.asarray(pred)
    classes = np.unique(label[label >= 0])
    return pd.DataFrame(
        {
            "class": [spec.class_names[c] if spec else int(c) for c in classes],
            "n": [int((label == c).sum()) for c in classes],
            "accuracy": [float((pred[label == c] == c).mean()) for c in classes],
        }
    )
