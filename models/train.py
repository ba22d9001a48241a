"""Train a built-in Vision Transformer and save it in Hugging Face format under models/checkpoints/.

    python -m models.train digits-vit        # seeded; about 2 minutes on 2 CPU cores

The result is a plain `ViTForImageClassification` (config.json + model.safetensors +
preprocessor_config.json), so the same adapter serves it and any hub ViT.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from data.shapes import CLASS_NAMES as SHAPE_CLASSES

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"


@dataclass
class Recipe:
    """What to train: data loader [N, C, S, S] floats in [0, 1] + labels, and the ViT size."""

    arrays: Callable[[str], tuple[np.ndarray, np.ndarray]]
    class_names: list[str]
    image_size: int
    patch_size: int
    channels: int
    layers: int = 4
    heads: int = 4
    width: int = 64
    epochs: int = 150
    lr: float = 2e-3
    batch_size: int = 64
    max_shift: int = 2
    dihedral: bool = False  # also random flips and 90-degree turns (for rotation-invariant classes)
    init_std: float = 0.02  # ViTConfig.initializer_range; ~1/sqrt(width) escapes the early plateau sooner
    seed: int = 0


def _digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Digits upsampled from 8x8 to 32x32 (bilinear), one channel: [N, 1, 32, 32]."""
    from data.datasets import digits_arrays

    images, labels = digits_arrays(split)
    x = torch.from_numpy(images)[:, None]
    return F.interpolate(x, size=32, mode="bilinear", align_corners=False).numpy(), labels


def _shapes_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic shapes as RGB floats in [0, 1] [N, 3, 48, 48] (the same uint8 pixels the app sees)."""
    from data.shapes import arrays

    images, labels, _ = arrays(split)
    return (images.astype(np.float32) / 255.0).transpose(0, 3, 1, 2).copy(), labels


RECIPES: dict[str, Recipe] = {
    "digits-vit": Recipe(_digits_arrays, [str(i) for i in range(10)], image_size=32, patch_size=4, channels=1),
    "shapes-vit": Recipe(
        _shapes_arrays,
        list(SHAPE_CLASSES),
        image_size=48,
        patch_size=6,
        channels=3,
        epochs=60,
        lr=1.5e-3,
        batch_size=32,
        max_shift=0,
        dihedral=True,
        init_std=0.1,
    ),
}


def _augment(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to max_shift pixels (zero fill). x: [B, C, S, S]."""
    if max_shift == 0:
        return x
    b, _, s, _ = x.shape
    pad = F.pad(x, (max_shift,) * 4)
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2, b), generator=gen)
    return torch.stack([pad[i, :, dy[i] : dy[i] + s, dx[i] : dx[i] + s] for i in range(b)])


def _dihedral(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image of x [B, C, S, S] under a random one of the 8 flips/quarter turns of the square."""
    for flip in (lambda t: t.transpose(-1, -2), lambda t: t.flip(-1), lambda t: t.flip(-2)):
        on = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(on[:, None, None, None], flip(x), x)
    return x


def train(name: str, out_dir: Path | None = None, log: Callable[[str], None] = print) -> dict:
    """Train recipe `name`, evaluate on its held-out test split and save. Returns the metrics."""
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    r = RECIPES[name]
    torch.manual_seed(r.seed)
    gen = torch.Generator().manual_seed(r.seed)
    x_train, y_train = (torch.from_numpy(a) for a in r.arrays("train"))
    x_test, y_test = (torch.from_numpy(a) for a in r.arrays("test"))
    mean, std = [0.5] * r.channels, [0.5] * r.channels
    norm = lambda x: (x - 0.5) / 0.5  # noqa: E731  matches the saved image processor

    # transformers configs take their fields as **kwargs, which the type checker cannot see
    config = ViTConfig(  # type: ignore[call-arg]
        image_size=r.image_size,
        patch_size=r.patch_size,
        num_channels=r.channels,
        hidden_size=r.width,
        num_hidden_layers=r.layers,
        num_attention_heads=r.heads,
        intermediate_size=4 * r.width,
        initializer_range=r.init_std,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=len(r.class_names),
        id2label=dict(enumerate(r.class_names)),
        label2id={c: i for i, c in enumerate(r.class_names)},
        attn_implementation="eager",
    )
    model = ViTForImageClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.05)
    steps = r.epochs * int(np.ceil(len(x_train) / r.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=r.lr, total_steps=steps, pct_start=0.1)
    t0 = time.time()
    for epoch in range(r.epochs):
        model.train()
        perm = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(perm), r.batch_size):
            idx = perm[i : i + r.batch_size]
            xb = _augment(x_train[idx], r.max_shift, gen)
            xb = norm(_dihedral(xb, gen) if r.dihedral else xb)
            loss = F.cross_entropy(model(pixel_values=xb).logits, y_train[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 10 == 0 or epoch == r.epochs - 1:
            acc = evaluate(model, norm(x_test), y_test)
            log(f"epoch {epoch + 1}/{r.epochs} loss {loss.item():.3f} test acc {acc:.4f} ({time.time() - t0:.0f}s)")
    model.eval()
    metrics = {
        "test_accuracy": evaluate(model, norm(x_test), y_test),
        "train_seconds": round(time.time() - t0, 1),
        "n_train": len(x_train),
        "n_test": len(x_test),
        "seed": r.seed,
    }
    out = out_dir or CHECKPOINTS / name
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    ViTImageProcessor(
        do_resize=True,
        size={"height": r.image_size, "width": r.image_size},
        resample=2,
        do_rescale=True,
        do_normalize=True,
        image_mean=mean,
        image_std=std,
    ).save_pretrained(out)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log(f"saved {out}: {metrics}")
    return metrics


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of `model` on normalised images x [N, C, S, S] with labels y [N]."""
    model.eval()
    pred = torch.cat([model(pixel_values=x[i : i + 256]).logits.argmax(-1) for i in range(0, len(x), 256)])
    return float((pred == y).float().mean())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    train(args.name, args.out)
