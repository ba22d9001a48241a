"""Speed of every relevance method: time per batch of 32 shapes images relative to one forward + backward.

    python bench/relevance.py [--model shapes-vit] [--batch 32] [--repeats 5]

Targets: grad_rollout and attnlrp <= 1.5x, chefer2021 certified <= 1.5x, all batched. captum's path and
sampling methods cost about their number of steps or samples (integrated_gradients: 32 steps, ...).
chefer2021's lines: its certified, float64 (default) and float32 passes against forward+backward, how many
maps of the batch the certified pass recomputed in float64, and how many maps of the float32 and certified
passes are off the float64 map by more than 1% of its maximum. --all: those counts over the whole test set.
Last line: `attnlrp vs forward+backward: X.XXx`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.relevance import METHODS, available_methods, certified_chefer, explain  # noqa: E402
from data import load_dataset  # noqa: E402
from models import load_model  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, base, device: torch.device, repeats: int) -> tuple[float, float]:
    """Best wall times (s) of fn() and of base() over `repeats` interleaved calls after a warm-up of each:
    interleaving and taking the best keeps the ratio honest on a machine shared with other work."""
    fn()
    base()
    t_fn, t_base = [], []
    for _ in range(repeats):
        for f, out in ((base, t_base), (fn, t_fn)):
            _sync(device)
            t = time.perf_counter()
            f()
            _sync(device)
            out.append(time.perf_counter() - t)
    return min(t_fn), min(t_base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shapes-vit")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument(
        "--all", action="store_true", help="count chefer2021's wrong and refined maps on the whole test set"
    )
    args = ap.parse_args()
    model = load_model(args.model)
    ds = load_dataset(model.spec.dataset, "test")
    batch = model.prepare(ds.inputs[: args.batch]).to(model.device)

    def forward_backward():  # the gradient of the predicted logit with respect to the input (no weight grads)
        pixels = batch.tensors["pixel_values"].detach().requires_grad_(True)
        logits = model.run(type(batch)({"pixel_values": pixels}, batch.token_mask), capture=False, grad=True).logits
        torch.autograd.grad(logits.gather(1, logits.argmax(-1, keepdim=True)).sum(), pixels)

    print(
        f"{args.model} on {model.device.type}, batch of {len(batch)}; each method timed against one "
        "forward+backward run between its own calls"
    )
    print(f"{'method':<22}{'ms / batch':>12}{'fwd+bwd ms':>12}{'x fwd+bwd':>12}")
    ratios = {}
    for name in available_methods(model):
        t, base = timed(lambda name=name: explain(model, batch, name), forward_backward, model.device, args.repeats)
        ratios[name] = t / base
        print(f"{name:<22}{1000 * t:>12.1f}{1000 * base:>12.1f}{ratios[name]:>11.2f}x   {METHODS[name].family}")
    precisions = ("certified", "float64", "float32")
    for p in precisions:
        t, base = timed(
            lambda p=p: explain(model, batch, "chefer2021", precision=p), forward_backward, model.device, args.repeats
        )
        ratios[p] = t / base
    each = " / ".join(f"{ratios[p]:.2f}x" for p in precisions)
    print(f"chefer2021 {' / '.join(precisions)} vs forward+backward: {each}")
    inputs = ds.inputs if args.all else ds.inputs[: args.batch]
    counts = np.zeros(3, dtype=int)  # float32 maps off, certified maps off, refined
    for i in range(0, len(inputs), args.batch):
        part = model.prepare(list(inputs[i : i + args.batch])).to(model.device)
        certified, refined = certified_chefer(model, part)
        exact = torch.as_tensor(explain(model, part, "chefer2021", precision="float64")).double()
        single = torch.as_tensor(explain(model, part, "chefer2021", precision="float32")).double()
        scale = 0.01 * exact.abs().amax(1)
        counts += [int(((m - exact).abs().amax(1) > scale).sum()) for m in (single, certified.double())] + [
            int(refined.sum())
        ]
    print(
        f"chefer2021 maps off the float64 map by > 1% of its maximum: float32 {counts[0]}, certified {counts[1]} of "
        f"{len(inputs)}; certified recomputed {counts[2]} of {len(inputs)} in float64"
    )
    print(f"grad_rollout vs forward+backward: {ratios['grad_rollout']:.2f}x")
    print(f"chefer2021 certified vs forward+backward: {ratios['certified']:.2f}x")
    print(f"attnlrp vs forward+backward: {ratios['attnlrp']:.2f}x")


if __name__ == "__main__":
    main()
