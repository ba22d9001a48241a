"""Scale out: the same precompute job in one process (1 torch thread) and on Ray (2 single-thread CPU workers).

    python bench/scale.py [--n 640] [--batch-size 32] [--workers 2] [--dir /tmp/headscope-bench-shapes]

The job: shapes-vit head importance and AttnLRP relevance over a generated folder of n shapes images (PNG in
class folders, written once; data.shapes.generate). Both paths go through runs.jobs.run_job into a fresh
store, with the model loaded beforehand, so the timed part is the computing and storing of every chunk.
Ray: a local instance with `--workers` CPUs; the workers are started (model and dataset loaded) before the
timed part, and that start-up is reported on its own (a fixed cost per job, not per input).

Every image is decoded once before timing (a warm page cache for all paths). Reported: inputs/s of each path,
Ray's start-up seconds, the end-to-end times with start-up, and Ray's per-shard overhead: (Ray wall with one
worker - single wall) / shards, what shipping a shard and its result costs. Both results are checked to be
bit-for-bit equal.
Last line: `ray speedup (2 workers): X.XXx` (single wall / Ray wall of the timed part; target >= 1.6x on
this 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from data import load_dataset  # noqa: E402
from data.shapes import CLASS_NAMES, generate  # noqa: E402
from models import load_model, model_fingerprint  # noqa: E402
from runs import Store  # noqa: E402
from runs.jobs import run_job  # noqa: E402
from runs.plan import manifest_for  # noqa: E402

ANALYSES = ("importance", "relevance")
METHODS = ("attnlrp",)
OPTIONS = {"importance": {}, "relevance": {"methods": METHODS}}  # each analysis's unit options


def write_folder(root: Path, n: int) -> None:
    """n seeded shapes images as root/<class>/<i>.png (kept when the folder already holds n images)."""
    if root.is_dir() and len(list(root.glob("*/*.png"))) == n:
        return
    shutil.rmtree(root, ignore_errors=True)
    images, labels, _ = generate(n, seed=7)
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / CLASS_NAMES[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / CLASS_NAMES[label] / f"{i:05d}.png")


def run_all(model, ds, batch_size: int, store: Path, executor=None) -> tuple[float, dict]:
    """Seconds to compute and store every analysis; {analysis: arrays}."""
    t = time.perf_counter()
    out = {}
    for analysis in ANALYSES:
        m = manifest_for(model, "shapes-vit", ds, analysis, None, batch_size=batch_size, **OPTIONS[analysis])
        if executor is not None:
            m.workers = executor.description
        out[analysis] = run_job(model, ds, m, Store(store), executor=executor.on(m) if executor else None).arrays()
    return time.perf_counter() - t, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=640)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "headscope-bench-shapes"))
    args = p.parse_args()

    write_folder(Path(args.dir), args.n)
    torch.set_num_threads(1)
    model = load_model("shapes-vit", device="cpu")
    ds = load_dataset(args.dir)
    list(ds.inputs)  # warm the page cache
    shards = (
        len(ANALYSES) * manifest_for(model, "shapes-vit", ds, "importance", None, batch_size=args.batch_size).n_chunks
    )
    print(
        f"{len(ds)} shapes images, {', '.join(ANALYSES)} ({', '.join(METHODS)}), batch {args.batch_size}, "
        f"{shards} shards in all"
    )

    with tempfile.TemporaryDirectory() as tmp:
        t_single, single = run_all(model, ds, args.batch_size, Path(tmp) / "single")

        import ray

        from runs.cluster import RayExecutor, runtime_env

        t = time.perf_counter()
        ray.init(
            num_cpus=args.workers,
            include_dashboard=False,
            logging_level="warning",
            log_to_driver=False,
            runtime_env=runtime_env(),
        )
        one = RayExecutor("shapes-vit", ds, model_fingerprint(model), workers=1, threads=1)
        one.start()
        t_start = time.perf_counter() - t
        try:
            t_one, _ = run_all(model, ds, args.batch_size, Path(tmp) / "ray-1", one)
            one.close()
            executor = RayExecutor("shapes-vit", ds, model_fingerprint(model), args.workers, threads=1)
            executor.start()
            t_ray, distributed = run_all(model, ds, args.batch_size, Path(tmp) / "ray", executor)
        finally:
            ray.shutdown()

    same = all(np.array_equal(single[a][k], distributed[a][k], equal_nan=True) for a in ANALYSES for k in single[a])
    overhead = (t_one - t_single) / shards
    print(f"one process, 1 thread     {len(ds) / t_single:7.1f} inputs/s   {t_single:6.1f} s")
    print(
        f"ray, {args.workers} x 1-thread worker   {len(ds) / t_ray:7.1f} inputs/s   {t_ray:6.1f} s   "
        f"(+ {t_start:.1f} s to start Ray and the workers: {t_single / (t_ray + t_start):.2f}x end to end)"
    )
    print(f"ray, 1 x 1-thread worker  {len(ds) / t_one:7.1f} inputs/s   {t_one:6.1f} s")
    print(f"ray per-shard overhead    {overhead * 1000:7.0f} ms per shard (1 worker vs one process)")
    print(f"results bit-for-bit equal: {same}")
    print(f"ray speedup ({args.workers} workers): {t_single / t_ray:.2f}x")


if __name__ == "__main__":
    main()
