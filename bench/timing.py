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


def vit_b():
    """A ViT-B/16-sized image classifier (12 x 12 heads, 224x224, 1000 classes) with random weights, loaded
    through models.load_model from a temporary save_pretrained folder."""
    import tempfile

    from transformers import ViTConfig, ViTForImageClassification

    from models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        ViTForImageClassification(
            ViTConfig(
                hidden_size=768,
                num_hidden_layers=12,
                num_attention_heads=12,
                intermediate_size=3072,
                image_size=224,
                patch_size=16,
                num_labels=1000,
            )
        ).save_pretrained(tmp)
        return load_model(tmp)
