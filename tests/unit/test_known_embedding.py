"""Embedding separability against known answers (issue 29, item 9): the probe is scored on held-out inputs, and
the kNN vote against a brute-force loop. tests/unit/MUTATIONS.md lists the mutations they catch."""

import numpy as np

from analysis.embedding import knn_accuracy, separability


def test_probe_on_noise_is_near_chance_held_out():
    """Labels unrelated to 200-dimensional noise: a probe can fit its 42 training inputs, but the held-out
    accuracy stays near chance (1/2), far from the training fit."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 60, 200))
    y = np.arange(60) % 2
    acc = separability(x, y, k=3)["probe accuracy"].item()
    assert acc < 0.8


def test_knn_equals_a_brute_force_vote():
    rng = np.random.default_rng(1)
    x, y, k = rng.standard_normal((15, 4)), rng.integers(0, 3, 15), 3
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    correct = []
    for i in range(len(y)):
        sims = [(unit[i] @ unit[j], j) for j in range(len(y)) if j != i]
        nearest = [j for _, j in sorted(sims, reverse=True)[:k]]
        votes = np.bincount(y[nearest], minlength=3)
        correct.append(int(np.argmax(votes)) == y[i])  # argmax: ties go to the smallest label
    assert knn_accuracy(x, y, k) == np.mean(correct)
