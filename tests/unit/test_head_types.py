"""Head types (analysis/head_types.py) on constructed attention patterns: each pure pattern scores 1 for its type
and about 0 for the others."""

import numpy as np
import pytest
import torch

from analysis.head_types import IMAGE_TYPES, TEXT_TYPES, image_types, text_types, token_marks

T_TEXT = 40
GRID, PREFIX = (8, 8), 1


def _text(rows_of, n_real=(T_TEXT, 30), words=None):
    """attn [1, B, 1, T, T] with each real query's row from rows_of(i, n, marks) (a key index or a list of them,
    uniform over them), token mask and marks; tokens are [CLS] w1 .. [SEP]."""
    B = len(n_real)
    tokens = [["[CLS]"] + (words or [f"w{i}" for i in range(1, n - 1)])[: n - 2] + ["[SEP]"] for n in n_real]
    marks = token_marks(tokens, T_TEXT, "[SEP]")
    mask = torch.zeros(B, T_TEXT, dtype=torch.bool)
    attn = torch.zeros(1, B, 1, T_TEXT, T_TEXT)
    for b, n in enumerate(n_real):
        mask[b, :n] = True
        for i in range(n):
            keys = rows_of(i, n, tokens[b])
            attn[0, b, 0, i, keys] = 1.0 / len(np.atleast_1d(keys))
        attn[0, b, 0, n:, 0] = 1.0  # padded queries: anything, they are not counted
    return {k: v[:, 0, 0] for k, v in text_types(attn, mask, marks).items()}  # [B]


def _assert_only(scores, kind, types, near=0.1):
    """kind scores 1; every other type under `near` (at most two of the n >= 30 rows touch another type's key)."""
    for t in types:
        if t == kind:
            np.testing.assert_allclose(scores[t].numpy(), 1.0, atol=1e-5, err_msg=t)
        else:
            assert (scores[t] < near).all(), (kind, t, scores[t])


TEXT_PATTERNS = {
    "previous": lambda i, n, toks: max(i - 1, 0) if i > 0 else 0,
    "next": lambda i, n, toks: min(i + 1, n - 1) if i < n - 1 else n - 1,
    "cls": lambda i, n, toks: 0,
    "sep": lambda i, n, toks: n - 1,
}


@pytest.mark.parametrize("kind", list(TEXT_PATTERNS))
def test_a_pure_text_pattern_scores_one_for_its_type_only(kind):
    _assert_only(_text(TEXT_PATTERNS[kind]), kind, [t for t in TEXT_TYPES if t != "broad"])
    assert (_text(TEXT_PATTERNS[kind])["broad"] < 1e-5).all()  # one key per row: no entropy


def test_punctuation_and_broad_attention():
    words = [w for i in range(20) for w in (f"w{i}", "," if i % 2 else ".")]
    punct = _text(lambda i, n, toks: [j for j, t in enumerate(toks) if t in ",."], words=words)
    _assert_only(punct, "punctuation", ["punctuation", "cls", "sep"])
    broad = _text(lambda i, n, toks: list(range(n)))
    np.testing.assert_allclose(broad["broad"].numpy(), 1.0, atol=1e-5)
    assert (broad["previous"] < 0.06).all() and (broad["sep"] < 0.06).all()


def _image(key_of):
    """attn [1, 1, 1, T, T] over an 8 x 8 grid and a CLS token: each query's keys from key_of(row, col) (token
    indices, uniform over them); the CLS query attends to itself."""
    T = PREFIX + GRID[0] * GRID[1]
    attn = torch.zeros(1, 1, 1, T, T)
    attn[..., 0, 0] = 1
    for r in range(GRID[0]):
        for c in range(GRID[1]):
            keys = key_of(r, c)
            attn[0, 0, 0, PREFIX + r * GRID[1] + c, keys] = 1.0 / len(keys)
    return {k: v[0, 0, 0] for k, v in image_types(attn, GRID, PREFIX).items()}


def _patch(r, c):
    return PREFIX + r * GRID[1] + c


def test_a_pure_offset_is_positional_with_its_offset():
    s = _image(lambda r, c: [_patch(r + 1, c - 2)] if r + 1 < 8 and c >= 2 else [_patch(r, c)])
    assert float(s["positional"]) == pytest.approx(1.0)
    assert s["offset"].tolist() == [1, -2]
    assert float(s["cls"]) == 0 and float(s["global"]) < 0.5


def test_cls_uniform_and_local_patterns():
    cls = _image(lambda r, c: [0])
    _assert_only(cls, "cls", IMAGE_TYPES)
    uniform = _image(lambda r, c: [_patch(i, j) for i in range(8) for j in range(8)])
    _assert_only(uniform, "global", IMAGE_TYPES)
    box = _image(
        lambda r, c: [
            _patch(i, j) for i in range(r - 1, r + 2) for j in range(c - 1, c + 2) if 0 <= i < 8 and 0 <= j < 8
        ]
    )
    assert float(box["local"]) > 0.75 and float(box["positional"]) < 0.2 and float(box["cls"]) == 0


@pytest.mark.parametrize("fixture,data", [("digits_vit", "digits"), ("minilm", "prose")])
def test_the_head_types_unit_scores_every_head_and_names_the_strongest(fixture, data, request):
    from runs import sample

    model = request.getfixturevalue(fixture)
    run = sample("head_types", model, data, 6, batch_size=4)
    a, tables = run.arrays(), run.tables()
    L, H = model.spec.n_layers, model.spec.n_heads
    types = TEXT_TYPES if data == "prose" else IMAGE_TYPES
    for t in types:
        assert a[t].shape == (6, L, H) and (a[t] >= -1e-6).all() and (a[t] <= 1 + 1e-5).all(), t
    best = tables["strongest"]
    assert len(best) == L * H and set(best["type"]) <= set(types)
    row = best[(best["layer"] == 1) & (best["head"] == 0)].iloc[0]
    means = {t: a[t][:, 1, 0].mean() for t in types}
    assert row["type"] == max(means, key=means.get) and row["score"] == pytest.approx(max(means.values()), abs=1e-6)


def test_attending_to_one_fixed_patch_is_not_positional():
    """Every query reads patch (0, 0): each offset is used by one query only, so no offset explains the pattern
    (offsets that only a few queries have inside the grid are not counted)."""
    s = _image(lambda r, c: [_patch(0, 0)])
    assert float(s["positional"]) < 0.1 and float(s["cls"]) == 0
