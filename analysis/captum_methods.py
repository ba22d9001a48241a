"""captum's attribution methods on the model interface: each is a `CaptumMethod` of the one registry
(analysis.relevance.METHODS), whose `attribute` makes captum's call; attributions over the pixels or the
embedding output, summed per token.

    attr, delta = input_attributions(model, batch, "integrated_gradients", n_steps=64)  # [B, C, S, S] / [B, T, D]
    maps = token_attributions(model, attr)  # [B, T'] (analysis.attribution)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from analysis.attribution import Method, RelevanceError, resolve_target, token_attributions
from analysis.options import Options, option
from models import Batch, HookedModel, Resume


@dataclass(frozen=True)
class IntegratedGradientsOptions(Options):
    n_steps: int = option(32, "points on the straight path from the zero baseline", low=1)


@dataclass(frozen=True)
class GradientShapOptions(Options):
    n_samples: int = option(16, "noisy points between the baseline and the input", low=1)
    stdevs: float = option(0.1, "noise, as a fraction of the input's range", low=0.0)
    seed: int = option(0, "seed of the noise (the same input gives the same map)", low=0)


@dataclass(frozen=True)
class SmoothGradOptions(Options):
    nt_samples: int = option(16, "noisy copies of the input", low=1)
    stdevs: float = option(0.15, "noise, as a fraction of the input's range", low=0.0)
    seed: int = option(0, "seed of the noise (the same input gives the same map)", low=0)


@dataclass(frozen=True)
class Call:
    """What every captum call takes: forward (inputs -> logits), x (the inputs [B, C, S, S] or [B, T, D], with
    gradients), base (zeros like x), kw (target and the additional forward arguments), spread (x's range, the
    scale of the noise options) and window (occlusion's: a patch, or one word piece)."""

    forward: Callable
    x: torch.Tensor
    base: torch.Tensor
    kw: dict
    spread: float
    window: tuple[int, ...]


def _integrated_gradients(ca, c: Call, o) -> tuple:
    ig = ca.IntegratedGradients(c.forward)
    return ig.attribute(
        c.x, c.base, n_steps=o.n_steps, internal_batch_size=8 * len(c.x), return_convergence_delta=True, **c.kw
    )


def _saliency(ca, c: Call, o) -> tuple:
    return ca.Saliency(c.forward).attribute(c.x, **c.kw), None


def _input_x_gradient(ca, c: Call, o) -> tuple:
    return ca.InputXGradient(c.forward).attribute(c.x, **c.kw), None


def _gradient_shap(ca, c: Call, o) -> tuple:
    shap = ca.GradientShap(c.forward)
    stdevs = o.stdevs * c.spread
    return shap.attribute(c.x, c.base[:1], n_samples=o.n_samples, stdevs=stdevs, return_convergence_delta=True, **c.kw)


def _occlusion(ca, c: Call, o) -> tuple:
    # captum gives every element of an occluded window the window's drop: divide by its size
    w = c.window
    drop = ca.Occlusion(c.forward).attribute(c.x, w, strides=w, baselines=0.0, perturbations_per_eval=16, **c.kw)
    return drop / float(np.prod(w)), None


def _smoothgrad(ca, c: Call, o) -> tuple:
    tunnel = ca.NoiseTunnel(ca.Saliency(c.forward))
    return tunnel.attribute(
        c.x, nt_type="smoothgrad", nt_samples=o.nt_samples, stdevs=o.stdevs * c.spread, **c.kw
    ), None


def captum_map(model: HookedModel, batch: Batch, target, method: str, **options) -> torch.Tensor:
    """Any captum method (its name in `method`) as token relevance [B, T'] (the registry's compute)."""
    attr, _ = input_attributions(model, batch, method, target, **options)
    return token_attributions(model, attr)


@dataclass(frozen=True)
class CaptumMethod(Method):
    """A registry entry computed by captum: attribute(captum.attr, Call, options) -> (attributions, delta or None)."""

    compute: Callable[..., torch.Tensor] = captum_map
    attribute: Callable[..., tuple] = _saliency


def _entry(name, label, citation, description, attribute, family="gradient", options=None) -> CaptumMethod:
    extra = {"options": options} if options else {}
    return CaptumMethod(name, label, citation, description, family, family == "gradient", attribute=attribute, **extra)


CAPTUM_METHODS: dict[str, CaptumMethod] = {
    m.name: m
    for m in [
        _entry(
            "integrated_gradients",
            "Integrated Gradients",
            "Sundararajan et al., ICML 2017 (captum)",
            "Gradient x (input - baseline) averaged along the straight path from a zero baseline.",
            _integrated_gradients,
            options=IntegratedGradientsOptions,
        ),
        _entry(
            "saliency",
            "Saliency",
            "Simonyan et al. 2014 (captum)",
            "Absolute gradient of the target score with respect to the input.",
            _saliency,
        ),
        _entry(
            "input_x_gradient",
            "Input x Gradient",
            "Shrikumar et al. 2016 (captum)",
            "Input times the gradient of the target score.",
            _input_x_gradient,
        ),
        _entry(
            "gradient_shap",
            "GradientSHAP",
            "Lundberg & Lee, NeurIPS 2017 (captum)",
            "Expected gradient x (input - baseline) over noisy points between a zero baseline and the input.",
            _gradient_shap,
            options=GradientShapOptions,
        ),
        _entry(
            "occlusion",
            "Occlusion",
            "Zeiler & Fergus, ECCV 2014 (captum)",
            "Drop in the target score when one patch (or word piece) is replaced by the baseline.",
            _occlusion,
            family="perturbation",
        ),
        _entry(
            "smoothgrad",
            "SmoothGrad",
            "Smilkov et al. 2017 (captum NoiseTunnel)",
            "Saliency averaged over noisy copies of the input.",
            _smoothgrad,
            options=SmoothGradOptions,
        ),
    ]
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
        return model.run(b, capture=False, grad=True, resume=Resume(emb)).logits

    return x, forward, (batch.tensors["attention_mask"].to(model.device),)


def input_attributions(model: HookedModel, batch: Batch, method: str, target=None, **options):
    """captum attributions over the model's inputs: ([B, C, S, S] pixels or [B, T, D] embeddings,
    convergence delta [B] for integrated_gradients / gradient_shap else None).

    Baselines are zeros (the mean colour for normalised images, the zero embedding for text). options: the
    method's own (CAPTUM_METHODS[method].options; e.g. n_steps for integrated_gradients), validated."""
    import captum.attr as ca

    if method not in CAPTUM_METHODS:
        raise RelevanceError(f"{method!r} is not a captum method ({', '.join(CAPTUM_METHODS)}); use explain().")
    entry = CAPTUM_METHODS[method]
    opts: Any = entry.options.make(**options)  # the method's own options class
    batch = batch.to(model.device)
    x, forward, extra = _captum_setup(model, batch)
    with torch.no_grad():
        tgt = resolve_target(model, forward(x, *(extra or ())), target)
    patch = model.spec.image_layout()[2] if model.spec.modality == "image" else 0
    window = (x.shape[1], patch, patch) if patch else (1, x.shape[-1])
    spread = float((x.max() - x.min()).detach()) or 1.0
    call = Call(forward, x, torch.zeros_like(x), dict(target=tgt, additional_forward_args=extra), spread, window)
    with model.lock, _seeded(model, getattr(opts, "seed", None)):
        return entry.attribute(ca, call, opts)


@contextlib.contextmanager
def _seeded(model: HookedModel, seed: int | None):
    """torch's and numpy's global random generators seeded for the block and restored after (captum draws its
    noise from torch's, GradientSHAP its path points from numpy's), so a noisy method gives the same map on every
    call; nothing for a method without noise (seed None). Callers hold the model's lock."""
    if seed is None:
        yield
        return
    cuda = [model.device.index or 0] if model.device.type == "cuda" else []
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            np.random.seed(seed)
            yield
    finally:
        np.random.set_state(state)
