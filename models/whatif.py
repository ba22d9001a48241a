"""What-if forwards: remove skip connections and/or MLP sublayers, and record MLP activations.

Both are context managers around `model.run(...)` that put forward hooks on the stable `model.blocks[l]`
handles and always remove them in `finally` (TransformerLens / captum style):

    with ablate_paths(m, skip=True, mlp=True):       # a pure attention stack (Dong et al. 2021)
        tr = m.run(batch)
    with record_activation(m) as acts:               # acts[l] = (input [B, T, F], output [B, T, F])
        m.run(batch, capture=False)
    with record_outputs(m, lambda b: b.layer, [L - 1]) as out:   # any block module, e.g. the last block

Skip removal works for pre-LN (ViT/DeiT: x + f(LN(x))) and post-LN (BERT: LN(x + f(x))) blocks alike: the
attention sublayer's residual is the block input; the MLP's residual is the input of ln2 when ln2 runs
before the MLP (pre-LN), else the input of fc1 (post-LN). The hooks subtract that residual from the
sublayer output, so the block's own addition cancels it; a removed MLP outputs zeros (its skip is kept,
so the block passes its attention result on unchanged, through ln2 in post-LN blocks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch
from torch import nn

from models.adapter import Block, HookedModel


def _first_arg(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _layers(model: HookedModel, layers: Iterable[int] | None) -> list[int]:
    n = model.spec.n_layers
    chosen = list(range(n)) if layers is None else sorted({int(l) for l in layers})
    bad = [l for l in chosen if not 0 <= l < n]
    if bad:
        raise ValueError(f"layers must be in 0..{n - 1}, got {bad}.")
    return chosen


@contextlib.contextmanager
def ablate_paths(model: HookedModel, skip: bool = False, mlp: bool = False, layers: Iterable[int] | None = None):
    """Within the block, blocks `layers` (all by default) run without skip connections (skip=True) and/or
    without their MLP sublayer (mlp=True). Hooks are removed on exit, also after an exception."""
    chosen = _layers(model, layers)
    handles = []
    try:
        for l in chosen if (skip or mlp) else []:
            b = model.blocks[l]
            seen: dict[str, torch.Tensor] = {}

            def block_in(mod, args, kwargs, seen=seen):
                seen.clear()
                seen["x"] = _first_arg(args, kwargs)

            def remember(name, seen=seen):
                def hook(mod, args, kwargs, seen=seen):
                    seen[name] = _first_arg(args, kwargs)

                return hook

            def attn_out(mod, args, out, seen=seen):
                return out - seen["x"]

            def mlp_out(mod, args, out, seen=seen):
                if mlp:
                    return torch.zeros_like(out)
                return out - seen.get("ln2_in", seen.get("fc1_in"))

            handles.append(b.layer.register_forward_pre_hook(block_in, with_kwargs=True))
            handles.append(b.fc2.register_forward_hook(mlp_out))
            if skip:
                handles.append(b.o.register_forward_hook(attn_out))
                handles.append(b.ln2.register_forward_pre_hook(remember("ln2_in"), with_kwargs=True))
                handles.append(b.fc1.register_forward_pre_hook(remember("fc1_in"), with_kwargs=True))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def record_outputs(model: HookedModel, module_of: Callable[[Block], nn.Module], layers: Iterable[int] | None = None):
    """Yields a dict filled during the forward: {layer: (input, output)} (detached) of the module
    `module_of(model.blocks[layer])` for each chosen layer (e.g. `lambda b: b.act`). Hooks are removed on exit."""
    chosen = _layers(model, layers)
    store: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    try:
        for l in chosen:

            def keep(mod, args, out, l=l):
                store[l] = (args[0].detach(), (out[0] if isinstance(out, tuple) else out).detach())

            handles.append(module_of(model.blocks[l]).register_forward_hook(keep))
        yield store
    finally:
        for h in handles:
            h.remove()


def record_activation(model: HookedModel, layers: Iterable[int] | None = None):
    """record_outputs of each block's MLP activation function: {layer: (input [B, T, F], output [B, T, F])}."""
    return record_outputs(model, lambda b: b.act, layers)
