"""One hooked interface over every supported network (ViT, DeiT, BERT-family encoders): the spec, the block
handles and HookedModel, whose image and text sides are models/vision.py and models/text.py.

The adapter runs the network block by block by hand with the network's own modules, calling the named hook
points of models/hooks.py on the way: one mechanism captures every activation, gates heads, scales attention
temperature and replaces any activation. Hooks are arguments of one `run`, never attached to a module; the
run can also resume from a residual state or inside a block, and keep gradients for attention maps.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from models.hooks import EMBED, NO_HOOKS, Hook, Hooks, head_gate_hooks, temperature_hooks
from models.trace import Batch, Resume, Trace


@dataclass(frozen=True)
class ModelSpec:
    """What a model is. grid: (h, w) patch grid for images, None for text; n_prefix: tokens before the
    patches / words that carry no position (CLS, DeiT's distillation token); head: "classifier" or
    "prompts" (text encoder scored against label prompts)."""

    name: str
    modality: str
    n_layers: int
    n_heads: int
    d_model: int
    grid: tuple[int, int] | None
    has_cls: bool
    class_names: tuple[str, ...]
    architecture: str
    source: str
    n_prefix: int = 1
    patch_size: int | None = None
    image_size: int | None = None
    channels: int | None = None
    max_tokens: int | None = None
    head: str = "classifier"
    dataset: str | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def image_layout(self) -> tuple[int, int, int, int, int]:
        """(grid rows h, grid columns w, patch size, image size, channels) of an image model; ValueError for text."""
        if self.grid is None or self.patch_size is None or self.image_size is None or self.channels is None:
            raise ValueError(f"{self.name} reads {self.modality}: it has no image layout.")
        return self.grid[0], self.grid[1], self.patch_size, self.image_size, self.channels


@dataclass
class Block:
    """Stable handles to one transformer block's modules (names as in TransformerLens' blocks.N.*).

    attn holds the attention's scaling; q, k, v, o are the projections (o takes the concatenated
    heads [B, T, H*dh]); ln1/ln2 the norms around the sublayers (before them in pre-LN ViTs, after
    the residual add in post-LN BERTs); fc1, act, fc2 the MLP."""

    attn: nn.Module
    q: nn.Linear
    k: nn.Linear
    v: nn.Linear
    o: nn.Linear
    ln1: nn.Module
    ln2: nn.Module
    fc1: nn.Linear
    act: nn.Module
    fc2: nn.Linear


class BlockRules:
    """The extension point of the block forward by hand (`HookedModel.block_tail`): the residual adds, plain
    here (PLAIN); models/lrp.py's Chefer rules fill it to change the backward pass."""

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """A residual add: a sublayer's output plus the residual stream."""
        return a + b


PLAIN = BlockRules()


def _per_layer(value, n_layers: int, what: str) -> torch.Tensor | None:
    """A scalar or per-layer sequence as a float tensor [L], or None for 'no change'."""
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() == 1:
        t = t.expand(n_layers).clone()
    if t.numel() != n_layers:
        raise ValueError(f"{what} needs one value or {n_layers} (one per layer), got {t.numel()}.")
    if what == "temperature" and bool((t <= 0).any()):
        raise ValueError("temperature must be > 0.")
    return t


class HookedModel(ABC):
    """A network with one interface: spec, prepare, run, unembed (see models/__init__.py).

    post_ln: the blocks normalise after each residual add (BERT) rather than before each sublayer (ViT).
    readout_rows: the head reads only the first k tokens' last residual (k = 1 for a CLS readout, 2 for
    DeiT's CLS + distillation tokens), or None when it reads every token (mean pooling)."""

    post_ln = False
    _readout_rows: int | None = None

    @property
    def readout_rows(self) -> int | None:
        return self._readout_rows

    def __init__(self, net: nn.Module, spec: ModelSpec, blocks: list[Block], device: str):
        self.net = net.eval().to(device)
        self.spec = spec
        self.blocks = blocks
        self.device = torch.device(device)
        self.lock = threading.RLock()
        self._float64: HookedModel | None = None

    def float64(self) -> HookedModel:
        """This model with its network in float64, for passes that need exact sums: a copy made once per model and
        kept with it (the shared model is never converted, so no concurrent call, forward or backward, sees its
        weights change). The tokenizer and spec are shared; the copy has its own lock."""
        with self.lock:
            if self._float64 is None:
                shared = {id(v): v for k, v in vars(self).items() if k in ("spec", "tokenizer", "preprocess")}
                twin = copy.deepcopy(self, memo=shared)
                twin.net.to(torch.float64)
                self._float64 = twin
            return self._float64

    def __getstate__(self) -> dict:
        """For copy.deepcopy (float64): everything but the lock and the float64 copy."""
        return {k: v for k, v in vars(self).items() if k not in ("lock", "_float64")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock, self._float64 = threading.RLock(), None

    # -- provided by each family ----------------------------------------------------------------
    @abstractmethod
    def prepare(self, inputs) -> Batch:
        """Validate raw inputs (images or strings) into a Batch; raises data.InputError."""

    def embed(self, batch: Batch) -> torch.Tensor:
        """[B, T, D] the embedding output (residual stream before block 0)."""
        with self.lock:
            return self._embed(batch)

    @abstractmethod
    def _embed(self, batch: Batch) -> torch.Tensor:
        """embed's computation (the caller holds the lock)."""

    def attention_mask(self, batch: Batch) -> torch.Tensor | None:
        """The additive attention mask [B, 1, 1, T] the blocks apply to the scores (None: every token is real)."""
        return None

    def head_logits(self, hidden: torch.Tensor, batch: Batch) -> torch.Tensor:
        """[B, T, D] last residual -> [B, C] logits, as the original network computes them."""
        with self.lock:
            return self._head_logits(hidden, batch)

    @abstractmethod
    def _head_logits(self, hidden: torch.Tensor, batch: Batch) -> torch.Tensor:
        """head_logits' computation (the caller holds the lock)."""

    def unembed(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., C]: the model's own final norm + classifier (or prompt head), per token."""
        with self.lock:
            return self._unembed(hidden)

    @abstractmethod
    def _unembed(self, hidden: torch.Tensor) -> torch.Tensor:
        """unembed's computation (the caller holds the lock)."""

    # -- the hooked forward --------------------------------------------------------------------
    def _convenience_hooks(self, head_gates, temperature, layers: range) -> list[Hook]:
        """`run`'s temperature and head_gates keywords as hooks on blocks `layers` (models/hooks.py)."""
        L, H = self.spec.n_layers, self.spec.n_heads
        tau = _per_layer(temperature, L, "temperature")
        hooks = [] if tau is None else temperature_hooks(tau.tolist(), layers)
        if head_gates is not None:
            gates = (
                head_gates.to(self.device)
                if torch.is_tensor(head_gates)
                else torch.as_tensor(head_gates, dtype=torch.float32, device=self.device)
            )
            if gates.shape[-2:] != (L, H) or gates.dim() not in (2, 3):
                raise ValueError(f"head_gates must be [L, H] = [{L}, {H}] or [B, L, H], got {tuple(gates.shape)}.")
            hooks += head_gate_hooks(gates, layers)
        return hooks

    def run(
        self,
        batch: Batch,
        capture: bool = True,
        head_gates=None,
        temperature=None,
        grad: bool = False,
        resume: Resume | None = None,
        readout_only: bool = False,
        hooks: Sequence[Hook] = (),
    ) -> Trace:
        """Forward `batch`; returns a Trace (see models/trace.py for shapes).

        hooks: (name, fn) pairs on the named hook points (models/hooks.py); fn(tensor, name) returns None
        (read) or a replacement of the same shape. They belong to this call only.
        head_gates: [L, H] or [B, L, H] multipliers of each head's output (a hook on attn.hook_z; a tensor with
        requires_grad gives d/dg). temperature: scalar or [L]; divides the attention logits (a hook on
        attn.hook_attn_scores). These run before `hooks`; the capture reads after them.
        grad: build the autograd graph and retain d/dA on the captured attention probabilities.
        resume: start from a residual state instead of the embeddings (models.trace.Resume: blocks below
        resume.layer are not run, the captured lists start there; with resume.heads that block starts at its
        attn.hook_z, gates still applying, and is not captured).
        readout_only: the last block computes only the tokens the head reads (`readout_rows`); logits
        are unchanged, nothing is captured."""
        batch = batch.to(self.device)
        L = self.spec.n_layers
        start_layer = resume.layer if resume else 0
        if not 0 <= start_layer <= L:
            raise ValueError(f"resume.layer must be in 0..{L}.")
        start_heads = resume.heads if resume else None
        if (start_heads is not None or readout_only) and capture:
            raise ValueError("resume.heads and readout_only skip parts of the forward: run them with capture=False.")
        if start_heads is not None and start_layer == L:
            raise ValueError("resume.heads needs a resume.layer below the number of layers.")
        rows = self.readout_rows if readout_only else None
        needs_grad = (
            grad
            or (torch.is_tensor(head_gates) and head_gates.requires_grad)
            or (resume is not None and resume.resid.requires_grad)
        )
        trace = Trace(logits=torch.empty(0), token_mask=batch.token_mask, start_layer=start_layer)
        layers = range(start_layer, L)
        capture_hooks = trace.capture_hooks(layers, grad) if capture else []
        call = Hooks([*self._convenience_hooks(head_gates, temperature, layers), *hooks, *capture_hooks], L)
        with self.lock, torch.set_grad_enabled(bool(needs_grad)):
            h = call(EMBED, self.embed(batch)) if resume is None else resume.resid.to(self.device)
            if capture:
                trace.resid_list.append(h)
            mask, n = self.attention_mask(batch), h.shape[0]
            if n != len(batch) and mask is not None:  # batched gate configurations: the mask is tiled to match
                mask = mask.repeat(n // len(batch), 1, 1, 1)
            for l in layers:
                h = self.block(
                    l, h, mask, call, rows if l == L - 1 else None, start_heads if l == start_layer else None
                )
            trace.hidden = h
            trace.logits = self.head_logits(h, batch if n == len(batch) else batch.repeat(n // len(batch)))
        return trace

    # -- the block forward by hand: every forward, with its hook points ------------------------------
    def block(
        self,
        l: int,
        h: torch.Tensor,
        mask: torch.Tensor | None,
        hooks: Hooks = NO_HOOKS,
        rows: int | None = None,
        heads: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Block l on the residual stream entering it h [B, T, D] -> its output [B, T', D] for the first
        T' = rows queries (all when None). heads [B, T, H*dh] (`head_outputs`): resume after its attention."""
        if heads is None:
            h = hooks(f"blocks.{l}.hook_resid_pre", h)
            z = self.attend(l, h if self.post_ln else self.blocks[l].ln1(h), mask, rows, hooks)[0]
        else:
            z = heads.to(self.device).unflatten(-1, (self.spec.n_heads, -1))[:, :rows]
        return self.block_tail(l, h, z, hooks)

    def attend(
        self,
        l: int,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        rows: int | None = None,
        hooks: Hooks = NO_HOOKS,
        every_query: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Block l's self-attention on its input x [B, T, D] -> (head outputs z [B, T', H, dh] of the first
        T' = `rows` queries (all when None), before attn.hook_z and the output projection; attention
        probabilities [B, H, T'', T], T'' = T' unless every_query asks for all T rows, as the LRP rules read
        them). The same arithmetic as the eager kernel, with the attn.* hook points up to hook_pattern."""
        b, H, p = self.blocks[l], self.spec.n_heads, f"blocks.{l}.attn."
        queries = x if rows is None or every_query else x[:, :rows]
        q, k, v = (
            hooks(p + name, proj(t).unflatten(-1, (H, -1))).transpose(1, 2)
            for name, proj, t in (("hook_q", b.q, queries), ("hook_k", b.k, x), ("hook_v", b.v, x))
        )
        scores = (q @ k.transpose(-1, -2)).mul_(getattr(b.attn, "scaling", q.shape[-1] ** -0.5))
        if mask is not None:
            scores.add_(mask)
        scores = hooks(p + "hook_attn_scores", scores)
        probs = scores.softmax(-1, dtype=torch.promote_types(q.dtype, torch.float32)).to(q.dtype)
        probs = hooks(p + "hook_pattern", probs)
        return ((probs if rows is None else probs[:, :, :rows]) @ v).transpose(1, 2).contiguous(), probs

    def head_outputs(self, layer: int, resid: torch.Tensor, batch: Batch, rows: int | None = None) -> torch.Tensor:
        """[B, T', H*dh] the concatenated head outputs of block `layer` (before gating) given the residual
        stream entering it [B, T, D]; rows: only the first `rows` queries. Feed them to
        run(resume=Resume(resid, layer, heads))."""
        b = self.blocks[layer]
        with self.lock, torch.no_grad():
            x = resid.to(self.device)
            return self.attend(layer, x if self.post_ln else b.ln1(x), self.attention_mask(batch), rows)[0].flatten(2)

    def block_tail(
        self, l: int, h: torch.Tensor, z: torch.Tensor, hooks: Hooks = NO_HOOKS, rules: BlockRules = PLAIN
    ) -> torch.Tensor:
        """The rest of block l from attn.hook_z: h [B, T, D] the residual entering it, z [B, T', H, dh] the
        head outputs of the first T' queries -> the block's output [B, T', D]; rules.add makes both
        residual adds."""
        b, p, add = self.blocks[l], f"blocks.{l}.", rules.add
        h = h[:, : z.shape[1]]
        a = hooks(p + "hook_attn_out", b.o(hooks(p + "attn.hook_z", z).flatten(2)))
        if self.post_ln:
            mid = hooks(p + "hook_resid_mid", b.ln1(add(a, h)))
            return hooks(p + "hook_resid_post", b.ln2(add(self._mlp(l, mid, hooks), mid)))
        mid = hooks(p + "hook_resid_mid", add(a, h))
        return hooks(p + "hook_resid_post", add(self._mlp(l, b.ln2(mid), hooks), mid))

    def _mlp(self, l: int, x: torch.Tensor, hooks: Hooks) -> torch.Tensor:
        """Block l's MLP sublayer [B, T', D] -> [B, T', D], with its hook points."""
        b, p = self.blocks[l], f"blocks.{l}."
        post = hooks(p + "mlp.hook_post", b.act(hooks(p + "mlp.hook_pre", b.fc1(x))))
        return hooks(p + "hook_mlp_out", b.fc2(post))

    def logits(self, batch: Batch, batch_size: int = 256, **run_kwargs) -> torch.Tensor:
        """[B, C] logits without capture, in chunks of batch_size."""
        out = [
            self.run(batch.select(range(i, min(i + batch_size, len(batch)))), capture=False, **run_kwargs).logits
            for i in range(0, len(batch), batch_size)
        ]
        return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Vision: ViT and DeiT image classifiers
# ---------------------------------------------------------------------------------------------
