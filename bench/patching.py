"""Activation-patching speed: every head, every block's attention and MLP output and the residual stream at every
layer x token patched for a batch of (clean, corrupted) pairs, the fast path (heads resumed inside their block from
the kept forward, sublayers and residual positions resumed at their block, the settings of a layer batched through
the batch dimension, the last block computed at the readout tokens only) vs the naive loop (one full forward per
patched component), with a check that both give the same numbers. One pair by default: what the view patches.

    python bench/patching.py [--pairs 1] [--model digits-vit] [--threads 1] [--repeats 2]

Last line: `patching speedup: N.Nx` (naive loop time / fast path time).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from analysis.circuits import PATCHED, patch_effects, patch_naive  # noqa: E402
from bench.timing import best_time  # noqa: E402
from data import load_dataset  # noqa: E402
from models import BUILTINS, default_device, load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1, help="(clean, corrupted) pairs patched together")
    ap.add_argument("--model", default="digits-vit")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = default_device()
    model = load_model(args.model, device=device)
    spec = model.spec
    ds = load_dataset(BUILTINS[args.model].dataset if args.model in BUILTINS else "digits", "test")
    n = args.pairs
    clean, corrupted = model.prepare(ds.inputs[:n]), model.prepare(ds.inputs[n : 2 * n])
    if not torch.equal(clean.token_mask, corrupted.token_mask):
        raise SystemExit("bench/patching.py needs an image model (pairs of equal token counts).")
    L, H, T = spec.n_layers, spec.n_heads, clean.token_mask.shape[1]
    model.run(clean, capture=False)  # warm-up
    print(f"{spec.name} on {device} ({L} layers x {H} heads, {T} tokens), {n} pairs, {args.threads} thread(s)")
    t_fwd, _ = best_time(lambda: model.run(corrupted, capture=False), args.repeats)
    t_naive, naive = best_time(lambda: patch_naive(model, clean, corrupted), args.repeats)
    t_fast, fast = best_time(lambda: patch_effects(model, clean, corrupted), args.repeats)
    diff = max(float((fast[k] - naive[k]).abs().max()) for k in PATCHED)
    components = L * H + 2 * L + L * T
    print(f"one forward ({n} inputs): {t_fwd * 1e3:.1f} ms")
    print(f"naive loop ({components} full forwards): {t_naive * 1e3:.1f} ms = {t_naive / t_fwd:.1f} forwards")
    print(f"fast path: {t_fast * 1e3:.1f} ms = {t_fast / t_fwd:.1f} forwards")
    print(f"largest |fast - naive| over {', '.join(PATCHED)}: {diff:.2e}")
    print(f"patching speedup: {t_naive / t_fast:.1f}x")


if __name__ == "__main__":
    main()
