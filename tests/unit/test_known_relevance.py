"""Relevance methods of each family against slow references written here (issue 29, item 9): attention
(rollout), attention x gradient (gradient rollout, GradCAM), gradient (saliency, the per-patch sum) and
perturbation (occlusion). tests/unit/MUTATIONS.md lists the mutations they catch."""

import numpy as np
import pytest
import torch

from analysis.attention import rollout
from analysis.attribution import token_attributions
from analysis.relevance import explain
from models import Batch
from models.lrp import CHEFER, STABILISERS, Switch, _RenormalisedAdd, lrp_forward, safe_div


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(2)
    return [rng.random((16, 16, 3)).astype(np.float32) for _ in range(3)]


def _rollout_reference(attn: np.ndarray) -> np.ndarray:
    """attn [L, B, H, T, T] -> [B, T, T]: R = A~_L ... A~_1 with A~ = rownorm(mean over heads + I), input by input."""
    L, B, _, T, _ = attn.shape
    out = np.empty((B, T, T))
    for b in range(B):
        r = np.eye(T)
        for l in range(L):
            a = attn[l, b].mean(0) + np.eye(T)
            r = (a / a.sum(1, keepdims=True)) @ r
        out[b] = r
    return out


def test_rollout_multiplies_the_layers_in_order():
    """Random (non-commuting) layers: rollout is A~_L ... A~_1, the last layer on the left."""
    attn = torch.rand(3, 2, 4, 5, 5, generator=torch.Generator().manual_seed(0)).softmax(-1)
    expected = _rollout_reference(attn.double().numpy())
    np.testing.assert_allclose(rollout(attn).numpy(), expected, atol=1e-6)
    reversed_product = _rollout_reference(attn.flip(0).double().numpy())
    assert not np.allclose(expected, reversed_product, atol=1e-4)  # the order is visible on these maps


def test_rollout_map_is_the_cls_row_of_the_captured_attention(tiny_vit, images):
    batch = tiny_vit.prepare(images)
    attn = tiny_vit.run(batch).attentions.double().numpy()
    expected = _rollout_reference(attn)[:, 0, 1:]
    np.testing.assert_allclose(explain(tiny_vit, batch, "rollout"), expected, atol=1e-5)


def _cls_rows_and_grads(model, batch, target):
    """Last layer's attention and its gradient for the target logit, CLS rows over the input tokens [B, H, T']."""
    tr = model.run(batch, capture=True, grad=True)
    y = tr.logits[torch.arange(len(batch)), target].sum()
    (g,) = torch.autograd.grad(y, tr.attn_list[-1])
    return tr.attn_list[-1].detach()[:, :, 0, 1:].double(), g[:, :, 0, 1:].double()


def test_gradcam_weights_each_head_by_its_mean_gradient(tiny_vit, images):
    """GradCAM: relu(mean over heads of (mean over keys of dy/dA) * A) on the last layer's CLS row."""
    batch, target = tiny_vit.prepare(images), [0, 1, 2]
    a, g = _cls_rows_and_grads(tiny_vit, batch, target)
    signed = (g.mean(-1, keepdim=True) * a).mean(1)
    assert (signed < 0).any()  # the positive part matters on these inputs
    np.testing.assert_allclose(
        explain(tiny_vit, batch, "gradcam", target=target), signed.clamp(min=0).numpy(), rtol=1e-4, atol=1e-7
    )


def _patch_sums(model, pixels: torch.Tensor) -> np.ndarray:
    """[B, C, S, S] -> [B, T']: the sum over channels and over each patch, patches in row-major order (loops)."""
    h, w, p, _, _ = model.spec.image_layout()
    x = pixels.double().numpy()
    return np.stack(
        [
            [x[b, :, i * p : (i + 1) * p, j * p : (j + 1) * p].sum() for i in range(h) for j in range(w)]
            for b in range(len(x))
        ]
    )


def test_token_attributions_sum_each_patch(tiny_vit):
    s = tiny_vit.spec.image_layout()[3]
    attr = torch.randn(2, 3, s, s, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(token_attributions(tiny_vit, attr).numpy(), _patch_sums(tiny_vit, attr), atol=1e-5)


def test_saliency_is_the_patch_sum_of_the_absolute_input_gradient(tiny_vit, images):
    batch, target = tiny_vit.prepare(images), [2, 0, 1]
    x = batch.tensors["pixel_values"].clone().requires_grad_(True)
    logits = tiny_vit.run(Batch({"pixel_values": x}, batch.token_mask), capture=False, grad=True).logits
    (g,) = torch.autograd.grad(logits[torch.arange(3), target].sum(), x)
    np.testing.assert_allclose(
        explain(tiny_vit, batch, "saliency", target=target), _patch_sums(tiny_vit, g.abs()), rtol=1e-4, atol=1e-7
    )


def test_occlusion_of_a_patch_is_the_drop_of_the_target_logit(tiny_vit, images):
    """A token's occlusion relevance (summed over its pixels) is the target logit minus the logit with that
    patch's pixels (all channels) set to the zero baseline."""
    batch, target = tiny_vit.prepare(images), [1, 2, 0]
    h, w, p, _, _ = tiny_vit.spec.image_layout()
    x = batch.tensors["pixel_values"]
    rows = torch.arange(len(x))

    def logit(pixels):
        return tiny_vit.run(Batch({"pixel_values": pixels}, batch.token_mask), capture=False).logits[rows, target]

    base = logit(x)
    drops = []
    for i in range(h):
        for j in range(w):
            occluded = x.clone()
            occluded[:, :, i * p : (i + 1) * p, j * p : (j + 1) * p] = 0
            drops.append((base - logit(occluded)).double())
    expected = torch.stack(drops, 1).numpy()
    np.testing.assert_allclose(explain(tiny_vit, batch, "occlusion", target=target), expected, rtol=1e-4, atol=1e-6)


def test_chefer2021_rolls_out_gradient_times_lrp_relevance_at_the_maps(tiny_vit, images):
    """Chefer et al. 2021: R = prod_l (I + mean_h (dy/dA_l * R_A_l)^+), R_A the LRP relevance at the maps (Chefer's
    rules, relevance 1 at the target logit), dy/dA the plain gradient (from the model's own forward); the map is
    R's CLS row over the input tokens."""
    batch, target, rows = tiny_vit.prepare(images), [0, 1, 2], torch.arange(3)
    tr = tiny_vit.run(batch, capture=True, grad=True)
    grads = torch.autograd.grad(tr.logits[rows, target].sum(), tr.attn_list)
    fwd = lrp_forward(tiny_vit, batch, CHEFER)
    y = fwd.logits[rows, target]
    rule = torch.autograd.grad(y.sum(), fwd.attn)
    t = batch.token_mask.shape[1]
    r = torch.eye(t).expand(3, t, t)
    for a, g, rg in zip(fwd.attn, grads, rule):
        relevance = a.detach() * rg / y.detach()[:, None, None, None]
        r = r + (g * relevance).clamp(min=0).mean(1) @ r
    expected = r[:, 0, 1:].numpy()
    got = explain(tiny_vit, batch, "chefer2021", target=target, precision="float32")
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def _chefer_safe_divide(a: torch.Tensor, b: torch.Tensor, eps: float) -> torch.Tensor:
    """Chefer et al.'s safe_divide (Transformer-Explainability, layers_ours.py), with its 1e-9 as eps."""
    den = b.clamp(min=eps) + b.clamp(max=eps)
    den = den + den.eq(0).type(den.type()) * eps
    return a / den * b.ne(0).type(b.type())


@pytest.mark.parametrize("eps", [1e-9, 0.5])
def test_safe_div_follows_chefers_rule_or_the_signed_one(eps):
    """Chefer's rule adds +eps whatever the denominator's sign (the default); "signed" adds eps away from zero."""
    b = torch.tensor([0.0, 2.0, -2.0, -eps, eps / 2, -eps / 2, -3 * eps], dtype=torch.float64)
    a = torch.linspace(-1, 2, len(b), dtype=torch.float64)
    torch.testing.assert_close(safe_div(a, b, eps), _chefer_safe_divide(a, b, eps), rtol=1e-12, atol=0)
    signed = torch.where(b == 0, 0.0, a / (b + eps * torch.sign(b)))
    torch.testing.assert_close(safe_div(a, b, eps, "signed"), signed, rtol=1e-12, atol=0)


@pytest.mark.parametrize("stabiliser", STABILISERS)
def test_residual_rule_is_chefers_add_relprop(stabiliser):
    """Chefer's Add.relprop: a's relevance a*S (S = R / (a + b)) rescaled so that a's share of sum R is
    |sum a*S| / (|sum a*S| + |sum b*S|), each division by the chosen stabiliser; sums near -1e-9 tell the two apart."""
    a = torch.tensor([[-1e-9, 3e-9, -3e-9], [-2e-9, 0.5e-9, 0.5e-9]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[1.0, -0.5, 0.25], [2e-9, -1e-9, 1.0]], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    _RenormalisedAdd.apply(a, b, Switch(stabiliser)).backward(g)

    def div(x, y):
        return _chefer_safe_divide(x, y, 1e-9) if stabiliser == "chefer" else x / (y + 1e-9 * torch.sign(y))

    for i in range(2):  # Chefer's code takes one input at a time
        ra, rb, total = a[i].detach() * g[i], b[i].detach() * g[i], ((a[i] + b[i]).detach() * g[i]).sum()
        norm = ra.sum().abs() + rb.sum().abs()
        want_a = ra * div(div(ra.sum().abs(), norm) * total, ra.sum())
        want_b = rb * div(div(rb.sum().abs(), norm) * total, rb.sum())
        torch.testing.assert_close(a[i].detach() * a.grad[i], want_a, rtol=1e-6, atol=0)
        torch.testing.assert_close(b[i].detach() * b.grad[i], want_b, rtol=1e-6, atol=0)
