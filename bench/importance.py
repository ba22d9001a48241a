"""Head-importance speed: exhaustive single-head ablation over 256 digits images, the fast path (residual
stream reused below the ablated layer, the ablated block resumed after its attention, the last block
computed at the CLS token only, the settings of a layer batched through the batch dimension) vs the naive
loop (one full forward per zeroed head), with a check that both give the same numbers; and the gradient
importance (one forward + one backward over the sample) in forward-equivalents.

    python bench/importance.py [--n 256] [--model digits-vit] [--threads 1] [--repeats 2]

Last line: `ablation speedup: X.Xx` (naive loop time / fast path time).
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

from analysis.importance import LABEL_METRICS, ablation_naive, ablation_per_sample, as_sample, gradient_per_sample  # noqa: E402
from bench.timing import best_time  # noqa: E402
from data import load_dataset  # noqa: E402
from models import BUILTINS, default_device, load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--model", default="digits-vit")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-rows", type=int, default=None, help="rows per batched forward (default: by device)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = default_device()
    model = load_model(args.model, device=device)
    spec = model.spec
    ds = load_dataset(BUILTINS[args.model].dataset if args.model in BUILTINS else "digits", "test")
    sample = as_sample(model, ds.subset(range(min(args.n, len(ds)))))
    L, H, N = spec.n_layers, spec.n_heads, len(sample)
    model.run(sample.batch.select(range(min(8, N))), capture=False)  # warm-up
    print(
        f"{spec.name} on {device} ({L} layers x {H} heads), {N} inputs, {args.threads} thread(s), "
        f"max rows per forward {args.max_rows or 'default'}"
    )

    t_fwd, _ = best_time(lambda: model.run(sample.batch, capture=False), args.repeats)
    t_naive, naive = best_time(lambda: ablation_naive(model, sample), args.repeats)
    t_fast, fast = best_time(lambda: ablation_per_sample(model, sample, max_rows=args.max_rows), args.repeats)
    t_grad, _ = best_time(lambda: gradient_per_sample(model, sample), args.repeats)
    diff = max(float(np.abs(fast[m] - naive[m]).max()) for m in LABEL_METRICS)

    for m in LABEL_METRICS:
        top = np.unravel_index(np.argmax(fast[m].mean(-1)), (L, H))
        print(f"  {m:10s} most important head: layer {top[0]} head {top[1]} ({fast[m].mean(-1)[top]:+.4f})")
    print(f"one forward ({N} inputs):           {t_fwd * 1e3:9.1f} ms")
    print(f"ablation, naive loop ({L * H + 1} forwards): {t_naive * 1e3:9.1f} ms  = {t_naive / t_fwd:5.1f} forwards")
    print(f"ablation, fast path:                {t_fast * 1e3:9.1f} ms  = {t_fast / t_fwd:5.1f} forwards")
    print(f"largest |fast - naive| over {', '.join(LABEL_METRICS)}: {diff:.2e}")
    print(
        f"gradient importance (forward + backward): {t_grad * 1e3:9.1f} ms  = {t_grad / t_fwd:.1f} forward-equivalents"
    )
    print(f"ablation speedup: {t_naive / t_fast:.1f}x")


if __name__ == "__main__":
    main()
