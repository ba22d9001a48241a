"""Partial and cumulative pruning of heads (the Head-importance section of the methods document under docs/):
one head's gate turned down from 1 to 0, and the model's quality as heads are removed in the order of a score
(once, or re-scored between steps), against a seeded random order.

Shapes and metrics as in analysis/importance.py: gates [L, H]; curves are long DataFrames.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from analysis.importance import (
    GRADIENT,
    LABEL_METRICS,
    Progress,
    ablation_per_sample,
    as_sample,
    available_metrics,
    evaluate_gates,
    gradient_per_sample,
    summarise,
)
from models import HookedModel

PARTIAL_STEPS = 11  # gate values of partial pruning: 1.0, 0.9, ..., 0.0


# -- partial and cumulative pruning ------------------------------------------------------------------------
def partial_pruning(
    model: HookedModel,
    data,
    layer: int,
    head: int,
    steps: int = PARTIAL_STEPS,
    metrics: Sequence[str] = LABEL_METRICS,
    **kwargs,
) -> pd.DataFrame:
    """Metric means as the gate of head (layer, head) goes 1 -> 0 in `steps` equal steps (VA paper B2/B3):
    DataFrame (gate, metric, value)."""
    L, H = model.spec.n_layers, model.spec.n_heads
    if not (0 <= layer < L and 0 <= head < H):
        raise ValueError(f"No head ({layer}, {head}): layers are 0..{L - 1}, heads 0..{H - 1}.")
    if steps < 2:
        raise ValueError("partial_pruning needs at least 2 steps (gate 1 and gate 0).")
    values = torch.linspace(1.0, 0.0, steps)
    configs = torch.ones(steps, L, H)
    configs[:, layer, head] = values
    res = evaluate_gates(model, data, configs, metrics, **kwargs)
    return pd.concat(
        [
            pd.DataFrame({"gate": values.numpy().astype(np.float64), "metric": m, "value": v.mean(-1)})
            for m, v in res.items()
        ],
        ignore_index=True,
    )


def pruning_order(scores: np.ndarray) -> list[tuple[int, int]]:
    """Heads (layer, head) from least to most important by scores [L, H] (ties: lower layer, head first)."""
    L, H = scores.shape
    flat = np.asarray(scores, dtype=np.float64).ravel()
    return [(int(i // H), int(i % H)) for i in np.lexsort((np.arange(L * H), flat))]


def random_order(n_layers: int, n_heads: int, seed: int = 0) -> list[tuple[int, int]]:
    """A seeded random order of all heads (the baseline pruning order)."""
    perm = np.random.default_rng(seed).permutation(n_layers * n_heads)
    return [(int(i // n_heads), int(i % n_heads)) for i in perm]


def _removal_counts(n_heads_total: int, steps: int) -> list[int]:
    return sorted({int(round(k * n_heads_total / steps)) for k in range(steps + 1)})


def _curve_frame(counts: list[int], total: int, res: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame({"fraction": np.asarray(counts) / total, "n_removed": counts, "metric": m, "value": v})
            for m, v in res.items()
        ],
        ignore_index=True,
    )


def _as_order(model: HookedModel, order, seed: int) -> list[tuple[int, int]]:
    """A validated removal order from a list of heads, scores [L, H] or "random"."""
    L, H = model.spec.n_layers, model.spec.n_heads
    if isinstance(order, str):  # "random" (pruning_curves refuses other names)
        return random_order(L, H, seed)
    if not isinstance(order, list):
        arr = np.asarray(order)
        if arr.shape != (L, H):
            raise ValueError(f"Scores for a pruning order must be [L, H] = [{L}, {H}], got {arr.shape}.")
        return pruning_order(arr)
    order = [(int(l), int(h)) for l, h in order]
    if sorted(order) != [(l, h) for l in range(L) for h in range(H)]:
        raise ValueError(f"A pruning order must list each of the {L * H} heads exactly once.")
    return order


def pruning_curves(
    model: HookedModel,
    data,
    orders: dict,
    iterative: bool = False,
    steps: int = 10,
    metrics: Sequence[str] = LABEL_METRICS,
    seed: int = 0,
    progress: Progress = None,
    **kwargs,
) -> pd.DataFrame:
    """Cumulative pruning curves (Michel et al.) for several orders {name: order} at once: heads go in
    order of increasing importance, 1/steps of all heads at a time, and the metric means are measured
    after each step. DataFrame (order, fraction, n_removed, metric, value); each curve starts at the
    unablated model and ends with every head removed.

    An order is a list of (layer, head), scores [L, H] (least important removed first) or "random"
    (seeded); with iterative=True, the name of the importance to re-estimate between steps on the heads
    that are left ("gradient", "gradient_norm", an ablation metric or "random"). Without iterative, the
    gate settings of all orders are evaluated together (shared settings, such as the endpoints, once)."""
    sample = as_sample(model, data)
    L, H = model.spec.n_layers, model.spec.n_heads
    if iterative:
        frames = []
        for i, (name, criterion) in enumerate(orders.items()):
            sub = (
                (lambda f, msg, i=i, name=name: progress((i + f) / len(orders), f"{name}: {msg}")) if progress else None
            )
            frames.append(
                _iterative_curve(model, sample, criterion, steps, metrics, seed, sub, **kwargs).assign(order=name)
            )
        return pd.concat(frames, ignore_index=True)[["order", "fraction", "n_removed", "metric", "value"]]
    counts = _removal_counts(L * H, steps)
    configs = torch.ones(len(orders), len(counts), L, H)
    for i, order in enumerate(orders.values()):
        if isinstance(order, str) and order != "random":
            raise ValueError(
                "Iterative pruning re-estimates importance: pass iterative=True to prune by a "
                f"metric's name ({order!r}), or pass its scores."
            )
        order = _as_order(model, order, seed)
        for k, c in enumerate(counts):
            for l, h in order[:c]:
                configs[i, k, l, h] = 0
    res = evaluate_gates(model, sample, configs.flatten(0, 1), metrics, progress=progress, **kwargs)
    frames = [
        _curve_frame(
            counts, L * H, {m: v.reshape(len(orders), len(counts), -1)[i].mean(-1) for m, v in res.items()}
        ).assign(order=name)
        for i, name in enumerate(orders)
    ]
    return pd.concat(frames, ignore_index=True)[["order", "fraction", "n_removed", "metric", "value"]]


def pruning_curve(
    model: HookedModel,
    data,
    order,
    iterative: bool = False,
    steps: int = 10,
    metrics: Sequence[str] = LABEL_METRICS,
    seed: int = 0,
    progress: Progress = None,
    **kwargs,
) -> pd.DataFrame:
    """One cumulative pruning curve: DataFrame (fraction, n_removed, metric, value); see `pruning_curves`."""
    if iterative and not isinstance(order, str):
        raise ValueError("Iterative pruning re-estimates importance: give the metric's name as `order`.")
    return pruning_curves(model, data, {"curve": order}, iterative, steps, metrics, seed, progress, **kwargs).drop(
        columns="order"
    )


def _iterative_curve(model, sample, criterion, steps, metrics, seed, progress, **kwargs) -> pd.DataFrame:
    """One iterative pruning curve: importance by `criterion` re-estimated on the remaining heads."""
    L, H = model.spec.n_layers, model.spec.n_heads
    counts = _removal_counts(L * H, steps)
    if criterion == "random":
        return pruning_curve(
            model, sample, "random", metrics=metrics, seed=seed, progress=progress, steps=steps, **kwargs
        )
    if criterion not in GRADIENT and criterion not in available_metrics(model):
        raise ValueError(
            f"Unknown importance {criterion!r} for iterative pruning: use gradient, random or "
            f"one of {', '.join(available_metrics(model))}."
        )
    gates = torch.ones(L, H)
    configs = [gates.clone()]
    for k in range(1, len(counts)):
        if criterion in GRADIENT:
            scores = summarise({"gradient": gradient_per_sample(model, sample, gates)})[criterion]
        else:
            scores = ablation_per_sample(model, sample, (criterion,), base_gates=gates, **kwargs)[criterion].mean(-1)
        left = [(l, h) for l, h in pruning_order(scores) if gates[l, h] != 0]
        for l, h in left[: counts[k] - counts[k - 1]]:
            gates[l, h] = 0
        configs.append(gates.clone())
        if progress:
            progress(k / len(counts), f"step {k}/{len(counts) - 1}: {counts[k]} heads removed")
    res = evaluate_gates(model, sample, torch.stack(configs), metrics, **kwargs)
    if progress:
        progress(1.0, "done")
    return _curve_frame(counts, L * H, {m: v.mean(-1) for m, v in res.items()})
