"""Speed of every relevance method: time per batch of 32 shapes images relative to one forward + backward.

    python bench/relevance.py [--model shapes-vit] [--batch 32] [--repeats 5]

Targets: grad_rollout and attnlrp <= 1.5x, chefer2021 <= 3x in float32, all batched. captum's path and
sampling methods cost about their number of steps or samples (integrated_gradients: 32 steps, ...).
chefer2021 runs in float64 (a float32 pass is off on ~2% of inputs): a line gives the cost of that and
how many maps of the batch a float32 pass gets wrong by more than 1% of their maximum.
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

import torch  # noqa: E402

from analysis.relevance import METHODS, available_methods, explain  # noqa: E402
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
    t64, t32 = timed(
        lambda: explain(model, batch, "chefer2021"),
        lambda: explain(model, batch, "chefer2021", precision="float32"),
        model.device,
        args.repeats,
    )
    exact, single = (
        torch.as_tensor(explain(model, batch, "chefer2021", precision=p)).double() for p in ("float64", "float32")
    )
    off = ((exact - single).abs().amax(1) > 0.01 * exact.abs().amax(1)).sum()
    print(
        f"chefer2021 in float64 vs float32: {t64 / t32:.2f}x ({1000 * t64:.0f} vs {1000 * t32:.0f} ms); float32 "
        f"maps off by > 1% of their maximum: {int(off)} of {len(batch)}"
    )
    print(f"grad_rollout vs forward+backward: {ratios['grad_rollout']:.2f}x")
    print(f"chefer2021 vs forward+backward: {ratios['chefer2021']:.2f}x")
    print(f"attnlrp vs forward+backward: {ratios['attnlrp']:.2f}x")


if __name__ == "__main__":
    main()
