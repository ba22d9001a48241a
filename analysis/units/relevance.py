"""Relevance maps over a dataset: each method's map for the predicted class, per input."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np
import torch

from analysis.relevance import METHODS, READ_AT, check_method, explain
from analysis.units.base import Inputs, RunOptions, Unit, option
from models import HookedModel

DEFAULT_METHODS = ("rollout", "grad_rollout", "attnlrp")


@dataclass(frozen=True)
class RelevanceOptions(RunOptions):
    label: ClassVar[str] = "relevance"

    methods: tuple[str, ...] = option(
        DEFAULT_METHODS, "relevance methods (analysis.relevance.METHODS)", choices=METHODS
    )
    read_at: str | None = option(
        None, "where a text model's LRP relevance is read (default words; text models only)", choices=READ_AT
    )


def check_methods(model: HookedModel, methods) -> None:
    """Raises ValueError (analysis.relevance.RelevanceError) unless every method applies to the model."""
    if not methods:
        raise ValueError("Option 'methods' got nothing: name at least one method.")
    for m in methods:
        check_method(model, m)


def method_options(method: str, read_at: str | None) -> dict:
    """The explain() options of `method` for a run reading text relevance at `read_at` (None for images)."""
    return {"read_at": read_at} if read_at is not None and METHODS[method].reads_text_at else {}


def map_forwards(method: str) -> float:
    """Roughly how many forward passes one input's map by `method` costs: 1 for an attention map, 3 for one
    gradient (a forward and a backward), 3 per point of a path or noise method, ~50 for occlusion (one per patch
    or word)."""
    m = METHODS[method]
    points = next((f.default for f in fields(m.options) if f.name in ("n_steps", "n_samples", "nt_samples")), 1)
    return {"attention": 1.0, "perturbation": 50.0}.get(m.family, 3.0 * float(points))  # type: ignore[arg-type]


class Relevance(Unit):
    name = "relevance"
    description = "relevance maps per method for the predicted class [N, T'] and the prediction"
    Options = RelevanceOptions

    def forwards(self, model: HookedModel, options) -> float:
        return 1.0 + sum(map_forwards(m) for m in options.methods)

    def resolve(self, model: HookedModel, options):
        """The methods checked against the model; read_at set for text (words by default), None for images."""
        check_methods(model, options.methods)
        if model.spec.modality != "text":
            if options.read_at is not None:
                raise ValueError(f"Option 'read_at' applies to text models only; {model.spec.name} reads images.")
            return options
        return replace(options, read_at=options.read_at or next(iter(READ_AT)))

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """predicted [n], n_tokens [n] (tokens after the prefix), map_<method> [n, T'] (text: NaN past its end)."""
        out: dict[str, list] = {"predicted": [], "n_tokens": []} | {f"map_{m}": [] for m in options.methods}
        for idx in batch.batches(options.batch_size):
            prepared = batch.prepare(model, idx)
            with torch.no_grad():
                pred = model.run(prepared, capture=False).logits.argmax(-1)
            out["predicted"].append(pred.cpu().numpy())
            out["n_tokens"].append((prepared.token_mask.sum(1) - model.spec.n_prefix).cpu().numpy())
            for m in options.methods:
                out[f"map_{m}"].append(explain(model, prepared, m, target=pred, **method_options(m, options.read_at)))
        return {k: np.concatenate(v) if not k.startswith("map_") else pad_nan(v) for k, v in out.items()}


def pad_nan(parts: list[np.ndarray]) -> np.ndarray:
    """Maps [b, T'_i] of several batches as one float32 array [n, max T'], NaN past each map's width."""
    width = max(p.shape[1] for p in parts)
    return np.concatenate(
        [np.pad(p.astype(np.float32), ((0, 0), (0, width - p.shape[1])), constant_values=np.nan) for p in parts]
    )


def as_maps(arrays: dict[str, np.ndarray]) -> dict:
    """A relevance run's arrays as {"maps": {method: [N, T']} (0 past an input's end), "real": [N, T'] bool (real
    tokens), "predicted", "labels" (-1 = unknown), "rows": [N], "disagreement": [N]
    (analysis.faithfulness.disagreement)}."""
    from analysis.faithfulness import disagreement

    maps = {
        k.removeprefix("map_"): np.nan_to_num(np.asarray(v, np.float32)) for k, v in arrays.items() if k[:4] == "map_"
    }
    width = next(iter(maps.values())).shape[1]
    real = np.arange(width)[None] < np.asarray(arrays["n_tokens"])[:, None]
    return {
        "maps": maps,
        "real": real,
        "predicted": np.asarray(arrays["predicted"]),
        "labels": np.asarray(arrays["label"]),
        "rows": np.asarray(arrays["row"]),
        "disagreement": disagreement(maps, real),
    }
