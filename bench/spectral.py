"""Spectral view speed: every per-layer spectral metric for 256 digits images in one batched pass vs a
per-image loop (same function, one image at a time), with a check that both give the same numbers; then the
exact composite-norm rank collapse (analysis.l1inf) on the residual states of a few inputs: seconds per state and
how far the token mean is from the exact minimum.

    python bench/spectral.py [--n 256] [--threads 1] [--exact 4] [--exact-model digits-vit|minilm]

Last line: `batched vs loop: X.Xx`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.spectral import l1inf_norm, rank_collapse, spectral_metrics  # noqa: E402
from bench.timing import best_time  # noqa: E402
from data import load_dataset  # noqa: E402
from models import default_device, load_model  # noqa: E402

# per-input metrics and the axis that indexes the input
PER_INPUT = {
    "resid_ratio": 1,
    "attn_out_ratio": 1,
    "mlp_out_ratio": 1,
    "resid_share": 1,
    "rank": 1,
    "entropy": 1,
    "gain": 1,
    "stable_rank": 1,
    "effective_rank": 1,
    "hf_gain": 1,
    "singular": 1,
    "response_2d": 1,
    "profile": 1,
    "variance": 1,
    "logits": 0,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--exact", type=int, default=4, help="inputs for the exact composite-norm rank collapse")
    ap.add_argument("--exact-model", default="digits-vit", choices=["digits-vit", "minilm"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = default_device()
    model = load_model("digits-vit", device=device)
    ds = load_dataset("digits", "test")
    images = (ds.inputs * (args.n // len(ds.inputs) + 1))[: args.n]
    batch = model.prepare(images)
    spectral_metrics(model, batch.select(range(4)))  # warm-up

    t_batch, batched = best_time(lambda: spectral_metrics(model, batch), repeats=2)

    def loop():
        parts = [spectral_metrics(model, batch.select([i])) for i in range(len(batch))]
        return {k: np.concatenate([p[k] for p in parts], axis=ax) for k, ax in PER_INPUT.items()}

    t_loop, looped = best_time(loop)
    worst = max(float(np.max(np.abs(batched[k] - looped[k]) / (np.abs(looped[k]).max() + 1e-12))) for k in PER_INPUT)
    same = all(
        np.allclose(batched[k], looped[k], rtol=1e-3, atol=1e-4 * (np.abs(looped[k]).max() + 1e-12)) for k in PER_INPUT
    )
    L = model.spec.n_layers
    print(f"device: {device}  images: {len(batch)}  threads: {args.threads}  model: digits-vit ({L} layers)")
    print(
        f"metrics: HC/DC of 3 streams, rank collapse, attention entropy, gain/ranks of {L * model.spec.n_heads} "
        f"heads, 2-D responses, Fourier profile + variance of {len(batched['state_labels'])} sublayer states"
    )
    fmt = lambda v: " ".join(f"{x:.3f}" for x in v)  # noqa: E731
    print(f"HC/DC residual per layer (mean): {fmt(batched['resid_ratio'].mean(1))}")
    print(f"rank-collapse ratio per layer (mean): {fmt(batched['rank'].mean(1))}")
    print(f"high-frequency end point per sublayer state (mean): {fmt(batched['profile'].mean(1)[:, -1])}")
    print(f"batched: {t_batch:.3f} s ({1e3 * t_batch / len(batch):.2f} ms/image)")
    print(f"loop:    {t_loop:.3f} s ({1e3 * t_loop / len(batch):.2f} ms/image)")
    print(f"same numbers: {same} (largest difference relative to the metric's scale: {worst:.2e})")
    exact_rank_collapse(args.exact_model, args.exact, device)
    print(f"batched vs loop: {t_loop / t_batch:.1f}x")


def exact_rank_collapse(name: str, n: int, device: str) -> None:
    """Time the exact composite-norm rank collapse per residual state of n inputs; compare the token mean."""
    model = load_model(name, device=device)
    ds = load_dataset("digits" if name == "digits-vit" else "prose")
    tr = model.run(model.prepare(ds.sample(n).inputs), capture=True)
    t, exact = best_time(lambda: rank_collapse(tr, norm="l1inf"), repeats=1)
    x = tr.resid.float() * tr.token_mask[..., None]
    mean = x.sum(-2, keepdim=True) / tr.token_mask.sum(-1)[..., None, None]
    at_mean = l1inf_norm((x - mean) * tr.token_mask[..., None]) / l1inf_norm(x)
    over = (at_mean / exact).flatten()
    print(
        f"exact composite-norm rank collapse, {name}: {exact.numel()} states ({int(tr.token_mask.sum(-1).max())} "
        f"tokens x {x.shape[-1]}) in {t:.1f} s = {t / exact.numel():.2f} s per state; the token mean gives "
        f"{over.min():.2f}x to {over.max():.2f}x the exact value (mean {over.mean():.2f}x)"
    )


if __name__ == "__main__":
    main()
