"""Head importance (Michel et al. 2019 and Li et al.'s pruning metrics; formulas in the Head-importance section of
the methods document under docs/): known answers on real and tiny random models."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from analysis import importance as imp
from analysis import pruning
from data import load_dataset
from models import load_model


@pytest.fixture(scope="module")
def digits_sample(digits_vit):
    return imp.as_sample(digits_vit, load_dataset("digits", "test").subset(range(16)))


@pytest.fixture(scope="module")
def tiny_sample(tiny_vit):
    rng = np.random.default_rng(0)
    images = [rng.random((16, 16, 3)).astype(np.float32) for _ in range(10)]
    return imp.make_sample(tiny_vit, images, labels=rng.integers(0, 3, 10))


@pytest.fixture(scope="module")
def prose_texts():
    return load_dataset("prose", "test").subset(range(4))


def _metric_values(model, sample, gates=None):
    """Slow reference: the metrics of one gate setting, computed directly from model.run."""
    logits = model.run(sample.batch, capture=False, head_gates=gates).logits.float()
    target = sample.labels if sample.labels is not None else model.run(sample.batch, capture=False).logits.argmax(-1)
    return {
        "accuracy": (logits.argmax(-1) == target).float().mean().item(),
        "loss": F.cross_entropy(logits, target).item(),
        "true_prob": logits.softmax(-1).gather(1, target[:, None]).mean().item(),
    }


# -- gates -------------------------------------------------------------------------------------------------
def test_all_gates_one_reproduce_the_ungated_model(digits_vit, digits_sample):
    L, H = digits_vit.spec.n_layers, digits_vit.spec.n_heads
    plain = digits_vit.run(digits_sample.batch, capture=False).logits
    gated = digits_vit.run(digits_sample.batch, capture=False, head_gates=torch.ones(L, H)).logits
    assert torch.equal(plain, gated)
    res = imp.evaluate_gates(digits_vit, digits_sample, torch.ones(1, L, H))
    expected = _metric_values(digits_vit, digits_sample)
    for m, v in expected.items():
        assert res[m].mean() == pytest.approx(v, abs=1e-6)


def test_zeroing_a_whole_layer_leaves_only_the_output_bias(digits_vit, digits_sample):
    L, H = digits_vit.spec.n_layers, digits_vit.spec.n_heads
    g = torch.ones(L, H)
    g[2] = 0
    tr = digits_vit.run(digits_sample.batch.select(range(4)), head_gates=g)
    bias = digits_vit.blocks[2].o.bias.detach()
    assert torch.allclose(tr.attn_out[2], bias.expand_as(tr.attn_out[2]), atol=1e-6)


# -- fast ablation == naive loop ---------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["digits", "tiny"])
def test_fast_ablation_equals_naive_loop(which, digits_vit, digits_sample, tiny_vit, tiny_sample):
    model, sample = (digits_vit, digits_sample) if which == "digits" else (tiny_vit, tiny_sample)
    naive = imp.ablation_naive(model, sample)
    # small chunks on purpose: several sample chunks and several forwards per layer
    fast = imp.ablation_per_sample(model, sample, batch_size=7, max_rows=14)
    default = imp.ablation_per_sample(model, sample)
    for m in imp.LABEL_METRICS:
        assert fast[m].shape == (model.spec.n_layers, model.spec.n_heads, len(sample))
        np.testing.assert_allclose(fast[m], naive[m], atol=1e-5)
        np.testing.assert_allclose(default[m], naive[m], atol=1e-5)


def test_naive_loop_matches_direct_metric_differences(digits_vit, digits_sample):
    naive = imp.ablation_naive(digits_vit, digits_sample)
    base = _metric_values(digits_vit, digits_sample)
    g = torch.ones(4, 4)
    g[1, 3] = 0
    ablated = _metric_values(digits_vit, digits_sample, g)
    assert naive["accuracy"][1, 3].mean() == pytest.approx(base["accuracy"] - ablated["accuracy"], abs=1e-6)
    assert naive["loss"][1, 3].mean() == pytest.approx(ablated["loss"] - base["loss"], abs=1e-5)
    assert naive["true_prob"][1, 3].mean() == pytest.approx(base["true_prob"] - ablated["true_prob"], abs=1e-6)


def test_text_fast_ablation_with_cosine_equals_naive(tiny_bert, prose_texts):
    sample = imp.as_sample(tiny_bert, prose_texts)
    assert sample.labels is None  # prose topics are not the tiny classifier's labels
    assert imp.default_metrics(tiny_bert, sample)[0] == "cosine"
    fast = imp.ablation_per_sample(tiny_bert, sample, imp.METRICS, max_rows=12)
    naive = imp.ablation_naive(tiny_bert, sample, imp.METRICS)
    for m in imp.METRICS:
        np.testing.assert_allclose(fast[m], naive[m], atol=1e-5)
    assert (fast["cosine"] >= -1e-6).all()


def test_minilm_uses_prompt_scores_and_dataset_labels(minilm, prose_texts):
    sample = imp.as_sample(minilm, prose_texts)
    names = list(minilm.spec.class_names)
    assert sample.labels.tolist() == [names.index(prose_texts.class_names[i]) for i in prose_texts.labels]
    df = imp.ablation_importance(minilm, sample, ("accuracy", "cosine"), max_rows=36)
    assert set(df.metric) == {"accuracy", "cosine"} and len(df) == 2 * 6 * 12
    assert df[df.metric == "cosine"].value.max() > 0


# -- a head that writes nothing scores 0 ---------------------------------------------------------------------
def test_head_with_zeroed_output_projection_scores_zero(tiny_vit_dir, tiny_sample):
    model = load_model(str(tiny_vit_dir), device="cpu")  # own copy: its weights get edited
    dh = model.spec.d_model // model.spec.n_heads
    with torch.no_grad():
        model.blocks[1].o.weight[:, 2 * dh : 3 * dh] = 0
    abl = imp.ablation_importance(model, tiny_sample)
    head = abl[(abl.layer == 1) & (abl["head"] == 2)]
    assert len(head) == 3 and np.abs(head.value).max() < 1e-6
    others = abl[(abl.layer != 1) | (abl["head"] != 2)]
    assert np.abs(others.value).max() > 1e-4  # the other heads do matter in a random model
    grad = imp.gradient_importance(model, tiny_sample)
    assert grad["gradient"][1, 2] == pytest.approx(0.0, abs=1e-9)
    assert grad["gradient_norm"][1, 2] == pytest.approx(0.0, abs=1e-9)
    assert grad["gradient"].sum() > 0


# -- gradient importance --------------------------------------------------------------------------------------
def test_gradient_per_sample_equals_one_input_at_a_time(digits_vit, digits_sample):
    sample = digits_sample.select(range(5))
    per = imp.gradient_per_sample(digits_vit, sample)
    assert all(p.grad is None for p in digits_vit.net.parameters())  # the shared model is left untouched
    for n in range(len(sample)):
        g = torch.ones(4, 4, requires_grad=True)
        logits = digits_vit.run(sample.batch.select([n]), capture=False, head_gates=g).logits
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, sample.labels[[n]]), g)
        np.testing.assert_allclose(per[..., n], grad.abs().numpy(), rtol=1e-4, atol=1e-7)


def test_gradient_importance_raw_and_layer_normalised(digits_vit, digits_sample):
    out = imp.gradient_importance(digits_vit, digits_sample, batch_size=10)
    np.testing.assert_allclose(out["gradient"], imp.gradient_per_sample(digits_vit, digits_sample).mean(-1), rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out["gradient_norm"], axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(
        out["gradient_norm"] * np.linalg.norm(out["gradient"], axis=1, keepdims=True), out["gradient"], rtol=1e-9
    )
    z = imp.normalise_per_layer(np.array([[0.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_allclose(z, [[0, 0], [0.6, 0.8]])


# -- partial and cumulative pruning ------------------------------------------------------------------------------
def test_partial_pruning_runs_from_unablated_to_ablated(digits_vit, digits_sample):
    df = pruning.partial_pruning(digits_vit, digits_sample, 0, 0, steps=5)
    acc = df[df.metric == "accuracy"].set_index("gate").value
    assert list(acc.index) == [1.0, 0.75, 0.5, 0.25, 0.0]
    base = _metric_values(digits_vit, digits_sample)
    assert acc[1.0] == pytest.approx(base["accuracy"])
    abl = imp.ablation_naive(digits_vit, digits_sample)
    assert acc[0.0] == pytest.approx(base["accuracy"] - abl["accuracy"][0, 0].mean())
    half = torch.ones(4, 4)
    half[0, 0] = 0.5
    loss = df[df.metric == "loss"].set_index("gate").value
    assert loss[0.5] == pytest.approx(_metric_values(digits_vit, digits_sample, half)["loss"], rel=1e-5)


def test_pruning_curve_endpoints(digits_vit, digits_sample):
    scores = imp.summarise({"gradient": imp.gradient_per_sample(digits_vit, digits_sample)})["gradient"]
    base = _metric_values(digits_vit, digits_sample)
    none_left = _metric_values(digits_vit, digits_sample, torch.zeros(4, 4))
    for order in (scores, "random", pruning.pruning_order(-scores)):
        df = pruning.pruning_curve(digits_vit, digits_sample, order)
        acc = df[df.metric == "accuracy"]
        assert acc.fraction.iloc[0] == 0 and acc.fraction.iloc[-1] == 1
        assert acc.n_removed.is_monotonic_increasing and acc.n_removed.iloc[-1] == 16
        for m in imp.LABEL_METRICS:
            v = df[df.metric == m].value
            assert v.iloc[0] == pytest.approx(base[m], rel=1e-5)
            assert v.iloc[-1] == pytest.approx(none_left[m], rel=1e-5)


def test_pruning_curve_point_equals_direct_gates(digits_vit, digits_sample):
    order = pruning.random_order(4, 4, seed=3)
    df = pruning.pruning_curve(digits_vit, digits_sample, order, steps=4)
    g = torch.ones(4, 4)
    for l, h in order[:8]:
        g[l, h] = 0
    row = df[(df.metric == "loss") & (df.n_removed == 8)]
    assert row.value.item() == pytest.approx(_metric_values(digits_vit, digits_sample, g)["loss"], rel=1e-5)


@pytest.mark.parametrize("criterion", ["accuracy", "gradient"])
def test_iterative_pruning_curve(criterion, tiny_vit, tiny_sample):
    df = pruning.pruning_curve(tiny_vit, tiny_sample, criterion, iterative=True, steps=4)
    fixed = pruning.pruning_curve(tiny_vit, tiny_sample, "random", steps=4)
    for m in imp.LABEL_METRICS:
        a, b = df[df.metric == m].value.to_numpy(), fixed[df.metric == m].value.to_numpy()
        assert a[0] == pytest.approx(b[0], rel=1e-5) and a[-1] == pytest.approx(b[-1], rel=1e-5)
    assert df[df.metric == "accuracy"].n_removed.tolist() == [0, 2, 4, 6, 8]


def test_orders():
    scores = np.array([[0.3, 0.1], [0.2, 0.1]])
    assert pruning.pruning_order(scores) == [(0, 1), (1, 1), (1, 0), (0, 0)]
    r = pruning.random_order(3, 4, seed=1)
    assert r == pruning.random_order(3, 4, seed=1) != pruning.random_order(3, 4, seed=2)
    assert sorted(r) == [(l, h) for l in range(3) for h in range(4)]


# -- agreement and per class ------------------------------------------------------------------------------------
def test_agreement_is_spearman():
    a = np.arange(12.0).reshape(3, 4)
    out = imp.agreement({"a": a, "cubed": a**3, "reversed": -a, "const": np.ones((3, 4))})
    assert out.loc["a", "cubed"] == pytest.approx(1.0)
    assert out.loc["a", "reversed"] == pytest.approx(-1.0)
    assert np.isnan(out.loc["a", "const"])
    frame = imp.agreement(imp.scores_frame({"a": a, "reversed": -a}))
    assert frame.loc["reversed", "a"] == pytest.approx(-1.0)
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 4)), rng.random((3, 4))
    from scipy.stats import spearmanr

    assert imp.agreement({"x": x, "y": y}).loc["x", "y"] == pytest.approx(spearmanr(x.ravel(), y.ravel())[0])


def test_per_class_scores_average_back_to_the_overall_score(digits_vit, digits_sample):
    per = imp.head_scores(digits_vit, digits_sample)
    overall = imp.summarise(per)
    labels = digits_sample.labels.numpy()
    classes = imp.per_class_frame(per, labels, digits_vit.spec.class_names)
    assert set(classes["class"]) == {digits_vit.spec.class_names[c] for c in set(labels)}
    for m in ("accuracy", "gradient"):
        sub = classes[classes.metric == m]
        weighted = (sub.value * sub.n).groupby([sub["layer"], sub["head"]]).sum() / len(labels)
        np.testing.assert_allclose(weighted.to_numpy().reshape(4, 4), overall[m], atol=1e-9)
    df = imp.per_class_importance(digits_vit, digits_sample.select(range(8)), ("accuracy",), gradient=False)
    assert list(df.columns) == ["class", "n", "layer", "head", "metric", "value"]


# -- bad inputs -----------------------------------------------------------------------------------------------------
def test_bad_inputs(digits_vit, digits_sample, tiny_bert, prose_texts):
    with pytest.raises(ValueError, match="metric"):
        imp.ablation_importance(digits_vit, digits_sample, ("f1",))
    with pytest.raises(ValueError, match="cosine"):
        imp.ablation_importance(digits_vit, digits_sample, ("cosine",))
    with pytest.raises(ValueError, match="No head"):
        pruning.partial_pruning(digits_vit, digits_sample, 4, 0)
    with pytest.raises(ValueError, match="steps"):
        pruning.partial_pruning(digits_vit, digits_sample, 0, 0, steps=1)
    with pytest.raises(ValueError, match="exactly once"):
        pruning.pruning_curve(digits_vit, digits_sample, [(0, 0)] * 16)
    with pytest.raises(ValueError, match=r"\[L, H\]"):
        pruning.pruning_curve(digits_vit, digits_sample, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="iterative"):
        pruning.pruning_curve(digits_vit, digits_sample, "accuracy")
    with pytest.raises(ValueError, match="name"):
        pruning.pruning_curve(digits_vit, digits_sample, [(0, 0)], iterative=True)
    with pytest.raises(ValueError, match="Unknown importance"):
        pruning.pruning_curve(digits_vit, digits_sample, "cosine", iterative=True)
    with pytest.raises(ValueError, match="gates"):
        imp.ablation_per_sample(digits_vit, digits_sample, base_gates=np.ones((2, 2)))
    with pytest.raises(ValueError, match="labels"):
        imp.per_class_importance(tiny_bert, prose_texts)
    with pytest.raises(TypeError):
        imp.as_sample(digits_vit, [1, 2, 3])
    assert isinstance(imp.ablation_importance(digits_vit, digits_sample.select(range(2))), pd.DataFrame)


def test_pruning_curves_batched_over_orders_equal_single_curves(digits_vit, digits_sample):
    scores = np.arange(16.0).reshape(4, 4)
    orders = {"scores": scores, "reversed": -scores, "random": "random"}
    both = pruning.pruning_curves(digits_vit, digits_sample, orders, steps=5, seed=1)
    assert list(both.columns) == ["order", "fraction", "n_removed", "metric", "value"]
    for name, order in orders.items():
        single = pruning.pruning_curve(digits_vit, digits_sample, order, steps=5, seed=1)
        np.testing.assert_allclose(both[both.order == name].value.to_numpy(), single.value.to_numpy(), atol=1e-6)


def test_ranking_agreement_of_two_score_sets():
    from analysis.importance import ranking_agreement

    a = np.arange(12, dtype=float).reshape(3, 4)
    same, reversed_, shuffled = a * 2 + 1, -a, a.ravel()[[11, 10, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8]].reshape(3, 4)
    table = ranking_agreement({"x": a, "y": a}, {"x": same, "y": reversed_}, ["x", "y"], top=3)
    assert table.spearman.tolist() == pytest.approx([1.0, -1.0]) and table.shared.tolist() == [3, 0]
    one = ranking_agreement({"x": a}, {"x": shuffled}, ["x"], top=3)
    assert one.shared.tolist() == [0]  # a's top 3 are heads 11, 10, 9; shuffled's are heads 2, 1, 0
