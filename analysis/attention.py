"""Attention-head analyses on captured attention probabilities (methods.md section 1).

Shapes: attention [L, B, H, T, T] (rows = queries) or one layer [B, H, T, T]; head-level results [L, H].
"""
from __future__ import annotations

import torch


def rollout(attn: torch.Tensor, add_residual: bool = True) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): A~_l = rownorm(mean_h A[l] + I), R = A~_L ... A~_1.

    attn [L, B, H, T, T] -> R [B, T, T]; the map for the CLS token is R[:, 0, 1:]. Rows of R sum to 1."""
    a = attn.float().mean(2)  # [L, B, T, T]
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    if add_residual:
        a = a + eye
    a = a / a.sum(-1, keepdim=True)
    r = eye.expand_as(a[0]).clone()
    for layer in a:
        r = layer @ r
    return r
