"""Layer-wise relevance propagation for transformers, written as modified gradients.

Every rule changes the backward pass of one operation so that, for its input x, `x * x.grad` is the
relevance the rule assigns to x given the output's relevance `y * y.grad` (the gradient form of LRP used
by AttnLRP's reference code, LXT). One forward and one backward then give the relevance of every
activation: relevance = input * gradient. The rules are autograd Functions whose forward returns the
operation's output unchanged and whose backward does the work: the rule-modified forward costs about a
plain one, and no rule runs where no gradient is asked for. Each Function also keeps the operation's own
graph, so that a second backward over the same forward can give the ordinary gradient
(`LRPForward.plain_grad`). Two rule sets:

    ATTNLRP  (Achtibat et al. 2024)  linear: epsilon (plain gradient); LayerNorm: normaliser constant;
             activations: identity; softmax: x * (R - s * sum R) (its plain gradient); matmuls: half
             to each operand (so q, k get 1/4 of the plain gradient and v gets 1/2); adds: plain.
    CHEFER   (Chefer et al. CVPR 2021) linear: alpha=1, beta=0; LayerNorm, activations, softmax:
             relevance passes through unchanged; matmuls: gradient x input, halved per operand;
             residual adds: split by each operand's share, renormalised to the incoming total; every
             division by Chefer's safe_divide (+1e-9 whatever the sign; stabiliser="signed": away from zero).

The forward is the adapter's own block forward by hand (`HookedModel.attend` and `block_tail`, pre-LN for
ViT/DeiT, post-LN for BERT-family encoders). The attention rules (the two matmuls, the softmax) are hooks of
that one forward on its named points (`Rules.hooks`: attn.hook_q, hook_k, hook_attn_scores, hook_pattern,
hook_z); the residual adds are its `BlockRules` extension point (in post-LN blocks the add sits inside the
norm, where no hook point sees both operands); rules for modules (linear layers, norms, activations, also
in the embeddings and the classifier head, outside the hook points) are forward hooks installed under the
model's lock for the duration of the forward and removed in `finally`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from models.adapter import BlockRules, HookedModel
from models.hooks import Hook, HookFn, Hooks
from models.text import PROMPT_LOGIT_SCALE, TextModel
from models.trace import Batch
from models.vision import VisionModel

_ACTIVATIONS = (nn.Tanh, nn.GELU, nn.ReLU, nn.SiLU, nn.Sigmoid)


STABILISERS = ("chefer", "signed")  # how safe_div keeps a denominator off zero: Chefer's rule first (the default)


def safe_div(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-9, stabiliser: str = "chefer") -> torch.Tensor:
    """a / (b + eps), 0 where b == 0: Chefer's safe_divide, +eps whatever b's sign (eps again where b + eps
    is 0); stabiliser "signed": a / (b + eps * sign(b)), which never moves a denominator towards zero. Any
    non-finite quotient becomes 0. a broadcasts to b's shape."""
    if stabiliser == "signed":  # float ops on one new tensor: boolean masks are several times slower on CPU
        den = b.sign()
        torch.add(b, den, alpha=eps, out=den)
        return torch.div(a, den, out=den).nan_to_num_(0.0, 0.0, 0.0)
    den = b + eps
    den.add_(den.eq(0), alpha=eps)
    return torch.div(a, den).mul_(b.ne(0)).nan_to_num_(0.0, 0.0, 0.0)


def with_grad(value: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """A tensor equal to `value` in the forward whose gradient is that of `surrogate`."""
    return value.detach() + (surrogate - surrogate.detach())


class Switch:
    """Shared by the rule Functions of one rule-modified forward. While `plain` is set, their backward is the
    ordinary gradient (through the operation's own graph) instead of the rule. `stabiliser`: safe_div's rule
    for the rules' own divisions (STABILISERS). While `perturb` > 0, every denominator that can cancel moves
    towards zero by perturb times the size of its terms (`toward_zero`): a second backward so perturbed
    shows how far rounding in the denominators can move the relevance (analysis.relevance's certificate)."""

    def __init__(self, stabiliser: str = "chefer"):
        self.plain, self.stabiliser, self.perturb = False, stabiliser, 0.0


def _plain(switch: Switch | None) -> bool:
    return switch is not None and switch.plain


def _stabiliser(switch: Switch | None) -> str:
    return "chefer" if switch is None else switch.stabiliser


def toward_zero(d: torch.Tensor, size: Callable[[], torch.Tensor], switch: Switch | None) -> torch.Tensor:
    """d moved towards zero by switch.perturb * size() (the summed magnitudes of d's terms; same shape or
    broadcast), across zero where |d| is smaller; d itself when the switch does not perturb."""
    if switch is None or not switch.perturb:
        return d
    return d - d.sign() * (switch.perturb * size())


class _ScaleGrad(torch.autograd.Function):
    """x unchanged; the backward multiplies its gradient by c."""

    @staticmethod
    def forward(ctx, x, c, switch):
        ctx.c, ctx.switch = c, switch
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return (g if _plain(ctx.switch) else g * ctx.c), None, None


def scale_grad(x: torch.Tensor, c: float, switch: Switch | None = None) -> torch.Tensor:
    """x in the forward; its gradient multiplied by c in the backward."""
    return _ScaleGrad.apply(x, c, switch)


class _Passthrough(torch.autograd.Function):
    """Identity rule for an elementwise y = f(x): returns y; relevance moves unchanged from y_i to x_i
    (backward: gradient f(x)/x instead of f'(x); none to y). x, y: the same shape. The division is the
    gradient form's, not one of Chefer's (his identity rules divide by nothing): it keeps the signed
    stabiliser. cancels: x is a sum that can cancel (a norm's input, attention logits), so a perturbing switch
    moves it towards zero by its row's largest magnitude."""

    @staticmethod
    def forward(ctx, x, y, switch, cancels=False):
        ctx.save_for_backward(x, y)
        ctx.switch, ctx.cancels = switch, cancels
        return y.view_as(y)

    @staticmethod
    def backward(ctx, g):
        if _plain(ctx.switch):
            return None, g, None, None
        x, y = ctx.saved_tensors
        if ctx.cancels:
            x = toward_zero(x, lambda: x.abs().amax(-1, keepdim=True), ctx.switch)
        return safe_div(y, x, stabiliser="signed").mul_(g), None, None, None


class _AlphaBetaLinear(torch.autograd.Function):
    """LRP alpha=1, beta=0 for y = x W^T + bias: returns y; the backward gives x the gradient s W+ where
    x > 0 and s W- where x < 0 (their mean where x == 0, where the relevance x * gradient is 0 anyway),
    s = g * y / z, z = x+ W+^T + x- W-^T (Chefer's rule: z has no bias, y has); none to y, weight, bias.
    x [..., in], y [..., out], weight [out, in] and bias [out] or None, both detached."""

    @staticmethod
    def forward(ctx, x, y, weight, bias, switch):
        ctx.save_for_backward(x, y, weight, bias)
        ctx.switch = switch
        return y.view_as(y)

    @staticmethod
    def backward(ctx, g):
        if _plain(ctx.switch):
            return None, g, None, None, None
        x, y, w, bias = ctx.saved_tensors
        ax, aw = x.abs(), w.abs()
        z2 = F.linear(ax, aw, None if bias is None else -bias).add_(y)  # 2 z = x W^T + |x| |W|^T
        z2 = toward_zero(z2, lambda: 2 * F.linear(ax, aw), ctx.switch)
        s_half = safe_div(y, z2, 2e-9, _stabiliser(ctx.switch)).mul_(g)
        # s W+ where x > 0, s W- where x < 0: (s W + sign(x) s |W|) / 2, two matmuls either way
        return (s_half @ w).addcmul_(torch.sign(x, out=ax), s_half @ aw), None, None, None, None


class _RenormalisedAdd(torch.autograd.Function):
    """a + b whose backward splits the relevance R = (a+b) * g between a and b by gradient x input and
    rescales each share so that |share_a| : |share_b| is kept and the two sum to sum(R) (per sample)."""

    @staticmethod
    def forward(ctx, a, b, switch):
        ctx.save_for_backward(a, b)
        ctx.switch = switch
        return a + b

    @staticmethod
    def backward(ctx, g):
        if _plain(ctx.switch):
            return g, g, None
        a, b = ctx.saved_tensors
        dims = tuple(range(1, g.dim()))
        ra, rb = ((t * g).sum(dims, keepdim=True) for t in (a, b))
        ra, rb = (
            toward_zero(r, lambda t=t: (t * g).abs().sum(dims, keepdim=True), ctx.switch) for r, t in ((ra, a), (rb, b))
        )
        total, norm, rule = ra + rb, ra.abs() + rb.abs(), _stabiliser(ctx.switch)
        fa = safe_div(safe_div(ra.abs(), norm, stabiliser=rule) * total, ra, stabiliser=rule)
        fb = safe_div(safe_div(rb.abs(), norm, stabiliser=rule) * total, rb, stabiliser=rule)
        return g * fa, g * fb, None


@dataclass(frozen=True)
class Rules(BlockRules):
    """One LRP rule set, applied as modified gradients (see the module docstring): `hooks` for the attention,
    the adapter's block extension point for the residual adds, and `module_rules` hooks the modules."""

    name: str
    linear_alpha_beta: bool  # alpha=1, beta=0 on linear layers (else epsilon / plain gradient)
    norm_identity: bool  # norms pass relevance unchanged (else: treat the normaliser as a constant)
    softmax_identity: bool  # softmax passes relevance unchanged (else: AttnLRP's rule = plain gradient)
    renormalise_adds: bool  # Chefer's residual rule (else: plain gradient x input)
    matmul_share: float = 0.5
    stabiliser: str = "chefer"  # safe_div's rule for the rules' divisions (STABILISERS)
    switch: Switch | None = field(default=None, compare=False, repr=False)  # set per forward by lrp_forward

    def linear(
        self, x: torch.Tensor, weight: torch.Tensor, y: torch.Tensor, bias: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The rule for a linear map y = x weight^T + bias (bias None: no bias)."""
        if not self.linear_alpha_beta:
            return y
        return _AlphaBetaLinear.apply(x, y, weight.detach(), None if bias is None else bias.detach(), self.switch)

    def norm(self, x: torch.Tensor, y: torch.Tensor, y_frozen: Callable[[], torch.Tensor]) -> torch.Tensor:
        """y: the norm's output; y_frozen(): the same computed with the normaliser detached."""
        return _Passthrough.apply(x, y, self.switch, True) if self.norm_identity else with_grad(y, y_frozen())

    def act(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _Passthrough.apply(x, y, self.switch)

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return _RenormalisedAdd.apply(a, b, self.switch) if self.renormalise_adds else a + b

    def hooks(self, n_layers: int) -> list[Hook]:
        """The attention rules as the hooks of one forward: each matmul gives each operand `matmul_share` of
        the relevance, q and k directly (attn.hook_q, attn.hook_k); for probs @ v the [B, H, T, T] side is the
        large one, so the output's gradient is scaled (attn.hook_z), which scales both factors'. Chefer's
        softmax rule reads the logits (attn.hook_attn_scores) at attn.hook_pattern."""
        scores: dict[str, torch.Tensor] = {}  # "blocks.{l}.attn": its logits [B, H, T, T] until its softmax

        def share(x: torch.Tensor, name: str) -> torch.Tensor:
            return scale_grad(x, self.matmul_share, self.switch)

        def logits(x: torch.Tensor, name: str) -> None:
            scores[name.rsplit(".", 1)[0]] = x

        def softmax(probs: torch.Tensor, name: str) -> torch.Tensor:
            return _Passthrough.apply(scores.pop(name.rsplit(".", 1)[0]), probs, self.switch, True)

        points: list[tuple[str, HookFn]] = [("hook_q", share), ("hook_k", share), ("hook_z", share)]
        if self.softmax_identity:
            points += [("hook_attn_scores", logits), ("hook_pattern", softmax)]
        return [(f"blocks.{l}.attn.{p}", fn) for l in range(n_layers) for p, fn in points]


ATTNLRP = Rules("attnlrp", linear_alpha_beta=False, norm_identity=False, softmax_identity=False, renormalise_adds=False)
CHEFER = Rules("chefer2021", linear_alpha_beta=True, norm_identity=True, softmax_identity=True, renormalise_adds=True)


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
                handles.append(mod.register_forward_hook(lambda m, i, y: rules.linear(i[0], m.weight, y, m.bias)))
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
    [B, T, D]: the embedding output (gradient retained), the residual stream entering block 0; rules: the
    rule set the forward ran with; embedding_sum [B, T, D] (text read at the word embeddings, else None):
    word + position + token-type embeddings as they enter the embedding LayerNorm (its gradient is that of
    the words)."""

    logits: torch.Tensor
    inputs: torch.Tensor
    attn: list[torch.Tensor]
    emb: torch.Tensor
    rules: Rules
    embedding_sum: torch.Tensor | None = None

    def plain_grad(self, output: torch.Tensor, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Ordinary gradients of the scalar `output` w.r.t. `inputs` (e.g. attn), through this same forward,
        whose graph is kept for the relevance backward. Needs rules whose every rule is a Function (Chefer's:
        AttnLRP's LayerNorm rule is a detached normaliser, which has no plain switch)."""
        if not self.rules.norm_identity:
            raise ValueError(f"{self.rules.name}: its LayerNorm rule cannot give plain gradients.")
        switch = self.rules.switch
        if switch is None:
            raise ValueError(f"{self.rules.name}: this forward was run without a switch (use lrp_forward).")
        switch.plain = True
        try:
            return torch.autograd.grad(output, inputs, retain_graph=True)
        finally:
            switch.plain = False


TEXT_READ_AT = ("words", "embedding")  # where a text model's input relevance is read: the default first


def lrp_forward(model: HookedModel, batch: Batch, rules: Rules, read_at: str = "words") -> LRPForward:
    """Run `batch` through `model` with `rules` on every operation (values equal the plain forward). Past
    its attention, the last block computes only the tokens the head reads (`readout_rows`), as
    `run(readout_only=True)` does: the other tokens' outputs reach no logit. read_at (text models): the
    leaf `inputs` is the word embeddings ("words", as in the AttnLRP paper's token heatmaps and LXT; the
    embedding LayerNorm's rule and the position and token-type embeddings take their share) or the embedding
    output ("embedding": after that LayerNorm, word + position + token type together).

    Call `.backward()` on a selected logit, then read relevances as input * gradient."""
    if not supports(model):
        raise ValueError(f"LRP rules do not know the block layout of {type(model).__name__}.")
    if read_at not in TEXT_READ_AT:
        raise ValueError(f"Unknown read_at {read_at!r}: use one of {', '.join(TEXT_READ_AT)}.")
    batch = batch.to(model.device)
    rules = replace(rules, switch=Switch(rules.stabiliser))
    embedding_sum = None
    with model.lock, torch.enable_grad(), module_rules(model, rules):
        if isinstance(model, TextModel) and read_at == "words":
            inputs, embedding_sum, emb = model.embed_from_words(batch)
            emb.retain_grad()
        elif isinstance(model, TextModel):
            inputs = emb = model.embed(batch).detach().requires_grad_(True)
        else:
            dtype = next(model.net.parameters()).dtype
            inputs = batch.tensors["pixel_values"].detach().to(dtype).requires_grad_(True)
            emb = model.embed(replace(batch, tensors={**batch.tensors, "pixel_values": inputs}))
            emb.retain_grad()
        mask = model.attention_mask(batch)
        h, attn = emb, []
        hooks = Hooks(rules.hooks(len(model.blocks)), len(model.blocks))
        for i, b in enumerate(model.blocks):
            rows = model.readout_rows if i == len(model.blocks) - 1 else None
            z, a = model.attend(i, h if model.post_ln else b.ln1(h), mask, rows, hooks, every_query=True)
            a.retain_grad()
            attn.append(a)
            h = model.block_tail(i, h, z, hooks, rules)
        if isinstance(model, TextModel) and model.spec.head == "prompts":
            pooled = model.pool(h, batch.token_mask)
            unit = rules.norm(
                pooled, F.normalize(pooled, dim=-1), lambda: pooled / pooled.norm(dim=-1, keepdim=True).detach()
            )
            prompts = model.prompt_embeddings().to(unit.dtype)
            logits = rules.linear(unit, PROMPT_LOGIT_SCALE * prompts, PROMPT_LOGIT_SCALE * unit @ prompts.T)
        else:
            logits = model.head_logits(h, batch)
    return LRPForward(logits, inputs, attn, emb, rules, embedding_sum)
