"""One hooked interface over every supported network (ViT, DeiT, BERT-family encoders).

The adapter runs the network block by block by hand with the network's own modules, calling the named hook
points of models/hooks.py on the way: one mechanism captures every activation, gates heads, scales attention
temperature and replaces any activation. Hooks are arguments of one `run`, never attached to a module; the
run can also resume from a residual state or inside a block, and keep gradients for attention maps.
"""

from __future__ import annotations

import contextlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.hooks import EMBED, NO_HOOKS, Hook, Hooks, head_gate_hooks, temperature_hooks
from models.trace import Batch, Trace


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

    @contextlib.contextmanager
    def in_float64(self):
        """The network's weights in float64 for the duration, under the model's lock (every forward holds it);
        the float32 weights come back exactly (float32 -> float64 -> float32 is lossless)."""
        with self.lock:
            dtype = next(self.net.parameters()).dtype
            self.net.to(torch.float64)
            try:
                yield
            finally:
                self.net.to(dtype)

    # -- provided by each family ----------------------------------------------------------------
    @abstractmethod
    def prepare(self, inputs) -> Batch:
        """Validate raw inputs (images or strings) into a Batch; raises data.InputError."""

    @abstractmethod
    def embed(self, batch: Batch) -> torch.Tensor:
        """[B, T, D] the embedding output (residual stream before block 0)."""

    def attention_mask(self, batch: Batch) -> torch.Tensor | None:
        """The additive attention mask [B, 1, 1, T] the blocks apply to the scores (None: every token is real)."""
        return None

    @abstractmethod
    def head_logits(self, hidden: torch.Tensor, batch: Batch) -> torch.Tensor:
        """[B, T, D] last residual -> [B, C] logits, as the original network computes them."""

    @abstractmethod
    def unembed(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., D] -> [..., C]: the model's own final norm + classifier (or prompt head), per token."""

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
        start_layer: int = 0,
        start_resid: torch.Tensor | None = None,
        start_heads: torch.Tensor | None = None,
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
        start_layer, start_resid [B, T, D]: resume from the residual stream entering block start_layer
        (blocks below it are not run; the captured lists start there).
        start_heads [B, T, H*dh]: block start_layer's concatenated head outputs before gating
        (`head_outputs`): that block resumes at its attn.hook_z (gates still apply); not captured.
        readout_only: the last block computes only the tokens the head reads (`readout_rows`); logits
        are unchanged, nothing is captured."""
        batch = batch.to(self.device)
        L = self.spec.n_layers
        if not 0 <= start_layer <= L:
            raise ValueError(f"start_layer must be in 0..{L}.")
        if start_resid is None and start_layer > 0:
            raise ValueError("start_layer > 0 needs start_resid (the residual entering that block).")
        if (start_heads is not None or readout_only) and capture:
            raise ValueError("start_heads and readout_only skip parts of the forward: run them with capture=False.")
        if start_heads is not None and (start_resid is None or start_layer == L):
            raise ValueError("start_heads needs start_resid and a start_layer below the number of layers.")
        rows = self.readout_rows if readout_only else None
        needs_grad = (
            grad
            or (torch.is_tensor(head_gates) and head_gates.requires_grad)
            or (start_resid is not None and start_resid.requires_grad)
        )
        trace = Trace(logits=torch.empty(0), token_mask=batch.token_mask, start_layer=start_layer)
        layers = range(start_layer, L)
        capture_hooks = trace.capture_hooks(layers, grad) if capture else []
        call = Hooks([*self._convenience_hooks(head_gates, temperature, layers), *hooks, *capture_hooks], L)
        with self.lock, torch.set_grad_enabled(bool(needs_grad)):
            h = call(EMBED, self.embed(batch)) if start_resid is None else start_resid.to(self.device)
            if capture:
                trace.resid_list.append(h)
            mask, n = self.attention_mask(batch), h.shape[0]
            if n != len(batch) and mask is not None:  # batched gate configurations: the mask is tiled to match
                mask = mask.repeat(n // len(batch), 1, 1, 1)
            for l in layers:
                resume = start_heads if l == start_layer else None
                h = self.block(l, h, mask, call, rows if l == L - 1 else None, resume)
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
        stream entering it [B, T, D]; rows: only the first `rows` queries. Feed them to run(start_heads=...)."""
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
TINY_IMAGE = 4  # an image whose longer side is under 1/4 of the model's input side gets a note


class VisionModel(HookedModel):
    """ViTForImageClassification, DeiTForImageClassification(WithTeacher)."""

    def __init__(self, net, spec, blocks, device, base, preprocess: dict):
        super().__init__(net, spec, blocks, device)
        self.base = base
        self.mean = np.asarray(preprocess["mean"], dtype=np.float32)
        self.std = np.asarray(preprocess["std"], dtype=np.float32)
        self.classifiers = (
            [net.cls_classifier, net.distillation_classifier]
            if hasattr(net, "distillation_classifier")
            else [net.classifier]
        )
        self._readout_rows = len(self.classifiers)

    def prepare(self, inputs) -> Batch:
        """PIL images or arrays ([H, W] / [H, W, C], uint8 or floats in [0, 1]) -> Batch."""
        from PIL import Image

        from data.inputs import InputError

        if isinstance(inputs, (Image.Image, np.ndarray)):
            inputs = [inputs]
        inputs = list(inputs)
        if not inputs:
            raise InputError("No images given.")
        gh, gw, _, s, c = self.spec.image_layout()
        arrays, notes = [], []
        for i, img in enumerate(inputs):
            if isinstance(img, np.ndarray):
                a = img
                if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)) or a.size == 0:
                    raise InputError(f"Image {i + 1}: an array must be [H, W] or [H, W, 1|3|4], got {a.shape}.")
                a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 or a.max() > 1.0 else 1.0)
                a = (np.clip(a, 0, 1) * 255).round().astype(np.uint8)
                if a.ndim == 3:
                    a = a[..., 0] if a.shape[-1] == 1 else a[..., :3]
                img = Image.fromarray(a)
            elif not isinstance(img, Image.Image):
                raise InputError(f"Image {i + 1}: expected a PIL image or an array, got {type(img).__name__}.")
            w, h = img.size
            if max(w, h) * TINY_IMAGE < s:
                notes.append(
                    f"Image {i + 1} is {w}x{h} pixels, far smaller than the {s}x{s} the model reads: it was enlarged "
                    f"{s / max(w, h):.0f}x, so the model sees a few flat blocks, not the detail it was trained on."
                )
            img = img.convert("L" if c == 1 else "RGB").resize((s, s), Image.Resampling.BILINEAR)
            a = np.asarray(img, dtype=np.float32) / 255.0
            if a.max() - a.min() < 1.0 / 255:
                notes.append(
                    f"Image {i + 1} is one flat colour: it has nothing to attend to, and the prediction says only "
                    "which class that colour looks most like."
                )
            arrays.append(a[..., None] if a.ndim == 2 else a)
        images = np.stack(arrays)  # [B, S, S, C]
        x = torch.from_numpy((images - self.mean) / self.std).permute(0, 3, 1, 2).contiguous()
        t = self.spec.n_prefix + gh * gw
        return Batch({"pixel_values": x}, torch.ones(len(images), t, dtype=torch.bool), images=images, notes=notes)

    def embed(self, batch: Batch) -> torch.Tensor:
        return self.base.embeddings(batch.tensors["pixel_values"].to(self.device))

    def head_logits(self, hidden, batch):
        x = self.base.layernorm(hidden)
        return sum(clf(x[:, i]) for i, clf in enumerate(self.classifiers)) / len(self.classifiers)

    def unembed(self, hidden):
        x = self.base.layernorm(hidden.to(self.device))
        return sum(clf(x) for clf in self.classifiers) / len(self.classifiers)


# ---------------------------------------------------------------------------------------------
# Text: BERT-family encoders (sequence classifiers, or plain encoders scored against label prompts)
# ---------------------------------------------------------------------------------------------
DEFAULT_PROMPT = "This text is about {}."
UNKNOWN_SHARE = 0.5  # a text whose word pieces are mostly unknown to the tokenizer gets a note
PROMPT_LOGIT_SCALE = 20.0  # cosine similarity x 20, so that softmax probabilities are readable


class TextModel(HookedModel):
    """BertModel / BertForSequenceClassification and BERT-like encoders (RoBERTa, ELECTRA, ...)."""

    post_ln = True

    def __init__(self, net, spec, blocks, device, base, tokenizer, pooling: str = "mean"):
        super().__init__(net, spec, blocks, device)
        self.base = base
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.prompt_template = DEFAULT_PROMPT
        self._prompt_emb: torch.Tensor | None = None

    # prompts ---------------------------------------------------------------------------------
    def set_labels(self, labels: Sequence[str], template: str = DEFAULT_PROMPT) -> None:
        """Score texts against `labels` through prompts `template.format(label)` (prompt head only)."""
        from dataclasses import replace

        from data.inputs import InputError

        if self.spec.head != "prompts":
            raise InputError(f"{self.spec.name} has its own classifier; its labels cannot be edited.")
        labels = check_labels(labels, template)
        self.spec = replace(self.spec, class_names=tuple(labels))
        self.prompt_template = template
        self._prompt_emb = None

    def prompt_embeddings(self) -> torch.Tensor:
        """[C, D] unit-norm pooled embeddings of the label prompts."""
        if self._prompt_emb is None:
            prompts = [self.prompt_template.format(c) for c in self.spec.class_names]
            batch = self.prepare(prompts).to(self.device)
            with self.lock, torch.no_grad():
                h, mask = self.embed(batch), self.attention_mask(batch)
                for l in range(self.spec.n_layers):
                    h = self.block(l, h, mask)
                self._prompt_emb = F.normalize(self.pool(h, batch.token_mask), dim=-1)
        return self._prompt_emb

    # interface -------------------------------------------------------------------------------
    def prepare(self, inputs) -> Batch:
        """Strings -> Batch (padded; texts beyond the model's limit are truncated, with a note)."""
        from data.inputs import InputError, check_text

        if isinstance(inputs, str):
            inputs = [inputs]
        inputs = list(inputs)
        if not inputs:
            raise InputError("No texts given.")
        texts = [check_text(t) if isinstance(t, str) else _not_text(i, t) for i, t in enumerate(inputs)]
        limit = self.spec.max_tokens
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        notes = [
            f"Text {i + 1} has {n} tokens; the model reads at most {limit}, so it was truncated to the first {limit}."
            for i, n in enumerate(lengths)
            if limit is not None and n > limit
        ]
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
        if enc["input_ids"].shape[1] < 2:
            raise InputError("The text has no tokens the model can read.")
        tensors = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        mask = enc["attention_mask"].bool()
        tokens = [self.tokenizer.convert_ids_to_tokens(ids[m]) for ids, m in zip(enc["input_ids"], mask)]
        special = set(self.tokenizer.all_special_tokens)
        for i, toks in enumerate(tokens):
            words = [t for t in toks if t not in special or t == self.tokenizer.unk_token]
            unknown = sum(t == self.tokenizer.unk_token for t in words)
            if words and unknown > UNKNOWN_SHARE * len(words):
                notes.append(
                    f"Text {i + 1}: {unknown} of its {len(words)} word pieces are unknown to the tokenizer "
                    f"({self.tokenizer.unk_token}), so the model barely sees the text and its prediction says little."
                )
        return Batch(tensors, mask, tokens=tokens, notes=notes)

    def embed(self, batch: Batch) -> torch.Tensor:
        t = batch.tensors
        kwargs = {"input_ids": t["input_ids"].to(self.device)}
        if "token_type_ids" in t:
            kwargs["token_type_ids"] = t["token_type_ids"].to(self.device)
        return self.base.embeddings(**kwargs)

    def embed_from_words(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The embedding forward from a leaf at the word embeddings (the model's own position and token-type
        handling kept). Returns (words [B, T, D], a leaf that requires grad; their sum with the position and
        token-type embeddings [B, T, D], what enters the embedding LayerNorm; the embedding output [B, T, D])."""
        ids = batch.tensors["input_ids"].to(self.device)
        table = self.base.get_input_embeddings()
        words = table(ids).detach().requires_grad_(True)
        entering: list[torch.Tensor] = []
        handles = [
            table.register_forward_hook(lambda mod, args, out: words),
            self.base.embeddings.LayerNorm.register_forward_pre_hook(lambda mod, args: entering.append(args[0])),
        ]
        try:
            out = self.embed(batch)
        finally:
            for h in handles:
                h.remove()
        return words, entering[0], out

    def attention_mask(self, batch: Batch) -> torch.Tensor | None:
        m = batch.tensors["attention_mask"].to(self.device)
        dtype = next(self.net.parameters()).dtype
        return (1.0 - m[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    @property
    def readout_rows(self) -> int | None:
        """1 when the head reads the CLS token only (a pooler, or CLS pooling of a prompt head), else None."""
        if self.spec.head == "prompts":
            return 1 if self.pooling == "cls" else None
        return 1 if self._pooler_head() else None

    def _pooler_head(self) -> bool:
        """Whether the classifier reads the pooler's output (dense + tanh of the CLS token)."""
        return getattr(self.base, "pooler", None) is not None and isinstance(
            getattr(self.net, "classifier", None), nn.Linear
        )

    def pool(self, hidden: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, D] as the model pools (mean over real tokens, or the CLS token)."""
        if self.pooling == "cls":
            return hidden[:, 0]
        m = token_mask.to(hidden.dtype).unsqueeze(-1)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)

    def head_logits(self, hidden, batch):
        if self.spec.head == "prompts":
            return self.unembed(self.pool(hidden, batch.token_mask.to(hidden.device)))
        if self._pooler_head():
            return self.net.classifier(self.base.pooler(hidden))
        return self.net.classifier(hidden)

    def unembed(self, hidden):
        hidden = hidden.to(self.device)
        if self.spec.head == "prompts":
            return PROMPT_LOGIT_SCALE * F.normalize(hidden, dim=-1) @ self.prompt_embeddings().to(hidden.dtype).T
        if self._pooler_head():
            pooled = self.base.pooler.activation(self.base.pooler.dense(hidden))
            return self.net.classifier(pooled)
        flat = hidden.reshape(-1, 1, hidden.shape[-1])  # heads such as RoBERTa's read token 0 of [N, T, D]
        return self.net.classifier(flat).reshape(*hidden.shape[:-1], -1)


def check_labels(labels: Sequence[str], template: str = DEFAULT_PROMPT) -> list[str]:
    """Stripped, validated label names for a prompt head; raises data.InputError with what to fix."""
    from data.inputs import InputError

    labels = [str(x).strip() for x in labels if str(x).strip()]
    if len(labels) < 2:
        raise InputError("Give at least two labels, one per line.")
    if len(set(labels)) != len(labels):
        raise InputError("Labels must be distinct.")
    if "{}" not in template:
        raise InputError("The prompt template needs a {} where the label goes.")
    return labels


def _not_text(i: int, value) -> str:
    from data.inputs import InputError

    raise InputError(f"Text {i + 1}: expected a string, got {type(value).__name__}.")


def vit_blocks(layers) -> list[Block]:
    """Block handles for transformers-5 ViT/DeiT layers (attention.{q,k,v,o}_proj, mlp.fc1/fc2)."""
    return [
        Block(
            attn=m.attention,
            q=m.attention.q_proj,
            k=m.attention.k_proj,
            v=m.attention.v_proj,
            o=m.attention.o_proj,
            ln1=m.layernorm_before,
            ln2=m.layernorm_after,
            fc1=m.mlp.fc1,
            act=m.mlp.activation_fn,
            fc2=m.mlp.fc2,
        )
        for m in layers
    ]


def bert_blocks(layers) -> list[Block]:
    """Block handles for BERT-like layers (attention.self.{query,key,value}, attention.output.dense, ...)."""
    return [
        Block(
            attn=m.attention.self,
            q=m.attention.self.query,
            k=m.attention.self.key,
            v=m.attention.self.value,
            o=m.attention.output.dense,
            ln1=m.attention.output.LayerNorm,
            ln2=m.output.LayerNorm,
            fc1=m.intermediate.dense,
            act=_as_module(m.intermediate),
            fc2=m.output.dense,
        )
        for m in layers
    ]


def _as_module(intermediate) -> nn.Module:
    act = intermediate.intermediate_act_fn
    return act if isinstance(act, nn.Module) else _Lambda(act)


class _Lambda(nn.Module):
    def __init__(self, fn: Callable):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)
