"""captum's attribution methods on the model interface (the registry in analysis/relevance.py lists them):
attributions over the pixels or the embedding output, summed per token.

    attr, delta = input_attributions(model, batch, "integrated_gradients", n_steps=64)  # [B, C, S, S] / [B, T, D]
    maps = token_attributions(model, attr)                                                # [B, T']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from analysis.options import Options, option
from analysis.targets import RelevanceError, resolve_target, token_attributions
from models import Batch, HookedModel


@dataclass(frozen=True)
class IntegratedGradientsOptions(Options):
    label: ClassVar[str] = "integrated_gradients"
    n_steps: int = option(32, "points on the straight path from the zero baseline", low=1)


@dataclass(frozen=True)
class GradientShapOptions(Options):
    label: ClassVar[str] = "gradient_shap"
    n_samples: int = option(16, "noisy points between the baseline and the input", low=1)
    stdevs: float = option(0.1, "noise, as a fraction of the input's range", low=0.0)


@dataclass(frozen=True)
class SmoothGradOptions(Options):
    label: ClassVar[str] = "smoothgrad"
    nt_samples: int = option(16, "noisy copies of the input", low=1)
    stdevs: float = option(0.15, "noise, as a fraction of the input's range", low=0.0)


@dataclass(frozen=True)
class NoCaptumOptions(Options):
    """saliency, input_x_gradient and occlusion take no options."""


CAPTUM_OPTIONS: dict[str, type[Options]] = {  # every captum method of the registry and its options, in order
    "integrated_gradients": IntegratedGradientsOptions,
    "saliency": NoCaptumOptions,
    "input_x_gradient": NoCaptumOptions,
    "gradient_shap": GradientShapOptions,
    "occlusion": NoCaptumOptions,
    "smoothgrad": SmoothGradOptions,
}


def _captum_setup(model: HookedModel, batch: Batch):
    """(inputs, forward function, additional forward args) for captum: pixel values [B, C, S, S] for
    images, the embedding output [B, T, D] for text (its attention mask travels as an extra argument so
    that captum expands it with the inputs)."""
    if model.spec.modality == "image":
        x = batch.tensors["pixel_values"].to(model.device).detach().requires_grad_(True)
        t = batch.token_mask.shape[1]

        def forward_pixels(pixels):
            b = Batch({"pixel_values": pixels}, torch.ones(len(pixels), t, dtype=torch.bool, device=pixels.device))
            return model.run(b, capture=False, grad=True).logits

        return x, forward_pixels, None
    x = model.embed(batch).detach().requires_grad_(True)

    def forward(emb, attention_mask):
        b = Batch({"attention_mask": attention_mask}, attention_mask.bool())
        return model.run(b, capture=False, grad=True, start_resid=emb).logits

    return x, forward, (batch.tensors["attention_mask"].to(model.device),)


def input_attributions(model: HookedModel, batch: Batch, method: str, target=None, **options):
    """captum attributions over the model's inputs: ([B, C, S, S] pixels or [B, T, D] embeddings,
    convergence delta [B] for integrated_gradients / gradient_shap else None).

    Baselines are zeros (the mean colour for normalised images, the zero embedding for text). options: the
    method's (METHODS[method].options; e.g. n_steps for integrated_gradients), validated."""
    import captum.attr as ca

    if method not in CAPTUM_OPTIONS:
        raise RelevanceError(f"{method!r} is not a captum method ({', '.join(CAPTUM_OPTIONS)}); use explain().")
    opts: Any = CAPTUM_OPTIONS[method].make(**options)  # the method's own options class
    batch = batch.to(model.device)
    x, forward, extra = _captum_setup(model, batch)
    with torch.no_grad():
        tgt = resolve_target(model, forward(x, *(extra or ())), target)
    base = torch.zeros_like(x)
    spread = float((x.max() - x.min()).detach()) or 1.0
    kw = dict(target=tgt, additional_forward_args=extra)
    if method == "occlusion":
        patch = model.spec.image_layout()[2] if model.spec.modality == "image" else 0
        window = (x.shape[1], patch, patch) if patch else (1, x.shape[-1])
    attribute = {
        "integrated_gradients": lambda: ca.IntegratedGradients(forward).attribute(
            x,
            base,
            n_steps=opts.n_steps,
            internal_batch_size=8 * len(x),
            return_convergence_delta=True,
            **kw,
        ),
        "saliency": lambda: (ca.Saliency(forward).attribute(x, **kw), None),
        "input_x_gradient": lambda: (ca.InputXGradient(forward).attribute(x, **kw), None),
        "gradient_shap": lambda: ca.GradientShap(forward).attribute(
            x,
            base[:1],
            n_samples=opts.n_samples,
            stdevs=opts.stdevs * spread,
            return_convergence_delta=True,
            **kw,
        ),
        # captum gives every element of an occluded window the window's drop: divide by its size
        "occlusion": lambda: (
            ca.Occlusion(forward).attribute(x, window, strides=window, baselines=0.0, perturbations_per_eval=16, **kw)
            / float(np.prod(window)),
            None,
        ),
        "smoothgrad": lambda: (
            ca.NoiseTunnel(ca.Saliency(forward)).attribute(
                x,
                nt_type="smoothgrad",
                nt_samples=opts.nt_samples,
                stdevs=opts.stdevs * spread,
                **kw,
            ),
            None,
        ),
    }[method]
    with model.lock:
        return attribute()


def captum_map(model: HookedModel, batch: Batch, target, method: str, **options) -> torch.Tensor:
    """Any captum method (its name in `method`) as token relevance [B, T'] (the registry's compute)."""
    attr, _ = input_attributions(model, batch, method, target, **options)
    return token_attributions(model, attr)
