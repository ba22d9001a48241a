"""The data a hooked forward returns: `Batch` (prepared inputs) and `Trace` (captured activations).

Stable names, in the spirit of TransformerLens' ActivationCache (shapes: L layers, B inputs,
H heads, T tokens, D width, C classes):

    trace.logits       [B, C]            class scores (classifier logits or prompt-head scores)
    trace.attentions   [L, B, H, T, T]   attention probabilities, rows = queries
    trace.resid        [L+1, B, T, D]    residual stream: embeddings, then the output of each block
    trace.attn_out     [L, B, T, D]      attention sublayer output (after the output projection)
    trace.mlp_out      [L, B, T, D]      MLP sublayer output (after its second linear layer)
    trace.token_mask   [B, T]            True for real tokens, False for padding
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from models.hooks import Hook


@dataclass(frozen=True)
class Resume:
    """Where a forward starts instead of the embeddings (HookedModel.run's resume): resid [B, T, D], the residual
    stream entering block `layer`; heads [B, T, H*dh] (optional), that block's head outputs before gating
    (HookedModel.head_outputs), so the block starts at its attn.hook_z."""

    resid: torch.Tensor
    layer: int = 0
    heads: torch.Tensor | None = None


@dataclass
class Batch:
    """Inputs ready for a model.

    tensors: what the network's embeddings take (pixel_values [B, C, S, S], or input_ids,
    attention_mask and token_type_ids [B, T]); token_mask [B, T] bool; tokens: per input, the token
    strings (text) or None; images: [B, S, S, C] floats in [0, 1] as the model sees them (images only);
    notes: messages for the user (e.g. a text was truncated).
    """

    tensors: dict[str, torch.Tensor]
    token_mask: torch.Tensor
    tokens: list[list[str]] | None = None
    images: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.token_mask.shape[0])

    def to(self, device) -> Batch:
        return replace(
            self, tensors={k: v.to(device) for k, v in self.tensors.items()}, token_mask=self.token_mask.to(device)
        )

    def select(self, idx) -> Batch:
        """The inputs at positions `idx` (a list of ints or a slice) as a new Batch."""
        idx = list(range(len(self)))[idx] if isinstance(idx, slice) else [int(i) for i in idx]
        t = torch.as_tensor(idx, dtype=torch.long)
        return replace(
            self,
            tensors={k: v[t.to(v.device)] for k, v in self.tensors.items()},
            token_mask=self.token_mask[t.to(self.token_mask.device)],
            tokens=None if self.tokens is None else [self.tokens[i] for i in idx],
            images=None if self.images is None else self.images[idx],
        )

    def repeat(self, n: int) -> Batch:
        """Each input repeated n times, in blocks: [x0..xB-1, x0..xB-1, ...] (for batched gate configs)."""
        return self.select(list(range(len(self))) * n)


@dataclass
class Trace:
    """Activations of one forward. Lists hold live per-layer tensors (in the autograd graph when the run
    asked for gradients); the properties stack them into detached tensors with the shapes above.

    start_layer: the first block that ran (0 unless the run resumed from a given residual state);
    the per-layer lists then cover blocks start_layer .. L-1 and resid starts with the given state.
    """

    logits: torch.Tensor
    token_mask: torch.Tensor
    hidden: torch.Tensor | None = None  # [B, T, D] the last block's output (first readout_rows tokens if readout_only)
    attn_list: list[torch.Tensor] = field(default_factory=list)
    resid_list: list[torch.Tensor] = field(default_factory=list)
    attn_out_list: list[torch.Tensor] = field(default_factory=list)
    mlp_out_list: list[torch.Tensor] = field(default_factory=list)
    start_layer: int = 0

    def capture_hooks(self, layers: Iterable[int], grad: bool = False) -> list[Hook]:
        """Read hooks that fill the per-layer lists from blocks `layers`: attn.hook_pattern (d/dA retained
        when grad), hook_attn_out, hook_mlp_out, hook_resid_post (resid_list[0] is the run's to fill)."""

        def pattern(probs: torch.Tensor, name: str) -> None:
            if grad and probs.requires_grad:
                probs.retain_grad()
            self.attn_list.append(probs)

        reads = (
            ("attn.hook_pattern", pattern),
            ("hook_attn_out", lambda x, name: self.attn_out_list.append(x)),
            ("hook_mlp_out", lambda x, name: self.mlp_out_list.append(x)),
            ("hook_resid_post", lambda x, name: self.resid_list.append(x)),
        )
        return [(f"blocks.{l}.{point}", fn) for l in layers for point, fn in reads]

    @staticmethod
    def _stack(xs: list[torch.Tensor]) -> torch.Tensor:
        if not xs:
            raise ValueError("Nothing was captured: run the model with capture=True.")
        return torch.stack([x.detach() for x in xs])

    @property
    def attentions(self) -> torch.Tensor:
        """[L, B, H, T, T] attention probabilities."""
        return self._stack(self.attn_list)

    @property
    def resid(self) -> torch.Tensor:
        """[L+1, B, T, D] residual stream (embeddings, then after each block)."""
        return self._stack(self.resid_list)

    @property
    def attn_out(self) -> torch.Tensor:
        """[L, B, T, D] attention sublayer outputs."""
        return self._stack(self.attn_out_list)

    @property
    def mlp_out(self) -> torch.Tensor:
        """[L, B, T, D] MLP sublayer outputs."""
        return self._stack(self.mlp_out_list)

    def to_numpy(self) -> TraceArrays:
        """The captured activations as float32 numpy arrays on the CPU (picklable, e.g. for a cache)."""

        def arr(x: torch.Tensor) -> np.ndarray:
            return x.detach().float().cpu().numpy()

        return TraceArrays(
            logits=arr(self.logits),
            token_mask=self.token_mask.cpu().numpy(),
            attentions=arr(self.attentions),
            resid=arr(self.resid),
            attn_out=arr(self.attn_out),
            mlp_out=arr(self.mlp_out),
        )

    @classmethod
    def from_arrays(cls, arrays: TraceArrays) -> Trace:
        """A Trace (CPU tensors) from its array form, for the analyses that take a Trace."""

        def layers(x: np.ndarray) -> list[torch.Tensor]:
            return list(torch.from_numpy(x).unbind(0))

        return cls(
            logits=torch.from_numpy(arrays.logits),
            token_mask=torch.from_numpy(arrays.token_mask),
            attn_list=layers(arrays.attentions),
            resid_list=layers(arrays.resid),
            attn_out_list=layers(arrays.attn_out),
            mlp_out_list=layers(arrays.mlp_out),
        )

    def attention_grads(self) -> torch.Tensor:
        """[L, B, H, T, T] d(objective)/dA after `.backward()` on a run with grad=True."""
        grads = [a.grad for a in self.attn_list]
        if not grads or any(g is None for g in grads):
            raise ValueError("No attention gradients: run with grad=True and call backward() first.")
        return torch.stack([g for g in grads if g is not None])


@dataclass(frozen=True)
class TraceArrays:
    """A Trace's activations as numpy arrays, shapes as above: logits [B, C], token_mask [B, T], attentions
    [L, B, H, T, T], resid [L+1, B, T, D], attn_out and mlp_out [L, B, T, D]. Trace.to_numpy makes one,
    Trace.from_arrays turns it back."""

    logits: np.ndarray
    token_mask: np.ndarray
    attentions: np.ndarray
    resid: np.ndarray
    attn_out: np.ndarray
    mlp_out: np.ndarray

    @property
    def probs(self) -> np.ndarray:
        """[B, C] softmax of the logits."""
        z = np.exp(self.logits - self.logits.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)
