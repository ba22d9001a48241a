"""Where the logit goes: AttnLRP's total input relevance against the target logit, and the parts that the
input tokens do not receive (biases, position and token-type embeddings, the CLS token, the blocks).

    from analysis.conservation import conservation_split
    split = conservation_split(model, batch, target=[3])   # {"maps": [B], "logit": [B], part: [B], ...}
"""

from __future__ import annotations

import torch

from analysis.attribution import resolve_target, target_scores
from analysis.relevance import check_method
from models import Batch, HookedModel, VisionModel
from models.lrp import ATTNLRP, lrp_forward

SPLIT_PARTS = {  # conservation_split's parts and their labels (each model has the parts that apply to it)
    "maps": "the input (the maps)",
    "patch_bias": "patch-embedding bias",
    "position": "position embeddings",  # text: with the token-type embeddings
    "norm": "embedding LayerNorm bias",
    "prefix": "CLS token",
    "blocks": "blocks (biases, softmax rule)",
}


def conservation_split(
    model: HookedModel, batch: Batch, target=None, read_at: str = "words"
) -> dict[str, torch.Tensor]:
    """Where AttnLRP's relevance of the target logit goes, per input ([B] each; they add up to the logit
    exactly): "maps" (what the maps show: the pixels, or the text's tokens after the CLS token at `read_at`),
    "prefix" (the CLS and distillation tokens), "blocks" (what the blocks' biases and the softmax rule absorb:
    the logit minus the relevance entering block 0), and for images "patch_bias" (the patch embedding's bias
    and its epsilon rule) and "position" (the position embeddings, prefix rows included); for text read at
    the word embeddings "position" (position and token-type embeddings) and "norm" (the embedding LayerNorm's
    bias); plus "logit" and "target".

    The relevance entering block 0 is R_E = E * dy/dE. Images: E = [prefix; conv(pixels) + bias] + position
    embeddings, so it splits exactly into the position and prefix parts and the conv output, whose relevance
    the epsilon rule passes to the pixels except the bias share. Text at the words: E = LayerNorm(S) with
    S = words + position + token type; with the normaliser held constant the LayerNorm passes R_S = S * dy/dS
    and keeps the bias's share (R_E - R_S), and R_S splits into the words and the rest by the plain add."""
    check_method(model, "attnlrp")
    batch = batch.to(model.device)
    fwd = lrp_forward(model, batch, ATTNLRP, read_at)
    tgt = resolve_target(model, fwd.logits.detach(), target)
    y = target_scores(fwd.logits, tgt)
    g_inputs, g_emb = torch.autograd.grad(y.sum(), [fwd.inputs, fwd.emb], allow_unused=True)
    if g_emb is None:  # text read at the embedding output: the leaf is the embedding output itself
        g_emb = g_inputs
    emb, p, y = fwd.emb.detach(), model.spec.n_prefix, y.detach()
    real = batch.token_mask[..., None].to(emb.dtype)  # padding takes no relevance
    entering = (emb * g_emb * real).sum((1, 2))
    out = {"target": tgt, "logit": y, "blocks": y - entering}
    if isinstance(model, VisionModel):
        pos = model.base.embeddings.position_embeddings.detach()  # [1, T, D]
        pixels = (fwd.inputs.detach() * g_inputs).flatten(1).sum(1)
        conv = ((emb - pos)[:, p:] * g_emb[:, p:]).sum((1, 2))
        return out | {
            "maps": pixels,
            "patch_bias": conv - pixels,
            "position": (pos * g_emb).sum((1, 2)),
            "prefix": ((emb - pos)[:, :p] * g_emb[:, :p]).sum((1, 2)),
        }
    tokens = (fwd.inputs.detach() * g_inputs * real).sum(-1)  # [B, T]
    out |= {"maps": tokens[:, p:].sum(1), "prefix": tokens[:, :p].sum(1)}
    if fwd.embedding_sum is None:
        return out
    summed = (fwd.embedding_sum.detach() * g_inputs * real).sum((1, 2))
    return out | {"position": summed - tokens.sum(1), "norm": entering - summed}
