"""Attention view speed: distance + ring strength + entropy for 512 digits images in one batched pass vs a
per-image loop (the same functions, one image at a time), with a check that both give the same numbers.

    python bench/attention.py [--n 512] [--threads N]   (default: torch's thread count, as the app runs)

Both sides run on the same captured attention [L, n, H, T, T]; the forward is timed once for context.
Prints the metric means, both timings, the largest difference (relative above 1, absolute below) and last
the headline `batched vs loop: X.Xx`. The ratio depends on the machine: per-image calls pay the per-op
overhead n times (more so with several threads), the batched pass pays the memory traffic once.
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

from analysis.attention import attention_distance, entropy, ring_strength  # noqa: E402
from bench.timing import best_time  # noqa: E402
from data import load_dataset  # noqa: E402
from models import default_device, load_model  # noqa: E402


def metrics(attn: torch.Tensor, spec) -> dict[str, torch.Tensor]:
    """Distance (patches, pixels, CLS mass), rings and entropy per input: [B, L, H] ([B, L, H, R])."""
    d = attention_distance(attn, spec.grid, spec.n_prefix, spec.patch_size, per_input=True)
    return {
        "distance": d.patches,
        "distance_px": d.pixels,
        "prefix_mass": d.prefix_mass,
        "ring": ring_strength(attn, spec.grid, spec.n_prefix, per_input=True),
        "entropy": entropy(attn, per_input=True),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = default_device()
    model = load_model("digits-vit", device=device)
    spec = model.spec
    images = load_dataset("digits", "all").inputs[: args.n]
    batch = model.prepare(images)
    t_forward, attn = best_time(lambda: model.run(batch).attentions, repeats=1)  # [L, B, H, T, T] on the device
    metrics(attn[:, :2], spec)  # warm-up
    print(f"digits-vit on {device}, {len(images)} images, attention {tuple(attn.shape)}, {args.threads} thread(s)")

    def cat(parts):
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    t_batched, batched = best_time(lambda: metrics(attn, spec), repeats=3)
    t_loop, looped = best_time(
        lambda: cat([metrics(attn[:, i : i + 1], spec) for i in range(attn.shape[1])]), repeats=3
    )
    # float32 numbers: compare to 1e-6 relative to the value (1e-6 absolute below 1)
    diff = max(float(((batched[k] - looped[k]).abs() / looped[k].abs().clamp_min(1.0)).max()) for k in batched)

    for k, v in batched.items():
        print(f"  {k:12s} {tuple(v.shape)}  mean {float(v.float().mean()):.4f}")
    print(f"forward (batched, for context): {t_forward * 1e3:8.1f} ms")
    print(f"distance + rings + entropy:     batched {t_batched * 1e3:8.1f} ms   per-image loop {t_loop * 1e3:8.1f} ms")
    verdict = "OK" if diff <= 1e-6 else "MISMATCH"
    print(f"largest difference batched vs loop: {diff:.2e} ({verdict} at 1e-6, relative above 1)")
    if diff > 1e-6:
        raise SystemExit("batched and looped numbers differ by more than 1e-6")
    print(f"batched vs loop: {t_loop / t_batched:.1f}x")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
