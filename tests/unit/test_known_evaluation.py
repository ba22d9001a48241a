"""Predictions and accuracy against known answers (issue 29, item 9; see tests/unit/MUTATIONS.md)."""

import numpy as np
import pytest
import torch

from analysis.evaluation import accuracy, predict, top_k
from data import load_dataset


def test_batched_predictions_are_the_softmax_of_one_forward(digits_vit):
    """Batches of 3 over 7 inputs (a short last batch) give each input's own softmax of one full forward."""
    inputs = load_dataset("digits", "test").inputs[:7]
    probs = predict(digits_vit, inputs, batch_size=3)
    logits = digits_vit.run(digits_vit.prepare(list(inputs)), capture=False).logits.float()
    np.testing.assert_allclose(probs, torch.softmax(logits, -1).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)


def test_accuracy_and_top_k_of_constructed_probabilities():
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    assert accuracy(probs, [1, 0, 0, 2]) == pytest.approx(2 / 4)
    assert accuracy(probs, [1, 0, 2, 1]) == 1.0
    assert top_k(probs[0], ["a", "b", "c"], k=2) == [("b", pytest.approx(0.7)), ("c", pytest.approx(0.2))]
