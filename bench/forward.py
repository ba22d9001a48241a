"""Cost of capturing everything: `m.run(capture=True)` vs a plain forward of the same network.

    python bench/forward.py            # digits-vit batch 64, minilm batch 8 x 128 tokens

Plain forward = the Hugging Face module's own forward (no hooks, no captured tensors, eager attention).
Last line: `capture overhead: X.XXx` (the worse of the two models; target <= 1.3x).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from data import load_dataset  # noqa: E402
from models import load_model  # noqa: E402


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def measure(name: str, batch, model, repeats: int = 21) -> float:
    """Median times of the plain and the captured forward, measured alternately so that load from other
    processes hits both alike; returns the median of the per-pair ratios."""
    tensors = {k: v.to(model.device) for k, v in batch.tensors.items()}

    def plain():
        with torch.no_grad():
            model.net(**tensors)

    def captured():
        model.run(batch, capture=True)

    for _ in range(2):
        plain(), captured()
    pairs = [(timed(plain), timed(captured)) for _ in range(repeats)]
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    t_plain, t_capture = med([p for p, _ in pairs]), med([c for _, c in pairs])
    ratio = med([c / p for p, c in pairs])
    print(
        f"{name:<28} plain {t_plain * 1e3:8.2f} ms   run(capture=True) {t_capture * 1e3:8.2f} ms   ratio {ratio:.2f}x"
    )
    return ratio


def main() -> None:
    print(
        f"torch {torch.__version__}, device {'cuda' if torch.cuda.is_available() else 'cpu'}, "
        f"threads {torch.get_num_threads()}"
    )
    vit = load_model("digits-vit")
    r_vit = measure("digits-vit, batch 64", vit.prepare(load_dataset("digits", "test").inputs[:64]), vit)
    text = load_model("minilm")
    prose = " ".join(load_dataset("prose", "test").inputs)
    ids = text.tokenizer(prose, add_special_tokens=False)["input_ids"]
    texts = [text.tokenizer.decode(ids[i * 126 : (i + 1) * 126]) for i in range(8)]
    batch = text.prepare(texts)
    print(f"minilm tokens per text: {batch.token_mask.sum(1).tolist()}")
    r_text = measure("minilm, batch 8 x ~128 tok", batch, text)
    print(f"capture overhead: {max(r_vit, r_text):.2f}x")


if __name__ == "__main__":
    main()
