"""Ablation kinds of head importance and pruning (analysis.importance.make_ablation): zero, mean and resample,
against full forwards that replace one head's output by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from analysis.importance import ablation_per_sample, as_sample, head_z, make_ablation, make_sample
from analysis.pruning import partial_pruning
from data import load_dataset
from runs import sample

METRICS = ("loss", "true_prob")


def _replaced(model, batch, target, layer, head, r):
    """loss and true_prob [B] of full forwards with head (layer, head)'s output replaced by r [1 or B, T, dh]."""

    def swap(z, name):
        z = z.clone()
        z[:, :, head] = r[:, : z.shape[1]]
        return z

    with torch.no_grad():
        logits = model.run(batch, capture=False, hooks=[(f"blocks.{layer}.attn.hook_z", swap)]).logits
    return {
        "loss": F.cross_entropy(logits, target, reduction="none"),
        "true_prob": logits.softmax(-1).gather(1, target[:, None])[:, 0],
    }


def _by_hand(model, smp, donor_z):
    """Per-input drops [L, H, N] when each head's output is replaced by donor_z (per layer [1 or N, T, H, dh])."""
    L, H = model.spec.n_layers, model.spec.n_heads
    with torch.no_grad():
        logits = model.run(smp.batch, capture=False).logits
    target = smp.labels
    base = {
        "loss": F.cross_entropy(logits, target, reduction="none"),
        "true_prob": logits.softmax(-1).gather(1, target[:, None])[:, 0],
    }
    out = {m: np.empty((L, H, len(smp))) for m in METRICS}
    for l in range(L):
        for h in range(H):
            got = _replaced(model, smp.batch, target, l, h, donor_z[l][:, :, h])
            out["loss"][l, h] = (got["loss"] - base["loss"]).numpy()
            out["true_prob"][l, h] = (base["true_prob"] - got["true_prob"]).numpy()
    return out


@pytest.mark.parametrize("fixture,data", [("digits_vit", "digits"), ("minilm", "prose")])
def test_mean_over_one_input_is_replacing_by_that_inputs_output(fixture, data, request):
    model = request.getfixturevalue(fixture)
    ds = load_dataset(data, "test")
    smp = make_sample(model, ds.inputs[:4], ds.labels[:4], ds.class_names)
    longest = max(range(len(ds.inputs)), key=lambda i: len(str(ds.inputs[i]))) if data == "prose" else 10
    ref = model.prepare([ds.inputs[longest]])  # text: longer than the sample, so it has every position
    want = _by_hand(model, smp, head_z(model, ref))
    for kind in ("mean", "resample"):  # with one reference input, its donor is that input too
        got = ablation_per_sample(model, smp, METRICS, ablation=kind, reference=ref, batch_size=3)
        for m in METRICS:
            np.testing.assert_allclose(got[m], want[m], atol=2e-5, err_msg=f"{kind} {m}")


def test_resample_takes_another_seeded_input_of_the_sample(digits_vit):
    ds = load_dataset("digits", "test")
    smp = make_sample(digits_vit, ds.inputs[:6], ds.labels[:6])
    a = make_ablation(digits_vit, smp, "resample", seed=3)
    assert a.donor_of is not None and (a.donor_of != np.arange(6)).all()
    assert np.array_equal(a.donor_of, make_ablation(digits_vit, smp, "resample", seed=3).donor_of)
    assert any(
        not np.array_equal(a.donor_of, make_ablation(digits_vit, smp, "resample", seed=s).donor_of) for s in range(4, 9)
    )
    donors = head_z(digits_vit, smp.batch.select(a.donor_of))
    want = _by_hand(digits_vit, smp, donors)
    got = ablation_per_sample(digits_vit, smp, METRICS, ablation="resample", seed=3, batch_size=4)
    for m in METRICS:
        np.testing.assert_allclose(got[m], want[m], atol=2e-5)


def test_the_mean_is_per_token_position_over_the_sample(digits_vit):
    ds = load_dataset("digits", "test")
    smp = as_sample(digits_vit, ds.subset(range(7)))
    means = make_ablation(digits_vit, smp, "mean", batch_size=3).means
    assert means is not None
    for l, z in enumerate(head_z(digits_vit, smp.batch)):
        torch.testing.assert_close(means[l][0], z.mean(0), atol=1e-6, rtol=1e-5)


def test_pruning_with_mean_ablation_ends_at_the_ablation_scores(digits_vit):
    """partial pruning's gate 0 under mean ablation is the mean-ablated model of the importance scores."""
    ds = load_dataset("digits", "test")
    smp = make_sample(digits_vit, ds.inputs[:8], ds.labels[:8])
    curve = partial_pruning(digits_vit, smp, 2, 1, steps=3, metrics=("loss",), ablation="mean")
    with torch.no_grad():
        base = F.cross_entropy(digits_vit.run(smp.batch, capture=False).logits, smp.labels).item()
    drop = ablation_per_sample(digits_vit, smp, ("loss",), ablation="mean")["loss"][2, 1].mean()
    at_zero = curve[curve["gate"] == 0.0]["value"].item()
    assert at_zero == pytest.approx(base + drop, abs=1e-5)
    zero = partial_pruning(digits_vit, smp, 2, 1, steps=3, metrics=("loss",))
    assert zero[zero["gate"] == 0.0]["value"].item() != pytest.approx(at_zero, abs=1e-4)


def test_the_importance_unit_takes_the_ablation_kind(digits_vit):
    with pytest.raises(ValueError, match="'ablation' got 'means': choose from zero, mean, resample"):
        sample("importance", digits_vit, "digits", 4, ablation="means")
    with pytest.raises(ValueError, match="Unknown ablation 'half'"):
        make_ablation(digits_vit, as_sample(digits_vit, load_dataset("digits", "test").subset(range(2))), "half")
    runs = {
        k: sample("importance", digits_vit, "digits", 8, ablation=k, gradient=False).arrays()
        for k in ("zero", "mean", "resample")
    }
    assert runs["zero"]["loss"].shape == runs["mean"]["loss"].shape == (8, 4, 4)
    assert not np.allclose(runs["zero"]["loss"], runs["mean"]["loss"])
    assert not np.allclose(runs["mean"]["loss"], runs["resample"]["loss"])


@pytest.mark.parametrize("kind", ["mean", "resample"])
def test_a_stored_run_with_mean_or_resample_ablation_does_not_depend_on_its_chunks(kind, digits_vit, tmp_path):
    from runs import Store
    from runs.jobs import run_job
    from runs.plan import manifest_for

    ds = load_dataset("digits", "test")
    options = {"batch_size": 4, "ablation": kind, "gradient": False, "metrics": ["loss"]}
    memory = sample("importance", digits_vit, ds, 12, **options).arrays()
    stored = run_job(
        digits_vit, ds, manifest_for(digits_vit, "digits-vit", ds, "importance", 12, 8, **options), Store(tmp_path)
    )
    np.testing.assert_allclose(memory["loss"], stored.arrays()["loss"], atol=1e-6)
