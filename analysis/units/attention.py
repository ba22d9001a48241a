"""Attention statistics over a dataset: every head's distance, ring profile, entropy and CLS/sink mass per input,
and optionally one pattern vector per (input, head) for the pattern clusters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from analysis.attention import TEXT_RINGS, head_statistics, map_attention
from analysis.patterns import pattern_vectors
from analysis.units.base import Inputs, RunOptions, Unit, option
from models import HookedModel


@dataclass(frozen=True)
class AttentionOptions(RunOptions):
    label: ClassVar[str] = "attention"

    patterns: bool = option(False, "also each head's pattern vector per input (vectors [N, L, H, F])")


class AttentionStatistics(Unit):
    name = "attention"
    description = "attention statistics per input and head: distance, rings, entropy, CLS/sink mass"
    Options = AttentionOptions

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """analysis.attention.head_statistics per input ([n, L, H], ring [n, L, H, R], n_tokens [n]; text rings
        pooled past TEXT_RINGS - 1); with patterns, vectors [n, L, H, F] (analysis.patterns.pattern_vectors)."""
        spec = model.spec
        n_rings = TEXT_RINGS if spec.grid is None else None

        def per_batch(attn, mask):
            out = head_statistics(attn, spec.grid, spec.n_prefix, spec.patch_size, mask, n_rings)
            if options.patterns:
                out["vectors"] = pattern_vectors(attn, spec.grid, spec.n_prefix, mask)
            return out

        stats = map_attention(model, list(batch.dataset.inputs), per_batch, batch_size=options.batch_size)
        return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in stats.items()}
