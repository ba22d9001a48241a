"""Attention-head analyses on captured attention probabilities (formulas and oracles: the Attention-heads
section of the methods document under docs/).

Shapes: attention [L, B, H, T, T] (rows = queries) for a batch, or [L, H, T, T] for one input; the first
`n_prefix` tokens carry no position (CLS, DeiT's distillation token), the others sit on a patch grid
(images, row-major) or in a line (text: token k is at position k). token_mask [B, T] marks real tokens
(padding of text batches is False); padded queries are ignored and padded keys get no mass.

Head-level results are [L, H] (mean over the inputs, each input weighted equally) or, with
per_input=True, [B, L, H]. Every function works on the device of its input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

SINK_THRESHOLD = 0.5  # a head putting more than this share of its attention on one token is a sink candidate


def rollout(attn: torch.Tensor, add_residual: bool = True) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): A~_l = rownorm(mean_h A[l] + I), R = A~_L ... A~_1.

    attn [L, B, H, T, T] -> R [B, T, T]; the map for the CLS token is R[:, 0, 1:]. Rows of R sum to 1."""
    a = attn.float().mean(2)  # [L, B, T, T]
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    if add_residual:
        a = a + eye
    a = a / a.sum(-1, keepdim=True)
    r = eye.expand_as(a[0]).clone()
    for layer in a:
        r = layer @ r
    return r


# -- layout: batch shape, masks, token positions -------------------------------------------------
def as_batch(attn: torch.Tensor, token_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """attn as float [L, B, H, T, T] and the token mask as float [B, T] on attn's device (None when every
    token is real, so that unpadded batches skip the masking passes)."""
    attn = torch.as_tensor(attn)
    if attn.dim() == 4:
        attn = attn.unsqueeze(1)
    if attn.dim() != 5 or attn.shape[-1] != attn.shape[-2]:
        raise ValueError(f"attention must be [L, B, H, T, T] or [L, H, T, T], got {tuple(attn.shape)}.")
    B, T = attn.shape[1], attn.shape[-1]
    mask = None
    if token_mask is not None:
        mask = torch.as_tensor(token_mask, device=attn.device).reshape(-1, T)
        if mask.shape[0] != B:
            raise ValueError(f"token_mask has {mask.shape[0]} rows for a batch of {B}.")
        mask = None if bool(mask.all()) else mask.float()
    return attn.float(), mask


def _reduce(x: torch.Tensor, per_input: bool) -> torch.Tensor:
    """[L, B, H, ...] -> [B, L, H, ...] (per_input) or the mean over inputs [L, H, ...]."""
    return x.transpose(0, 1) if per_input else x.mean(1)


def token_positions(n_positions: int, grid: tuple[int, int] | None, device=None) -> torch.Tensor:
    """[N, 2] (row, col) of the positioned tokens in patch units: the grid row-major, or (0, k) for text."""
    if grid is None:
        return torch.stack([torch.zeros(n_positions), torch.arange(n_positions, dtype=torch.float32)], -1).to(device)
    gh, gw = grid
    if gh * gw != n_positions:
        raise ValueError(f"{n_positions} positioned tokens do not fill a {gh}x{gw} grid; check n_prefix.")
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    return torch.stack([rows.flatten(), cols.flatten()], -1).float().to(device)


@lru_cache(maxsize=64)
def _geometry(n_tokens: int, n_prefix: int, grid: tuple[int, int] | None, device: torch.device):
    """(positions [N, 2], Euclidean distance [T, T] and Chebyshev ring [T, T] between tokens) for T tokens of
    which the first n_prefix have no position: their distance is 0 and their ring -1 (excluded)."""
    if not 0 <= n_prefix < n_tokens:
        raise ValueError(f"n_prefix={n_prefix} leaves no positioned tokens out of {n_tokens}.")
    pos = token_positions(n_tokens - n_prefix, None if grid is None else (int(grid[0]), int(grid[1])), device)
    dist = torch.zeros(n_tokens, n_tokens, device=device)
    dist[n_prefix:, n_prefix:] = torch.cdist(pos, pos)
    rings = torch.full((n_tokens, n_tokens), -1, dtype=torch.long, device=device)
    rings[n_prefix:, n_prefix:] = (pos[:, None, :] - pos[None, :, :]).abs().amax(-1).long()
    return pos, dist, rings


def geometry(attn: torch.Tensor, n_prefix: int, grid: tuple[int, int] | None):
    """_geometry for an attention tensor's token count and device."""
    return _geometry(attn.shape[-1], n_prefix, None if grid is None else tuple(grid), attn.device)


def query_weights(attn: torch.Tensor, mask: torch.Tensor | None, n_prefix: int = 0) -> torch.Tensor:
    """[B, T] weights that average over each input's real queries from n_prefix on (prefix and padding 0)."""
    B, T = attn.shape[1], attn.shape[-1]
    m = torch.ones(B, T, device=attn.device) if mask is None else mask.clone()
    m[:, :n_prefix] = 0
    return m / m.sum(-1, keepdim=True).clamp_min(1.0)


def masked_keys(attn: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """attn with the columns of padded keys zeroed (attn itself when nothing is padded)."""
    return attn if mask is None else attn * mask[None, :, None, None, :]


def query_mean(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """x [L, B, H, T] averaged over queries with weights [B, T] -> [L, B, H]."""
    return (x * weights[None, :, None, :]).sum(-1)


def binned_mass(attn: torch.Tensor, weights: torch.Tensor, bins: torch.Tensor, n_bins: int) -> torch.Tensor:
    """S[b] = sum_i w_i sum_{j: bins[i, j] = b} A[i, j], the mean over queries of the mass in each bin.

    attn [L, B, H, T, T] (padded keys already zeroed), weights [B, T], bins [T, T] int (-1: not counted)
    -> [L, B, H, n_bins], in one matmul over all heads (weights shared by the batch fold into it)."""
    T = attn.shape[-1]
    onehot = torch.nn.functional.one_hot(bins.clamp_min(0).flatten(), n_bins).to(attn.dtype)
    onehot = onehot * (bins.flatten() >= 0)[:, None]  # [T*T, n_bins]
    if bool((weights == weights[:1]).all()):
        return attn.flatten(-2) @ (onehot * weights[0].repeat_interleave(T)[:, None])
    return (attn * weights[None, :, None, :, None]).flatten(-2) @ onehot


# -- head statistics -----------------------------------------------------------------------------
@dataclass
class Distance:
    """Mean attention distance per head ([L, H], or [B, L, H] per input).

    patches: in patch units (text: token positions); pixels: patches x patch size (None without one);
    prefix_mass: the mean attention the positioned queries give to the prefix tokens (CLS), which the
    distance leaves out (each row's positioned part is renormalised to 1)."""

    patches: torch.Tensor
    pixels: torch.Tensor | None
    prefix_mass: torch.Tensor


def attention_distance(
    attn: torch.Tensor,
    grid: tuple[int, int] | None,
    n_prefix: int = 1,
    patch_size: int | None = None,
    token_mask: torch.Tensor | None = None,
    per_input: bool = False,
) -> Distance:
    """Mean attention distance (Dosovitskiy et al. 2020, App. D.7): per head, the mean over inputs and
    positioned queries i of sum_j A~[i, j] ||p_i - p_j||, A~ = the positioned part of row i renormalised.

    attn [L, B, H, T, T] or [L, H, T, T]; grid (h, w) of the T - n_prefix positioned tokens, or None for
    text (positions 0, 1, 2, ...); token_mask [B, T]. Oracles: identity attention -> 0; uniform attention
    over the patches -> the mean pairwise patch distance."""
    attn, mask = as_batch(attn, token_mask)
    _, dist, _ = geometry(attn, n_prefix, grid)
    a = masked_keys(attn, mask)
    w = query_weights(attn, mask, n_prefix)
    mass = a[..., n_prefix:].sum(-1)  # [L, B, H, T]
    per_query = torch.einsum("...ij,ij->...i", a, dist) / mass.clamp_min(1e-12)
    d = _reduce(query_mean(per_query, w), per_input)
    prefix = _reduce(query_mean(a[..., :n_prefix].sum(-1), w), per_input)
    return Distance(d, d * patch_size if patch_size else None, prefix)


def uniform_distance(grid: tuple[int, int] | None, n_positions: int) -> float:
    """The mean attention distance of uniform attention over n_positions positioned tokens: the mean
    pairwise distance (patch units; text: token positions), a reference line for attention_distance."""
    return float(_geometry(n_positions, 0, None if grid is None else tuple(grid), torch.device("cpu"))[1].mean())


def chebyshev_rings(grid: tuple[int, int] | None, n_positions: int, device=None) -> torch.Tensor:
    """[N, N] Chebyshev distance between positioned tokens (text: |i - j|)."""
    return _geometry(n_positions, 0, None if grid is None else tuple(grid), torch.device(device or "cpu"))[2]


def ring_strength(
    attn: torch.Tensor,
    grid: tuple[int, int] | None,
    n_prefix: int = 1,
    token_mask: torch.Tensor | None = None,
    n_rings: int | None = None,
    per_input: bool = False,
) -> torch.Tensor:
    """Attention strength by ring (Li et al., VA paper): S[r] = mean_i sum_{j: cheb(i, j) = r} A[i, j]
    over positioned queries i and keys j (not renormalised).

    Returns [L, H, R] (or [B, L, H, R]) with R = n_rings (rings at r >= R - 1 pooled into the last) or, by
    default, every ring of the grid. Oracles: sum_r S[r] = positioned mass of the rows; a 3x3 box blur
    puts all mass in r <= 1."""
    attn, mask = as_batch(attn, token_mask)
    _, _, rings = geometry(attn, n_prefix, grid)
    if n_rings is None:
        n_rings = int(rings.max()) + 1
    s = binned_mass(masked_keys(attn, mask), query_weights(attn, mask, n_prefix), rings.clamp_max(n_rings - 1), n_rings)
    return _reduce(s, per_input)


def ring_sizes(grid: tuple[int, int] | None, n_positions: int, n_rings: int | None = None) -> np.ndarray:
    """[R] the mean over queries of the number of positioned tokens in ring r (the last ring pools r >= R - 1).
    ring_strength / ring_sizes is the mass per token of the ring: constant (1/T) for uniform attention."""
    rings = chebyshev_rings(grid, n_positions)
    n_rings = int(rings.max()) + 1 if n_rings is None else n_rings
    counts = torch.nn.functional.one_hot(rings.clamp_max(n_rings - 1), n_rings).sum(1).float().mean(0)
    return counts.numpy()


def entropy(attn: torch.Tensor, token_mask: torch.Tensor | None = None, per_input: bool = False) -> torch.Tensor:
    """Mean over (real) queries of the row entropy -sum_j A log A, in nats -> [L, H] (or [B, L, H]).

    Oracles: one-hot rows -> 0; uniform rows over T tokens -> log T."""
    attn, mask = as_batch(attn, token_mask)
    return _reduce(query_mean(torch.special.entr(attn).sum(-1), query_weights(attn, mask)), per_input)


def cls_mass(
    attn: torch.Tensor, token_mask: torch.Tensor | None = None, token: int = 0, per_input: bool = False
) -> torch.Tensor:
    """Mean over (real) queries of the attention to one token (default 0: CLS, or the first token of a model
    without one) -> [L, H] (or [B, L, H])."""
    attn, mask = as_batch(attn, token_mask)
    return _reduce(query_mean(attn[..., token], query_weights(attn, mask)), per_input)


def sink_mass(
    attn: torch.Tensor, token_mask: torch.Tensor | None = None, per_input: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sink detection (Bondarenko et al. 2023): per input and head, the largest mean attention that one key
    token receives over the (real) queries, and that token.

    Returns (mass, token): mass [L, H] (mean over inputs) or [B, L, H]; token [B, L, H] (always per input).
    Heads with mass > SINK_THRESHOLD are "no-op / sink" candidates."""
    attn, mask = as_batch(attn, token_mask)
    w = query_weights(attn, mask)
    received = torch.einsum("lbhij,bi->lbhj", masked_keys(attn, mask), w)  # [L, B, H, T keys]
    mass, token = received.max(-1)
    return _reduce(mass, per_input), token.transpose(0, 1)


def head_statistics(
    attn: torch.Tensor,
    grid: tuple[int, int] | None,
    n_prefix: int = 1,
    patch_size: int | None = None,
    token_mask: torch.Tensor | None = None,
    n_rings: int | None = None,
) -> dict[str, np.ndarray]:
    """Every per-head statistic of a batch, per input (numpy):

    distance, prefix_mass, entropy, cls_mass, sink_mass, sink_token: [B, L, H]; distance_px [B, L, H]
    when patch_size is given; ring [B, L, H, R]; n_tokens [B] (real tokens per input).
    cls_mass is the attention to token 0 (CLS, or the first token of a model without a prefix)."""
    attn, mask = as_batch(attn, token_mask)
    d = attention_distance(attn, grid, n_prefix, patch_size, mask, per_input=True)
    sink, sink_tok = sink_mass(attn, mask, per_input=True)
    n_tokens = torch.full((attn.shape[1],), attn.shape[-1], device=attn.device) if mask is None else mask.sum(-1)
    out = {
        "distance": d.patches,
        "prefix_mass": d.prefix_mass,
        "ring": ring_strength(attn, grid, n_prefix, mask, n_rings, per_input=True),
        "entropy": entropy(attn, mask, per_input=True),
        "cls_mass": cls_mass(attn, mask, per_input=True),
        "sink_mass": sink,
        "sink_token": sink_tok,
        "n_tokens": n_tokens.long(),
    }
    if d.pixels is not None:
        out["distance_px"] = d.pixels
    return {k: v.cpu().numpy() for k, v in out.items()}


# -- over a dataset sample -----------------------------------------------------------------------
def map_attention(
    model,
    inputs: Sequence,
    fn: Callable[[torch.Tensor, torch.Tensor], dict[str, np.ndarray]],
    batch_size: int = 64,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Run `model` over raw inputs in batches and apply fn(attn [L, b, H, T, T], token_mask [b, T]) -> dict of
    per-input arrays [b, ...] to each batch's captured attention; returns the arrays concatenated [N, ...].

    Arrays whose trailing size depends on the batch's padded length must be fixed-size (e.g. n_rings)."""
    if len(inputs) == 0:
        raise ValueError("No inputs to analyse.")
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(inputs), batch_size):
        batch = model.prepare(list(inputs[i : i + batch_size]))
        tr = model.run(batch, capture=True)
        for k, v in fn(tr.attentions, tr.token_mask).items():
            parts.setdefault(k, []).append(v)
        if progress:
            done = min(i + batch_size, len(inputs))
            progress(done / len(inputs), f"{done}/{len(inputs)} inputs")
    return {k: np.concatenate(v) for k, v in parts.items()}


TEXT_RINGS = 16  # ring profiles of text: |i - j| = 0 .. 14 and >= 15 pooled (batches pad to different lengths)


def dataset_statistics(
    model,
    inputs: Sequence,
    n_rings: int | None = None,
    batch_size: int = 64,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, np.ndarray]:
    """head_statistics of `model` over raw inputs, per input ([N, L, H], ring [N, L, H, R]).

    Text models get n_rings = TEXT_RINGS by default."""
    spec = model.spec
    if n_rings is None and spec.grid is None:
        n_rings = TEXT_RINGS
    return map_attention(
        model,
        inputs,
        lambda a, m: head_statistics(a, spec.grid, spec.n_prefix, spec.patch_size, m, n_rings),
        batch_size,
        progress,
    )
