"""Layer-wise relevance propagation for transformers, written as modified gradients.

Every rule changes the backward pass of one operation so that, for its input x, `x * x.grad` is the
relevance the rule assigns to x given the output's relevance `y * y.grad` (the gradient form of LRP used
by AttnLRP's reference code, LXT). One forward and one backward then give the relevance of every
activation: relevance = input * gradient. Two rule sets:

    ATTNLRP  (Achtibat et al. 2024)  linear: epsilon (plain gradient); LayerNorm: normaliser constant;
             activations: identity; softmax: x * (R - s * sum R) (its plain gradient); matmuls: half
             to each operand (so q, k get 1/4 of the plain gradient and v gets 1/2); adds: plain.
    CHEFER   (Chefer et al. CVPR 2021) linear: alpha=1, beta=0; LayerNorm, activations, softmax:
             relevance passes through unchanged; matmuls: gradient x input, halved per operand;
             residual adds: split by each operand's share, renormalised to the incoming total.

The forward runs the network block by block through the `Block` handles (pre-LN for ViT/DeiT, post-LN
for BERT-family encoders) and computes attention from q, k, v itself so that the rules reach the softmax
and the two matmuls; rules for modules (linear layers, norms, activations, also in the classifier head)
are forward hooks installed for the duration of the forward and removed in `finally`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from models.adapter import PROMPT_LOGIT_SCALE, HookedModel, TextModel, VisionModel
from models.trace import Batch

_ACTIVATIONS = (nn.Tanh, nn.GELU, nn.ReLU, nn.SiLU, nn.Sigmoid)


def safe_div(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """a / b with b stabilised away from zero, and 0 where b == 0 (Chefer's safe_divide)."""
    den = b + eps * torch.where(b >= 0, 1.0, -1.0).to(b.dtype)
    return a / den * (b != 0)


def with_grad(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """A tensor equal to `value` in the forward whose gradient is that of `surrogate`."""
    return value.detach() + (surrogate - surrogate.detach())


def scale_grad(x: torch.Tensor, c: float) -> torch.Tensor:
    """x in the forward; its gradient multiplied by c in the backward."""
    return x * c + x.detach() * (1.0 - c)


def passthrough(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Identity rule for an elementwise y = f(x): relevance moves unchanged from y_i to x_i
    (gradient f(x)/x instead of f'(x))."""
    return with_grad(y, x * safe_div(y, x).detach())


class _RenormalisedAdd(torch.autograd.Function):
    """a + b whose backward splits the relevance R = (a+b) * g between a and b by gradient x input and
    rescales each share so that |share_a| : |share_b| is kept and the two sum to sum(R) (per sample)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a + b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        dims = tuple(range(1, g.dim()))
        ra, rb = (a * g).sum(dims, keepdim=True), (b * g).sum(dims, keepdim=True)
        total = ((a + b) * g).sum(dims, keepdim=True)
        norm = ra.abs() + rb.abs()
        fa = safe_div(safe_div(ra.abs(), norm) * total, ra)
        fb = safe_div(safe_div(rb.abs(), norm) * total, rb)
        return g * fa, g * fb


@dataclass(frozen=True)
class Rules:
    """One LRP rule set, applied as modified gradients (see the module docstring)."""

    name: str
    linear_alpha_beta: bool   # alpha=1, beta=0 on linear layers (else epsilon / plain gradient)
    norm_identity: bool       # norms pass relevance unchanged (else: treat the normaliser as a constant)
    softmax_identity: bool    # softmax passes relevance unchanged (else: AttnLRP's rule = plain gradient)
    renormalise_adds: bool    # Chefer's residual rule (else: plain gradient x input)
    matmul_share: float = 0.5

    def linear(self, x: torch.Tensor, weight: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.linear_alpha_beta:
            return y
        w = weight.detach()
        z = F.linear(x.clamp(min=0), w.clamp(min=0)) + F.linear(x.clamp(max=0), w.clamp(max=0))
        return with_grad(y, z * safe_div(y, z).detach())

    def norm(self, x: torch.Tensor, y: torch.Tensor, y_frozen: Callable[[], torch.Tensor]) -> torch.Tensor:
        """y: the norm's output; y_frozen(): the same computed with the normaliser detached."""
        return passthrough(x, y) if self.norm_identity else with_grad(y, y_frozen())

    def act(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return passthrough(x, y)

    def softmax(self, scores: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        return passthrough(scores, probs) if self.softmax_identity else probs

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _RenormalisedAdd.apply(a, b) if self.renormalise_adds else a + b


ATTNLRP = Rules("attnlrp", linear_alpha_beta=False, norm_identity=False, softmax_identity=False,
                renormalise_adds=False)
CHEFER = Rules("chefer2021", linear_alpha_beta=True, norm_identity=True, softmax_identity=True,
               renormalise_adds=True)


def supports(model: HookedModel) -> bool:
    """Whether the rules know the model's block layout (ViT/DeiT pre-LN, BERT-family post-LN)."""
    return isinstance(model, (VisionModel, TextModel))


@contextlib.contextmanager
def module_rules(model: HookedModel, rules: Rules):
    """Forward hooks that apply `rules` to every linear layer, LayerNorm and activation of the model
    (blocks and classifier head); removed on exit, also after an exception."""
    handles = []
    acts = {id(b.act): b.act for b in model.blocks}
    acts.update({id(mod): mod for mod in model.net.modules() if isinstance(mod, _ACTIVATIONS)})
    try:
        for mod in model.net.modules():
            if isinstance(mod, nn.Linear) and rules.linear_alpha_beta:
                handles.append(mod.register_forward_hook(lambda m, i, y: rules.linear(i[0], m.weight, y)))
            elif isinstance(mod, nn.LayerNorm):
                handles.append(mod.register_forward_hook(_norm_hook(rules)))
        for mod in acts.values():
            handles.append(mod.register_forward_hook(lambda m, i, y: rules.act(i[0], y)))
        yield
    finally:
        for h in handles:
            h.remove()


def _norm_hook(rules: Rules):
    def hook(mod: nn.LayerNorm, inputs, y):
        x = inputs[0]

        def frozen():
            dims = tuple(range(-len(mod.normalized_shape), 0))
            xc = x - x.mean(dims, keepdim=True)
            out = xc / (xc.pow(2).mean(dims, keepdim=True) + mod.eps).sqrt().detach()
            if mod.weight is not None:
                out = out * mod.weight
            return out if mod.bias is None else out + mod.bias
        return rules.norm(x, y, frozen)
    return hook


@dataclass
class LRPForward:
    """What a rule-modified forward returns.

    logits [B, C] (in the graph); inputs: the leaf relevance flows back to, pixel values [B, C, S, S] for
    images (through the patch embedding, epsilon rule) or the embedding output [B, T, D] for text: after
    `backward`, inputs * inputs.grad is their relevance; attn: L tensors [B, H, T, T] (attention
    probabilities, gradients retained): attn[l] * attn[l].grad is the relevance at that map; emb
    [B, T, D]: the embedding output (gradient retained), the residual stream entering block 0."""

    logits: torch.Tensor
    inputs: torch.Tensor
    attn: list[torch.Tensor]
    emb: torch.Tensor


def lrp_forward(model: HookedModel, batch: Batch, rules: Rules) -> LRPForward:
    """Run `batch` through `model` with `rules` on every operation (values equal the plain forward).

    Call `.backward()` on a selected logit, then read relevances as input * gradient."""
    if not supports(model):
        raise ValueError(f"LRP rules do not know the block layout of {type(model).__name__}.")
    batch = batch.to(model.device)
    post_ln = isinstance(model, TextModel)
    with model.lock, torch.enable_grad(), module_rules(model, rules):
        if model.spec.modality == "image":
            inputs = batch.tensors["pixel_values"].detach().requires_grad_(True)
            emb = model.embed(replace(batch, tensors={**batch.tensors, "pixel_values": inputs}))
            emb.retain_grad()
        else:
            inputs = emb = model.embed(batch).detach().requires_grad_(True)
        mask = model._block_args(batch)[0]
        h, attn = emb, []
        for b in model.blocks:
            x = h if post_ln else b.ln1(h)
            ctx, a = _attention(b, x, mask, model.spec.n_heads, rules)
            attn.append(a)
            if post_ln:
                h = b.ln1(rules.add(b.o(ctx), h))
                h = b.ln2(rules.add(b.fc2(b.act(b.fc1(h))), h))
            else:
                h = rules.add(h, b.o(ctx))
                h = rules.add(h, b.fc2(b.act(b.fc1(b.ln2(h)))))
        if model.spec.head == "prompts":
            pooled = model.pool(h, batch.token_mask)
            unit = rules.norm(pooled, F.normalize(pooled, dim=-1),
                              lambda: pooled / pooled.norm(dim=-1, keepdim=True).detach())
            prompts = model.prompt_embeddings().to(unit.dtype)
            logits = rules.linear(unit, PROMPT_LOGIT_SCALE * prompts, PROMPT_LOGIT_SCALE * unit @ prompts.T)
        else:
            logits = model._head(h, batch)
    return LRPForward(logits, inputs, attn, emb)


def _attention(b, x: torch.Tensor, mask: torch.Tensor | None, n_heads: int, rules: Rules):
    """Multi-head self-attention from the block's q, k, v projections with `rules` on the softmax and
    on both matmuls. x [B, T, D] -> (concatenated heads [B, T, H*dh], probabilities [B, H, T, T])."""
    q, k, v = (p(x).unflatten(-1, (n_heads, -1)).transpose(1, 2) for p in (b.q, b.k, b.v))
    share = rules.matmul_share
    scores = scale_grad(q, share) @ scale_grad(k, share).transpose(-1, -2) * q.shape[-1] ** -0.5
    if mask is not None:
        scores = scores + mask
    probs = rules.softmax(scores, scores.float().softmax(-1).to(q.dtype))
    probs.retain_grad()
    ctx = scale_grad(probs, share) @ scale_grad(v, share)
    return ctx.transpose(1, 2).flatten(2), probs
