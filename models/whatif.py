"""What-if forwards: remove skip connections and/or MLP sublayers, as hooks of one run (models/hooks.py).

    tr = m.run(batch, hooks=path_hooks(m, skip=True, mlp=True))   # a pure attention stack (Dong et al. 2021)

A removed MLP outputs zeros at hook_mlp_out (its skip is kept, so the block passes its attention result on
unchanged, through ln2 in post-LN blocks). A removed skip connection is subtracted from its sublayer's
output, so that the block's own add cancels it: hook_attn_out - hook_resid_pre, and hook_mlp_out -
hook_resid_mid (the MLP's residual in pre-LN ViT/DeiT blocks, x + f(LN(x)), and post-LN BERT blocks,
LN(x + f(x)), alike).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from models.adapter import HookedModel
from models.hooks import Hook, HookFn


def _layers(model: HookedModel, layers: Iterable[int] | None) -> list[int]:
    n = model.spec.n_layers
    chosen = list(range(n)) if layers is None else sorted({int(l) for l in layers})
    bad = [l for l in chosen if not 0 <= l < n]
    if bad:
        raise ValueError(f"layers must be in 0..{n - 1}, got {bad}.")
    return chosen


def path_hooks(
    model: HookedModel, skip: bool = False, mlp: bool = False, layers: Iterable[int] | None = None
) -> list[Hook]:
    """Hooks for one run in which blocks `layers` (all by default) run without their skip connections
    (skip=True) and/or without their MLP sublayer (mlp=True). They keep the residual [B, T, D] they subtract:
    build them anew for each run."""
    hooks: list[Hook] = []
    for l in _layers(model, layers) if (skip or mlp) else []:
        p, seen = f"blocks.{l}.", dict[str, torch.Tensor]()

        def stash(x: torch.Tensor, name: str, seen=seen) -> None:
            seen[name] = x

        def minus(residual: str, seen=seen) -> HookFn:
            return lambda x, name: x - seen[residual]

        if skip:
            hooks += [
                (p + "hook_resid_pre", stash),
                (p + "hook_attn_out", minus(p + "hook_resid_pre")),
                (p + "hook_resid_mid", stash),
            ]
        drop: HookFn = (lambda x, name: torch.zeros_like(x)) if mlp else minus(p + "hook_resid_mid")
        hooks.append((p + "hook_mlp_out", drop))
    return hooks
