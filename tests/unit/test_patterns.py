"""Pattern vectors on constructed attention, batched == per-input loop, clustering of known pattern families."""

import numpy as np
import pytest
import torch

from analysis.attention import chebyshev_rings, map_attention
from analysis.patterns import (
    autoencode,
    cluster,
    pattern_layout,
    pattern_vectors,
    project_2d,
    prototypes,
    summarise_patterns,
    unpack,
)
from data import load_dataset

GRID = (4, 4)
N = 16
T = N + 1


def _heads(kind: str) -> torch.Tensor:
    """[T, T] attention of a known kind: 'self' (identity), 'left' (the patch to the left), 'uniform'."""
    a = torch.zeros(T, T)
    a[0] = 1.0 / T
    for i in range(N):
        r, c = divmod(i, GRID[1])
        j = i if kind == "self" or c == 0 else i - 1
        a[1 + i, 1 + j] = 1.0
    if kind == "uniform":
        a[:] = 1.0 / T
    return a


def test_layout_and_offsets_of_known_patterns():
    layout = pattern_layout(GRID, max_offset=2)
    assert layout["cls_map"] == (0, 16, (4, 4)) and layout["offsets"] == (16, 41, (5, 5))
    a = torch.stack([_heads("self"), _heads("left"), _heads("uniform")])[None, None]  # [1, 1, 3, T, T]
    v = pattern_vectors(a, GRID, max_offset=2)
    assert v.shape == (1, 1, 3, layout["entropy"][1])
    parts = unpack(v[0, 0], layout)
    assert parts["offsets"][0, 2, 2] == pytest.approx(1.0)  # self: all mass at offset (0, 0)
    assert parts["offsets"][1, 2, 1] == pytest.approx(12 / 16)  # left neighbour for the 12 patches not in col 0
    np.testing.assert_allclose(parts["offsets"].sum((-1, -2)), [1.0, 1.0, 16 / 17], atol=1e-6)
    np.testing.assert_allclose(parts["cls_map"][2], np.full((4, 4), 1 / 17), atol=1e-6)
    np.testing.assert_allclose(parts["entropy"][:, 0], [1 / 17, 1 / 17, 1.0], atol=1e-6)  # the CLS row is uniform
    np.testing.assert_allclose(parts["prefix_mass"][:, 0], [0.0, 0.0, 1 / 17], atol=1e-6)


def test_offsets_pool_beyond_max_offset_and_text_layout():
    uniform = torch.full((1, 1, 1, T, T), 1.0 / T)
    v = unpack(pattern_vectors(uniform, GRID, max_offset=1)[0, 0, 0], pattern_layout(GRID, 1))
    assert v["offsets"].shape == (3, 3) and v["offsets"].sum() == pytest.approx(16 / 17, abs=1e-6)
    text_layout = pattern_layout(None, max_offset=3)
    assert "cls_map" not in text_layout and text_layout["offsets"][2] == (1, 7)
    nxt = torch.zeros(1, 1, 1, 5, 5)
    nxt[..., 0, 0] = 1
    for i in range(1, 4):
        nxt[..., i, i + 1] = 1
    nxt[..., 4, 4] = 1
    off = unpack(pattern_vectors(nxt, None, max_offset=3)[0, 0, 0], text_layout)["offsets"][0]
    np.testing.assert_allclose(off, [0, 0, 0, 0.25, 0.75, 0, 0], atol=1e-6)


def test_no_prefix_uses_received_mass():
    blur = (chebyshev_rings(GRID, N) <= 1).float()
    blur = blur / blur.sum(-1, keepdim=True)
    v = unpack(pattern_vectors(blur[None, None, None], GRID, n_prefix=0)[0, 0, 0], pattern_layout(GRID))
    assert v["cls_map"].sum() == pytest.approx(1.0, abs=1e-6) and v["prefix_mass"][0] == 0.0
    assert v["cls_map"][1, 1] > v["cls_map"][0, 0]  # inner patches receive more from a blur than corners


def test_batched_equals_per_input_loop_with_padding():
    torch.manual_seed(0)
    a = torch.softmax(torch.randn(2, 4, 3, 9, 9), -1)
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[1, 6:] = False
    a[:, 1, :, :, 6:] = 0
    a[:, 1] = a[:, 1] / a[:, 1].sum(-1, keepdim=True)
    batched = pattern_vectors(a, None, token_mask=mask)
    for b in range(4):
        t = int(mask[b].sum())
        one = pattern_vectors(a[:, b, :, :t, :t], None)
        np.testing.assert_allclose(batched[b], one[0], atol=1e-6)


def test_clusters_recover_known_families_and_prototypes_are_means():
    torch.manual_seed(0)
    kinds = ["self", "left", "uniform"]
    base = torch.stack([_heads(k) for k in kinds])  # 3 heads, each its own family
    a = base[None, None] + 0.01 * torch.rand(2, 10, 3, T, T)
    a = a / a.sum(-1, keepdim=True)
    v = pattern_vectors(a, GRID)
    for method in ("kmeans", "agglomerative"):
        s = summarise_patterns(v, k=3, clustering=method)
        by_head = s.labels.reshape(10, 2, 3)
        for h in range(3):
            assert len(np.unique(by_head[..., h])) == 1  # every input of a head in one cluster
        assert len(np.unique(by_head[0, 0])) == 3
        x = v.reshape(-1, v.shape[-1])
        for c in range(3):
            np.testing.assert_allclose(s.prototypes[c], x[s.labels == c].mean(0), atol=1e-6)
            assert s.labels[s.medoids[c]] == c
        assert s.coords.shape == (60, 2) and s.share.shape == (3, 2, 3)
        np.testing.assert_allclose(s.share.sum(0), 1.0)
        idx, counts = s.inputs_of(int(s.labels[0]))
        assert set(idx) == set(range(10)) and (counts == 2).all()


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
def test_autoencoder_learns_and_small_inputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) @ rng.normal(size=(3, 20))
    codes, losses = autoencode(x, dim=3, epochs=40)
    assert codes.shape == (200, 3) and losses[-1] < 0.5 * losses[0]
    s = summarise_patterns(x.reshape(10, 4, 5, 20), k=4, embedding="autoencoder")
    assert s.codes.shape == (200, 8) and s.prototypes.shape == (4, 20)
    assert cluster(np.zeros((2, 2)), k=5).shape == (2,)  # k clamped to the number of patterns
    assert project_2d(np.ones((4, 1))).shape == (4, 2)
    protos, medoids = prototypes(x, np.zeros(200, dtype=int), 2)
    assert medoids[1] == -1 and (protos[1] == 0).all()
    with pytest.raises(ValueError, match="embedding"):
        summarise_patterns(x.reshape(10, 4, 5, 20), embedding="nope")


def test_real_model_pattern_vectors(digits_vit, minilm):
    spec = digits_vit.spec
    imgs = load_dataset("digits", "test").inputs[:4]
    v = map_attention(digits_vit, imgs, lambda a, m: {"v": pattern_vectors(a, spec.grid, spec.n_prefix, m)})["v"]
    layout = pattern_layout(spec.grid)
    assert v.shape == (4, spec.n_layers, spec.n_heads, layout["entropy"][1])
    parts = unpack(v, layout)
    np.testing.assert_allclose(parts["offsets"].sum((-1, -2)) + parts["prefix_mass"][..., 0], 1.0, atol=1e-4)
    texts = load_dataset("prose", "test").inputs[:3]
    t = map_attention(minilm, texts, lambda a, m: {"v": pattern_vectors(a, None, 1, m)}, batch_size=2)["v"]
    assert t.shape == (3, 6, 12, pattern_layout(None)["entropy"][1]) and np.isfinite(t).all()


def test_umap_projection_keeps_separated_families_apart_and_is_seeded():
    """UMAP (the attention view's second map; its numba JIT is paid once per process, as in test_embedding)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 8))
    z = np.concatenate([c + rng.normal(0, 0.3, (40, 8)) for c in centres])
    family = np.repeat(np.arange(3), 40)
    xy = project_2d(z, "umap", seed=3)
    assert xy.shape == (120, 2) and np.isfinite(xy).all()
    means = np.stack([xy[family == f].mean(0) for f in range(3)])
    nearest = np.linalg.norm(xy[:, None] - means[None], axis=-1).argmin(1)
    assert (nearest == family).all()  # every point sits nearest its own family's centre
    np.testing.assert_allclose(project_2d(z, "umap", seed=3), xy)  # seeded: the same map twice
