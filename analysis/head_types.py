"""Head types: per-head scores in [0, 1] that name what an attention pattern does (the Head types part of the
Circuits section of docs/methods.md).

Text (Clark et al. 2019, "What Does BERT Look At?"): previous / next token, [CLS], [SEP], punctuation (the mean
mass a query gives them) and broad (the normalised entropy of a row). Images: positional (the mass at the head's
strongest relative offset: how much of the pattern one offset explains), local / global (the attention distance
against uniform attention's), CLS (the patches' mass on the prefix tokens).

Shapes: attn [L, B, H, T, T] (rows = queries), token_mask [B, T]; scores [B, L, H] per type.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import torch

from analysis.attention import (
    attention_distance,
    binned_mass,
    cls_mass,
    entropy,
    masked_keys,
    query_mean,
    query_weights,
    uniform_distance,
)

TEXT_TYPES = ("previous", "next", "cls", "sep", "punctuation", "broad")
IMAGE_TYPES = ("positional", "local", "global", "cls")
MIN_VALID = 0.5  # positional: offsets that at least this share of the patch queries have inside the grid


def token_marks(tokens: Sequence[Sequence[str]], T: int, sep_token: str | None) -> dict[str, torch.Tensor]:
    """Key masks [B, T] of a text batch: "sep" (the tokenizer's separator) and "punctuation" (tokens made of
    punctuation only)."""
    sep, punct = torch.zeros(len(tokens), T, dtype=torch.bool), torch.zeros(len(tokens), T, dtype=torch.bool)
    for b, toks in enumerate(tokens):
        for t, tok in enumerate(toks[:T]):
            sep[b, t] = tok == sep_token
            punct[b, t] = bool(tok) and all(c in string.punctuation for c in tok)
    return {"sep": sep, "punctuation": punct}


def _diagonal_score(a: torch.Tensor, mask: torch.Tensor, offset: int) -> torch.Tensor:
    """Mean over the queries i whose key i + offset is real of A[i, i + offset]: a [L, B, H, T, T] -> [L, B, H]."""
    diag = a.diagonal(offset, -2, -1)  # [L, B, H, T - |offset|]: query i -> key i + offset
    q, k = (mask[:, :-offset], mask[:, offset:]) if offset > 0 else (mask[:, -offset:], mask[:, :offset])
    valid = (q & k).float()
    return query_mean(diag, valid / valid.sum(-1, keepdim=True).clamp_min(1.0))


def text_types(attn: torch.Tensor, token_mask: torch.Tensor, marks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{type: [B, L, H]} for TEXT_TYPES; marks: token_marks' key masks [B, T]. broad: the mean row entropy over
    the log of the input's real token count."""
    mask = token_mask.bool().to(attn.device)
    a = masked_keys(attn.float(), mask.float())
    w = query_weights(a, mask.float())
    out = {"previous": _diagonal_score(a, mask, -1), "next": _diagonal_score(a, mask, 1)}
    for name in ("sep", "punctuation"):
        out[name] = query_mean((a * marks[name].to(a)[None, :, None, None]).sum(-1), w)
    out = {k: v.transpose(0, 1) for k, v in out.items()}
    out["cls"] = cls_mass(a, mask, per_input=True)
    n_real = mask.sum(-1).float().log().clamp_min(math.log(2))  # [B]
    out["broad"] = entropy(a, mask, per_input=True) / n_real[:, None, None]
    return {t: out[t] for t in TEXT_TYPES}


def _offsets(grid: tuple[int, int], n_prefix: int, T: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(bins [T, T]: index of the offset key - query between patches, -1 for prefix tokens; the share of patch
    queries for which each offset stays inside the grid [n_bins]), offsets (dy, dx) indexed row-major over
    dy in -(h-1)..h-1, dx in -(w-1)..w-1."""
    gh, gw = grid
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    r, c = rows.flatten(), cols.flatten()
    bins = torch.full((T, T), -1, dtype=torch.long)
    bins[n_prefix:, n_prefix:] = (r[None] - r[:, None] + gh - 1) * (2 * gw - 1) + (c[None] - c[:, None] + gw - 1)
    dy, dx = torch.meshgrid(torch.arange(1 - gh, gh), torch.arange(1 - gw, gw), indexing="ij")
    share = ((gh - dy.abs()) * (gw - dx.abs())).flatten().float() / (gh * gw)
    return bins.to(device), share.to(device)


def offset_of(index: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Offset bin indices [...] -> (dy, dx) [..., 2] in patches."""
    gh, gw = grid
    return torch.stack([index // (2 * gw - 1) - (gh - 1), index % (2 * gw - 1) - (gw - 1)], -1)


def image_types(attn: torch.Tensor, grid: tuple[int, int], n_prefix: int) -> dict[str, torch.Tensor]:
    """{type: [B, L, H]} for IMAGE_TYPES, and "offset" [B, L, H, 2] the strongest offset (dy, dx) in patches.

    positional: max over offsets d (kept inside the grid for >= MIN_VALID of the patch queries) of the mean over
    those queries of A[i, i + d]; cls: the mean mass the patch queries give the prefix tokens; global: the
    attention distance of the patches' rows (renormalised) over uniform attention's, clipped to 1, and local = 1 -
    that, both times the patch mass 1 - cls (a head that reads the CLS token is neither)."""
    bins, share = _offsets(grid, n_prefix, attn.shape[-1], attn.device)
    w = query_weights(attn, None, n_prefix)
    per_offset = binned_mass(attn, w, bins, len(share)) / share  # [L, B, H, n_bins]
    per_offset = per_offset.masked_fill(share < MIN_VALID, 0.0)
    positional, best = per_offset.max(-1)
    dist = attention_distance(attn, grid, n_prefix, per_input=True)
    glob = (dist.patches / uniform_distance(grid, grid[0] * grid[1])).clamp(0, 1)
    patches = 1 - dist.prefix_mass
    return {
        "positional": positional.transpose(0, 1),
        "local": (1 - glob) * patches,
        "global": glob * patches,
        "cls": dist.prefix_mass,
        "offset": offset_of(best, grid).transpose(0, 1),
    }
