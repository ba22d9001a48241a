"""Pattern vectors against a loop written here (issue 29, item 9): the CLS map part is what the CLS token (query 0)
gives each patch, and the offset part sums the mass at each key - query offset. tests/unit/MUTATIONS.md lists the
mutations they catch."""

import itertools

import numpy as np
import torch

from analysis.patterns import pattern_layout, pattern_vectors, unpack


def test_cls_map_and_offsets_of_random_attention_on_a_grid():
    grid = (2, 3)
    attn = torch.rand(1, 2, 2, 7, 7, generator=torch.Generator().manual_seed(0)).softmax(-1)
    parts = unpack(pattern_vectors(attn, grid, n_prefix=1), pattern_layout(grid))
    a = attn.double().numpy()
    np.testing.assert_allclose(parts["cls_map"], a[0, :, :, 0, 1:].reshape(2, 1, 2, 2, 3), rtol=1e-5)
    positions = [(r, c) for r in range(2) for c in range(3)]
    offsets = np.zeros((2, 1, 2, 3, 5))  # rows -1..1, columns -2..2
    for b, h in itertools.product(range(2), range(2)):
        for (i, p), (j, q) in itertools.product(enumerate(positions, 1), enumerate(positions, 1)):
            offsets[b, 0, h, q[0] - p[0] + 1, q[1] - p[1] + 2] += a[0, b, h, i, j] / len(positions)
    np.testing.assert_allclose(parts["offsets"], offsets, rtol=1e-5, atol=1e-7)
