"""Spectral analyses of transformers (formulas and oracles: the Spectral section of the methods document under docs/).

Attention as a low-pass filter over tokens (Wang et al. ICLR 2022), Fourier profiles of ViT feature maps
(Park & Kim ICLR 2022), frequency responses of attention matrices, rank collapse (Dong et al. ICML 2021),
attention temperature and length collapse (Zhou et al. 2024) and the harmonics an activation function
makes ("DC is all you need").

Shapes: L layers, B inputs, H heads, T tokens, D width, (h, w) the patch grid, S sublayer states.
Low-level functions take and return torch tensors (on the model's device; numpy is accepted too) and
broadcast over any leading dims; the model-level functions return numpy arrays or DataFrames.
Everything is batched over inputs: no Python loop over images or sentences.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from models import HookedModel, TextModel
from models.hooks import keep
from models.trace import Batch, Trace
from models.whatif import path_hooks

Progress = Callable[[float, str], None] | None

# What-if variants of the forward: name -> (drop skip connections, drop MLPs)
WHATIF = {"model": (False, False), "no skip": (True, False), "no MLP": (False, True), "attention only": (True, True)}
STREAMS = {"resid": "residual stream", "attn_out": "attention output", "mlp_out": "MLP output"}


def _t(x) -> torch.Tensor:
    return x if torch.is_tensor(x) else torch.as_tensor(np.asarray(x))


def _mask(x: torch.Tensor, token_mask) -> torch.Tensor:
    """[..., T, 1] float mask broadcast against x [..., T, D] (all ones when token_mask is None)."""
    if token_mask is None:
        return torch.ones(x.shape[-2], 1, dtype=x.dtype, device=x.device)
    return _t(token_mask).to(device=x.device, dtype=x.dtype).unsqueeze(-1)


def _centre(x: torch.Tensor, token_mask) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x [..., T, D] -> (masked x, DC = J x, HC = x - J x), padding rows zeroed; J averages real tokens."""
    m = _mask(x, token_mask)
    mean = (x * m).sum(-2, keepdim=True) / m.sum(-2, keepdim=True).clamp_min(1.0)
    return x * m, mean * m, (x - mean) * m


# -- DC / HC ------------------------------------------------------------------------------------------
def dc_hc(x, token_mask=None) -> dict[str, torch.Tensor]:
    """Split token features into their mean token (DC) and the rest (HC) (Wang et al. 2022).

    x [..., T, D] (e.g. a residual stream [L+1, B, T, D]); token_mask [..., T] (broadcast; padding is left out).
    Returns tensors of shape [...]: "dc" = ||J X||_F^2, "hc" = ||X - J X||_F^2 (their sum is ||X||_F^2,
    Parseval), "ratio" = ||HC||_F / ||DC||_F, "hc_share" = hc / (dc + hc)."""
    x = _t(x).float()
    _, dc, hc = _centre(x, token_mask)
    e_dc, e_hc = dc.pow(2).sum((-2, -1)), hc.pow(2).sum((-2, -1))
    return {
        "dc": e_dc,
        "hc": e_hc,
        "ratio": (e_hc / e_dc).sqrt(),
        "hc_share": e_hc / (e_dc + e_hc).clamp_min(torch.finfo(e_dc.dtype).tiny),
    }


# -- Fourier profile of feature maps --------------------------------------------------------------
def fourier_profile(features, grid: tuple[int, int], n_prefix: int = 1) -> dict[str, torch.Tensor]:
    """Park & Kim's relative log amplitude of the patch-token feature maps.

    features [..., B, T, D] (n_prefix tokens, then the h*w patches in row-major order). Per input:
    F = log(|fft2| + 1e-6) over (h, w), fftshift, mean over channels, the diagonal from the centre to the
    Nyquist corner (an odd grid has no Nyquist bin: to its last bin, (1 - 1/n) pi), minus its value at frequency
    0. Returns "freq" [n+1] (normalised frequency, 1 = pi, n = min(h, w) // 2), "profile" [..., n+1] (batch
    mean), "per_input" [..., B, n+1], and "variance" [..., B]: the feature-map variance over (h, w), averaged
    over channels."""
    h, w = grid
    x = _t(features).float()[..., n_prefix:, :]
    if x.shape[-2] != h * w:
        raise ValueError(
            f"features have {x.shape[-2]} patch tokens after {n_prefix} prefix token(s); "
            f"the grid {h}x{w} needs {h * w}."
        )
    maps = x.transpose(-1, -2).double()  # [..., B, D, h*w]
    n = min(h, w) // 2
    j = torch.arange(n + 1, device=x.device, dtype=torch.float64)
    # the diagonal of the fftshifted |fft2| from the centre to the Nyquist corner: frequencies (-j/h, -j/w),
    # computed directly as a DFT at those n+1 points (one matmul instead of a full fft2)
    amp = _dft_magnitude(maps, _grid_phase(h, w, j[None, :] / h, j[None, :] / w))
    diag = torch.log(amp + 1e-6).mean(-2).float()  # [..., B, n+1]
    per_input = diag - diag[..., :1]
    return {
        "freq": (2 * j / min(h, w)).float(),
        "profile": per_input.mean(-2),
        "per_input": per_input,
        "variance": maps.var(dim=-1, unbiased=False).mean(-1).float(),
    }


def _grid_phase(h: int, w: int, fy: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """[h*w, K] phases 2 pi (fy y + fx x) of a row-major h x w grid for K frequency pairs (fy, fx) [K]."""
    y, x = torch.meshgrid(
        torch.arange(h, device=fy.device, dtype=fy.dtype),
        torch.arange(w, device=fy.device, dtype=fy.dtype),
        indexing="ij",
    )
    return 2 * math.pi * (y.reshape(-1, 1) * fy.reshape(1, -1) + x.reshape(-1, 1) * fx.reshape(1, -1))


def _dft_magnitude(x: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """|sum_j x[..., j] exp(-i phase[j, k])| for real x [..., N] and phase [N, K] -> [..., K] (one matmul)."""
    basis = torch.cat([phase.cos(), phase.sin()], -1).to(x.dtype)
    re_im = (x @ basis).unflatten(-1, (2, -1))
    return re_im.pow(2).sum(-2).sqrt()


def sublayer_states(resid, attn_out, mlp_out) -> tuple[torch.Tensor, list[str], list[str]]:
    """The residual stream after every sublayer, for Park & Kim's depth plots.

    resid [L+1, ...], attn_out and mlp_out [L, ...]. In pre-LN blocks (resid[l+1] = resid[l] + attn + mlp)
    the states are embedding, after attention 0, after MLP 0, ...: [2L+1, ...], with kinds "embedding",
    "attention", "mlp". Otherwise (post-LN) only the block outputs: [L+1, ...], kinds "embedding", "block".
    Returns (states, labels, kinds)."""
    resid, attn_out, mlp_out = _t(resid).float(), _t(attn_out).float(), _t(mlp_out).float()
    L = attn_out.shape[0]
    mid = resid[:-1] + attn_out
    scale = resid.abs().amax().clamp_min(1.0)
    if torch.allclose(mid + mlp_out, resid[1:], atol=1e-4 * float(scale), rtol=1e-4):
        states = torch.stack([resid[0]] + [s for l in range(L) for s in (mid[l], resid[l + 1])])
        labels = ["embedding"] + [f"L{l} {k}" for l in range(L) for k in ("attention", "MLP")]
        return states, labels, ["embedding"] + ["attention", "mlp"] * L
    return resid, ["embedding"] + [f"block {l}" for l in range(L)], ["embedding"] + ["block"] * L


# -- frequency response of attention matrices ----------------------------------------------------------
def attention_response(
    attn, grid: tuple[int, int] | None = None, n_prefix: int = 1, eig: bool = True
) -> dict[str, torch.Tensor]:
    """Frequency response, spectrum and ranks of attention matrices (rows = queries).

    attn [..., T, T] (e.g. [L, B, H, T, T]) without padding. Returns:
    "freq" [T//2+1] normalised frequency (1 = pi); "gain" [..., T//2+1]: G(k) = ||(U A U^H)[:, k]||_2 with U the
    unitary DFT over token positions (G(0) = 1 for row-stochastic A; G(k) = G(T-k) for real A);
    "singular" [..., T] (descending); "stable_rank" [...] = ||A||_F^2 / ||A||_2^2; "effective_rank" [...] =
    exp(entropy(sigma / sum sigma)); with eig: "eigenvalues" [..., T] complex; with a grid:
    "response_2d" [..., h, w]: |fft2| of each query's patch row (keys after the n_prefix tokens) averaged
    over queries, fftshifted (DC in the centre)."""
    a = _t(attn).float()
    T = a.shape[-1]
    k = torch.arange(T // 2 + 1, device=a.device, dtype=torch.float32)
    # (U A U^H)[:, k] = U (A U^H)[:, k] and U is unitary, so G(k) = ||A U^H e_k||_2 = ||A f_k||_2 / sqrt(T)
    # with f_k = exp(2 pi i j k / T): one real matmul with the cosines and sines
    phase = 2 * math.pi * torch.arange(T, device=a.device, dtype=torch.float32)[:, None] * k[None, :] / T
    gain = _dft_magnitude(a, phase).pow(2).sum(-2).div(T).sqrt()
    s = torch.linalg.svdvals(a)
    p = s / s.sum(-1, keepdim=True).clamp_min(1e-30)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    out = {
        "freq": k * 2.0 / T,
        "gain": gain,
        "singular": s,
        "stable_rank": s.pow(2).sum(-1) / s[..., 0].pow(2).clamp_min(1e-30),
        "effective_rank": entropy.exp(),
    }
    if eig:
        out["eigenvalues"] = torch.linalg.eigvals(a)
    if grid is not None:
        h, w = grid
        fy, fx = torch.meshgrid(
            torch.arange(h, device=a.device) - h // 2, torch.arange(w, device=a.device) - w // 2, indexing="ij"
        )  # fftshifted order: DC at (h // 2, w // 2)
        phase = _grid_phase(h, w, fy.reshape(-1).float() / h, fx.reshape(-1).float() / w)
        out["response_2d"] = _dft_magnitude(a[..., n_prefix:], phase).mean(-2).unflatten(-1, (h, w))
    return out


def park_kim_points(freq, profile) -> tuple[np.ndarray, np.ndarray]:
    """`fourier_profile`'s curve at Park & Kim's points, to compare a figure with theirs: their code rolls the
    spectrum by int(n/2) and reads `diag()[int(n/2):]`, from the centre to the last index: on an even n x n grid
    one step short of the Nyquist corner ((1 - 2/n) pi per axis: 0.75 pi for 8 x 8, 6/7 pi for 14 x 14), on an
    odd one every point of `fourier_profile` (the last bin, (1 - 1/n) pi: 6/7 pi for 7 x 7); it draws them evenly
    from 0 to an axis end it calls 1.0 pi. freq [K], profile [..., K] -> (their axis [k] from 0 to 1, profile
    [..., k]), k = K - 1 (even grid) or K (odd)."""
    freq, profile = np.asarray(freq), np.asarray(profile)
    k = len(freq) - 1 if np.isclose(freq[-1], 1.0) else len(freq)
    return freq[:k] / freq[k - 1], profile[..., :k]


def high_frequency_gain(gain, freq) -> torch.Tensor:
    """Mean gain above half the Nyquist frequency: gain [..., K], freq [K] -> [...] (0 = low-pass, 1 = all-pass)."""
    gain, freq = _t(gain), _t(freq).to(_t(gain).device)
    return gain[..., freq > 0.5].mean(-1)


# -- rank collapse -------------------------------------------------------------------------------------
# norm -> what rank_collapse measures (the views' label)
RANK_NORMS = {"fro": "Frobenius (its minimiser is the token mean)", "l1inf": "Dong et al.'s ‖·‖₁,∞ (exact; slow)"}


def l1inf_norm(y: torch.Tensor) -> torch.Tensor:
    """Dong et al.'s norm of y [..., T, D]: sqrt(max column abs-sum * max row abs-sum)."""
    a = y.abs()
    return (a.sum(-2).amax(-1) * a.sum(-1).amax(-1)).sqrt()


def rank_collapse(trace_or_resid, token_mask=None, norm: str = "fro", progress: Progress = None) -> torch.Tensor:
    """Relative residual min_x ||X - 1 x^T|| / ||X|| per layer and input (Dong et al. 2021).

    trace_or_resid: a Trace (its residual stream and token mask are used) or features [..., T, D]
    (e.g. [L+1, B, T, D]); norm a key of RANK_NORMS: "fro" (batched; the minimiser is the token mean) or
    "l1inf" (the paper's composite norm, its minimiser found exactly by analysis.l1inf, one matrix at a time,
    with progress(fraction, label)). Returns [...] (e.g. [L+1, B]) in [0, 1]; 0 means every token is the same
    vector (rank one)."""
    if isinstance(trace_or_resid, Trace):
        x, token_mask = trace_or_resid.resid, trace_or_resid.token_mask
    else:
        x = _t(trace_or_resid)
    if norm not in RANK_NORMS:
        raise ValueError(f"norm must be one of {list(RANK_NORMS)}, got {norm!r}.")
    x, _, res = _centre(x.float(), token_mask)
    if norm == "fro":
        return res.flatten(-2).norm(dim=-1) / x.flatten(-2).norm(dim=-1)
    from analysis.l1inf import l1inf_minimum

    real = torch.broadcast_to(_mask(x, token_mask)[..., 0], x.shape[:-1]).bool().reshape(-1, x.shape[-2])
    mats = x.reshape(-1, *x.shape[-2:]).double()
    out = torch.empty(len(mats), dtype=torch.float64)
    for k, (m, real_rows) in enumerate(zip(mats, real)):
        m = m[real_rows]
        out[k] = l1inf_minimum(m.cpu().numpy())[0] / l1inf_norm(m).clamp_min(torch.finfo(m.dtype).tiny)
        if progress:
            progress((k + 1) / len(mats), f"matrix {k + 1} of {len(mats)}")
    return out.float().reshape(x.shape[:-2]).to(x.device)


def rank_collapse_whatif(
    model: HookedModel,
    batch: Batch,
    variants: Sequence[str] = tuple(WHATIF),
    temperature=None,
    norm: str = "fro",
    progress: Progress = None,
) -> dict[str, np.ndarray]:
    """Rank-collapse ratio [L+1, B] of the residual stream for each what-if forward in `variants`
    (keys of WHATIF: the model as is, without skips, without MLPs, attention only) under `norm` (RANK_NORMS)."""
    out = {}
    for i, name in enumerate(variants):
        if name not in WHATIF:
            raise ValueError(f"unknown what-if {name!r}; choose from {list(WHATIF)}.")
        skip, mlp = WHATIF[name]
        tr = model.run(batch, capture=True, temperature=temperature, hooks=path_hooks(model, skip=skip, mlp=mlp))

        def step(f: float, label: str, i=i, name=name) -> None:
            if progress:
                progress((i + f) / len(variants), f"{name}: {label}")

        out[name] = rank_collapse(tr, norm=norm, progress=step).cpu().numpy()
        step(1.0, "done")
    return out


# -- all per-layer metrics of one forward -----------------------------------------------------------------
def spectral_metrics(
    model: HookedModel, batch: Batch, temperature=None, eig: bool = False, attention: bool = True, fourier: bool = True
) -> dict[str, np.ndarray]:
    """Every per-layer spectral metric of one batched forward (per input, so batch means are exact).

    Returns numpy arrays: "<stream>_ratio" and "<stream>_share" for stream in resid [L+1, B], attn_out and
    mlp_out [L, B] (HC/DC ratio and HC energy share); "rank" [L+1, B] (rank-collapse ratio, Frobenius); "entropy"
    [L, B, H] (attention entropy / log of the number of real keys: 1 = uniform); "logits" [B, C]. With
    attention, for batches of equal-length inputs, the attention_response keys [L, B, H, ...] ("gain", "freq",
    "stable_rank", "effective_rank", "hf_gain", "singular", with eig "eigenvalues", with a grid "response_2d");
    with fourier and a grid, the Park & Kim keys "profile_freq", "profile" [S, B, n+1], "variance" [S, B],
    "state_labels", "state_kinds"."""
    spec = model.spec
    tr = model.run(batch, capture=True, temperature=temperature)
    mask = tr.token_mask
    out: dict = {"logits": tr.logits.float()}
    streams = {"resid": tr.resid, "attn_out": tr.attn_out, "mlp_out": tr.mlp_out}
    for name, x in streams.items():
        d = dc_hc(x, mask)
        out[f"{name}_ratio"], out[f"{name}_share"] = d["ratio"], d["hc_share"]
    out["rank"] = rank_collapse(streams["resid"], mask)
    attn = tr.attentions.float()
    real = mask.float()  # [B, T]
    per_query = -(attn * attn.clamp_min(1e-30).log()).sum(-1)  # [L, B, H, T]
    out["entropy"] = (
        (per_query * real[:, None]).sum(-1) / real.sum(-1)[:, None] / real.sum(-1).clamp_min(2.0).log()[:, None]
    )
    n = int(mask.sum(-1).max())  # trailing padding shared by every input is cut off
    if attention and bool(mask[:, :n].all()):
        r = attention_response(attn[..., :n, :n], spec.grid, spec.n_prefix, eig=eig)
        r["hf_gain"] = high_frequency_gain(r["gain"], r["freq"])
        out.update(r)
    if fourier and spec.grid is not None:
        states, labels, kinds = sublayer_states(*streams.values())
        fp = fourier_profile(states, spec.grid, spec.n_prefix)
        out.update(profile_freq=fp["freq"], profile=fp["per_input"], variance=fp["variance"])
        out.update(state_labels=np.array(labels), state_kinds=np.array(kinds))
    return {k: v.cpu().numpy() if torch.is_tensor(v) else v for k, v in out.items()}


# -- temperature ---------------------------------------------------------------------------------------
def temperatures(tau: float, layers: Iterable[int] | None, n_layers: int) -> list[float]:
    """Per-layer temperatures [L]: tau at `layers` (all when None), 1 elsewhere."""
    if not tau > 0:
        raise ValueError("temperature must be > 0.")
    chosen = set(range(n_layers)) if layers is None else {int(l) for l in layers}
    return [float(tau) if l in chosen else 1.0 for l in range(n_layers)]


def temperature_sweep(
    model: HookedModel,
    batch: Batch,
    taus: Sequence[float],
    layers: Iterable[int] | None = None,
    progress: Progress = None,
) -> dict[str, np.ndarray]:
    """The per-layer metrics under attention temperature tau (softmax(QK^T / (sqrt(d) tau))) at `layers`.

    One batched forward per tau. Returns "taus" [K]; batch means "resid_ratio" [K, L+1], "attn_out_ratio" and
    "mlp_out_ratio" [K, L], "rank" [K, L+1], "entropy" [K, L] (mean over heads); "agreement" [K]: share of
    inputs whose predicted class is the one at tau = 1."""
    layers = None if layers is None else list(layers)
    L = model.spec.n_layers
    keys = ("resid_ratio", "attn_out_ratio", "mlp_out_ratio", "rank", "entropy")
    out: dict[str, list] = {k: [] for k in keys}
    preds = []
    for i, tau in enumerate(taus):
        m = spectral_metrics(model, batch, temperature=temperatures(tau, layers, L), attention=False, fourier=False)
        for k in keys:
            v = m[k].mean(1)
            out[k].append(v.mean(-1) if v.ndim == 2 else v)
        preds.append(m["logits"].argmax(-1))
        if progress:
            progress((i + 1) / len(taus), f"tau = {tau:g}")
    base = (
        preds[list(taus).index(1.0)] if 1.0 in taus else model.run(batch, capture=False).logits.argmax(-1).cpu().numpy()
    )
    out["agreement"] = [float((p == base).mean()) for p in preds]
    return {"taus": np.asarray(taus, dtype=float), **{k: np.asarray(v) for k, v in out.items()}}


def length_collapse(
    model: HookedModel,
    texts: Sequence[str],
    lengths: Sequence[int],
    taus: Sequence[float],
    n_windows: int = 8,
    layers: Iterable[int] | None = None,
    progress: Progress = None,
) -> pd.DataFrame:
    """Mean pairwise cosine similarity of sentence embeddings vs input length (Zhou et al. 2024).

    The texts are joined into one stream of words and cut into up to n_windows consecutive windows of n
    words for every n in `lengths`; the windows of one length go through the model as one batch per tau,
    are pooled as the model pools and compared (all pairs of distinct windows).
    Returns a DataFrame with columns tau, words, tokens (mean real tokens), n_texts, mean_cos."""
    if not isinstance(model, TextModel):
        raise ValueError("length collapse needs a text model.")
    words = " ".join(texts).split()
    groups = [(n, min(n_windows, len(words) // n)) for n in sorted({int(n) for n in lengths if int(n) > 0})]
    groups = [(n, k) for n, k in groups if k >= 2]
    if not groups:
        raise ValueError(f"the texts have {len(words)} words: too few for two windows of any length asked for.")
    batches = [model.prepare([" ".join(words[i * n : (i + 1) * n]) for i in range(k)]) for n, k in groups]
    layers = None if layers is None else list(layers)
    L = model.spec.n_layers
    rows = []
    for i, tau in enumerate(taus):
        for (n, k), batch in zip(groups, batches):  # one batch per length: short windows are not padded to long
            mask = batch.token_mask.to(model.device)
            hidden = model.run(batch, capture=False, temperature=temperatures(tau, layers, L)).hidden
            assert hidden is not None  # a full run keeps the last hidden state
            e = F.normalize(model.pool(hidden, mask), dim=-1)  # [k, D]
            sim = (e @ e.T).sum() - e.pow(2).sum()  # all pairs without self-pairs
            rows.append(
                {
                    "tau": float(tau),
                    "words": n,
                    "tokens": float(mask.float().sum(-1).mean()),
                    "n_texts": k,
                    "mean_cos": float(sim / (k * (k - 1))),
                }
            )
        if progress:
            progress((i + 1) / len(taus), f"tau = {tau:g}")
    return pd.DataFrame(rows)


# -- activation functions ---------------------------------------------------------------------------
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"ReLU": F.relu, "GELU": F.gelu, "SiLU": F.silu}


def analytic_harmonics(name: str, amplitude: float, n_harmonics: int) -> np.ndarray:
    """Known one-sided amplitudes of act(A cos) at DC and harmonics 1..n_harmonics ([n_harmonics + 1], NaN
    where unknown). ReLU: DC = A/pi, 1st = A/2, even n: 2A / (pi (n^2 - 1)), odd n >= 3: 0.
    GELU and SiLU (x/2 + an even function): 1st = A/2, odd n >= 3: 0."""
    a = float(amplitude)
    n = np.arange(n_harmonics + 1)
    out = np.full(n_harmonics + 1, np.nan)
    if name in ("ReLU", "GELU", "SiLU"):
        out[1] = a / 2
        out[(n >= 3) & (n % 2 == 1)] = 0.0
    if name == "ReLU":
        out[0] = a / math.pi
        even = (n >= 2) & (n % 2 == 0)
        out[even] = 2 * a / (math.pi * (n[even] ** 2 - 1))
    return out


def activation_response(
    fn: str | Callable,
    amplitude: float = 1.0,
    freqs: float | Sequence[float] = 8.0,
    fs: float = 1024.0,
    n: int = 1024,
    n_harmonics: int = 8,
) -> dict:
    """One-sided spectrum of act(x) for x(t) = A sum_i cos(2 pi f_i t), t = 0, 1/fs, ..., (n-1)/fs.

    fn: "ReLU", "GELU", "SiLU" or a callable on a float tensor (e.g. `model_activation(model)`); every tone
    must sit on a DFT bin (f n / fs an integer) below the Nyquist frequency fs/2. Returns "t", "x", "y" [n];
    "freq", "spectrum" [n//2+1] (2/n |FFT|, 1/n at DC and Nyquist); "harmonics": a DataFrame (harmonic,
    frequency, measured, analytic) at DC and the harmonics of the lowest tone below Nyquist (analytic
    values for the named functions with a single tone, else NaN)."""
    tones = np.atleast_1d(np.asarray(freqs, dtype=float))
    if tones.size == 0 or n < 4 or fs <= 0:
        raise ValueError("give at least one tone, n >= 4 samples and fs > 0.")
    bins = tones * n / fs
    if np.any(tones <= 0) or np.any(tones >= fs / 2):
        raise ValueError(f"tone frequencies must be between 0 and the Nyquist frequency {fs / 2:g} (exclusive).")
    if not np.allclose(bins, np.round(bins), atol=1e-9):
        raise ValueError(f"every tone must be a multiple of fs / n = {fs / n:g} so that it sits on a DFT bin.")
    name = fn if isinstance(fn, str) else None
    if isinstance(fn, str):
        if fn not in ACTIVATIONS:
            raise ValueError(f"unknown activation {fn!r}; choose from {list(ACTIVATIONS)} or pass a callable.")
        func = ACTIVATIONS[fn]
    else:
        func = fn
    t = torch.arange(n, dtype=torch.float64) / fs
    x = float(amplitude) * torch.cos(2 * math.pi * torch.as_tensor(tones)[:, None] * t).sum(0)
    with torch.no_grad():
        y = func(x if name else x.float()).double().cpu()
    spec = torch.fft.rfft(y).abs() / n
    spec[1:] *= 2
    if n % 2 == 0:
        spec[-1] /= 2
    f0 = int(round(bins.min()))
    k = np.arange(n_harmonics + 1)
    k = k[k * f0 <= n // 2]
    analytic = (
        analytic_harmonics(name, amplitude, n_harmonics)[k] if name and tones.size == 1 else np.full(len(k), np.nan)
    )
    harmonics = pd.DataFrame(
        {"harmonic": k, "frequency": k * f0 * fs / n, "measured": spec.numpy()[k * f0], "analytic": analytic}
    )
    return {
        "t": t.numpy(),
        "x": x.numpy(),
        "y": y.numpy(),
        "freq": np.fft.rfftfreq(n, 1 / fs),
        "spectrum": spec.numpy(),
        "harmonics": harmonics,
    }


def model_activation(model: HookedModel, layer: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's own MLP activation function of block `layer` as a callable on float tensors."""
    act = model.blocks[layer].act

    def run(x: torch.Tensor) -> torch.Tensor:
        with model.lock, torch.no_grad():  # an LRP pass of another session may have rules on this module
            return act(x.to(model.device, torch.float32))

    return run


MLP_POINTS = ("hook_pre", "hook_post")  # the MLP activation's input and output


def mlp_activation_spectrum(model: HookedModel, batch: Batch) -> dict[str, np.ndarray]:
    """Spectrum along the token axis of each block's MLP activation input vs output.

    Tokens are the patches (image models, row-major) or the real tokens (text; padding zeroed). Returns
    "freq" [K] (normalised, 1 = pi), "input" and "output" [L, K]: one-sided amplitude 2/T |FFT| over tokens
    averaged over inputs and channels, and "input_ratio" / "output_ratio" [L]: HC/DC of the activation's
    input and output (the nonlinearity moves energy into DC)."""
    L = model.spec.n_layers
    acts: dict[str, torch.Tensor] = {}  # mlp.hook_pre / hook_post: the activation's input / output [B, T', F]
    model.run(batch, capture=False, hooks=[(f"blocks.{l}.mlp.{p}", keep(acts)) for l in range(L) for p in MLP_POINTS])
    mask = batch.token_mask.to(model.device)
    if model.spec.grid is not None:
        mask = mask[:, model.spec.n_prefix :]
    out: dict[str, torch.Tensor] = {}
    for side, point in zip(("input", "output"), MLP_POINTS):
        x = torch.stack([acts[f"blocks.{l}.mlp.{point}"][:, -mask.shape[1] :] for l in range(L)]).float()
        x = x * mask[..., None]
        T = x.shape[-2]
        spec = torch.fft.rfft(x, dim=-2).abs() * (2.0 / T)
        spec[..., 0, :] /= 2
        out[side] = spec.mean((1, 3))
        out[f"{side}_ratio"] = dc_hc(x, mask)["ratio"].mean(1)
    T = mask.shape[1]
    return {"freq": np.arange(T // 2 + 1) * 2.0 / T, **{k: v.cpu().numpy() for k, v in out.items()}}
