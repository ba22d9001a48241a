"""Head importance against slow references written here (issue 29, item 9): each test fails when a core step of
analysis/importance.py is skipped or wrong; tests/unit/MUTATIONS.md lists the mutations they catch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from analysis import importance as imp
from analysis import pruning


@pytest.fixture(scope="module")
def tiny_sample(tiny_vit):
    rng = np.random.default_rng(1)
    images = [rng.random((16, 16, 3)).astype(np.float32) for _ in range(8)]
    return imp.make_sample(tiny_vit, images, labels=rng.integers(0, 3, 8))


def _loss(model, sample, gates) -> float:
    """Mean cross-entropy against the labels, one plain forward."""
    logits = model.run(sample.batch, capture=False, head_gates=gates).logits.float()
    return F.cross_entropy(logits, sample.labels).item()


def _loss_scores(model, sample, gates) -> dict:
    """Slow loss importance of each head still in `gates`: loss with it zeroed minus loss at `gates`."""
    base = _loss(model, sample, gates)
    out = {}
    for l, h in zip(*np.nonzero(gates.numpy())):
        g = gates.clone()
        g[l, h] = 0
        out[(int(l), int(h))] = _loss(model, sample, g) - base
    return out


def _gradient_scores(model, sample, gates) -> dict:
    """Slow gradient importance of each head still in `gates`: mean over inputs of |dL(x)/dg| at `gates`, one input
    and one backward at a time."""
    total = torch.zeros_like(gates)
    for n in range(len(sample)):
        g = gates.clone().requires_grad_(True)
        logits = model.run(sample.batch.select([n]), capture=False, head_gates=g).logits.float()
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, sample.labels[[n]]), g)
        total += grad.abs()
    mean = total / len(sample)
    return {(int(l), int(h)): mean[l, h].item() for l, h in zip(*np.nonzero(gates.numpy()))}


def _reference_iterative(model, sample, scores_of, counts) -> list[torch.Tensor]:
    """The gate setting after each step of iterative pruning: at every step the remaining heads are scored
    again at the current gates and the lowest ones (ties: lower layer, head first) are removed."""
    L, H = model.spec.n_layers, model.spec.n_heads
    gates = torch.ones(L, H)
    out = [gates.clone()]
    for prev, now in zip(counts, counts[1:]):
        scores = scores_of(model, sample, gates)
        for l, h in sorted(scores, key=lambda lh: (scores[lh], lh))[: now - prev]:
            gates[l, h] = 0
        out.append(gates.clone())
    return out


@pytest.mark.parametrize("criterion", ["loss", "gradient"])
def test_iterative_pruning_rescores_the_remaining_heads(criterion, tiny_vit, tiny_sample):
    """Every point of the iterative curve is the loss at the gates the slow re-scoring loop reaches, and on this
    model that loop removes other heads than scoring once at the full model would."""
    scores_of = _loss_scores if criterion == "loss" else _gradient_scores
    steps, L, H = 4, tiny_vit.spec.n_layers, tiny_vit.spec.n_heads
    counts = [round(k * L * H / steps) for k in range(steps + 1)]
    ref = _reference_iterative(tiny_vit, tiny_sample, scores_of, counts)
    once = scores_of(tiny_vit, tiny_sample, torch.ones(L, H))
    one_shot = sorted(once, key=lambda lh: (once[lh], lh))
    removed = [{tuple(x) for x in np.argwhere(g.numpy() == 0)} for g in ref]
    assert any(removed[k] != set(one_shot[: counts[k]]) for k in range(len(counts))), "re-scoring changes nothing"

    df = pruning.pruning_curve(tiny_vit, tiny_sample, criterion, iterative=True, steps=steps, metrics=("loss",))
    assert df.n_removed.tolist() == counts
    np.testing.assert_allclose(df.value.to_numpy(), [_loss(tiny_vit, tiny_sample, g) for g in ref], rtol=1e-5)


def test_ablation_from_base_gates_is_the_loss_change_from_those_gates(tiny_vit, tiny_sample):
    """ablation_per_sample(base_gates=g) removes each head from g, not from the full model (what iterative
    pruning builds on): the mean loss score equals the slow score at g for each head g keeps."""
    gates = torch.ones(tiny_vit.spec.n_layers, tiny_vit.spec.n_heads)
    gates[0, 1] = gates[1, 2] = 0
    fast = imp.ablation_per_sample(tiny_vit, tiny_sample, ("loss",), base_gates=gates)["loss"].mean(-1)
    for (l, h), v in _loss_scores(tiny_vit, tiny_sample, gates).items():
        assert fast[l, h] == pytest.approx(v, rel=1e-4, abs=1e-6)
    assert np.abs(fast[gates == 0]).max() < 1e-6  # a head already gone changes nothing when zeroed again


def test_gradient_at_given_gates_is_the_slow_gradient_there(tiny_vit, tiny_sample):
    gates = torch.ones(tiny_vit.spec.n_layers, tiny_vit.spec.n_heads)
    gates[0, 0] = gates[1, 3] = 0
    fast = imp.gradient_importance(tiny_vit, tiny_sample, gates)["gradient"]
    slow = _gradient_scores(tiny_vit, tiny_sample, gates)
    for (l, h), v in slow.items():
        assert fast[l, h] == pytest.approx(v, rel=1e-4, abs=1e-7)
    at_one = imp.gradient_importance(tiny_vit, tiny_sample)["gradient"]
    assert not np.allclose(fast, at_one, rtol=1e-3)  # the gates matter: the test would see them ignored


@pytest.mark.parametrize(("layer", "head"), [(1, 0), (0, 3)])
def test_partial_pruning_scales_the_named_head(layer, head, tiny_vit, tiny_sample):
    """Each point of the partial-pruning curve is the loss with only gate (layer, head) set to that value."""
    df = pruning.partial_pruning(tiny_vit, tiny_sample, layer, head, steps=3, metrics=("loss",))
    for gate, value in zip(df.gate, df.value):
        g = torch.ones(tiny_vit.spec.n_layers, tiny_vit.spec.n_heads)
        g[layer, head] = gate
        assert value == pytest.approx(_loss(tiny_vit, tiny_sample, g), rel=1e-5)
    assert df.value.iloc[-1] != pytest.approx(df.value.iloc[0], rel=1e-4)  # the head matters
