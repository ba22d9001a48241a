"""Named hook points (TransformerLens names) and the hooks of one forward.

`model.run(batch, hooks=[(name, fn), ...])` calls fn(tensor, name) at the point `name`; fn returns None (it
only reads) or a tensor of the same shape that replaces the activation from there on. Several hooks on one
point run in the order given. Hooks belong to the call: they are never attached to a shared module, so
concurrent calls on the same model compute exactly what they compute alone.

Shapes: B inputs, T tokens (T' = the queries a block computes: T, or the readout rows in the last block of
a `readout_only` run), H heads, dh head width, D model width, F MLP width.

    name                              shape            what
    hook_embed                        [B, T, D]        the embedding output (positions, and BERT's norm, included)
    blocks.{l}.hook_resid_pre         [B, T, D]        the residual stream entering block l
    blocks.{l}.attn.hook_q            [B, T', H, dh]   queries
    blocks.{l}.attn.hook_k            [B, T, H, dh]    keys
    blocks.{l}.attn.hook_v            [B, T, H, dh]    values
    blocks.{l}.attn.hook_attn_scores  [B, H, T', T]    attention logits q k^T / sqrt(dh) + padding mask, pre-softmax
    blocks.{l}.attn.hook_pattern      [B, H, T', T]    attention probabilities (rows = queries)
    blocks.{l}.attn.hook_z            [B, T', H, dh]   each head's output, before the output projection
    blocks.{l}.hook_attn_out          [B, T', D]       the attention sublayer's output (after the projection)
    blocks.{l}.hook_resid_mid         [B, T', D]       the residual stream between attention and MLP
    blocks.{l}.mlp.hook_pre           [B, T', F]       the MLP's first linear layer's output (activation input)
    blocks.{l}.mlp.hook_post          [B, T', F]       the MLP activation's output
    blocks.{l}.hook_mlp_out           [B, T', D]       the MLP sublayer's output (after its second linear layer)
    blocks.{l}.hook_resid_post        [B, T', D]       the block's output

Post-LN blocks (BERT) normalise after each residual add: there hook_resid_mid and hook_resid_post are the
normalised sums. A run that resumes (`run(resume=Resume(...))`) does not reach the points before it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence

import torch

HookFn = Callable[[torch.Tensor, str], "torch.Tensor | None"]
Hook = tuple[str, HookFn]

EMBED = "hook_embed"
BLOCK_POINTS = (
    "hook_resid_pre",
    "attn.hook_q",
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_attn_scores",
    "attn.hook_pattern",
    "attn.hook_z",
    "hook_attn_out",
    "hook_resid_mid",
    "mlp.hook_pre",
    "mlp.hook_post",
    "hook_mlp_out",
    "hook_resid_post",
)


@functools.cache
def point_names(n_layers: int) -> frozenset[str]:
    """Every hook point name of a model with n_layers blocks."""
    return frozenset([EMBED] + [f"blocks.{l}.{p}" for l in range(n_layers) for p in BLOCK_POINTS])


class Hooks:
    """The hooks of one forward, by point; calling it at a point applies them in order: x -> x'."""

    def __init__(self, hooks: Iterable[Hook], n_layers: int):
        self.fns: dict[str, list[HookFn]] = {}
        valid = point_names(n_layers)
        for hook in hooks:
            if not (isinstance(hook, tuple) and len(hook) == 2 and callable(hook[1])):
                raise TypeError(f"Hooks are (name, fn) pairs with a callable fn(tensor, name), got {hook!r}.")
            name, fn = hook
            if name not in valid:
                points = ", ".join(f"blocks.{{l}}.{p}" for p in BLOCK_POINTS)
                raise ValueError(
                    f"Unknown hook point {name!r}. Valid names: {EMBED}, {points} with l in 0..{n_layers - 1}."
                )
            self.fns.setdefault(name, []).append(fn)

    def __call__(self, name: str, x: torch.Tensor) -> torch.Tensor:
        for fn in self.fns.get(name, ()):
            out = fn(x, name)
            if out is not None:
                if not torch.is_tensor(out) or out.shape != x.shape:
                    got = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
                    raise ValueError(f"The hook on {name!r} must return None or a tensor {tuple(x.shape)}, got {got}.")
                x = out
        return x


NO_HOOKS = Hooks((), 0)


def keep(store: dict[str, torch.Tensor]) -> HookFn:
    """A read hook that stores each tensor it sees, detached, under its point's name."""

    def read(x: torch.Tensor, name: str) -> None:
        store[name] = x.detach()

    return read


def head_gate_hooks(gates: torch.Tensor, layers: Sequence[int]) -> list[Hook]:
    """Hooks on attn.hook_z [B, T', H, dh] that multiply head h of block l by gates [L, H] (or per input
    [B, L, H]) [l, h], for each l in layers."""

    def gate(l: int) -> HookFn:
        def fn(z: torch.Tensor, name: str) -> torch.Tensor:
            g = gates[l] if gates.dim() == 2 else gates[:, l, None]
            return z * g.to(z.dtype)[..., None]

        return fn

    return [(f"blocks.{l}.attn.hook_z", gate(l)) for l in layers]


def temperature_hooks(tau: Sequence[float], layers: Sequence[int]) -> list[Hook]:
    """Hooks on attn.hook_attn_scores [B, H, T', T] that divide block l's attention logits by tau[l], for each
    l in layers with tau[l] != 1."""

    def scale(t: float) -> HookFn:
        return lambda scores, name: scores / t

    return [(f"blocks.{l}.attn.hook_attn_scores", scale(float(tau[l]))) for l in layers if float(tau[l]) != 1.0]
