"""Own-data speed and memory: open a folder of 5,000 JPEGs (224x224), then decode + preprocess batches; open a
folder of 50,000 small JPEGs.

    python bench/data.py [--n 5000] [--batch 64] [--dir /tmp/headscope-bench-jpegs] [--vit-b]
                         [--open-n 50000] [--open-dir /tmp/headscope-bench-50k]

1. Writes the folders once (10 or 100 class folders of seeded smooth-noise JPEGs; reused when they exist).
2. `load_dataset(folder)` (names, sizes, image headers; no pixels): wall time, and the growth of the process's
   peak RSS from before the listing until the first batch of `--batch` images is decoded and prepared.
3. Decode + digits-vit preprocessing (`m.prepare`) throughput over 8 batches, against preprocessing the same
   images already decoded in memory, and against the digits-vit forward rate on prepared batches.
   With --vit-b also a ViT-B/16-sized model (random weights): its preprocessing (224x224) and forward rate.
4. `load_dataset` of the `--open-n` folder (64x64 JPEGs: opening reads a header, whatever the image's size).

The listings run on a warm page cache (the files were just written or read); a cold disk adds its read
latency per header. Last lines: `folder open: X.XX s` and `folder open (50,000 files): N.N s`. Targets:
open < 2 s (5,000) and < 7 s (50,000), RSS growth < 300 MB, decode + preprocess >= 2x the digits-vit forward rate.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.timing import best_time, vit_b  # noqa: E402
from data import load_dataset  # noqa: E402
from models import load_model  # noqa: E402

N_BATCHES = 8


def write_folder(root: Path, n: int, size: int = 224, classes: int = 10) -> None:
    """n seeded size x size JPEGs in `classes` class folders (smooth noise, so that they compress like
    photographs)."""
    if root.is_dir() and sum(len(files) for _, _, files in os.walk(root)) == n:
        return
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"class_{i % classes}"
        d.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 255, (14, 14, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(d / f"{i:05d}.jpg", quality=90)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def rate(fn, images: int) -> float:
    """Images per second of fn() over `images` images (best of 2)."""
    t, _ = best_time(fn, repeats=2)
    return images / t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "headscope-bench-jpegs"))
    ap.add_argument("--vit-b", action="store_true", help="also a ViT-B/16-sized model (random weights, real cost)")
    ap.add_argument("--open-n", type=int, default=50_000, help="files of the large folder that is only opened")
    ap.add_argument("--open-dir", default=str(Path(tempfile.gettempdir()) / "headscope-bench-50k"))
    args = ap.parse_args()
    root = Path(args.dir)
    write_folder(root, args.n)
    model = load_model("digits-vit")
    print(
        f"torch {torch.__version__}, device {model.device.type}, threads {torch.get_num_threads()}; "
        f"{args.n} JPEGs in {root}"
    )

    before = peak_rss_mb()
    t0 = time.perf_counter()
    ds = load_dataset(str(root))
    t_open = time.perf_counter() - t0
    first = model.prepare(list(ds.sample(args.batch).inputs))
    grown = peak_rss_mb() - before
    print(
        f"listing: {len(ds)} images, {len(ds.class_names)} classes, {len(ds.problems)} skipped, {t_open:.2f} s "
        f"({len(ds) / t_open:,.0f} files/s)"
    )
    print(f"peak RSS growth until the first batch of {args.batch} is prepared: {grown:.0f} MB")

    rows = ds.sample_rows(args.batch * N_BATCHES)
    batches = [rows[i : i + args.batch] for i in range(0, len(rows), args.batch)]
    decoded = [[ds.inputs[int(i)] for i in b] for b in batches]
    n_img = len(rows)
    r_decode = rate(lambda: [model.prepare(list(ds.inputs[b])) for b in batches], n_img)
    r_memory = rate(lambda: [model.prepare(imgs) for imgs in decoded], n_img)
    prepared = [model.prepare(imgs) for imgs in decoded]
    with torch.no_grad():
        r_forward = rate(lambda: [model.run(p, capture=False) for p in prepared], n_img)
    print(
        f"digits-vit: decode + prepare {r_decode:,.0f} images/s, prepare from memory {r_memory:,.0f} images/s, "
        f"forward {r_forward:,.0f} images/s (batch {args.batch}; first batch {tuple(first.images.shape)})"
    )
    print(f"decode + prepare vs digits-vit forward: {r_decode / r_forward:.1f}x (target >= 2x)")

    if args.vit_b:
        vitb = vit_b()
        small = batches[0][:16]
        r_b_decode = rate(lambda: vitb.prepare(list(ds.inputs[small])), len(small))
        p = vitb.prepare(list(ds.inputs[small]))
        with torch.no_grad():
            r_b_forward = rate(lambda: vitb.run(p, capture=False), len(small))
        print(
            f"ViT-B/16 (224x224): decode + prepare {r_b_decode:,.0f} images/s, forward {r_b_forward:,.1f} images/s "
            f"(batch {len(small)}): {r_b_decode / r_b_forward:.0f}x"
        )
    large = Path(args.open_dir)
    write_folder(large, args.open_n, size=64, classes=100)
    load_dataset(str(large))  # the page cache warm, as for the folder above
    t0 = time.perf_counter()
    opened = load_dataset(str(large))
    t_large = time.perf_counter() - t0
    print(f"folder open: {t_open:.2f} s")
    print(f"folder open ({len(opened):,} files): {t_large:.1f} s")


if __name__ == "__main__":
    main()
