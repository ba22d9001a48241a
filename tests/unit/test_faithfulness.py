"""Faithfulness scores: AUC oracles, perturbation mechanics, localisation on known masks, and the
evaluation over a dataset sample (random maps as chance)."""

import numpy as np
import pytest
import torch

from analysis.faithfulness import (
    FRACTIONS,
    INSERTION_STARTS,
    METRICS,
    RANDOM,
    deletion_insertion,
    disagreement,
    evaluate,
    insertion_floor,
    insertion_starts,
    mixed_logits,
    perturbation_accuracy,
    perturbation_auc,
    pointing_game,
    random_maps,
    rise_auc,
    segmentation_counts,
    segmentation_scores,
)
from data import load_dataset
from models import Resume


def test_rise_auc_of_a_constant_curve_is_the_constant():
    for s in (0.0, 0.3, 1.0):
        assert rise_auc(np.full(17, s)) == pytest.approx(s)
    assert rise_auc(np.linspace(1, 0, 11)) == pytest.approx(0.5)


def test_perturbation_auc_is_trapz_including_zero():
    assert perturbation_auc(np.ones(10)) == pytest.approx(90.0)
    assert perturbation_auc(np.full(10, 0.5)) == pytest.approx(45.0)
    assert perturbation_auc(1 - FRACTIONS) == pytest.approx(100 * (0.9 - 0.81 / 2))


def test_mixed_logits_keep_all_and_keep_none(digits_vit):
    batch = digits_vit.prepare(load_dataset("digits", "test").inputs[:3])
    keep = torch.stack([torch.ones(3, 64), torch.zeros(3, 64)])
    out = mixed_logits(digits_vit, batch, keep)
    with torch.no_grad():
        clean = digits_vit.run(batch, capture=False).logits
        x = batch.tensors["pixel_values"]
        blank = digits_vit.run(
            type(batch)({"pixel_values": torch.zeros_like(x)}, batch.token_mask), capture=False
        ).logits
    assert torch.allclose(out[0], clean, atol=1e-5)
    assert torch.allclose(out[1], blank, atol=1e-5)


def test_mixed_logits_text_keeps_prefix_and_padding(minilm):
    batch = minilm.prepare(["A short text.", "A somewhat longer text about the glucose level in blood."])
    t = batch.token_mask.shape[1] - 1
    out = mixed_logits(minilm, batch, torch.ones(1, 2, t))
    with torch.no_grad():
        clean = minilm.run(batch, capture=False).logits
    assert torch.allclose(out[0], clean, atol=1e-4)


def test_perturbation_removes_in_rank_order(digits_vit):
    """Removing 0% keeps the clean prediction; positive and negative orders differ for a non-random map."""
    ds = load_dataset("digits", "test")
    batch = digits_vit.prepare(ds.inputs[:8])
    maps = np.tile(np.arange(64, dtype=np.float32), (8, 1))
    pos = perturbation_accuracy(digits_vit, batch, maps, ds.labels[:8], positive=True)
    neg = perturbation_accuracy(digits_vit, batch, maps, ds.labels[:8], positive=False)
    with torch.no_grad():
        clean = (digits_vit.run(batch, capture=False).logits.argmax(-1).numpy() == ds.labels[:8]).astype(float)
    assert pos.shape == (len(FRACTIONS), 8)
    assert np.allclose(pos[0], clean) and np.allclose(neg[0], clean)
    curves = deletion_insertion(digits_vit, batch, maps, torch.as_tensor(ds.labels[:8]), steps=4)
    assert curves["deletion"].shape == curves["insertion"].shape == (5, 8)
    assert np.allclose(curves["deletion"][0], curves["insertion"][-1], atol=1e-5)  # both = the clean input


def test_pointing_game_and_segmentation_on_known_maps():
    masks = np.zeros((2, 6, 6), dtype=bool)
    masks[:, 1:3, 1:3] = True
    perfect = masks.astype(np.float32)
    assert pointing_game(perfect, masks).all()
    assert not pointing_game(1 - perfect, masks).any()
    miou, acc = segmentation_scores(segmentation_counts(perfect, masks), 36)
    assert miou == pytest.approx(1.0) and acc == pytest.approx(1.0)
    miou, acc = segmentation_scores(segmentation_counts(1 - perfect, masks), 36)
    assert miou == pytest.approx(0.0) and acc == pytest.approx(0.0)


def test_disagreement_zero_for_equal_rankings_and_two_for_opposite():
    a = random_maps((4, 10))
    assert np.allclose(disagreement({"x": a, "y": 2 * a + 1}), 0.0)
    assert np.allclose(disagreement({"x": a, "y": -a}), 2.0)


def test_random_map_gives_positive_about_negative_auc(digits_vit):
    ds = load_dataset("digits", "test")
    n = 64
    batch = digits_vit.prepare(ds.inputs[:n])
    pos, neg = [], []
    for seed in range(2):
        maps = random_maps((n, 64), seed)
        pos.append(perturbation_auc(perturbation_accuracy(digits_vit, batch, maps, ds.labels[:n], True).mean(1)))
        neg.append(perturbation_auc(perturbation_accuracy(digits_vit, batch, maps, ds.labels[:n], False).mean(1)))
    print("random map: positive AUC", pos, "negative AUC", neg)
    assert abs(np.mean(pos) - np.mean(neg)) < 8.0  # percent points out of 90


@pytest.mark.slow
def test_evaluate_table_and_curves(digits_vit, minilm):
    ds = load_dataset("digits", "test")
    calls = []
    rep = evaluate(
        digits_vit, ds, ["rollout", "attnlrp"], n=12, batch_size=6, steps=4, progress=lambda f, m: calls.append(f)
    )
    assert list(rep.table["method"]) == ["rollout", "attnlrp", RANDOM]
    assert set(METRICS) <= set(rep.table.columns)
    assert rep.table["pointing_game"].isna().all()  # digits has no masks
    assert set(rep.curves["test"]) == {"positive", "negative", "deletion", "insertion"}
    assert rep.maps["attnlrp"].shape == (12, 64) and rep.disagreement().shape == (12,)
    assert calls[-1] == 1.0 and all(0 <= f <= 1 for f in calls)
    # the method whose map tracks the class evidence beats chance on the perturbation test
    t = rep.table.set_index("method")
    assert t.loc["attnlrp", "negative_auc"] > t.loc[RANDOM, "negative_auc"]
    text = evaluate(minilm, load_dataset("prose", "test"), ["attnlrp"], n=2, batch_size=2, steps=4)
    assert np.isfinite(text.table[["positive_auc", "deletion_auc", "insertion_auc"]].to_numpy()).all()


def _probs(model, batch, pixels, target):
    with torch.no_grad():
        logits = model.run(type(batch)({"pixel_values": pixels}, batch.token_mask), capture=False).logits
    return logits.softmax(-1)[torch.arange(len(target)), target].numpy()


@pytest.mark.parametrize("start", insertion_starts("image"))
def test_insertion_runs_from_its_start_input_to_the_input(digits_vit, start):
    batch = digits_vit.prepare(load_dataset("digits", "test").inputs[:4])
    x = batch.tensors["pixel_values"]
    target = torch.tensor([0, 3, 5, 9])
    curves = deletion_insertion(digits_vit, batch, random_maps((4, 64)), target, steps=4, start=start)
    expected = {
        "zero": torch.zeros_like(x),
        "mean": x.mean((2, 3), keepdim=True).expand_as(x),  # every pixel the image's mean colour
        "blur": None,
    }[start]
    if expected is not None:
        assert np.allclose(curves["insertion"][0], _probs(digits_vit, batch, expected, target), atol=1e-5)
    else:  # a blur keeps the mean and lowers the variation, and the start differs from both ends
        assert not np.allclose(curves["insertion"][0], _probs(digits_vit, batch, torch.zeros_like(x), target))
    assert np.allclose(curves["insertion"][-1], _probs(digits_vit, batch, x, target), atol=1e-5)


def test_text_insertion_starts_exclude_padding_and_blur(minilm):
    assert insertion_starts("text") == ["zero", "mean"] and insertion_starts("image")[0] == "blur"
    batch = minilm.prepare(["Short.", "A longer sentence about blood glucose and insulin levels."])
    target = torch.tensor([0, 1])
    t = batch.token_mask.shape[1] - 1
    with pytest.raises(ValueError, match="insertion start 'blur'"):
        deletion_insertion(minilm, batch, np.zeros((2, t)), target, steps=2, start="blur")
    # "mean" fills every token with the mean embedding of the real tokens of its own input
    curves = deletion_insertion(minilm, batch, np.zeros((2, t)), target, steps=2, start="mean")
    with torch.no_grad():
        emb = minilm.embed(batch)
        real = batch.token_mask[..., None].float()
        mean = (emb * real).sum(1, keepdim=True) / real.sum(1, keepdim=True)
        start = torch.cat([emb[:, :1], mean.expand_as(emb)[:, 1:]], 1)  # the prefix token stays
        probs = minilm.run(batch, capture=False, resume=Resume(start)).logits.softmax(-1)
    assert np.allclose(curves["insertion"][0], probs[[0, 1], [0, 1]].numpy(), atol=1e-4)


def test_insertion_floor_is_the_mean_start_probability(digits_vit):
    rep = evaluate(digits_vit, load_dataset("digits", "test"), ["rollout"], n=6, batch_size=3, steps=2, start="zero")
    batch = digits_vit.prepare(load_dataset("digits", "test").inputs[:6])
    blank = _probs(digits_vit, batch, torch.zeros_like(batch.tensors["pixel_values"]), torch.as_tensor(rep.predictions))
    assert insertion_floor(rep.curves) == pytest.approx(blank.mean(), abs=1e-5)
    assert set(INSERTION_STARTS) == {"blur", "zero", "mean"}


def test_the_best_method_is_judged_against_the_random_map():
    """best_methods names a column's best method only when it beats the seeded random map there (lower is better
    for positive perturbation and deletion, higher for negative perturbation and insertion)."""
    import pandas as pd

    from analysis.faithfulness import METRICS, best_methods

    rows = [
        {"method": "rollout", "positive_auc": 11.2, "negative_auc": 50.0, "deletion_auc": 0.3, "insertion_auc": 0.6},
        {"method": "attnlrp", "positive_auc": 12.0, "negative_auc": 40.0, "deletion_auc": 0.2, "insertion_auc": 0.5},
        {"method": RANDOM, "positive_auc": 9.53, "negative_auc": 45.0, "deletion_auc": 0.25, "insertion_auc": 0.7},
    ]
    table = pd.DataFrame(rows).reindex(columns=["method", *METRICS])
    best = best_methods(table)
    assert best == {"positive_auc": None, "negative_auc": "rollout", "deletion_auc": "attnlrp", "insertion_auc": None}
