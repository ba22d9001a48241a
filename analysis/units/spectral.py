"""Spectral metrics over a dataset: per input and layer, the HC/DC energy of each stream, rank collapse,
attention entropy and, for images, the Fourier profile and feature-map variance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from analysis.spectral import spectral_metrics
from analysis.units.base import Inputs, RunOptions, Unit
from models import HookedModel

# spectral_metrics keys with the batch on axis 1 ([L(+1), B, ...]), stored as [N, L(+1), ...]
PER_INPUT = (
    "resid_ratio",
    "resid_share",
    "attn_out_ratio",
    "attn_out_share",
    "mlp_out_ratio",
    "mlp_out_share",
    "rank",
    "entropy",
    "profile",
    "variance",
)


@dataclass(frozen=True)
class SpectralOptions(RunOptions):
    label: ClassVar[str] = "spectral"


class Spectral(Unit):
    name = "spectral"
    description = (
        "per layer: HC/DC ratio and HC share of the residual stream, attention and MLP outputs, rank collapse, "
        "attention entropy per head; for images the Fourier profile and feature-map variance"
    )
    Options = SpectralOptions

    def per_input(self, model: HookedModel, batch: Inputs, labels: np.ndarray, options) -> dict[str, np.ndarray]:
        """The PER_INPUT keys of analysis.spectral.spectral_metrics, as [n, L(+1), ...] (no per-head responses)."""
        parts: dict[str, list] = {}
        for idx in batch.batches(options.batch_size):
            out = spectral_metrics(model, batch.prepare(model, idx), attention=False)
            for k in PER_INPUT:
                if k in out:
                    parts.setdefault(k, []).append(np.moveaxis(np.asarray(out[k], dtype=np.float32), 1, 0))
        return {k: np.concatenate(v) for k, v in parts.items()}
