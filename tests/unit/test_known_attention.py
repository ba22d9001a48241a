"""Attention statistics against per-query loops written here (issue 29, item 9): distance, rings, entropy, CLS
and sink mass on random attention over a non-square grid and on padded text. tests/unit/MUTATIONS.md lists the
mutations they catch."""

import itertools
import math

import numpy as np
import pytest
import torch

from analysis.attention import head_statistics


def _random_attention(l, b, h, t, seed):
    return torch.rand(l, b, h, t, t, generator=torch.Generator().manual_seed(seed)).pow(3).softmax(-1)


def _reference(attn, positions, mask, n_prefix):
    """Loops over every input, head and query: the statistics of analysis.attention as its docstrings define
    them. positions [T - n_prefix] (row, col); mask [B, T] real tokens."""
    attn = attn.double().numpy()
    L, B, H, T, _ = attn.shape
    out = {k: np.zeros((B, L, H)) for k in ("distance", "prefix_mass", "entropy", "cls_mass", "sink_mass")}
    n_rings = 1 + max(max(abs(p[0] - q[0]), abs(p[1] - q[1])) for p, q in itertools.product(positions, positions))
    out["ring"] = np.zeros((B, L, H, n_rings))
    for b, l, h in itertools.product(range(B), range(L), range(H)):
        real = [i for i in range(T) if mask[b, i]]
        placed = [i for i in real if i >= n_prefix]
        a = attn[l, b, h]
        dist, prefix, ring = [], [], np.zeros(n_rings)
        for i in placed:
            row = {j: a[i, j] for j in placed}
            total = sum(row.values())
            pi = positions[i - n_prefix]
            dist.append(sum(v * math.dist(pi, positions[j - n_prefix]) for j, v in row.items()) / total)
            prefix.append(sum(a[i, j] for j in range(n_prefix)))
            for j, v in row.items():
                pj = positions[j - n_prefix]
                ring[max(abs(pi[0] - pj[0]), abs(pi[1] - pj[1]))] += v / len(placed)
        out["distance"][b, l, h] = np.mean(dist)
        out["prefix_mass"][b, l, h] = np.mean(prefix)
        out["ring"][b, l, h] = ring
        out["entropy"][b, l, h] = np.mean([-sum(a[i, j] * math.log(a[i, j]) for j in range(T)) for i in real])
        out["cls_mass"][b, l, h] = np.mean([a[i, 0] for i in real])
        out["sink_mass"][b, l, h] = max(np.mean([a[i, j] for i in real]) for j in real)
    return out


def _check(attn, positions, mask, n_prefix, grid):
    expected = _reference(attn, positions, mask, n_prefix)
    got = head_statistics(attn, grid, n_prefix, token_mask=torch.as_tensor(mask), n_rings=expected["ring"].shape[-1])
    for k, v in expected.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-4, atol=1e-6, err_msg=k)


def test_statistics_on_a_non_square_grid_equal_the_loops():
    """A 2 x 3 grid (rows and columns differ) after one CLS token, random peaked attention."""
    grid = (2, 3)
    positions = [(r, c) for r in range(2) for c in range(3)]
    _check(_random_attention(2, 2, 3, 7, seed=0), positions, np.ones((2, 7), dtype=bool), 1, grid)


@pytest.mark.parametrize("n_prefix", [0, 1])
def test_statistics_on_padded_text_equal_the_loops(n_prefix):
    """Text (positions 0, 1, ...) with the second input padded after 4 tokens: padded queries are left out and
    padded keys get no mass, even though the attention tensor gives them some."""
    mask = np.ones((2, 7), dtype=bool)
    mask[1, 4:] = False
    positions = [(0, k) for k in range(7 - n_prefix)]
    _check(_random_attention(2, 2, 2, 7, seed=1), positions, mask, n_prefix, None)
