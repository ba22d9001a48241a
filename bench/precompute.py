"""Runs: what the store costs on top of the analyses, and how fast a view reads a big stored run.

    python bench/precompute.py [--n 360] [--batch-size 32] [--vit-b] [--vit-b-n 16]

1. digits-vit on n digits: head importance and AttnLRP relevance, once through `runs.jobs.run_job` (chunks
   written, checksummed, concatenated, tables) and once by calling the analysis functions directly on the
   same inputs and batches; inputs/s of both and the ratio. With --vit-b the same for a ViT-B/16-sized model
   with random weights (real cost) on --vit-b-n synthetic 224x224 images.
2. A synthetic finished importance run of 10,000 inputs of a 12 x 12-head model: the time
   the Head importance view takes to read it (the arrays into memory, then analysis.units.importance.as_scores).
Last line: `store overhead: X.XXx` (the larger of the ratios; target < 1.10x). Target for 2.: < 1 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.importance import available_metrics, head_scores, make_sample  # noqa: E402
from analysis.relevance import explain  # noqa: E402
from analysis.units.importance import as_scores  # noqa: E402
from bench.timing import vit_b  # noqa: E402
from data import Dataset, load_dataset  # noqa: E402
from models import load_model  # noqa: E402
from runs import Manifest, Store  # noqa: E402
from runs.jobs import run_job  # noqa: E402
from runs.plan import manifest_for  # noqa: E402

OPTIONS = {"importance": {}, "relevance": {"methods": ("attnlrp",)}}  # each analysis's unit options


def direct(model, ds: Dataset, analysis: str, batch_size: int) -> None:
    """The analysis functions alone on the same inputs and batches as the run."""
    if analysis == "importance":
        sample = make_sample(model, ds.inputs, ds.labels, ds.class_names)
        head_scores(model, sample, available_metrics(model), batch_size=batch_size)
        return
    for i in range(0, len(ds), batch_size):
        batch = model.prepare(list(ds.inputs[i : i + batch_size]))
        with torch.no_grad():
            pred = model.run(batch, capture=False).logits.argmax(-1)
        explain(model, batch, "attnlrp", target=pred)


def compare(name: str, model, ds: Dataset, batch_size: int) -> float:
    worst = 0.0
    for analysis in ("importance", "relevance"):
        with tempfile.TemporaryDirectory() as tmp:
            m = manifest_for(model, name, ds, analysis, None, **OPTIONS[analysis], batch_size=batch_size)
            direct(model, ds.subset(range(min(len(ds), batch_size))), analysis, batch_size)  # warm up
            t0 = time.perf_counter()
            direct(model, ds, analysis, batch_size)
            t_direct = time.perf_counter() - t0
            t0 = time.perf_counter()
            run_job(model, ds, m, Store(tmp))
            t_store = time.perf_counter() - t0
        ratio = t_store / t_direct
        worst = max(worst, ratio)
        label = "head importance" if analysis == "importance" else "AttnLRP relevance"
        print(
            f"{name:<12} {label:<18} direct {len(ds) / t_direct:8.3g} inputs/s   run into the store "
            f"{len(ds) / t_store:8.3g} inputs/s   ratio {ratio:.3f}x"
        )
    return worst


def read_big_run(n: int = 10_000, L: int = 12, H: int = 12) -> float:
    """Seconds to read a synthetic finished importance run of n inputs (L x H heads) as the view does."""
    rng = np.random.default_rng(0)
    metrics = ["accuracy", "loss", "true_prob"]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        m = Manifest(
            key="importance-bench",
            analysis="importance",
            model="vit-b",
            model_fingerprint="x",
            dataset="bench",
            dataset_key="bench",
            split="all",
            params={"metrics": metrics},
            n_inputs=n,
            chunk_size=1000,
        )
        run = store.open_or_create(m)
        for start in m.chunk_starts():
            k = min(m.chunk_size, n - start)
            run.write_chunk(
                start,
                {
                    **{x: rng.random((k, L, H), dtype=np.float32) for x in metrics + ["gradient"]},
                    "row": np.arange(start, start + k),
                    "label": rng.integers(0, 1000, k),
                },
            )
        run.finish()
        t0 = time.perf_counter()
        arrays = {k: np.array(v) for k, v in store.run(m.key).arrays().items()}  # as ui.cache.stored_run reads it
        res = as_scores(arrays, tuple(metrics))
        t = time.perf_counter() - t0
        assert res["scores"]["loss"].shape == (L, H, n)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=360)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--vit-b", action="store_true")
    ap.add_argument("--vit-b-n", type=int, default=16)
    args = ap.parse_args()
    print(
        f"torch {torch.__version__}, device {'cuda' if torch.cuda.is_available() else 'cpu'}, "
        f"threads {torch.get_num_threads()}"
    )
    digits = load_model("digits-vit")
    worst = compare("digits-vit", digits, load_dataset("digits", "test").subset(range(args.n)), args.batch_size)
    if args.vit_b:
        from PIL import Image

        vitb = vit_b()
        rng = np.random.default_rng(0)
        images = [Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)) for _ in range(args.vit_b_n)]
        ds = Dataset(
            "noise", "all", "image", images, np.full(len(images), -1), [], names=[str(i) for i in range(len(images))]
        )
        worst = max(worst, compare("ViT-B/16", vitb, ds, min(args.batch_size, 8)))
    t = read_big_run()
    print(f"read a stored importance run of 10,000 inputs (12 x 12 heads) for the view: {t:.3f} s (target < 1 s)")
    print(f"store overhead: {worst:.2f}x")


if __name__ == "__main__":
    main()
