"""The text side of the model interface: BERT-family encoders (models.adapter.HookedModel), with their own
classifier or scored against label prompts; tokenisation with notes, pooling, and their blocks' handles."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.adapter import Block, HookedModel
from models.trace import Batch

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
        self._float64 = None  # its copy scores against the old labels

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

    def _embed(self, batch: Batch) -> torch.Tensor:
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
        entering: list[torch.Tensor] = []
        with self.lock:  # the module hooks below exist only while no other call can run these modules
            words = table(ids).detach().requires_grad_(True)
            handles = [
                table.register_forward_hook(lambda mod, args, out: words),
                self.base.embeddings.LayerNorm.register_forward_pre_hook(lambda mod, args: entering.append(args[0])),
            ]
            try:
                out = self._embed(batch)
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

    def _head_logits(self, hidden, batch):
        if self.spec.head == "prompts":
            return self.unembed(self.pool(hidden, batch.token_mask.to(hidden.device)))
        if self._pooler_head():
            return self.net.classifier(self.base.pooler(hidden))
        return self.net.classifier(hidden)

    def _unembed(self, hidden):
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
