"""Activation patching over a dataset: each input (clean) paired by a seeded rule with another input (corrupted),
each head's, sublayer's and residual position's patching effect per pair, in both directions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from analysis.circuits import DIRECTIONS, PAIRINGS, pair_partners, patch_effects
from analysis.importance import scores_frame
from analysis.units.base import SEED_DOC, Inputs, RunOptions, Unit, option
from models import HookedModel, ModelSpec

PER_PAIR = ("heads", "attn", "mlp", "resid")


@dataclass(frozen=True)
class PatchingOptions(RunOptions):
    label: ClassVar[str] = "patching"

    pairs: str = option(
        "other_class",
        "how each input finds its corrupted partner among its batch's inputs with its token count: one of another "
        "class (other_class) or any other input (any), drawn with the seed",
        choices=PAIRINGS,
    )
    directions: tuple[str, ...] = option(
        DIRECTIONS, "denoise: clean activations into the corrupted run; noise: the other way", choices=DIRECTIONS
    )
    seed: int = option(0, SEED_DOC, low=0)


class Patching(Unit):
    name = "patching"
    description = (
        "activation patching of each input (clean) with a seeded partner (corrupted): normalised logit difference "
        "(0 = corrupted, 1 = clean) per head [N, L, H], attention / MLP output [N, L], residual stream [N, L, T]"
    )
    Options = PatchingOptions

    def forwards(self, model: HookedModel, options) -> float:
        """Per direction the two runs of the pair and, counting a resumed forward as half a forward, one per head,
        two per block and one per block and token (text: 32 tokens)."""
        spec = model.spec
        T = spec.n_prefix + spec.grid[0] * spec.grid[1] if spec.grid else 32
        return len(options.directions) * (2 + spec.n_layers * (spec.n_heads + 2 + T) / 2)

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """partner [n] (its position in the run, -1 where none fits), clean_class and corrupted_class [n], and per
        direction d: d_heads [n, L, H], d_attn and d_mlp [n, L], d_resid [n, L, T] (NaN past the tokens, and for an
        input without a partner). Partners come from the input's batch (batches sit at the same run positions
        however the run is cut into chunks)."""
        parts: dict[str, list] = {}
        for idx in batch.batches(options.batch_size):
            out = self._batch(model, batch.prepare(model, idx), labels[idx], options, batch.start + int(idx[0]))
            for k, v in out.items():
                parts.setdefault(k, []).append(v)
        return {k: pad_nan(v) for k, v in parts.items()}

    def _batch(self, model: HookedModel, prepared, labels: np.ndarray, options, start: int) -> dict[str, np.ndarray]:
        """per_input's arrays for one batch starting at run position `start`."""
        with torch.no_grad():
            pred = model.run(prepared, capture=False).logits.argmax(-1).cpu().numpy()
        target = np.where(labels >= 0, labels, pred)
        partner = pair_partners(target, prepared.token_mask.sum(-1).cpu().numpy(), options.pairs, options.seed + start)
        L, H, T, n = model.spec.n_layers, model.spec.n_heads, prepared.token_mask.shape[1], len(prepared)
        shapes = {"heads": (L, H), "attn": (L,), "mlp": (L,), "resid": (L, T)}
        out = {f"{d}_{k}": np.full((n, *shapes[k]), np.nan, np.float32) for d in options.directions for k in PER_PAIR}
        idx = np.flatnonzero(partner >= 0)
        if len(idx):
            clean, corrupted = prepared.select(idx), prepared.select(partner[idx])
            for d in options.directions:
                effects = patch_effects(model, clean, corrupted, target[idx], target[partner[idx]], d)
                for k in PER_PAIR:
                    v = effects[k].float().cpu().numpy()
                    out[f"{d}_{k}"][idx] = v if k != "resid" else np.where(clean.token_mask.numpy()[:, None], v, np.nan)
        out["partner"] = np.where(partner >= 0, partner + start, -1)
        out["clean_class"] = target.astype(np.int64)
        out["corrupted_class"] = np.where(partner >= 0, target[partner], -1).astype(np.int64)
        return out

    def summarise(self, arrays, options, spec: ModelSpec | None = None) -> dict[str, pd.DataFrame]:
        """heads: the mean effect per head over the pairs (layer, head, metric = direction, value); layers: the mean
        effect of each block's attention and MLP output (direction, layer, component, value)."""
        heads = {d: np.nanmean(np.asarray(arrays[f"{d}_heads"], np.float64), 0) for d in options.directions}
        rows = [
            {"direction": d, "layer": l, "component": k, "value": float(v)}
            for d in options.directions
            for k in ("attn", "mlp")
            for l, v in enumerate(np.nanmean(np.asarray(arrays[f"{d}_{k}"], np.float64), 0))
        ]
        return {"heads": scores_frame(heads), "layers": pd.DataFrame(rows)}


def pad_nan(parts: list[np.ndarray]) -> np.ndarray:
    """Per-batch arrays [b, ...] as one [n, ...], float arrays padded with NaN on their last axis (text: each
    batch pads to its own token count)."""
    if parts[0].dtype.kind != "f":
        return np.concatenate(parts)
    width = max(p.shape[-1] for p in parts)
    pad = [np.pad(p, [(0, 0)] * (p.ndim - 1) + [(0, width - p.shape[-1])], constant_values=np.nan) for p in parts]
    return np.concatenate(pad)
