"""Helpers shared by the benchmarks: wall-clock timing (GPU-synchronised when there is one) and a
ViT-B/16-sized model with random weights (the real cost of google/vit-base-patch16-224, no download)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_time(fn: Callable, repeats: int = 1) -> tuple[float, object]:
    """The best wall time in seconds of `repeats` calls of fn(), and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def save_vit_b(folder: str) -> None:
    """Save a ViT-B/16-sized image classifier (12 x 12 heads, 224x224, 1000 classes) with random weights to
    `folder` (save_pretrained)."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        image_size=224,
        patch_size=16,
        num_labels=1000,
    )
    ViTForImageClassification(config).save_pretrained(folder)


def vit_b():
    """The ViT-B/16-sized model of `save_vit_b`, loaded through models.load_model from a temporary folder."""
    import tempfile

    from models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        save_vit_b(tmp)
        return load_model(tmp)
