"""Circuit analyses on the hook points (the Circuits section of docs/methods.md): direct logit attribution
(`direct_logit_attribution`), composition scores from the weights (`composition_scores`) and activation
patching between a clean and a corrupted input (`patch_effects`).

Shapes: B inputs, L layers, H heads, T tokens, D width, dh head width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import Batch, HookedModel, Resume, TextModel, Trace, VisionModel
from models.hooks import EMBED, keep
from models.text import PROMPT_LOGIT_SCALE

PARTS = ("embed", "heads", "mlp", "attn_bias", "mlp_bias", "norm_bias", "readout_bias")


# -- direct logit attribution ------------------------------------------------------------------------------
def _frozen_norm(norm: nn.Module, x: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A LayerNorm read with its scale frozen at its input x [B, T, D]: it is then linear plus its bias, so a
    direction up [B, T, D] on its output (d target / d output) becomes the direction on its input
    (I - 11^T/D)(g * up) / sigma [B, T, D], and its bias contributes sum(beta * up) [B]. Identity passes up."""
    if isinstance(norm, nn.Identity):
        return up, up.new_zeros(up.shape[0])
    if not isinstance(norm, nn.LayerNorm):
        raise ValueError(f"Direct logit attribution reads LayerNorms only, got {type(norm).__name__}.")
    sigma = (x.var(-1, unbiased=False, keepdim=True) + norm.eps).sqrt()
    gu = up * norm.weight.to(up.dtype) if norm.weight is not None else up
    bias = (up * norm.bias.to(up.dtype)).sum((1, 2)) if norm.bias is not None else up.new_zeros(up.shape[0])
    return (gu - gu.mean(-1, keepdim=True)) / sigma, bias


def _readout(model: HookedModel, hidden: torch.Tensor, batch: Batch, target: torch.Tensor):
    """The target logit as a linear function of the last residual stream hidden [B, T, D], every scale of the head
    frozen at the forward's value: (direction [B, T, D], constant [B]) with logit = <direction, hidden> + constant."""
    B = hidden.shape[0]
    up = torch.zeros_like(hidden)
    if isinstance(model, VisionModel):
        const = hidden.new_zeros(B)
        for i, clf in enumerate(model.classifiers):  # the head averages the classifiers of the readout rows
            up[:, i] = clf.weight.to(hidden.dtype)[target] / len(model.classifiers)
            if clf.bias is not None:
                const = const + clf.bias.to(hidden.dtype)[target] / len(model.classifiers)
        direction, norm_bias = _frozen_norm(model.base.layernorm, hidden, up)
        return direction, const + norm_bias
    if not isinstance(model, TextModel):
        raise ValueError(f"Direct logit attribution does not know the head of {type(model).__name__}.")
    if model.spec.head == "prompts":  # scale * normalize(pool(h)) . prompt[target], the norm frozen
        mask = batch.token_mask.to(hidden)
        weights = torch.zeros_like(mask)
        if model.pooling == "cls":
            weights[:, 0] = 1.0
        else:
            weights = mask / mask.sum(1, keepdim=True).clamp_min(1.0)
        pooled = (hidden * weights[..., None]).sum(1)
        scale = PROMPT_LOGIT_SCALE / pooled.norm(dim=-1).clamp_min(1e-12)
        prompt = model.prompt_embeddings().to(hidden.dtype)[target]  # [B, D]
        return weights[..., None] * (scale[:, None] * prompt)[:, None], hidden.new_zeros(B)
    clf = model.net.classifier
    if not (model._pooler_head() and isinstance(clf, nn.Linear)):
        raise ValueError(
            f"Direct logit attribution reads a BERT pooler + linear classifier or a prompt head; {model.spec.name}'s "
            f"head is {type(clf).__name__}."
        )
    dense = model.base.pooler.dense  # pooled = tanh(u), u = dense(h_CLS); the gain tanh(u)/u frozen
    u = F.linear(hidden[:, 0], dense.weight.to(hidden.dtype), dense.bias.to(hidden.dtype))
    gain = torch.where(u.abs() > 1e-12, torch.tanh(u) / u, torch.ones_like(u))
    w = gain * clf.weight.to(hidden.dtype)[target]  # [B, D] on u
    up[:, 0] = w @ dense.weight.to(hidden.dtype)
    const = (w * dense.bias.to(hidden.dtype)).sum(-1)
    if clf.bias is not None:
        const = const + clf.bias.to(hidden.dtype)[target]
    return up, const


def _targets(target, logits: torch.Tensor) -> torch.Tensor:
    """[B] class indices: target as an int, a sequence or a tensor [B] (entries < 0: the prediction), or None
    (the prediction of every input)."""
    pred = logits.argmax(-1)
    if target is None:
        return pred
    t = torch.as_tensor(target, dtype=torch.long, device=logits.device).expand(logits.shape[0])
    return torch.where(t >= 0, t, pred)


def direct_logit_attribution(model: HookedModel, batch: Batch, target=None) -> dict[str, torch.Tensor]:
    """Every part of the target logit (Elhage et al. 2021's direct path; the final norm, every post-LN block norm and
    BERT's pooler tanh read with their scales frozen at the forward's values, so the parts are linear and add up):

        embed [B]         the embedding output
        heads [B, L, H]   each head's output (value bias excluded), through the output projection
        mlp [B, L]        each MLP's output, its output bias excluded
        attn_bias [B, L]  the attention output bias plus the heads' value biases (constant, as patterns sum to 1)
        mlp_bias [B, L]   the MLP output bias
        norm_bias [B, L]  the biases of the block's LayerNorms (post-LN blocks; 0 for pre-LN)
        readout_bias [B]  the final norm's, the pooler's and the classifier's biases
        logit [B], target [B]

    The parts sum to logit = model.run(batch).logits[b, target[b]]. target: int, [B] or None (the prediction)."""
    L = model.spec.n_layers
    acts: dict[str, torch.Tensor] = {}
    points = ("hook_resid_pre", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "hook_mlp_out")
    names = [EMBED] + [f"blocks.{l}.{p}" for l in range(L) for p in points]
    with torch.no_grad():
        trace = model.run(batch, capture=False, hooks=[(n, keep(acts)) for n in names])
        assert trace.hidden is not None
        target_ = _targets(target, trace.logits)
        acts = {k: v.double() for k, v in acts.items()}  # the parts in float64 (weights converted as read)
        direction, readout_bias = _readout(model, trace.hidden.double(), batch.to(model.device), target_)
        parts = _blocks_backward(model, acts, direction)
    parts["readout_bias"] = readout_bias
    parts["logit"] = trace.logits.gather(1, target_[:, None])[:, 0].double()
    parts["target"] = target_
    return parts


def _blocks_backward(model: HookedModel, acts: dict[str, torch.Tensor], direction: torch.Tensor) -> dict:
    """The parts of <direction, last residual> block by block from the last: each block's writes are read with
    the direction there, which moves through the post-LN norms (frozen) on the way down."""
    L, H = model.spec.n_layers, model.spec.n_heads
    B = direction.shape[0]
    out = {k: direction.new_zeros(B, L) for k in ("mlp", "attn_bias", "mlp_bias", "norm_bias")}
    out["heads"] = direction.new_zeros(B, L, H)
    for l in reversed(range(L)):
        b, p = model.blocks[l], f"blocks.{l}."
        mlp_out, mid, attn_out, pre = (
            acts[p + k] for k in ("hook_mlp_out", "hook_resid_mid", "hook_attn_out", "hook_resid_pre")
        )
        if model.post_ln:  # post = ln2(mlp + mid), mid = ln1(attn + pre)
            direction, bias2 = _frozen_norm(b.ln2, mlp_out + mid, direction)
        b2 = b.fc2.bias.double() if b.fc2.bias is not None else mlp_out.new_zeros(mlp_out.shape[-1])
        out["mlp_bias"][:, l] = (direction * b2).sum((1, 2))
        out["mlp"][:, l] = (direction * (mlp_out - b2)).sum((1, 2))
        if model.post_ln:
            direction, bias1 = _frozen_norm(b.ln1, attn_out + pre, direction)
            out["norm_bias"][:, l] = bias1 + bias2
        w_o = b.o.weight.double()  # [D, H*dh]
        b_v = b.v.bias.double() if b.v.bias is not None else w_o.new_zeros(w_o.shape[1])
        z = acts[p + "attn.hook_z"]  # [B, T, H, dh]
        on_z = (direction @ w_o).unflatten(-1, (H, -1))  # <z_h W_O_h^T, d> = <z_h, d W_O_h>
        out["heads"][:, l] = ((z - b_v.unflatten(0, (H, -1))) * on_z).sum((1, 3))
        b_o = b.o.bias.double() if b.o.bias is not None else w_o.new_zeros(w_o.shape[0])
        out["attn_bias"][:, l] = (direction * (b_o + w_o @ b_v)).sum((1, 2))
    out["embed"] = (direction * acts[EMBED]).sum((1, 2))
    return out


def total(parts: dict[str, torch.Tensor]) -> torch.Tensor:
    """[B] the sum of the parts (PARTS) of a direct logit attribution: the target logit."""
    return torch.stack([parts[k].reshape(len(parts[k]), -1).sum(1) for k in PARTS]).sum(0)


# -- composition scores ------------------------------------------------------------------------------------
COMPOSITIONS = ("q", "k", "v")


def head_weights(model: HookedModel) -> dict[str, torch.Tensor]:
    """Every head's weights as row-vector maps x @ W (float64): q, k, v [L, H, D, dh] (the reading side; in a pre-LN
    model with the block's LayerNorm scale and centring folded in, as what it reads is normalised) and o
    [L, H, dh, D]. W_QK = W_Q W_K^T and W_OV = W_V W_O are [D, D]."""
    H = model.spec.n_heads
    out: dict[str, list] = {"q": [], "k": [], "v": [], "o": []}
    with torch.no_grad():
        for b in model.blocks:
            read = torch.eye(b.q.weight.shape[1], dtype=torch.float64)
            if not model.post_ln and isinstance(b.ln1, nn.LayerNorm):
                D = read.shape[0]
                centre = read - 1.0 / D
                read = centre * (b.ln1.weight.double().cpu() if b.ln1.weight is not None else 1.0)
            for name, proj in (("q", b.q), ("k", b.k), ("v", b.v)):
                w = proj.weight.double().cpu().T  # [D, H*dh]
                out[name].append((read @ w).unflatten(1, (H, -1)).transpose(0, 1))  # [H, D, dh]
            out["o"].append(b.o.weight.double().cpu().T.unflatten(0, (H, -1)))  # [H, dh, D]
    return {k: torch.stack(v) for k, v in out.items()}


def _frobenius(u: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """||U M V^T||_F for U [..., D, a], M [..., a, b], V [..., D, b] through the small Gram matrices:
    ||U M V^T||^2 = tr(M^T (U^T U) M (V^T V))."""
    gu, gv = u.transpose(-1, -2) @ u, v.transpose(-1, -2) @ v
    return ((m.transpose(-1, -2) @ gu @ m) * gv).sum((-1, -2)).clamp_min(0).sqrt()


def _scores(w: dict[str, torch.Tensor], chunk: int = 16) -> dict[str, torch.Tensor]:
    """Composition scores [N, N] (writer, reader) of the heads of w (head_weights' entries flattened to [N, ...]):
    ||W_OV^w R^r||_F / (||W_OV^w||_F ||R^r||_F) with R = W_QK (q), W_QK^T (k) or W_OV (v) of the reader; the
    writers `chunk` at a time."""
    q, k, v, o = w["q"], w["k"], w["v"], w["o"]  # [N, D, dh], [N, dh, D]
    eye = torch.eye(q.shape[-1], dtype=q.dtype)
    o_t = o.transpose(-1, -2)
    ov, qk = _frobenius(v, eye, o_t), _frobenius(q, eye, k)  # [N]
    readers = {"q": (q, k, qk), "k": (k, q, qk), "v": (v, o_t, ov)}  # R = first @ second^T
    out = {mode: q.new_empty(len(q), len(q)) for mode in readers}
    for i in range(0, len(q), chunk):
        ws = slice(i, i + chunk)
        for mode, (first, second, norm) in readers.items():
            m = o[ws, None] @ first[None]  # [n, N, dh, dh]: the writer's W_O into the reader's first factor
            out[mode][ws] = _frobenius(v[ws, None], m, second[None]) / (ov[ws, None] * norm[None]).clamp_min(1e-30)
    return out


def composition_scores(model: HookedModel, baseline_draws: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Q-, K- and V-composition (Elhage et al. 2021) of every head with every head of an earlier layer, from the
    weights alone: {mode: [L, H, L, H]} (writer layer, head, reader layer, head; NaN unless the writer's layer is
    below the reader's) and {mode + "_baseline": []} the mean score of random Gaussian matrices of the same shapes
    (`baseline_draws` seeded writers and readers, every pair of distinct draws)."""
    L, H = model.spec.n_layers, model.spec.n_heads
    w = head_weights(model)
    scores = _scores({k: t.flatten(0, 1) for k, t in w.items()})
    earlier = (torch.arange(L)[:, None, None, None] < torch.arange(L)[None, None, :, None]).expand(L, H, L, H)
    out = {mode: torch.where(earlier, s.reshape(L, H, L, H), torch.nan) for mode, s in scores.items()}
    gen = torch.Generator().manual_seed(seed)
    rand = {k: torch.randn(baseline_draws, *t.shape[2:], generator=gen, dtype=t.dtype) for k, t in w.items()}
    off = ~torch.eye(baseline_draws, dtype=torch.bool)
    out |= {f"{mode}_baseline": s[off].mean() for mode, s in _scores(rand).items()}
    return out


# -- activation patching -----------------------------------------------------------------------------------
DIRECTIONS = ("denoise", "noise")
PATCHED = ("heads", "attn", "mlp", "resid")
TINY_DIFF = 1e-6  # |clean - corrupted| logit difference below which the metric is not normalised
ROWS = {"cpu": 64, "cuda": 4096}  # rows per resumed forward (settings x pairs): a CPU runs big tiles slower per row


def _logit_diff(logits: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[R, C] logits, classes a, b [R] -> logit[a] - logit[b] [R] (float64)."""
    lg = logits.double()
    return (lg.gather(1, a[:, None]) - lg.gather(1, b[:, None]))[:, 0]


@dataclass
class Patching:
    """One patching experiment over B (clean, corrupted) pairs: the target run (patched: the corrupted run when
    denoising, the clean run when noising) and the source run (where patched activations come from), both
    forwards kept, the class pair, the logit differences of the corrupted (low) and clean (high) runs [B]."""

    model: HookedModel
    target: Batch
    source: Batch
    t_trace: Trace
    s_trace: Trace
    clean_class: torch.Tensor
    corrupted_class: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor
    gates: torch.Tensor | None = None

    def metric(self, logits: torch.Tensor) -> torch.Tensor:
        """[k * B, C] logits of k settings (in blocks of B) -> [k, B] normalised logit difference: 0 = the corrupted
        run, 1 = the clean run (Zhang & Nanda 2023); the plain difference to the corrupted run where the two runs'
        differences are within TINY_DIFF."""
        k = logits.shape[0] // len(self.low)
        diff = _logit_diff(logits, self.clean_class.repeat(k), self.corrupted_class.repeat(k)).unflatten(0, (k, -1))
        span = torch.where((self.high - self.low).abs() > TINY_DIFF, self.high - self.low, torch.ones_like(self.low))
        return (diff - self.low) / span

    def resumed(self, resume: Resume, hooks=()) -> torch.Tensor:
        """The metric [k, B] of the target run resumed from `resume` (k settings in blocks of B rows)."""
        with torch.no_grad():
            logits = self.model.run(
                self.target, capture=False, head_gates=self.gates, resume=resume, readout_only=True, hooks=hooks
            ).logits
        return self.metric(logits)

    def heads(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Block `layer`'s head outputs before gating [B, T, H, dh] in the target and in the source run."""
        return tuple(  # type: ignore[return-value]
            self.model.head_outputs(layer, tr.resid_list[layer], b).unflatten(-1, (self.model.spec.n_heads, -1))
            for tr, b in ((self.t_trace, self.target), (self.s_trace, self.source))
        )


def pair_runs(
    model: HookedModel,
    clean: Batch,
    corrupted: Batch,
    clean_class=None,
    corrupted_class=None,
    direction: str = "denoise",
    head_gates=None,
) -> Patching:
    """Both forwards of a patching experiment over B pairs (clean[i], corrupted[i]); the classes (int or [B]) default
    to each run's prediction; head_gates [L, H] apply to every run. ValueError unless both have the same tokens."""
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}: choose from {', '.join(DIRECTIONS)}.")
    if len(clean) != len(corrupted) or not torch.equal(clean.token_mask, corrupted.token_mask):
        raise ValueError(
            "Patching needs the clean and the corrupted input to have the same number of tokens, position by "
            f"position: got {clean.token_mask.sum(-1).tolist()} and {corrupted.token_mask.sum(-1).tolist()} tokens. "
            "Edit the corrupted text so that it keeps the clean text's token count."
        )
    gates = None if head_gates is None else torch.as_tensor(head_gates, dtype=torch.float32, device=model.device)
    with torch.no_grad():
        c_tr, x_tr = (model.run(b, capture=True, head_gates=gates) for b in (clean, corrupted))
    a, b = _targets(clean_class, c_tr.logits), _targets(corrupted_class, x_tr.logits)
    low, high = _logit_diff(x_tr.logits, a, b), _logit_diff(c_tr.logits, a, b)
    if direction == "denoise":
        return Patching(model, corrupted, clean, x_tr, c_tr, a, b, low, high, gates)
    return Patching(model, clean, corrupted, c_tr, x_tr, a, b, low, high, gates)


def _blocks_of(model: HookedModel, n: int, per_setting: int, max_rows: int | None) -> list[range]:
    """Settings 0..n-1 in groups whose rows (per_setting each) stay within max_rows (default by device: ROWS)."""
    size = max(1, (max_rows or ROWS.get(model.device.type, ROWS["cpu"])) // per_setting)
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


def patch_heads(p: Patching, max_rows: int | None = None) -> torch.Tensor:
    """[B, L, H] the metric with each head's output (attn.hook_z) patched from the source, one at a time: for layer
    l, the H settings run together from inside block l (its attention is the target's, as a head of layer l changes
    nothing before its output projection)."""
    L, H, B = p.model.spec.n_layers, p.model.spec.n_heads, len(p.low)
    out = p.low.new_empty(B, L, H)
    for l in range(L):
        t_z, s_z = p.heads(l)
        resid = p.t_trace.resid_list[l]
        for hs in _blocks_of(p.model, H, B, max_rows):
            z = t_z.repeat(len(hs), 1, 1, 1)  # [k * B, T, H, dh]
            for i, h in enumerate(hs):
                z[i * B : (i + 1) * B, :, h] = s_z[:, :, h]
            resume = Resume(resid.repeat(len(hs), 1, 1), l, z.flatten(2))
            out[:, l, hs.start : hs.stop] = p.resumed(resume).T
    return out


def _rows_hook(k: int, n: int, src: torch.Tensor):
    """A hook that replaces rows k * n .. (k + 1) * n of its point [R, T', D] by src [n, T, D] (cut to T')."""

    def fn(x: torch.Tensor, name: str) -> torch.Tensor:
        x = x.clone()
        x[k * n : (k + 1) * n] = src[:, : x.shape[1]]
        return x

    return fn


def patch_sublayers(p: Patching) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, L], [B, L]) the metric with each block's attention output (hook_attn_out) or MLP output (hook_mlp_out)
    patched from the source: both settings of block l run together from inside it."""
    L, B = p.model.spec.n_layers, len(p.low)
    attn, mlp = p.low.new_empty(B, L), p.low.new_empty(B, L)
    for l in range(L):
        t_z = p.heads(l)[0]
        hooks = [
            (f"blocks.{l}.hook_attn_out", _rows_hook(0, B, p.s_trace.attn_out_list[l])),
            (f"blocks.{l}.hook_mlp_out", _rows_hook(1, B, p.s_trace.mlp_out_list[l])),
        ]
        resume = Resume(p.t_trace.resid_list[l].repeat(2, 1, 1), l, t_z.repeat(2, 1, 1, 1).flatten(2))
        attn[:, l], mlp[:, l] = p.resumed(resume, hooks)
    return attn, mlp


def patch_resid(p: Patching, token_sets=None, max_rows: int | None = None) -> torch.Tensor:
    """[B, L, S] the metric with the residual stream entering block l (hook_resid_pre) patched from the source at the
    tokens of each set (default: each token alone, S = T), resumed at block l."""
    L, B, T = p.model.spec.n_layers, len(p.low), p.target.token_mask.shape[1]
    sets = [[t] for t in range(T)] if token_sets is None else [list(s) for s in token_sets]
    out = p.low.new_empty(B, L, len(sets))
    for l in range(L):
        t_r, s_r = p.t_trace.resid_list[l], p.s_trace.resid_list[l]
        for group in _blocks_of(p.model, len(sets), B, max_rows):
            resid = t_r.repeat(len(group), 1, 1)
            for i, k in enumerate(group):
                resid[i * B : (i + 1) * B, sets[k]] = s_r[:, sets[k]]
            out[:, l, group.start : group.stop] = p.resumed(Resume(resid, l)).T
    return out


def patch_effects(
    model: HookedModel,
    clean: Batch,
    corrupted: Batch,
    clean_class=None,
    corrupted_class=None,
    direction: str = "denoise",
    head_gates=None,
    max_rows: int | None = None,
) -> dict[str, torch.Tensor]:
    """Activation patching (pair_runs' arguments): the normalised logit difference (0 = corrupted, 1 = clean) with each
    component patched from the clean run into the corrupted one (denoise) or back (noise), one at a time:
    heads [B, L, H], attn and mlp [B, L] (each block's sublayer outputs), resid [B, L, T] (the stream entering each
    block at each token); clean_class, corrupted_class [B]."""
    p = pair_runs(model, clean, corrupted, clean_class, corrupted_class, direction, head_gates)
    attn, mlp = patch_sublayers(p)
    return {
        "heads": patch_heads(p, max_rows),
        "attn": attn,
        "mlp": mlp,
        "resid": patch_resid(p, None, max_rows),
        "clean_class": p.clean_class,
        "corrupted_class": p.corrupted_class,
    }


def patch_naive(
    model: HookedModel,
    clean: Batch,
    corrupted: Batch,
    clean_class=None,
    corrupted_class=None,
    direction: str = "denoise",
    head_gates=None,
) -> dict[str, torch.Tensor]:
    """patch_effects by one full forward per patched component with a replacing hook (the reference loop)."""
    p = pair_runs(model, clean, corrupted, clean_class, corrupted_class, direction, head_gates)
    L, H, T = model.spec.n_layers, model.spec.n_heads, p.target.token_mask.shape[1]
    source: dict[str, torch.Tensor] = {}
    names = [
        f"blocks.{l}.{point}"
        for l in range(L)
        for point in ("hook_resid_pre", "attn.hook_z", "hook_attn_out", "hook_mlp_out")
    ]
    with torch.no_grad():
        model.run(p.source, capture=False, head_gates=p.gates, hooks=[(n, keep(source)) for n in names])

    def metric(name: str, where) -> torch.Tensor:
        def swap(x: torch.Tensor, point: str) -> torch.Tensor:
            x = x.clone()
            x[where] = source[point][where]
            return x

        with torch.no_grad():
            return p.metric(model.run(p.target, capture=False, head_gates=p.gates, hooks=[(name, swap)]).logits)[0]

    every = slice(None)
    heads = torch.stack(
        [torch.stack([metric(f"blocks.{l}.attn.hook_z", (every, every, h)) for h in range(H)], -1) for l in range(L)], 1
    )
    attn = torch.stack([metric(f"blocks.{l}.hook_attn_out", every) for l in range(L)], 1)
    mlp = torch.stack([metric(f"blocks.{l}.hook_mlp_out", every) for l in range(L)], 1)
    resid = torch.stack(
        [torch.stack([metric(f"blocks.{l}.hook_resid_pre", (every, t)) for t in range(T)], -1) for l in range(L)], 1
    )
    return {
        "heads": heads,
        "attn": attn,
        "mlp": mlp,
        "resid": resid,
        "clean_class": p.clean_class,
        "corrupted_class": p.corrupted_class,
    }


PAIRINGS = ("other_class", "any")


def pair_partners(targets, lengths, rule: str = "other_class", seed: int = 0) -> np.ndarray:
    """The corrupted partner of each input [n] (an index, -1 where none fits), drawn with `seed` among the other
    inputs with the same token count (lengths [n]) and, for rule "other_class", another target class (targets [n])."""
    if rule not in PAIRINGS:
        raise ValueError(f"Unknown pairing {rule!r}: choose from {', '.join(PAIRINGS)}.")
    targets, lengths = np.asarray(targets), np.asarray(lengths)
    rng = np.random.default_rng(seed)
    out = np.full(len(targets), -1, dtype=np.int64)
    for i in range(len(targets)):
        fits = (np.arange(len(targets)) != i) & (lengths == lengths[i])
        if rule == "other_class":
            fits &= targets != targets[i]
        if fits.any():
            out[i] = rng.choice(np.flatnonzero(fits))
    return out
