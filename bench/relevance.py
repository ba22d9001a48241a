"""Speed of every relevance method: time per batch of 32 shapes images relative to one forward + backward.

    python -m bench.relevance [--model shapes-vit] [--batch 32] [--repeats 5]

Targets (issue 5): grad_rollout and attnlrp <= 1.5x, chefer2021 <= 3x, all batched. captum's path and
sampling methods cost about their number of steps or samples (integrated_gradients: 32 steps, ...).
Last line: `attnlrp vs forward+backward: X.XXx`.
"""
from __future__ import annotations

import argparse
import time

import torch

from analysis.relevance import METHODS, available_methods, explain
from data import load_dataset
from models import load_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int) -> float:
    """Best wall time of fn() in seconds over `repeats` calls after one warm-up (the least disturbed by
    other work on a shared machine)."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shapes-vit")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    model = load_model(args.model)
    ds = load_dataset(model.spec.dataset, "test")
    batch = model.prepare(ds.inputs[:args.batch]).to(model.device)

    def forward_backward():
        logits = model.run(batch, capture=False, grad=True).logits
        logits.gather(1, logits.argmax(-1, keepdim=True)).sum().backward()

    base = timed(forward_backward, model.device, args.repeats)
    print(f"{args.model} on {model.device.type}, batch of {len(batch)}: forward+backward {1000 * base:.1f} ms")
    print(f"{'method':<22}{'ms / batch':>12}{'x fwd+bwd':>12}")
    ratios = {}
    for name in available_methods(model):
        t = timed(lambda: explain(model, batch, name), model.device, args.repeats)
        ratios[name] = t / base
        print(f"{name:<22}{1000 * t:>12.1f}{ratios[name]:>11.2f}x   {METHODS[name].family}")
    print(f"grad_rollout vs forward+backward: {ratios['grad_rollout']:.2f}x")
    print(f"chefer2021 vs forward+backward: {ratios['chefer2021']:.2f}x")
    print(f"attnlrp vs forward+backward: {ratios['attnlrp']:.2f}x")


if __name__ == "__main__":
    main()
