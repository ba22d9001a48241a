"""Predictions of a model over a list of inputs, batched, with accuracy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


def predict(
    model, inputs: Sequence, batch_size: int = 128, progress: Callable[[float, str], None] | None = None
) -> np.ndarray:
    """Class probabilities [N, C] of `model` (a HookedModel) for raw inputs (images or strings)."""
    out = []
    for i in range(0, len(inputs), batch_size):
        batch = model.prepare(list(inputs[i : i + batch_size]))
        out.append(torch.softmax(model.run(batch, capture=False).logits.float(), -1).cpu().numpy())
        if progress:
            progress(
                min(1.0, (i + batch_size) / len(inputs)), f"{min(i + batch_size, len(inputs))}/{len(inputs)} inputs"
            )
    return np.concatenate(out)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of probabilities [N, C] against integer labels [N]."""
    return float((probs.argmax(-1) == np.asarray(labels)).mean())


def top_k(probs: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[tuple[str, float]]:
    """The k most probable (class name, probability) pairs of one probability vector [C]."""
    order = np.argsort(-probs)[:k]
    return [(class_names[i], float(probs[i])) for i in order]
