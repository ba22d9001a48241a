"""Speed of every relevance method: time per batch of 32 shapes images relative to one forward + backward.

    python bench/relevance.py [--model shapes-vit] [--batch 32] [--repeats 5]

Targets: grad_rollout and attnlrp <= 1.5x, chefer2021 certified <= 1.5x, all batched. captum's path and
sampling methods cost about their number of steps or samples (integrated_gradients: 32 steps, ...).
chefer2021's lines: its certified, float64 (default) and float32 passes against forward+backward, how many
maps of the batch the certified pass recomputed in float64, and how many maps of the float32 and certified
passes are off the float64 map by more than 1% of its maximum, and the same for attnlrp's float32 maps (--all:
over the whole test set; --counts-only: the counts alone, for text models too).
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


def off(maps: torch.Tensor, exact: torch.Tensor) -> int:
    """How many maps [B, T'] are off the exact ones by more than 1% of the exact map's maximum."""
    return int(((maps - exact).abs().amax(1) > 0.01 * exact.abs().amax(1)).sum())


def speed(model, batch, repeats: int) -> dict[str, float]:
    """Print each method's time per batch against one forward + backward; returns name -> ratio (and the three
    chefer2021 precisions)."""

    def forward_backward():  # the gradient of the predicted logit with respect to the input (no weight grads)
        pixels = batch.tensors["pixel_values"].detach().requires_grad_(True)
        logits = model.run(type(batch)({"pixel_values": pixels}, batch.token_mask), capture=False, grad=True).logits
        torch.autograd.grad(logits.gather(1, logits.argmax(-1, keepdim=True)).sum(), pixels)

    print(
        f"{model.spec.name} on {model.device.type}, batch of {len(batch)}; each method timed against one "
        "forward+backward run between its own calls"
    )
    print(f"{'method':<22}{'ms / batch':>12}{'fwd+bwd ms':>12}{'x fwd+bwd':>12}")
    ratios = {}
    for name in available_methods(model):
        t, base = timed(lambda name=name: explain(model, batch, name), forward_backward, model.device, repeats)
        ratios[name] = t / base
        print(f"{name:<22}{1000 * t:>12.1f}{1000 * base:>12.1f}{ratios[name]:>11.2f}x   {METHODS[name].family}")
    precisions = ("certified", "float64", "float32")
    for p in precisions:
        t, base = timed(
            lambda p=p: explain(model, batch, "chefer2021", precision=p), forward_backward, model.device, repeats
        )
        ratios[p] = t / base
    each = " / ".join(f"{ratios[p]:.2f}x" for p in precisions)
    print(f"chefer2021 {' / '.join(precisions)} vs forward+backward: {each}")
    return ratios


def precision_counts(model, inputs, batch_size: int) -> None:
    """Print how many float32 maps (chefer2021 plain and certified, attnlrp) of `inputs` are off the float64 maps
    by more than 1% of their maximum, and how many inputs the certified pass recomputed in float64."""
    counts = np.zeros(4, dtype=int)  # chefer2021 float32 off, certified off, refined; attnlrp float32 off
    for i in range(0, len(inputs), batch_size):
        part = model.prepare(list(inputs[i : i + batch_size])).to(model.device)
        certified, refined = certified_chefer(model, part)
        exact = torch.as_tensor(explain(model, part, "chefer2021", precision="float64")).double()
        single = torch.as_tensor(explain(model, part, "chefer2021", precision="float32")).double()
        lrp, lrp64 = (torch.as_tensor(explain(m, part, "attnlrp")).double() for m in (model, model.float64()))
        counts += [off(single, exact), off(certified.double(), exact), int(refined.sum()), off(lrp, lrp64)]
    n = len(inputs)
    print(
        f"chefer2021 maps off the float64 map by > 1% of its maximum: float32 {counts[0]}, certified {counts[1]} of "
        f"{n}; certified recomputed {counts[2]} of {n} in float64"
    )
    print(f"attnlrp float32 maps off the float64 map by > 1% of its maximum: {counts[3]} of {n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shapes-vit")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--all", action="store_true", help="count the float32 maps off on the whole test set")
    ap.add_argument("--counts-only", action="store_true", help="no timing (text models: minilm on prose)")
    args = ap.parse_args()
    model = load_model(args.model)
    ds = load_dataset(model.spec.dataset, "test")
    inputs = ds.inputs if args.all else ds.inputs[: args.batch]
    if args.counts_only:
        precision_counts(model, inputs, args.batch)
        return
    ratios = speed(model, model.prepare(ds.inputs[: args.batch]).to(model.device), args.repeats)
    precision_counts(model, inputs, args.batch)
    print(f"grad_rollout vs forward+backward: {ratios['grad_rollout']:.2f}x")
    print(f"chefer2021 certified vs forward+backward: {ratios['certified']:.2f}x")
    print(f"attnlrp vs forward+backward: {ratios['attnlrp']:.2f}x")


if __name__ == "__main__":
    main()
