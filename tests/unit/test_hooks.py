"""Named hook points: every name on every built-in, reads equal the Trace, replacements equal the keyword
conveniences, errors, nothing left behind, and concurrent calls with different hooks on one shared model."""

import threading

import numpy as np
import pytest
import torch

from data import load_dataset
from models import Resume
from models.hooks import BLOCK_POINTS, EMBED, keep, point_names
from tests.conftest import hook_count

BUILTINS = ["digits_vit", "shapes_vit", "minilm"]


def _batch(model):
    if model.spec.modality == "text":
        return model.prepare(["A short sentence.", "A rather longer sentence about the weather in the mountains."])
    return model.prepare(load_dataset(model.spec.dataset, "test").inputs[:3])


def _zero_head(layer: int, head: int):
    def fn(z, name):
        z = z.clone()
        z[:, :, head] = 0
        return z

    return (f"blocks.{layer}.attn.hook_z", fn)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_point_exists_with_its_shape(request, name):
    m = request.getfixturevalue(name)
    batch = _batch(m)
    seen: dict[str, torch.Tensor] = {}
    names = point_names(m.spec.n_layers)
    assert len(names) == 1 + len(BLOCK_POINTS) * m.spec.n_layers
    m.run(batch, capture=False, hooks=[(n, keep(seen)) for n in names])
    assert set(seen) == names
    B, T, H, D = len(batch), batch.token_mask.shape[1], m.spec.n_heads, m.spec.d_model
    F = m.blocks[0].fc1.out_features
    shapes = {
        "hook_resid_pre": (B, T, D),
        "attn.hook_q": (B, T, H, D // H),
        "attn.hook_k": (B, T, H, D // H),
        "attn.hook_v": (B, T, H, D // H),
        "attn.hook_attn_scores": (B, H, T, T),
        "attn.hook_pattern": (B, H, T, T),
        "attn.hook_z": (B, T, H, D // H),
        "hook_attn_out": (B, T, D),
        "hook_resid_mid": (B, T, D),
        "mlp.hook_pre": (B, T, F),
        "mlp.hook_post": (B, T, F),
        "hook_mlp_out": (B, T, D),
        "hook_resid_post": (B, T, D),
    }
    assert seen[EMBED].shape == (B, T, D)
    for l in range(m.spec.n_layers):
        for point, shape in shapes.items():
            assert seen[f"blocks.{l}.{point}"].shape == shape, point
        torch.testing.assert_close(seen[f"blocks.{l}.mlp.hook_post"], m.blocks[l].act(seen[f"blocks.{l}.mlp.hook_pre"]))


@pytest.mark.parametrize("name", BUILTINS)
def test_reading_points_equals_the_trace(request, name):
    m = request.getfixturevalue(name)
    batch = _batch(m)
    seen: dict[str, torch.Tensor] = {}
    reads = ["hook_resid_pre", "attn.hook_pattern", "hook_attn_out", "hook_mlp_out", "hook_resid_post"]
    hooks = [(EMBED, keep(seen))] + [(f"blocks.{l}.{p}", keep(seen)) for l in range(m.spec.n_layers) for p in reads]
    tr = m.run(batch, hooks=hooks)
    assert torch.equal(seen[EMBED], tr.resid[0])
    for l in range(m.spec.n_layers):
        assert torch.equal(seen[f"blocks.{l}.hook_resid_pre"], tr.resid[l])
        assert torch.equal(seen[f"blocks.{l}.attn.hook_pattern"], tr.attentions[l])
        assert torch.equal(seen[f"blocks.{l}.hook_attn_out"], tr.attn_out[l])
        assert torch.equal(seen[f"blocks.{l}.hook_mlp_out"], tr.mlp_out[l])
        assert torch.equal(seen[f"blocks.{l}.hook_resid_post"], tr.resid[l + 1])
    assert torch.equal(tr.logits, m.run(batch, capture=False).logits)  # reading changes nothing


@pytest.mark.parametrize("name", BUILTINS)
def test_zeroing_a_head_at_hook_z_equals_head_gates(request, name):
    m = request.getfixturevalue(name)
    batch = _batch(m)
    L, H = m.spec.n_layers, m.spec.n_heads
    gates = torch.ones(L, H)
    gates[L - 1, 1] = 0
    gated = m.run(batch, head_gates=gates)
    hooked = m.run(batch, hooks=[_zero_head(L - 1, 1)])
    assert torch.equal(hooked.logits, gated.logits)
    assert torch.equal(hooked.resid, gated.resid)
    assert not torch.equal(hooked.logits, m.run(batch, capture=False).logits)


@pytest.mark.parametrize("name", BUILTINS)
def test_a_temperature_hook_equals_temperature(request, name):
    m = request.getfixturevalue(name)
    batch = _batch(m)
    tau = [0.5 + l for l in range(m.spec.n_layers)]
    hooks = [(f"blocks.{l}.attn.hook_attn_scores", lambda s, n, t=t: s / t) for l, t in enumerate(tau)]
    hooked, tempered = m.run(batch, hooks=hooks), m.run(batch, temperature=tau)
    assert torch.equal(hooked.logits, tempered.logits)
    assert torch.equal(hooked.attentions, tempered.attentions)


def test_hooks_on_one_point_run_in_order_after_the_keywords(digits_vit):
    """head_gates' hook runs first, then the given hooks in order; each sees the one before's result."""
    batch = _batch(digits_vit)
    gates = torch.full((4, 4), 2.0)
    seen = []
    hooks = [("blocks.0.attn.hook_z", lambda z, n: z + 1), ("blocks.0.attn.hook_z", lambda z, n: seen.append(z))]
    plain: dict[str, torch.Tensor] = {}
    digits_vit.run(batch, capture=False, hooks=[("blocks.0.attn.hook_z", keep(plain))])
    digits_vit.run(batch, capture=False, head_gates=gates, hooks=hooks)
    assert torch.equal(seen[0], plain["blocks.0.attn.hook_z"] * 2 + 1)


def test_unknown_names_and_bad_replacements_are_errors(digits_vit):
    batch = _batch(digits_vit)
    with pytest.raises(ValueError, match="Unknown hook point 'blocks.4.hook_z'") as e:
        digits_vit.run(batch, hooks=[("blocks.4.hook_z", lambda x, n: None)])
    for valid in ("hook_embed", "blocks.{l}.attn.hook_z", "blocks.{l}.attn.hook_pattern", "0..3"):
        assert valid in str(e.value)
    with pytest.raises(ValueError, match="must return None or a tensor"):
        digits_vit.run(batch, hooks=[("blocks.1.hook_attn_out", lambda x, n: x[:, :1])])
    for bad in ([("blocks.1.hook_attn_out", None)], ("blocks.1.hook_attn_out", lambda x, n: None)):
        with pytest.raises(TypeError, match=r"\(name, fn\) pairs"):
            digits_vit.run(batch, hooks=bad)


def test_a_raising_hook_leaves_nothing_behind(digits_vit):
    batch = _batch(digits_vit)
    before, modules = digits_vit.run(batch), hook_count(digits_vit)

    def boom(x, name):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        digits_vit.run(
            batch, head_gates=torch.ones(4, 4), temperature=2.0, grad=True, hooks=[("blocks.2.hook_mlp_out", boom)]
        )
    assert hook_count(digits_vit) == modules
    after = digits_vit.run(batch)
    assert torch.equal(after.logits, before.logits) and torch.equal(after.attentions, before.attentions)
    assert not after.logits.requires_grad
    with pytest.raises(ValueError, match="head_gates"):
        digits_vit.run(batch, head_gates=torch.ones(3, 3))


def test_concurrent_runs_with_different_hooks_get_their_own_results(digits_vit, minilm):
    """Threads running different hooks on the same shared models at once each get exactly what they get alone."""
    jobs = {
        "zero": (digits_vit, [_zero_head(1, 2)]),
        "hot": (digits_vit, [(f"blocks.{l}.attn.hook_attn_scores", lambda s, n: s / 3.0) for l in range(4)]),
        "plain": (digits_vit, []),
        "text": (minilm, [("blocks.0.hook_mlp_out", lambda x, n: torch.zeros_like(x))]),
    }
    batches = {name: _batch(m) for name, (m, _) in jobs.items()}
    alone = {name: m.run(batches[name], hooks=hooks).resid for name, (m, hooks) in jobs.items()}
    assert len({float(a.sum()) for a in alone.values()}) == len(alone)  # the hooks change different things
    results: dict[str, list[bool]] = {name: [] for name in jobs}
    start = threading.Barrier(len(jobs))

    def work(name: str) -> None:
        m, hooks = jobs[name]
        start.wait()
        for _ in range(5):
            results[name].append(torch.equal(m.run(batches[name], hooks=hooks).resid, alone[name]))

    threads = [threading.Thread(target=work, args=(name,)) for name in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {name: [True] * 5 for name in jobs}


def test_resuming_reaches_only_the_points_after_it(digits_vit):
    """A run resumed inside block l (Resume with heads) calls block l's points from attn.hook_z on, with gates."""
    batch = _batch(digits_vit)
    tr = digits_vit.run(batch)
    heads = digits_vit.head_outputs(2, tr.resid_list[2], batch)
    seen: dict[str, torch.Tensor] = {}
    names = ["blocks.2.attn.hook_pattern", "blocks.2.attn.hook_z", "blocks.3.attn.hook_pattern"]
    resumed = digits_vit.run(
        batch,
        capture=False,
        resume=Resume(tr.resid_list[2], 2, heads),
        hooks=[(n, keep(seen)) for n in names],
    )
    assert set(seen) == set(names[1:])
    torch.testing.assert_close(resumed.logits, tr.logits, rtol=0, atol=1e-5)
    assert np.allclose(seen["blocks.2.attn.hook_z"].flatten(2).numpy(), heads.numpy())
