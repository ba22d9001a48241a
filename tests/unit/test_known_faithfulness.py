"""Faithfulness against slow references written here (issue 29, item 9): perturbation, deletion / insertion by
hand, the pointing game on an asymmetric mask, the random baseline and the labels of the perturbation test.
tests/unit/MUTATIONS.md lists the mutations they catch."""

import dataclasses

import numpy as np
import pytest
import torch

from analysis.faithfulness import (
    FRACTIONS,
    RANDOM,
    deletion_insertion,
    per_input_scores,
    perturbation_accuracy,
    pointing_game,
    random_maps,
)
from data import load_dataset
from models import Batch


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    return [rng.random((16, 16, 3)).astype(np.float32) for _ in range(3)]


def _logits_keeping(model, batch, keep_tokens: list[list[int]]) -> torch.Tensor:
    """Logits [B, C] with every patch not in keep_tokens[b] set to the zero pixel value (all channels), by loops."""
    h, w, p, _, _ = model.spec.image_layout()
    x = batch.tensors["pixel_values"].clone()
    for b, keep in enumerate(keep_tokens):
        for t in set(range(h * w)) - set(keep):
            i, j = divmod(t, w)
            x[b, :, i * p : (i + 1) * p, j * p : (j + 1) * p] = 0
    with torch.no_grad():
        return model.run(Batch({"pixel_values": x}, batch.token_mask), capture=False).logits


def test_deletion_and_insertion_remove_and_reveal_the_top_patches(tiny_vit, images):
    """Step k of 4 on 16 patches: deletion zeroes the 4k most relevant patches, insertion (from the zero start)
    keeps only them; each curve is the probability of the target class."""
    batch, target, steps = tiny_vit.prepare(images), torch.tensor([0, 1, 2]), 4
    maps = random_maps((3, 16), seed=5)
    order = np.argsort(-maps, 1)
    curves = deletion_insertion(tiny_vit, batch, maps, target, steps=steps, start="zero")
    for k in range(steps + 1):
        top = [list(order[b, : 4 * k]) for b in range(3)]
        rest = [list(order[b, 4 * k :]) for b in range(3)]
        for name, kept in (("deletion", rest), ("insertion", top)):
            probs = _logits_keeping(tiny_vit, batch, kept).softmax(-1)[torch.arange(3), target]
            np.testing.assert_allclose(curves[name][k], probs.numpy(), rtol=1e-4, atol=1e-6, err_msg=f"{name} {k}")


def test_perturbation_removes_the_top_fraction_of_tokens(digits_vit):
    """Positive: the round(p * 64) most relevant patches zeroed; negative: the least relevant. The 0/1 accuracy
    against each class in turn gives back the prediction after each removal, compared with the loop's."""
    batch = digits_vit.prepare(load_dataset("digits", "test").inputs[:4])
    maps = random_maps((4, 64), seed=6)
    predicted = {}
    for positive in (True, False):
        order = np.argsort(-maps if positive else maps, 1)
        expected = np.stack(
            [
                _logits_keeping(digits_vit, batch, [list(order[b, int(round(p * 64)) :]) for b in range(4)])
                .argmax(-1)
                .numpy()
                for p in FRACTIONS
            ]
        )
        for c in range(10):
            got = perturbation_accuracy(digits_vit, batch, maps, [c] * 4, positive=positive)
            np.testing.assert_array_equal(got, (expected == c).astype(np.float32), err_msg=f"{positive} {c}")
        predicted[positive] = expected
    assert (predicted[True] != predicted[False]).any()  # the order of removal shows in the predictions


def test_pointing_game_reads_the_mask_at_the_maximum():
    """An asymmetric mask (rows 0-1, columns 3-5): maxima in it hit, the transposed place misses."""
    masks = np.zeros((3, 6, 6), dtype=bool)
    masks[:, 0:2, 3:6] = True
    maps = np.zeros((3, 6, 6), dtype=np.float32)
    maps[0, 1, 4] = maps[1, 4, 1] = maps[2, 0, 5] = 1.0
    np.testing.assert_array_equal(pointing_game(maps, masks), [True, False, True])


@pytest.fixture(scope="module")
def wrong_digits():
    """Four digits whose labels are all shifted by one: the model's (correct) predictions disagree with them."""
    ds = load_dataset("digits", "test").subset(range(4))
    return dataclasses.replace(ds, labels=(np.asarray(ds.labels) + 1) % 10)


def test_random_baseline_and_labels_of_the_perturbation_test(digits_vit, wrong_digits):
    """The random map of batch b is random_maps(shape, seed + b); the perturbation test scores against the
    dataset's labels (not the prediction): at fraction 0 it is (prediction == label)."""
    scores = per_input_scores(digits_vit, wrong_digits, [], n=4, batch_size=2, steps=2, seed=7)
    t = scores["real"].shape[1]
    np.testing.assert_array_equal(
        scores[f"map/{RANDOM}"], np.concatenate([random_maps((2, t), 7), random_maps((2, t), 8)])
    )
    at_zero = (scores["predictions"] == wrong_digits.labels).astype(float)
    np.testing.assert_array_equal(scores[f"positive/{RANDOM}"][:, 0], at_zero)
    np.testing.assert_array_equal(scores[f"negative/{RANDOM}"][:, 0], at_zero)
    assert (scores["predictions"] != wrong_digits.labels).any()  # the labels are not the predictions
