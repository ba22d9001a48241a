"""Relevance maps: which input tokens (patches or word pieces) drove a class score (the Relevance section of the
methods document under docs/).

    from analysis.relevance import explain, METHODS
    maps = explain(model, batch, "attnlrp")            # [B, T'] over input tokens, prefix (CLS) excluded
    maps = explain(model, batch, "rollout", target=3)  # any class, not only the predicted one
    pixels = to_pixels(model, maps)                    # [B, S, S] for image models

Shapes: B inputs, L layers, H heads, T tokens (prefix + patches / word pieces), T' = T - n_prefix input
tokens, C classes. Maps are raw relevances (not normalised); `normalize_maps` scales each to [0, 1].

Attention-based maps read the row of the token the prediction is read from: the CLS token (and DeiT's
distillation token) for classifiers; for mean-pooled text encoders (minilm) the mean of all real rows.
Padding positions of text maps are 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from analysis.attention import rollout
from analysis.attribution import Method, RelevanceError, resolve_target, target_scores, token_attributions
from analysis.captum_methods import CAPTUM_METHODS
from analysis.options import Options, option
from models import Batch, HookedModel, TextModel
from models.lrp import ATTNLRP, CHEFER, STABILISERS, TEXT_READ_AT, Rules, lrp_forward, supports

PRECISIONS = ("float64", "certified", "float32")  # chefer2021's LRP pass (see _chefer2021)
PERTURB = 2.0**-16  # the certificate's relative move of each cancelling denominator (models.lrp.toward_zero)


# -- requirements ----------------------------------------------------------------------------------------
def _lrp_layout(model: HookedModel) -> str | None:
    return (
        None
        if supports(model)
        else (
            f"the LRP rules do not know the block layout of {model.spec.architecture}; "
            "use grad_rollout or a captum method."
        )
    )


def _cls_classifier(model: HookedModel) -> str | None:
    if model.spec.head == "classifier":
        return None
    return (
        f"{model.spec.name} mean-pools all its tokens, so no single CLS row of the last layer carries the "
        "prediction that GradCAM could weight; use grad_rollout or chefer2021 instead."
    )


@dataclass(frozen=True)
class CheferOptions(Options):
    precision: str = option(
        "float64",
        "float64: every map exact; certified: float32, and float64 for each input whose map rounding could move by "
        "more than `tolerance`; float32: fastest, off by more on some inputs (README)",
        choices=PRECISIONS,
    )
    tolerance: float = option(1e-2, "certified: the error allowed, as a share of the map's maximum", low=0.0, high=1.0)
    stabiliser: str = option(
        "chefer", "chefer: +1e-9 on every denominator (Chefer's code); signed: 1e-9 away from zero", choices=STABILISERS
    )


@dataclass(frozen=True)
class AttnLRPOptions(Options):
    read_at: str = option("words", "where a text model's relevance is read (ignored for images)", choices=TEXT_READ_AT)


def available_methods(model: HookedModel) -> list[str]:
    """Names of the methods that apply to `model`, in registry order."""
    return [n for n, m in METHODS.items() if m.applies_to(model)]


def check_method(model: HookedModel, method: str) -> Method:
    """The registry entry of `method`; raises RelevanceError if unknown or not applicable to `model`."""
    if method not in METHODS:
        raise RelevanceError(f"Unknown relevance method {method!r}. Methods: {', '.join(METHODS)}.")
    reason = METHODS[method].why_not(model)
    if reason:
        raise RelevanceError(f"{METHODS[method].label} does not apply to {model.spec.name}: {reason}")
    return METHODS[method]


# -- pure helpers on attention tensors --------------------------------------------------------------------
def weighted_rollout(maps: torch.Tensor, grads: torch.Tensor, readout: torch.Tensor) -> torch.Tensor:
    """Chefer's rollout read along the readout rows: A_l = mean_h (grads * maps)^+ ; R = (I + A_L) ... (I + A_1);
    returns readout^T (R - I), what the layers added to the readout rows.

    maps, grads [L, B, H, T, T], readout [B, T] -> [B, T]. Computed from the left (a row vector times each
    layer, [B, T] x [B, T, T]) instead of as the T x T product. With maps = attention it is gradient rollout
    (ICCV 2021); with maps = LRP relevance at the attention maps, Chefer CVPR 2021. For a CLS readout R - I
    changes no input column; for a mean readout it removes the uniform 1/T that would otherwise swamp the
    small weighted terms."""
    a = (grads.float() * maps.float()).clamp(min=0).mean(2)  # [L, B, T, T]
    start = readout.to(a.dtype)
    row = start
    for layer in a.flip(0):
        row = row + read_rows(layer, row, 0)
    return row - start


def read_rows(matrix: torch.Tensor, readout: torch.Tensor, n_prefix: int) -> torch.Tensor:
    """matrix [B, T, T] (or [B, H, T, T]) read along the readout rows readout [B, T] -> [B, T'] (or [B, H, T'])."""
    eq = "bt,bts->bs" if matrix.dim() == 3 else "bt,bhts->bhs"
    return torch.einsum(eq, readout.to(matrix.dtype), matrix)[..., n_prefix:]


def readout_weights(model: HookedModel, batch: Batch) -> torch.Tensor:
    """[B, T] weights of the token rows the class score is read from (sum 1): the prefix tokens for image
    classifiers, the model's own pooling (CLS or mean over real tokens) for text models."""
    mask = batch.token_mask.to(model.device)
    b, t = mask.shape
    if isinstance(model, TextModel):
        eye = torch.eye(t, device=model.device).expand(b, t, t)
        return model.pool(eye, mask).float()
    w = torch.zeros(b, t, device=model.device)
    w[:, : model.spec.n_prefix] = 1.0 / model.spec.n_prefix
    return w


def normalize_maps(maps) -> np.ndarray:
    """Each map [..., T'] scaled to [0, 1] by min-max; a constant map (e.g. all zero) becomes all zero."""
    m = np.asarray(maps, dtype=np.float32)
    lo, hi = m.min(-1, keepdims=True), m.max(-1, keepdims=True)
    span = hi - lo
    return np.where(span > 0, (m - lo) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


def to_grid(model: HookedModel, maps) -> np.ndarray:
    """[B, T'] token maps of an image model -> [B, h, w] on its patch grid."""
    if model.spec.grid is None:
        raise RelevanceError(f"{model.spec.name} is a text model: its maps have no pixel grid.")
    m = np.asarray(maps, dtype=np.float32)
    return m.reshape(m.shape[0], *model.spec.grid)


def to_pixels(model: HookedModel, maps, size: int | None = None) -> np.ndarray:
    """[B, T'] token maps of an image model -> [B, size, size] (bilinear; size defaults to the input size)."""
    grid = torch.from_numpy(to_grid(model, maps))[:, None]
    size = size or model.spec.image_layout()[3]
    return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


# -- the methods -------------------------------------------------------------------------------------------
def explain(model: HookedModel, batch: Batch, method: str, target=None, **options) -> np.ndarray:
    """Relevance of each input token for the target class: [B, T'] float32 (prefix tokens excluded).

    method: a key of METHODS; target: None (predicted class), an int, or B ints; options: the method's own
    (METHODS[method].options: n_steps for integrated_gradients, precision for chefer2021, ...): an option the
    method does not have raises TypeError naming the valid ones, a bad value ValueError. Raises RelevanceError
    for an unknown or inapplicable method or a target out of range."""
    entry = check_method(model, method)
    chosen = entry.options.make(**options)
    batch = batch.to(model.device)
    mask = batch.token_mask[:, model.spec.n_prefix :].float()
    maps = entry.compute(model, batch, target, method=method, **dataclasses.asdict(chosen))
    return (maps.detach().float() * mask).cpu().numpy()


def _plain_run(model: HookedModel, batch: Batch, target, grad: bool):
    """Forward with captured attention; with grad, backward from the target scores.
    Returns (attention [L, B, H, T, T], gradients or None, logits [B, C], target [B])."""
    tr = model.run(batch, capture=True, grad=grad)
    tgt = resolve_target(model, tr.logits, target)
    if not grad:
        return tr.attentions, None, tr.logits.detach(), tgt
    grads = torch.autograd.grad(target_scores(tr.logits, tgt).sum(), tr.attn_list)  # no weight gradients
    return tr.attentions, torch.stack(grads), tr.logits.detach(), tgt


def _raw_attention(model: HookedModel, batch: Batch, target, **_) -> torch.Tensor:
    attn, _, _, _ = _plain_run(model, batch, target, grad=False)
    return read_rows(attn[-1].float().mean(1), readout_weights(model, batch), model.spec.n_prefix)


def _rollout(model: HookedModel, batch: Batch, target, **_) -> torch.Tensor:
    attn, _, _, _ = _plain_run(model, batch, target, grad=False)
    return read_rows(rollout(attn), readout_weights(model, batch), model.spec.n_prefix)


def _grad_rollout(model: HookedModel, batch: Batch, target, **_) -> torch.Tensor:
    attn, grads, _, _ = _plain_run(model, batch, target, grad=True)
    return weighted_rollout(attn, grads, readout_weights(model, batch))[:, model.spec.n_prefix :]


def _gradcam(model: HookedModel, batch: Batch, target, **_) -> torch.Tensor:
    attn, grads, _, _ = _plain_run(model, batch, target, grad=True)
    readout, p = readout_weights(model, batch), model.spec.n_prefix
    rows_a = read_rows(attn[-1].float(), readout, p)  # [B, H, T']
    rows_g = read_rows(grads[-1].float(), readout, p)
    keys = batch.token_mask[:, p:].float()[:, None]  # [B, 1, T']
    w = (rows_g * keys).sum(-1, keepdim=True) / keys.sum(-1, keepdim=True).clamp_min(1)
    return (w * rows_a).mean(1).clamp(min=0)


def _chefer2021(
    model: HookedModel,
    batch: Batch,
    target,
    precision: str = "float64",
    tolerance: float = 1e-2,
    stabiliser: str = "chefer",
    **_,
) -> torch.Tensor:
    """Chefer et al. 2021's map [B, T']. It divides by sums and activations that cancel, so a float32 pass can
    land off the exact (float64) map (how often: docs/performance.md's table). precision "float64" runs the LRP
    pass on the model's float64 copy; "float32" on the model; "certified": `certified_chefer`. stabiliser:
    safe_div's rule (Chefer's +1e-9 by default)."""
    rules = dataclasses.replace(CHEFER, stabiliser=stabiliser)
    if precision == "certified":
        return certified_chefer(model, batch, target, tolerance, rules)[0]
    twin = model.float64() if precision == "float64" else model
    return _chefer_maps(model, batch, _chefer_rollout(twin, batch, target, rules)[0][0])


def certified_chefer(
    model: HookedModel, batch: Batch, target=None, tolerance: float = 1e-2, rules: Rules = CHEFER
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chefer's maps [B, T'] within `tolerance` (of each map's maximum) of the float64 maps, at about float32
    cost: a float32 pass, with a second rule backward whose cancelling denominators move towards zero by PERTURB
    of their terms' size (models.lrp.Switch); each input whose map that moves by more than tolerance / 4, or whose
    predicted class is a near tie, is recomputed on the float64 copy. Returns (maps, refined [B] bool)."""
    (rolled, moved), tgt, logits = _chefer_rollout(model, batch, target, rules, PERTURB)
    maps = _chefer_maps(model, batch, rolled)
    refined = (_chefer_maps(model, batch, moved) - maps).abs().amax(1) > tolerance / 4 * maps.abs().amax(1)
    if target is None:
        top2 = logits.float().topk(min(2, logits.shape[1]), -1).values
        refined |= top2[:, 0] - top2[:, -1] < 1e-4 * top2.abs().amax(1).clamp_min(1.0)
    rows = refined.nonzero()[:, 0].tolist()
    if rows:
        part = batch.select(rows)
        maps[rows] = _chefer_maps(model, part, _chefer_rollout(model.float64(), part, tgt[rows], rules)[0][0])
    return maps, refined


def _chefer_maps(model: HookedModel, batch: Batch, rolled: torch.Tensor) -> torch.Tensor:
    """Chefer's rollout rows [B, T] -> the map [B, T'] (float32) over the input tokens, padding 0."""
    keep = batch.token_mask[:, model.spec.n_prefix :].to(model.device).float()
    return rolled[:, model.spec.n_prefix :].float() * keep


def _attnlrp(model: HookedModel, batch: Batch, target, read_at: str = "words", **_) -> torch.Tensor:
    return lrp_relevance(model, batch, ATTNLRP, target, read_at)[0]


def _chefer_rollout(
    model: HookedModel, batch: Batch, target, rules: Rules = CHEFER, perturb: float = 0.0
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """Chefer et al. 2021's rollout of mean_h (grad A * R_A)^+ along the readout rows [B, T] (weighted_rollout),
    from one forward with Chefer's rules: its plain backward gives the gradients at the maps, its rule backward
    the LRP relevance R_A at the maps (starting from R = 1 at the target logit). Returns ([rollout rows] and,
    with perturb > 0, those of a second rule backward with perturbed denominators; target [B]; logits [B, C])."""
    fwd = lrp_forward(model, batch, rules)
    readout = readout_weights(model, batch)
    logits = fwd.logits.detach()
    tgt = resolve_target(model, logits, target)
    y = target_scores(fwd.logits, tgt)
    grads = torch.stack(fwd.plain_grad(y.sum(), fwd.attn))
    seed = (y / torch.where(y.detach().abs() > 1e-6, y.detach(), torch.ones_like(y))).sum()

    def rolled(again: bool) -> torch.Tensor:
        rule = torch.autograd.grad(seed, fwd.attn, retain_graph=again)
        return weighted_rollout(torch.stack([a.detach() * g for a, g in zip(fwd.attn, rule)]), grads, readout)

    out = [rolled(perturb > 0)]
    if perturb > 0 and fwd.rules.switch is not None:
        fwd.rules.switch.perturb = perturb
        out.append(rolled(False))
    return out, tgt, logits


def lrp_relevance(model: HookedModel, batch: Batch, rules: Rules = ATTNLRP, target=None, read_at: str = "words"):
    """Input relevance by the LRP `rules`, starting from the target logit. Returns (token relevance
    [B, T'] (pixels summed per patch for images, embedding dimensions for text), total input relevance [B]
    (prefix tokens included), target logits [B], target [B]). With AttnLRP the total is about the target
    logit; the gap is what biases, position embeddings and the softmax absorb (`conservation_split`).
    read_at: where text relevance is read, the word embeddings or the embedding output (TEXT_READ_AT)."""
    batch = batch.to(model.device)
    check_method(model, rules.name)
    fwd = lrp_forward(model, batch, rules, read_at)
    tgt = resolve_target(model, fwd.logits, target)
    y = target_scores(fwd.logits, tgt)
    rel = fwd.inputs.detach() * torch.autograd.grad(y.sum(), fwd.inputs)[0]
    if model.spec.modality == "text":
        rel = rel * batch.token_mask[..., None].float()
    return token_attributions(model, rel), rel.flatten(1).sum(1), y.detach(), tgt


READ_AT = dict(  # where text relevance is read (models.lrp.TEXT_READ_AT, the default first) and its label
    zip(
        TEXT_READ_AT,
        (
            "the word embeddings (as in the AttnLRP paper)",
            "the embedding output (after LayerNorm: word + position + token type)",
        ),
        strict=True,
    )
)


# -- the registry: every method, its labels and its computation ------------------------------------------
METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "attention",
            "Raw attention",
            "Vaswani et al. 2017",
            "Last layer's attention from the readout token, averaged over heads; class-agnostic.",
            "attention",
            False,
            _raw_attention,
        ),
        Method(
            "rollout",
            "Attention rollout",
            "Abnar & Zuidema, ACL 2020",
            "Product of the head-averaged attention (plus identity for the residual) over all layers; class-agnostic.",
            "attention",
            False,
            _rollout,
        ),
        Method(
            "grad_rollout",
            "Gradient rollout",
            "Chefer et al., ICCV 2021",
            "Rollout of attention weighted by its gradient for the target class (positive part, head mean).",
            "attention x gradient",
            True,
            _grad_rollout,
        ),
        Method(
            "chefer2021",
            "Transformer attribution (LRP)",
            "Chefer et al., CVPR 2021",
            "Rollout of the LRP relevance at each attention map times its gradient (alpha=1, beta=0 LRP).",
            "LRP",
            True,
            _chefer2021,
            _lrp_layout,
            options=CheferOptions,
        ),
        Method(
            "attnlrp",
            "AttnLRP",
            "Achtibat et al., ICML 2024",
            "LRP with rules for softmax, matmul and LayerNorm: input x modified gradient in one backward pass; "
            "relevance sums to about the target logit.",
            "LRP",
            True,
            _attnlrp,
            _lrp_layout,
            reads_text_at=True,
            options=AttnLRPOptions,
        ),
        Method(
            "gradcam",
            "Attention GradCAM",
            "Selvaraju et al. 2017; Chefer et al. 2021 (ViT baseline)",
            "Last layer's CLS-row attention per head weighted by that head's mean gradient, positive part.",
            "attention x gradient",
            True,
            _gradcam,
            _cls_classifier,
        ),
    ]
} | CAPTUM_METHODS
CAPTUM = tuple(CAPTUM_METHODS)  # the captum methods, in order
