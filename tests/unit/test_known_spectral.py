"""Spectral analyses against references written here (issue 29, item 9): the Fourier profile on a non-square grid
(numpy's fft2) and the temperature sweep's entropy (a hand-computed forward at the chosen layers only).
tests/unit/MUTATIONS.md lists the mutations they catch."""

import math

import numpy as np
import torch

from analysis import spectral as S
from data import load_dataset


def test_fourier_profile_on_a_non_square_grid_is_the_fft2_diagonal():
    """h = 4, w = 6: the diagonal runs through frequencies (-j/h, -j/w), j = 0 .. min(h, w) // 2, of each
    channel's fft2; log amplitude averaged over channels, minus its value at j = 0."""
    h, w = 4, 6
    x = torch.randn(2, 1 + h * w, 5, generator=torch.Generator().manual_seed(0))
    maps = x[:, 1:].double().numpy().transpose(0, 2, 1).reshape(2, 5, h, w)
    amp = np.abs(np.fft.fft2(maps))
    j = np.arange(min(h, w) // 2 + 1)
    diag = np.log(amp[:, :, (-j) % h, (-j) % w] + 1e-6).mean(1)
    got = S.fourier_profile(x, (h, w))
    np.testing.assert_allclose(got["per_input"].numpy(), diag - diag[:, :1], atol=1e-4)
    np.testing.assert_allclose(got["variance"].numpy(), maps.reshape(2, 5, -1).var(-1).mean(-1), rtol=1e-5)


def test_temperature_sweep_heats_only_the_chosen_layers(digits_vit):
    """Entropy under tau at layer 2 only: each layer's mean over heads of the real-query row entropy / log T of a
    forward with temperatures [1, 1, tau, 1], computed by hand; layers before 2 keep their tau = 1 entropy."""
    batch = digits_vit.prepare(load_dataset("digits", "test").inputs[:3])
    sweep = S.temperature_sweep(digits_vit, batch, [1.0, 3.0], layers=[2])
    for k, tau in enumerate([1.0, 3.0]):
        attn = digits_vit.run(batch, temperature=[1.0, 1.0, tau, 1.0]).attentions.double()
        t = attn.shape[-1]
        rows = -(attn * attn.clamp_min(1e-300).log()).sum(-1) / math.log(t)  # [L, B, H, T]
        np.testing.assert_allclose(sweep["entropy"][k], rows.mean((1, 2, 3)).numpy(), rtol=1e-4)
    assert np.allclose(sweep["entropy"][0, :2], sweep["entropy"][1, :2], rtol=1e-5)
    assert not np.isclose(sweep["entropy"][0, 2], sweep["entropy"][1, 2], rtol=1e-3)


def test_attention_entropy_of_padded_text_averages_the_real_queries(minilm):
    """Per input: the mean over its real queries of the row entropy, divided by log of its real token count."""
    batch = minilm.prepare(["Short.", "A longer sentence about blood glucose and insulin levels in the body."])
    got = S.spectral_metrics(minilm, batch, attention=False, fourier=False)["entropy"]  # [L, B, H]
    attn = minilm.run(batch).attentions.double()
    for b, real in enumerate(batch.token_mask):
        n = int(real.sum())
        a = attn[:, b][:, :, real]  # [L, H, n real queries, T]
        rows = -(a * a.clamp_min(1e-300).log()).sum(-1)
        np.testing.assert_allclose(got[:, b], (rows.mean(-1) / math.log(n)).numpy(), rtol=1e-4)
    assert not bool(batch.token_mask.all())  # the first text is padded
