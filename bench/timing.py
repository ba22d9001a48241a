"""Wall-clock timing shared by the benchmarks (GPU-synchronised when there is one)."""
from __future__ import annotations

import time
from typing import Callable

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
