"""Spectral analyses (Park & Kim 2022; Dong et al. 2021; formulas in the Spectral section of the methods document
under docs/): known answers on constructed inputs, parity with FFT references,
the what-if forward against a hand-written forward, and invariants on the built-in models."""

import math

import numpy as np
import pytest
import torch

from analysis import spectral as S
from data import load_dataset
from models import TextModel
from models.whatif import path_hooks

T = 17  # odd token count: no Nyquist bin, every frequency has a distinct partner


def stochastic(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (3 * torch.randn(*shape, generator=g)).softmax(-1)


# -- DC / HC ---------------------------------------------------------------------------------------------
def test_dc_hc_parseval_with_and_without_padding():
    x = torch.randn(3, 5, 9, 6)
    d = S.dc_hc(x)
    assert torch.allclose(d["dc"] + d["hc"], x.pow(2).sum((-2, -1)), rtol=1e-5)
    assert torch.allclose(d["ratio"], (d["hc"] / d["dc"]).sqrt())
    mask = torch.ones(5, 9, dtype=torch.bool)
    mask[1, 6:] = False
    dm = S.dc_hc(x, mask)  # padding is left out: same as the unpadded rows alone
    real = S.dc_hc(x[:, 1, :6])
    assert torch.allclose(dm["ratio"][:, 1], real["ratio"], rtol=1e-5)
    assert torch.allclose(dm["dc"] + dm["hc"], (x * mask[..., None]).pow(2).sum((-2, -1)), rtol=1e-5)
    assert torch.all((dm["hc_share"] >= 0) & (dm["hc_share"] <= 1))


def test_row_stochastic_attention_passes_dc():
    a = stochastic(4, T, T)
    c = torch.randn(1, 5)
    x = torch.ones(T, 1) @ c  # 1 c^T: pure DC
    y = a @ x
    assert torch.allclose(y, x.expand_as(y), atol=1e-5)
    assert float(S.dc_hc(y)["hc"].max()) < 1e-9
    assert torch.allclose(S.attention_response(a, eig=False)["gain"][..., 0], torch.ones(4), atol=1e-5)


def test_repeated_softmax_attention_is_low_pass():
    a = stochastic(T, T, seed=1)
    x = torch.randn(T, 8) + 1.0
    ratios = []
    for _ in range(300):
        x = a @ x
        ratios.append(float(S.dc_hc(x)["ratio"]))
    assert ratios[-1] < 1e-3
    assert float(S.rank_collapse(x)) < 1e-3


# -- frequency response of attention -------------------------------------------------------------------------
def test_circulant_eigenvalues_are_the_dft_of_its_kernel():
    k = torch.rand(T, dtype=torch.float64)
    k = k / k.sum()
    idx = (torch.arange(T)[:, None] - torch.arange(T)[None, :]) % T
    c = k[idx]  # C[i, j] = k[(i - j) mod T]
    r = S.attention_response(c)
    lam = torch.fft.fft(k).to(torch.complex64)
    eig = r["eigenvalues"]
    dist = (eig[:, None] - lam[None, :]).abs()
    assert float(dist.min(1).values.max()) < 1e-5 and float(dist.min(0).values.max()) < 1e-5
    # U C U^H is diagonal, so the gain is |DFT(k)| and the singular values are its sorted magnitudes
    assert torch.allclose(r["gain"], lam.abs()[: T // 2 + 1], atol=1e-5)
    assert torch.allclose(r["singular"], lam.abs().sort(descending=True).values, atol=1e-5)
    assert torch.isclose(r["eigenvalues"].real.max(), torch.tensor(1.0), atol=1e-5)  # 1 is always an eigenvalue


def test_uniform_attention_is_a_dc_spike_and_identity_is_flat():
    grid, n = (4, 4), 17
    uniform = torch.full((n, n), 1.0 / n)
    ru = S.attention_response(uniform, grid, n_prefix=1)
    assert torch.allclose(ru["gain"], torch.eye(n // 2 + 1)[0], atol=1e-6)
    img = ru["response_2d"]
    assert float(img[2, 2]) == pytest.approx(16 / n, rel=1e-5)  # DC in the centre after fftshift
    img[2, 2] = 0
    assert float(img.abs().max()) < 1e-5
    assert float(ru["stable_rank"]) == pytest.approx(1.0, rel=1e-4)
    assert float(ru["effective_rank"]) == pytest.approx(1.0, rel=1e-3)
    ri = S.attention_response(torch.eye(n), grid)
    assert torch.allclose(ri["gain"], torch.ones(n // 2 + 1), atol=1e-6)
    assert float(ri["stable_rank"]) == pytest.approx(n, rel=1e-5)
    assert float(ri["effective_rank"]) == pytest.approx(n, rel=1e-4)
    assert float(S.high_frequency_gain(ru["gain"], ru["freq"])) < 1e-6
    assert float(S.high_frequency_gain(ri["gain"], ri["freq"])) == pytest.approx(1.0)


def test_attention_response_matches_fft_reference():
    a = stochastic(2, 3, 65, 65, seed=2)
    r = S.attention_response(a, (8, 8), n_prefix=1)
    ref = torch.fft.fft(torch.fft.ifft(a.to(torch.complex64), dim=-1, norm="ortho"), dim=-2, norm="ortho")
    assert torch.allclose(r["gain"], ref.abs().pow(2).sum(-2).sqrt()[..., :33], atol=1e-5)
    ref2 = torch.fft.fftshift(torch.fft.fft2(a[..., 1:].unflatten(-1, (8, 8))).abs().mean(-3), dim=(-2, -1))
    assert torch.allclose(r["response_2d"], ref2, atol=1e-5)
    s = torch.linalg.svdvals(a)
    assert torch.allclose(r["stable_rank"], (s**2).sum(-1) / s[..., 0] ** 2, rtol=1e-5)


# -- Fourier profile -----------------------------------------------------------------------------------
def maps_to_tokens(maps):  # [B, D, h, w] -> [B, 1 + h*w, D] with a zero prefix token
    b, d = maps.shape[:2]
    return torch.cat([torch.zeros(b, 1, d), maps.flatten(-2).transpose(-1, -2)], 1)


def test_fourier_profile_constant_checkerboard_and_impulse():
    h = w = 8
    const = maps_to_tokens(torch.full((2, 3, h, w), 2.5))
    fc = S.fourier_profile(const, (h, w))
    assert fc["freq"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert torch.allclose(fc["profile"][1:], fc["profile"][1:].mean(), atol=1e-6)  # flat beyond DC ...
    assert float(fc["profile"][1:].max()) < -10  # ... and all the energy sits at DC
    assert torch.allclose(fc["variance"], torch.zeros(2), atol=1e-10)
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    board = ((-1.0) ** (yy + xx)).expand(2, 3, h, w)
    fb = S.fourier_profile(maps_to_tokens(board), (h, w))["profile"]
    assert int(fb.argmax()) == len(fb) - 1 and float(fb[-1] - fb[:-1].max()) > 10  # the Nyquist corner
    impulse = torch.zeros(2, 3, h, w)
    impulse[..., 3, 5] = 1.0
    fi = S.fourier_profile(maps_to_tokens(impulse), (h, w))["profile"]
    assert torch.allclose(fi, torch.zeros_like(fi), atol=1e-6)  # white: exactly flat


def test_fourier_profile_matches_park_and_kim_recipe():
    x = torch.randn(3, 4, 1 + 36, 5)
    fp = S.fourier_profile(x, (6, 6))
    maps = x[..., 1:, :].transpose(-1, -2).unflatten(-1, (6, 6)).double()
    f = torch.fft.fftshift(torch.log(torch.fft.fft2(maps).abs() + 1e-6), dim=(-2, -1)).mean(-3)
    j = torch.arange(4)
    d = f[..., 3 - j, 3 - j]
    assert torch.allclose(fp["per_input"].double(), d - d[..., :1], atol=1e-5)
    assert torch.allclose(fp["profile"], fp["per_input"].mean(-2))
    with pytest.raises(ValueError, match="grid"):
        S.fourier_profile(x, (5, 5))


@pytest.mark.parametrize("n", [5, 7, 8, 14])
def test_park_and_kim_points_are_their_diagonal_and_axis(n):
    """Their code (how-do-vits-work, fourier_analysis): log(|fft2| + 1e-6), torch.roll by int(n/2) on both axes,
    mean over channels, `diag()[int(n/2):]` minus its first value, drawn on np.linspace(0, 1) ("1.0 pi"). On an
    even grid that stops one step short of the Nyquist corner; an odd grid has no Nyquist bin and keeps its last."""
    x = torch.randn(2, 3, 1 + n * n, 4)
    fp = S.fourier_profile(x, (n, n))
    axis, theirs = S.park_kim_points(fp["freq"].numpy(), fp["per_input"].numpy())
    maps = x[..., 1:, :].transpose(-1, -2).unflatten(-1, (n, n)).double()
    f = torch.roll(torch.log(torch.fft.fft2(maps).abs() + 1e-6), shifts=(int(n / 2), int(n / 2)), dims=(-2, -1))
    diag = torch.diagonal(f.mean(-3), dim1=-2, dim2=-1)[..., int(n / 2) :]
    assert np.allclose(theirs, (diag - diag[..., :1]).numpy(), atol=1e-5)
    assert np.allclose(axis, np.linspace(0, 1, diag.shape[-1]))
    last = fp["freq"][diag.shape[-1] - 1]  # their last point, x pi per axis: (1 - 2/n) even, (1 - 1/n) odd
    assert float(last) == pytest.approx(1 - (2 if n % 2 == 0 else 1) / n)


# -- rank collapse ----------------------------------------------------------------------------------------
def test_rank_collapse_norms():
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0], [0.0, 1.0]])
    res = x - x.mean(0)
    assert float(S.rank_collapse(x)) == pytest.approx(float(res.norm() / x.norm()), rel=1e-6)  # Frobenius
    # under the composite norm the mean is not the minimiser (tests/unit/test_l1inf.py checks the exact one)
    l1inf = lambda y: math.sqrt(y.abs().sum(0).max() * y.abs().sum(1).max())  # noqa: E731
    assert float(S.rank_collapse(x, norm="l1inf")) < l1inf(res) / l1inf(x) - 0.01
    assert float(S.rank_collapse(torch.ones(5, 3) * torch.randn(3))) < 1e-6
    with pytest.raises(ValueError, match="norm"):
        S.rank_collapse(x, norm="l2")


# -- activation functions -------------------------------------------------------------------------------
@pytest.mark.parametrize("amp", [1.0, 2.5])
def test_relu_harmonics_match_the_analytic_values(amp):
    r = S.activation_response("ReLU", amp, 16, fs=4096, n=4096, n_harmonics=7)
    h = r["harmonics"].set_index("harmonic")["measured"]
    expected = {0: amp / math.pi, 1: amp / 2, 2: 2 * amp / (3 * math.pi), 4: 2 * amp / (15 * math.pi)}
    for k, v in expected.items():
        assert h[k] == pytest.approx(v, rel=1e-3)
    for k in (3, 5, 7):
        assert h[k] < 1e-3 * amp
    table = r["harmonics"]
    known = table["analytic"].notna()
    assert np.allclose(table["measured"][known], table["analytic"][known], rtol=1e-3, atol=1e-3 * amp)


@pytest.mark.parametrize("name", ["GELU", "SiLU"])
def test_gelu_and_silu_have_no_odd_harmonics(name):
    r = S.activation_response(name, 3.0, 8, fs=2048, n=2048, n_harmonics=9)
    h = r["harmonics"].set_index("harmonic")["measured"]
    assert h[1] == pytest.approx(1.5, rel=1e-3)
    assert all(h[k] < 1e-4 for k in (3, 5, 7, 9))
    assert h[0] > 0.1 and h[2] > 0.1  # the energy goes to DC and the even harmonics


def test_activation_response_spectrum_and_bad_tones():
    r = S.activation_response("ReLU", 1.0, [8, 20], fs=256, n=256)
    assert r["spectrum"].shape == (129,) and r["freq"][-1] == 128
    assert np.isnan(r["harmonics"]["analytic"]).all()  # analytic values are for a single tone
    energy = (r["y"] ** 2).mean()
    s = r["spectrum"]
    assert energy == pytest.approx(s[0] ** 2 + (s[1:-1] ** 2).sum() / 2 + s[-1] ** 2, rel=1e-9)  # Parseval
    with pytest.raises(ValueError, match="DFT bin"):
        S.activation_response("ReLU", 1.0, 8.5, fs=256, n=256)
    with pytest.raises(ValueError, match="Nyquist"):
        S.activation_response("ReLU", 1.0, 200, fs=256, n=256)
    with pytest.raises(ValueError, match="unknown activation"):
        S.activation_response("tanh", 1.0, 8, fs=256, n=256)


def test_model_activation_has_gelu_symmetry(digits_vit):
    r = S.activation_response(S.model_activation(digits_vit, 0), 2.0, 8, fs=1024, n=1024)
    h = r["harmonics"].set_index("harmonic")["measured"]
    assert h[1] == pytest.approx(1.0, rel=1e-3) and all(h[k] < 1e-4 for k in (3, 5, 7))


# -- temperature -----------------------------------------------------------------------------------------
def test_temperatures_helper():
    assert S.temperatures(2.0, None, 3) == [2.0, 2.0, 2.0]
    assert S.temperatures(0.5, [1], 3) == [1.0, 0.5, 1.0]
    with pytest.raises(ValueError):
        S.temperatures(0.0, None, 3)


@pytest.fixture(scope="module")
def digits_batch(digits_vit):
    return digits_vit.prepare(load_dataset("digits", "test").inputs[:6])


@pytest.fixture(scope="module")
def prose_batch(minilm):
    return minilm.prepare(load_dataset("prose", "test").inputs[:4])


@pytest.mark.parametrize("which", ["digits", "prose"])
def test_temperature_one_reproduces_and_large_is_uniform(which, request):
    model = request.getfixturevalue("digits_vit" if which == "digits" else "minilm")
    batch = request.getfixturevalue(f"{which}_batch")
    L = model.spec.n_layers
    ref = model.run(batch)
    for tau in (1.0, [1.0] * L):
        tr = model.run(batch, temperature=tau)
        assert torch.equal(tr.logits, ref.logits) and torch.equal(tr.attentions, ref.attentions)
    hot = model.run(batch, temperature=1e5)
    mask = batch.token_mask.float()
    uniform = (mask / mask.sum(-1, keepdim=True))[None, :, None, None, :]  # over real keys
    real_queries = batch.token_mask[None, :, None, :, None]
    assert float(((hot.attentions - uniform).abs() * real_queries).max()) < 1e-3
    assert float(S.dc_hc(hot.attn_out, batch.token_mask)["ratio"].max()) < 1e-3


def test_temperature_sweep(digits_vit, digits_batch):
    sw = S.temperature_sweep(digits_vit, digits_batch, [1.0, 1e4], layers=[2, 3])
    assert sw["resid_ratio"].shape == (2, 5) and sw["entropy"].shape == (2, 4)
    assert sw["agreement"][0] == 1.0
    assert np.all(sw["entropy"][1, 2:] > 0.999) and np.all(sw["attn_out_ratio"][1, 2:] < 1e-3)
    base = S.spectral_metrics(digits_vit, digits_batch)
    assert np.allclose(sw["entropy"][0], base["entropy"].mean((1, 2)))
    assert np.allclose(sw["entropy"][1, :2], base["entropy"].mean((1, 2))[:2])  # layers below 2 untouched


def test_length_collapse(minilm, digits_vit):
    texts = load_dataset("prose", "test").inputs
    df = S.length_collapse(minilm, texts, [4, 32], [1.0, 1e4], n_windows=3)
    assert list(df.columns) == ["tau", "words", "tokens", "n_texts", "mean_cos"]
    assert len(df) == 4 and df["n_texts"].eq(3).all()
    assert df["mean_cos"].between(-1, 1).all()
    hot = df[df["tau"] == 1e4]
    assert hot["mean_cos"].min() > df[df["tau"] == 1.0]["mean_cos"].min()  # uniform attention collapses texts
    with pytest.raises(ValueError, match="text model"):
        S.length_collapse(digits_vit, texts, [4], [1.0])
    with pytest.raises(ValueError, match="too few"):
        S.length_collapse(minilm, ["two words"], [4], [1.0])


# -- model-level metrics ---------------------------------------------------------------------------------
def test_spectral_metrics_batched_equals_per_input(digits_vit, digits_batch):
    full = S.spectral_metrics(digits_vit, digits_batch, eig=True)
    L, B = digits_vit.spec.n_layers, len(digits_batch)
    assert full["resid_ratio"].shape == (L + 1, B) and full["gain"].shape == (L, B, 4, 33)
    assert full["profile"].shape == (2 * L + 1, B, 5) and list(full["state_kinds"][:3]) == [
        "embedding",
        "attention",
        "mlp",
    ]
    assert np.allclose(full["gain"][..., 0], 1.0, atol=1e-5)  # every head passes DC
    assert np.allclose(np.abs(full["eigenvalues"]).max(-1), 1.0, atol=1e-4)  # spectral radius of a stochastic matrix
    one = S.spectral_metrics(digits_vit, digits_batch.select([3]))
    for k in ("resid_ratio", "mlp_out_ratio", "rank", "entropy", "gain", "effective_rank", "profile", "variance"):
        assert np.allclose(full[k][:, 3:4], one[k], rtol=1e-4, atol=1e-5), k


def test_sublayer_states_pre_and_post_ln(digits_vit, minilm, digits_batch, prose_batch):
    tr = digits_vit.run(digits_batch)
    states, labels, kinds = S.sublayer_states(tr.resid, tr.attn_out, tr.mlp_out)
    assert states.shape[0] == 9 and labels[1] == "L0 attention" and kinds[-1] == "mlp"
    assert torch.allclose(states[2], tr.resid[1], atol=1e-5)
    tt = minilm.run(prose_batch)  # post-LN: the sublayer outputs do not add up, so only block outputs
    states, labels, kinds = S.sublayer_states(tt.resid, tt.attn_out, tt.mlp_out)
    assert states.shape[0] == 7 and set(kinds[1:]) == {"block"}


def test_text_metrics_skip_attention_response_on_padded_batches(minilm, prose_batch):
    m = S.spectral_metrics(minilm, prose_batch)
    assert "gain" not in m and "profile" not in m and m["resid_ratio"].shape == (7, 4)
    one = S.spectral_metrics(minilm, prose_batch.select([0]))
    assert one["gain"].shape[:3] == (6, 1, 12) and "response_2d" not in one


def test_mlp_activation_spectrum(digits_vit, digits_batch, minilm, prose_batch):
    r = S.mlp_activation_spectrum(digits_vit, digits_batch)
    assert r["input"].shape == (4, 33) and r["freq"][-1] == 1.0
    assert np.isfinite(r["output_ratio"]).all()
    t = S.mlp_activation_spectrum(minilm, prose_batch.select([1]))
    assert t["input"].shape[0] == 6 and np.isfinite(t["input_ratio"]).all()


# -- what-if forward ---------------------------------------------------------------------------------------
def attention_by_hand(b, x, n_heads, mask_add):
    B, T_, _ = x.shape
    q, k, v = (lin(x).view(B, T_, n_heads, -1).transpose(1, 2) for lin in (b.q, b.k, b.v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask_add is not None:
        scores = scores + mask_add
    return b.o((scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T_, -1))


def forward_by_hand(model, batch, skip: bool, mlp: bool):
    """The block stack written out: pre-LN x + f(LN x) (ViT) or post-LN LN(x + f(x)) (BERT), with the skip
    connections removed (skip) and/or the MLP removed (mlp)."""
    post = isinstance(model, TextModel)
    mask_add = None
    if post:
        m = batch.tensors["attention_mask"][:, None, None, :].float()
        mask_add = (1.0 - m) * torch.finfo(torch.float32).min
    h = model.embed(batch)
    keep = 0.0 if skip else 1.0
    for b in model.blocks:
        if post:
            h1 = b.ln1(attention_by_hand(b, h, model.spec.n_heads, mask_add) + keep * h)
            h = b.ln2(h1 if mlp else b.fc2(b.act(b.fc1(h1))) + keep * h1)
        else:
            h1 = attention_by_hand(b, b.ln1(h), model.spec.n_heads, None) + keep * h
            h = h1 if mlp else b.fc2(b.act(b.fc1(b.ln2(h1)))) + keep * h1
    return h


@pytest.mark.parametrize("which", ["tiny_vit", "tiny_bert"])
@pytest.mark.parametrize("variant", list(S.WHATIF))
def test_whatif_matches_a_hand_written_forward(which, variant, request):
    model = request.getfixturevalue(which)
    if which == "tiny_vit":
        batch = model.prepare([np.random.default_rng(i).random((16, 16, 3)) for i in range(3)])
    else:
        batch = model.prepare(["a short text", "a somewhat longer text about the blood and its glucose"])
    skip, mlp = S.WHATIF[variant]
    with torch.no_grad():
        expected = forward_by_hand(model, batch, skip, mlp)
        tr = model.run(batch, hooks=path_hooks(model, skip=skip, mlp=mlp))
    real = batch.token_mask[..., None]
    assert torch.allclose(tr.resid[-1] * real, expected * real, atol=1e-4, rtol=1e-4)
    if variant == "model":
        assert torch.equal(tr.logits, model.run(batch).logits)


def test_whatif_in_some_layers_and_bad_layers(tiny_vit):
    """path_hooks of chosen layers change only those blocks; a layer the model lacks is named."""
    batch = tiny_vit.prepare([np.random.default_rng(0).random((16, 16, 3))])
    plain = tiny_vit.run(batch)
    tr = tiny_vit.run(batch, hooks=path_hooks(tiny_vit, mlp=True, layers=[1]))
    assert torch.equal(tr.mlp_out[0], plain.mlp_out[0]) and not tr.mlp_out[1].any()
    with pytest.raises(ValueError, match="layers"):
        path_hooks(tiny_vit, skip=True, layers=[5])


def test_pure_attention_stack_collapses_on_the_real_model(digits_vit, digits_batch):
    ratios = S.rank_collapse_whatif(digits_vit, digits_batch, ["model", "attention only"])
    assert ratios["model"].shape == (5, 6)
    assert np.allclose(ratios["model"][0], ratios["attention only"][0])  # same embeddings
    assert ratios["attention only"][-1].mean() < 0.1 < ratios["model"][-1].mean()
    with pytest.raises(ValueError, match="unknown what-if"):
        S.rank_collapse_whatif(digits_vit, digits_batch, ["no attention"])


@pytest.mark.parametrize(("n", "end"), [(7, "(0.86π, 0.86π)"), (8, "(π, π)")])
def test_the_profile_end_is_named_for_the_grid(n, end):
    """The profile's last point is the Nyquist corner (π, π) on an even grid, the last bin (1 - 1/n)π on an odd one."""
    from ui.spectral_figures import diagonal_end

    freq = S.fourier_profile(torch.randn(1, 1 + n * n, 2), (n, n))["freq"]
    title, short, words = diagonal_end(float(freq[-1]))
    assert short == end and end in words and ("Nyquist corner (π, π)" in title) == (n % 2 == 0)
