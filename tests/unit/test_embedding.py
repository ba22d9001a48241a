"""Class-embedding space (logit lens and identifiability, Vilas et al. 2023; formulas in the Class-embedding
section of the methods document under docs/): known answers on constructed scores and on the real models."""

import numpy as np
import pytest
import torch

from analysis.embedding import (
    CHANCE,
    align_labels,
    class_projection,
    embed_sample,
    identifiability,
    knn_accuracy,
    project,
    rank_score,
    separability,
    summary_projection,
    token_class_map,
    top_classes,
)
from data import load_dataset
from models import load_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test").subset(range(200))


@pytest.fixture(scope="module")
def digits_sample(digits_vit, digits):
    return embed_sample(digits_vit, digits.inputs, digits.labels)


# -- projection oracles --------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["digits_vit", "tiny_vit"])
def test_last_cls_projection_reproduces_logits(request, fixture):
    m = request.getfixturevalue(fixture)
    images = [np.random.default_rng(i).random((m.spec.image_size,) * 2 + (m.spec.channels,)) for i in range(3)]
    tr = m.run(m.prepare(images))
    scores = class_projection(m, tr)
    assert scores.shape == (m.spec.n_layers, 3, tr.resid.shape[2], m.spec.n_classes)
    torch.testing.assert_close(scores[-1, :, 0], tr.logits.float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(summary_projection(m, tr)[-1], tr.logits.float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fixture", ["minilm", "tiny_bert"])
def test_last_pooled_projection_reproduces_text_scores(request, fixture):
    m = request.getfixturevalue(fixture)
    tr = m.run(m.prepare(["Glucose levels in the blood.", "The house prices rose sharply in the city centre."]))
    summary = summary_projection(m, tr)
    assert summary.shape == (m.spec.n_layers, 2, m.spec.n_classes)
    torch.testing.assert_close(summary[-1], tr.logits.float(), rtol=0, atol=1e-5)


def test_text_projection_pools_like_the_model(minilm):
    """The pooled projection of a layer is the prompt head applied to the mean over real tokens of that layer."""
    batch = minilm.prepare(["Short one.", "A much longer sentence about wine and its chemistry."])
    tr = minilm.run(batch)
    summary = summary_projection(minilm, tr)
    mask = batch.token_mask[0]
    mean0 = tr.resid[2][0][mask].mean(0)
    torch.testing.assert_close(summary[1, 0], minilm.unembed(mean0).float(), rtol=0, atol=1e-5)


def test_sublayer_projection_shapes_and_bad_where(digits_vit):
    tr = digits_vit.run(digits_vit.prepare([np.zeros((32, 32))]))
    for where in ("attn_out", "mlp_out"):
        s = class_projection(digits_vit, tr, where)
        assert s.shape == (4, 1, 65, 10)
        torch.testing.assert_close(s[2, 0, 5], digits_vit.unembed(getattr(tr, where)[2, 0, 5]).float())
    with pytest.raises(ValueError, match="where must be one of"):
        class_projection(digits_vit, tr, "logits")


# -- identifiability ----------------------------------------------------------------------------------
def test_identifiability_of_constructed_scores():
    """Scores that put the true class at rank k give r = 1 - k / C; padding and the prefix are left out."""
    L, B, T, C = 2, 3, 4, 5
    labels = np.array([0, 2, 4])
    ranks = np.array([[[0, 1, 2, 4], [0, 0, 3, 1], [2, 2, 2, 0]], [[0, 0, 0, 0], [1, 1, 1, 1], [4, 3, 2, 1]]])
    scores = torch.zeros(L, B, T, C)
    for l in range(L):
        for b in range(B):
            for t in range(T):
                others = [c for c in range(C) if c != labels[b]]
                order = others[: ranks[l, b, t]] + [labels[b]] + others[ranks[l, b, t] :]
                for pos, c in enumerate(order):
                    scores[l, b, t, c] = C - pos
    np.testing.assert_allclose(rank_score(scores, labels), 1 - ranks / C)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 3] = False
    ident = identifiability(scores, labels, token_mask=mask)
    np.testing.assert_allclose(ident.summary, 1 - ranks[:, :, 0] / C)
    assert np.isnan(ident.tokens[:, :, 0]).all() and np.isnan(ident.tokens[:, 1, 3]).all()
    rates = ident.rates().set_index(["block", "group"])
    assert rates.loc[(1, "CLS"), "rate"] == pytest.approx(2 / 3)
    # block 2 tokens (1..3, minus the padded one): ranks 0,0,0 | 1,1 | 3,2,1 -> 3 of 8 first
    assert rates.loc[(2, "image tokens"), "rate"] == pytest.approx(3 / 8)
    assert rates.loc[(2, "image tokens"), "n"] == 8


def test_identifiability_ties_and_uniform_chance():
    scores = torch.zeros(1, 1, 1, 4)  # all tied: the true class counts as first
    assert rank_score(scores, [2])[0, 0, 0] == 1.0
    # every rank equally often -> mean r = (C + 1) / (2C), i.e. chance 0.5 up to 1/(2C)
    C = 10
    scores = torch.stack([torch.roll(torch.arange(C, 0, -1).float(), k) for k in range(C)]).view(1, C, 1, C)
    r = rank_score(scores, np.zeros(C, dtype=int))
    assert r.mean() == pytest.approx((C + 1) / (2 * C), abs=1e-6)
    assert abs(r.mean() - CHANCE) <= 1 / (2 * C) + 1e-6


def test_identifiability_bad_inputs():
    with pytest.raises(ValueError, match=r"\[L, B, T, C\]"):
        rank_score(torch.zeros(2, 3, 4), [0, 1])
    with pytest.raises(ValueError, match="class indices"):
        rank_score(torch.zeros(1, 2, 1, 3), [0, 3])
    with pytest.raises(ValueError, match="token_mask"):
        identifiability(torch.zeros(1, 2, 3, 4), [0, 1], token_mask=torch.ones(2, 5, dtype=torch.bool))


def test_random_init_near_chance_trained_well_above(digits_vit, digits, digits_sample):
    rand = load_model("digits-vit", device="cpu", random_init=True)
    assert rand.spec.n_layers == digits_vit.spec.n_layers and rand.spec.class_names == digits_vit.spec.class_names
    first = next(rand.net.parameters())
    assert not torch.equal(first, next(digits_vit.net.parameters()))
    again = load_model("digits-vit", device="cpu", random_init=True)
    assert torch.equal(first, next(again.net.parameters())), "random init must be seeded"
    base = embed_sample(rand, digits.inputs, digits.labels).ident.rates().set_index(["block", "group"])
    trained = digits_sample.ident.rates().set_index(["block", "group"])
    for group in ("CLS", "image tokens"):
        assert abs(base.loc[(4, group), "mean r"] - CHANCE) < 0.1
        assert base.loc[(4, group), "rate"] < 0.25
    assert trained.loc[(4, "CLS"), "mean r"] > 0.95 and trained.loc[(4, "CLS"), "rate"] > 0.9
    assert trained.loc[(4, "image tokens"), "mean r"] > base.loc[(4, "image tokens"), "mean r"] + 0.1


def test_random_init_text_prompts_use_the_random_encoder(minilm):
    rand = load_model("minilm", device="cpu", random_init=True)
    assert rand.spec.head == "prompts" and rand.spec.class_names == minilm.spec.class_names
    assert not torch.allclose(rand.prompt_embeddings(), minilm.prompt_embeddings())
    tr = rand.run(rand.prepare(["Wine contains alcohol."]))
    torch.testing.assert_close(summary_projection(rand, tr)[-1], tr.logits.float(), rtol=0, atol=1e-5)


def test_embed_sample_shapes(digits_sample, minilm):
    assert digits_sample.ident.summary.shape == (4, 200)
    assert digits_sample.ident.tokens.shape == (4, 200, 65)
    assert digits_sample.summary_scores.shape == (4, 200, 10)
    assert digits_sample.embeddings.shape == (5, 200, 64)
    texts = ["Short.", "A rather longer sentence about houses and prices.", "Iris flowers have petals."]
    s = embed_sample(minilm, texts, [0, 5, 1], batch_size=2)  # batches of different lengths are padded with NaN
    assert s.ident.names == ("pooled", "word tokens")
    assert s.embeddings.shape == (7, 3, 384) and s.ident.tokens.shape[:2] == (6, 3)
    assert np.isnan(s.ident.tokens[:, 2, -1]).all()
    with pytest.raises(ValueError, match="as many labels"):
        embed_sample(minilm, texts, [0, 1])


# -- token maps ---------------------------------------------------------------------------------------
def test_token_class_map_constructed():
    scores = torch.zeros(2, 5, 3)  # L=2, CLS + 2x2 grid, 3 classes
    scores[0, 1, 1] = scores[0, 4, 1] = 1.0
    scores[1, 1:, 1] = 1.0
    scores[1, 0, 2] = 5.0  # the CLS token is not part of the map
    m = token_class_map(scores, (2, 2), 1)
    np.testing.assert_array_equal(m, [[[True, False], [False, True]], [[True, True], [True, True]]])
    assert token_class_map(scores, None, 1).shape == (2, 4)
    with pytest.raises(ValueError, match="out of range"):
        token_class_map(scores, (2, 2), 3)
    with pytest.raises(ValueError, match="grid"):
        token_class_map(scores, (3, 3), 1)


def test_top_classes_per_block():
    scores = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])
    df = top_classes(scores, ["a", "b", "c"], k=2)
    assert list(df[df.block == 1]["class"]) == ["b", "c"] and list(df[df.block == 2]["class"])[0] == "a"
    assert df[df.block == 1].probability.iloc[0] == pytest.approx(float(torch.softmax(scores[0], 0)[1]))


# -- 2-D maps -----------------------------------------------------------------------------------------
def test_pca_is_fitted_once_and_shared_across_layers():
    rng = np.random.default_rng(0)
    e0 = rng.normal(size=(40, 6)) * np.array([5, 3, 1, 1, 1, 1])
    shift = rng.normal(size=6)
    emb = np.stack([e0, e0 + shift, 2 * e0])
    m = project(emb, "pca")
    assert m.comparable and m.coords.shape == (3, 40, 2) and m.explained.shape == (2,)
    delta = m.coords[1] - m.coords[0]  # one linear map for all layers: a shifted layer is a translated map
    np.testing.assert_allclose(delta, np.broadcast_to(delta[0], delta.shape), atol=1e-4)
    from sklearn.decomposition import PCA

    pca = PCA(2).fit(emb.reshape(-1, 6))
    np.testing.assert_allclose(np.abs(m.coords[2]), np.abs(pca.transform(emb[2])), rtol=1e-4, atol=1e-4)


def test_tsne_is_per_layer_and_flagged(digits_sample):
    m = project(digits_sample.embeddings[-1, :60], "tsne", seed=0)
    assert not m.comparable and m.coords.shape == (1, 60, 2) and np.isfinite(m.coords).all()


@pytest.mark.slow
def test_umap_is_per_layer_and_seeded(digits_sample):
    calls = []
    a = project(digits_sample.embeddings[-2:, :80], "umap", seed=1, progress=lambda f, msg: calls.append(f))
    b = project(digits_sample.embeddings[-1:, :80], "umap", seed=1)
    assert not a.comparable and a.coords.shape == (2, 80, 2)
    np.testing.assert_allclose(a.coords[1], b.coords[0], atol=1e-4)
    assert calls[-1] == 1.0


def test_project_bad_inputs():
    with pytest.raises(ValueError, match="method"):
        project(np.zeros((1, 5, 3)), "mds")
    with pytest.raises(ValueError, match="at least 3"):
        project(np.zeros((1, 2, 3)), "pca")
    with pytest.raises(ValueError, match=r"\[L, N, D\]"):
        project(np.zeros(5), "pca")


# -- separability -------------------------------------------------------------------------------------
def test_knn_and_separability_on_constructed_clusters():
    rng = np.random.default_rng(0)
    centers = np.eye(3) * 10
    y = np.repeat(np.arange(3), 30)
    tight = centers[y] + rng.normal(scale=0.1, size=(90, 3))
    noise = rng.normal(size=(90, 3))
    assert knn_accuracy(tight, y, k=20) == 1.0
    x = np.array([[1.0, 0], [1.0, 0.1], [0, 1.0], [0.1, 1.0], [1.0, 0.05]])
    # cosine nearest neighbours: 0->4, 1->4, 2->3, 3->2, 4->1; only points 2 and 3 get their own label
    assert knn_accuracy(x, [0, 0, 1, 1, 1], k=1) == pytest.approx(2 / 5)
    df = separability(np.stack([noise, tight]), y)
    assert list(df.layer) == [0, 1]
    assert df.silhouette[1] > 0.9 and df["kNN accuracy"][1] == 1.0 and df["probe accuracy"][1] == 1.0
    assert df.silhouette[0] < 0.2


def test_separability_rises_on_digits_vit(digits_sample):
    df = separability(digits_sample.embeddings, digits_sample.labels)
    first, last = df.iloc[0], df.iloc[-1]
    assert last.silhouette > first.silhouette + 0.3
    assert last["kNN accuracy"] > first["kNN accuracy"] + 0.5
    assert last["probe accuracy"] > 0.9


def test_separability_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 classes"):
        separability(np.zeros((1, 4, 3)), [0, 0, 0, 0])
    with pytest.raises(ValueError, match="N = len"):
        separability(np.zeros((1, 4, 3)), [0, 1, 0])


def test_align_labels_maps_dataset_classes_to_model_classes():
    rows, labels = align_labels(["cat", "dog", "eel"], np.array([0, 2, 1, 0]), ("dog", "cat"))
    np.testing.assert_array_equal(rows, [0, 2, 3])
    np.testing.assert_array_equal(labels, [1, 0, 1])
    rows, labels = align_labels(["a"], np.array([0, 0]), ("b",))
    assert rows.size == 0 and labels.size == 0
