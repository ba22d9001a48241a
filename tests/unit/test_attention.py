"""Attention-head statistics (distance, rings, entropy, CLS and sink mass; formulas in the Attention section of
the methods document under docs/): known answers on constructed attention, batched == per-input loop, real
models."""

import itertools
import math

import numpy as np
import pytest
import torch

from analysis.attention import (
    SINK_THRESHOLD,
    attention_distance,
    chebyshev_rings,
    cls_mass,
    dataset_statistics,
    entropy,
    head_statistics,
    ring_sizes,
    ring_strength,
    rollout,
    sink_mass,
    token_positions,
    uniform_distance,
)
from data import load_dataset

GRID = (4, 5)
N = GRID[0] * GRID[1]
T = N + 1  # CLS + patches


def _stack(row_matrix: torch.Tensor, L: int = 2, B: int = 3, H: int = 2) -> torch.Tensor:
    """A [T, T] attention matrix repeated to [L, B, H, T, T]."""
    return row_matrix.expand(L, B, H, *row_matrix.shape).clone()


def _with_cls(patch_part: torch.Tensor, cls_share: float = 0.0) -> torch.Tensor:
    """[N, N] row-stochastic patch attention -> [T, T]; patch rows give cls_share to CLS, CLS attends to itself."""
    a = torch.zeros(T, T)
    a[0, 0] = 1.0
    a[1:, 0] = cls_share
    a[1:, 1:] = (1 - cls_share) * patch_part
    return a


def _mean_pairwise_distance(grid) -> float:
    pts = [(r, c) for r in range(grid[0]) for c in range(grid[1])]
    return float(np.mean([math.dist(p, q) for p, q in itertools.product(pts, pts)]))


def _box_blur(grid) -> torch.Tensor:
    """3x3 box blur on the grid (rows renormalised at the borders)."""
    cheb = chebyshev_rings(grid, grid[0] * grid[1])
    a = (cheb <= 1).float()
    return a / a.sum(-1, keepdim=True)


def test_identity_gives_zero_distance_and_entropy():
    a = _stack(torch.eye(T))
    d = attention_distance(a, GRID, patch_size=4)
    assert torch.allclose(d.patches, torch.zeros(2, 2)) and torch.allclose(d.pixels, torch.zeros(2, 2))
    assert torch.allclose(d.prefix_mass, torch.zeros(2, 2))
    assert torch.allclose(entropy(a), torch.zeros(2, 2), atol=1e-7)
    ring = ring_strength(a, GRID)
    assert torch.allclose(ring[..., 0], torch.ones(2, 2)) and torch.allclose(ring[..., 1:].sum(-1), torch.zeros(2, 2))


def test_uniform_over_patches_gives_mean_pairwise_distance_and_cls_mass_apart():
    expected = _mean_pairwise_distance(GRID)
    assert uniform_distance(GRID, N) == pytest.approx(expected, rel=1e-6)
    assert uniform_distance(None, 4) == pytest.approx((16 - 1) / 12, rel=1e-6)  # mean |i - j| = (n^2 - 1) / 3n
    a = _stack(_with_cls(torch.full((N, N), 1 / N), cls_share=0.3))
    d = attention_distance(a, GRID, patch_size=4)
    assert torch.allclose(d.patches, torch.full((2, 2), expected), atol=1e-5)
    assert torch.allclose(d.pixels, torch.full((2, 2), 4 * expected), atol=1e-4)
    assert torch.allclose(d.prefix_mass, torch.full((2, 2), 0.3), atol=1e-6)


def test_uniform_entropy_is_log_t_and_one_hot_is_zero():
    assert torch.allclose(entropy(_stack(torch.full((T, T), 1 / T))), torch.full((2, 2), math.log(T)), atol=1e-5)
    one_hot = torch.zeros(T, T)
    one_hot[:, 3] = 1.0
    assert torch.allclose(entropy(_stack(one_hot)), torch.zeros(2, 2), atol=1e-7)


def test_ring_sum_is_patch_mass_and_box_blur_stays_within_ring_one():
    torch.manual_seed(0)
    a = torch.softmax(torch.randn(2, 3, 2, T, T) * 3, -1)
    ring = ring_strength(a, GRID, per_input=True)
    patch_mass = a[..., 1:, 1:].sum(-1).mean(-1).transpose(0, 1)
    assert torch.allclose(ring.sum(-1), patch_mass, atol=1e-6)
    blur = ring_strength(_stack(_with_cls(_box_blur(GRID), 0.2)), GRID)
    assert torch.allclose(blur[..., :2].sum(-1), torch.full((2, 2), 0.8), atol=1e-6)
    assert torch.allclose(blur[..., 2:], torch.zeros_like(blur[..., 2:]), atol=1e-7)
    sizes = ring_sizes(GRID, N)
    assert sizes.sum() == pytest.approx(N) and sizes[0] == 1.0
    uniform = ring_strength(_stack(torch.full((T, T), 1 / T)), GRID)
    np.testing.assert_allclose(uniform.numpy() / sizes, 1 / T, rtol=1e-5)  # per token: flat for uniform attention
    assert ring_sizes(None, 5, n_rings=3).tolist() == pytest.approx([1.0, 8 / 5, 12 / 5])
    pooled = ring_strength(a, GRID, n_rings=2)
    full = ring_strength(a, GRID)
    assert pooled.shape[-1] == 2 and torch.allclose(pooled[..., 1], full[..., 1:].sum(-1), atol=1e-6)


def test_cls_and_sink_mass():
    a = torch.zeros(T, T)
    a[:, 0] = 0.7
    a[:, 1:] = 0.3 / N
    a = _stack(a)
    assert torch.allclose(cls_mass(a), torch.full((2, 2), 0.7), atol=1e-6)
    mass, token = sink_mass(a)
    assert torch.allclose(mass, torch.full((2, 2), 0.7), atol=1e-6) and (token == 0).all()
    assert token.shape == (3, 2, 2) and (mass > SINK_THRESHOLD).all()
    b = _stack(torch.full((T, T), 1 / T))
    assert (sink_mass(b)[0] < SINK_THRESHOLD).all()


def test_text_positions_and_padding_mask():
    """Text: distance in token positions; a padded input gives the same numbers as the same input unpadded."""
    torch.manual_seed(1)
    t_real, t_pad = 6, 9
    a_real = torch.softmax(torch.randn(2, 1, 3, t_real, t_real), -1)
    padded = torch.zeros(2, 1, 3, t_pad, t_pad)
    padded[..., :t_real, :t_real] = a_real
    padded[..., t_real:, :] = 1.0 / t_pad  # garbage rows for padded queries
    mask = torch.zeros(1, t_pad, dtype=torch.bool)
    mask[:, :t_real] = True
    for fn in (
        lambda x, m: attention_distance(x, None, token_mask=m).patches,
        lambda x, m: ring_strength(x, None, token_mask=m, n_rings=8),
        lambda x, m: entropy(x, m),
        lambda x, m: cls_mass(x, m),
        lambda x, m: sink_mass(x, m)[0],
    ):
        assert torch.allclose(fn(a_real, None), fn(padded, mask), atol=1e-6)
    assert torch.equal(token_positions(4, None)[:, 1], torch.arange(4.0))
    # a line of tokens attending to the next one: distance 1 everywhere but the last
    nxt = torch.zeros(5, 5)
    nxt[0, 0] = 1.0
    for i in range(1, 4):
        nxt[i, i + 1] = 1.0
    nxt[4, 4] = 1.0
    d = attention_distance(nxt[None, None], None).patches
    assert torch.allclose(d, torch.tensor([[0.75]]))


def test_one_token_text_and_no_prefix():
    """[CLS] + one word: the distance is 0 and the ring is the mass on the word; n_prefix=0 uses every token."""
    a = torch.tensor([[0.6, 0.4], [0.5, 0.5]])[None, None]
    d = attention_distance(a, None)
    assert torch.allclose(d.patches, torch.zeros(1, 1)) and torch.allclose(d.prefix_mass, torch.tensor([[0.5]]))
    assert torch.allclose(ring_strength(a, None), torch.tensor([[[0.5]]]))
    uniform = _stack(torch.full((N, N), 1 / N))
    d0 = attention_distance(uniform, GRID, n_prefix=0)
    assert torch.allclose(d0.patches, torch.full((2, 2), _mean_pairwise_distance(GRID)), atol=1e-5)
    assert torch.allclose(d0.prefix_mass, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="grid"):
        attention_distance(_stack(torch.eye(T)), GRID, n_prefix=0)


def test_batched_equals_per_input_loop():
    torch.manual_seed(2)
    a = torch.softmax(torch.randn(3, 5, 2, T, T) * 2, -1)
    batched = head_statistics(a, GRID, 1, 4)
    for b in range(5):
        one = head_statistics(a[:, b], GRID, 1, 4)  # one input as [L, H, T, T]
        for k, v in batched.items():
            np.testing.assert_allclose(v[b], one[k][0], atol=1e-6, err_msg=k)
    means = attention_distance(a, GRID).patches
    np.testing.assert_allclose(means.numpy(), batched["distance"].mean(0), atol=1e-6)


def test_rollout_oracles():
    L, Tn = 3, 7
    r = rollout(_stack(torch.eye(Tn), L=L, B=2))
    assert torch.allclose(r, torch.eye(Tn).expand(2, Tn, Tn))
    u = rollout(_stack(torch.full((Tn, Tn), 1 / Tn), L=L, B=2))
    assert torch.allclose(u.sum(-1), torch.ones(2, Tn))
    assert torch.allclose(u[:, 0, 1:], torch.full((2, Tn - 1), (1 - 2**-L) / Tn), atol=1e-6)


def test_real_models_dataset_statistics(digits_vit, minilm):
    digits = load_dataset("digits", "test").inputs[:6]
    s = dataset_statistics(digits_vit, digits, batch_size=4)
    L, H = digits_vit.spec.n_layers, digits_vit.spec.n_heads
    assert s["distance"].shape == (6, L, H) and s["ring"].shape == (6, L, H, 8)
    np.testing.assert_allclose(s["distance_px"], s["distance"] * digits_vit.spec.patch_size, rtol=1e-6)
    np.testing.assert_allclose(s["ring"].sum(-1) + s["prefix_mass"], 1.0, atol=1e-4)
    assert (s["entropy"] <= math.log(65) + 1e-4).all() and (s["distance"] >= 0).all()
    # batch boundaries do not change the numbers
    s1 = dataset_statistics(digits_vit, digits, batch_size=6)
    np.testing.assert_allclose(s1["distance"], s["distance"], atol=1e-5)

    texts = load_dataset("prose", "test").inputs[:5] + ["Hi"]
    t = dataset_statistics(minilm, texts, batch_size=3)
    assert t["ring"].shape == (6, 6, 12, 16) and np.isfinite(t["distance"]).all()
    assert list(t["n_tokens"]) == [len(minilm.prepare([x]).tokens[0]) for x in texts]
    alone = dataset_statistics(minilm, texts[:1])
    np.testing.assert_allclose(alone["distance"][0], t["distance"][0], atol=1e-4)
