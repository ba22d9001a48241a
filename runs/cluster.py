"""Scale out: compute a run's chunks on a Ray cluster (https://docs.ray.io) instead of in this process.

The driver (the `headscope precompute --ray` process) keeps everything it does alone: it holds the run's lock,
writes every chunk to the store and finishes the run (runs.jobs.run_job). What moves to the cluster is the
compute: a pool of `ShardWorker` actors, each loading the model once (one GPU each when the cluster has GPUs,
else CPU actors with a fixed thread count) and the dataset by its path (headers only), then computing shards:
a shard is one chunk of the run, sent as dataset rows and labels, never as decoded inputs. A shard's
composition and batches are those of a single-process run, so the numbers are the same; bit for bit when the
workers use the same device kind and thread count as that process (CPU BLAS splits sums by thread count, and
GPU models differ likewise; otherwise they agree to float32 rounding, ~1e-7).

Faults: a worker process that dies is restarted by Ray and its shard retried (the actor's max_restarts and
max_task_retries); a shard that raises is retried on another worker; after `retries` attempts it is given up,
the others still finish, and the run ends "failed" naming each lost shard. Its finished chunks stay in the
store, so a rerun computes only the missing shards.

    from runs import precompute
    precompute("digits-vit", "digits", analyses=["importance"], ray="local", workers=2)
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from data import Dataset
from runs.faults import Faults
from runs.plan import Shard
from runs.store import Manifest

PACKAGES = ("analysis", "data", "models", "runs")  # the code every worker needs (shipped as Ray py_modules)
ROOT = Path(__file__).resolve().parent.parent
IN_FLIGHT = 2  # shards queued per worker, so a worker never waits for the driver between shards
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME", "HEADSCOPE_HOME", "TRANSFORMERS_VERBOSITY")


class ClusterError(RuntimeError):
    """Ray is missing or unreachable, or no worker could start; the message says what to do."""


class ShardsFailed(RuntimeError):
    """Some shards could not be computed after every retry; the others are stored. failures: [(shard, error)]."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = failures
        super().__init__(
            f"{len(failures)} shard(s) failed after retries (the other shards are stored; rerun to "
            "compute only these): " + "; ".join(f"{name}: {err}" for name, err in failures)
        )


class ShardWorker:
    """A Ray actor: loads the model and the dataset once, checks both against the run's fingerprints, then
    computes shards of any run of them (runs.jobs.compute_shard)."""

    def __init__(
        self,
        model_name: str,
        device: str,
        threads: int,
        source: str,
        split: str,
        load_args: dict[str, str],
        fingerprint: str,
        dataset_key: str,
        faults: Faults,
    ):
        import torch

        from data import load_dataset
        from models import load_model, model_fingerprint

        torch.set_num_threads(threads)
        self.faults = faults
        self.model = load_model(model_name, device=device)
        if model_fingerprint(self.model) != fingerprint:
            raise ClusterError(
                f"the worker on {os.uname().nodename} loaded different weights for {model_name}; "
                "every node must see the same model files."
            )
        self.ds = load_dataset(source, split, **load_args)
        if self.ds.fingerprint() != dataset_key:
            raise ClusterError(
                f"the worker on {os.uname().nodename} sees different files at {source}; every node "
                "must read the same dataset (a shared filesystem or the same copy)."
            )

    def ready(self) -> str:
        """Where this worker runs (returns once the model and dataset are loaded)."""
        return f"{os.uname().nodename} pid {os.getpid()}"

    def compute(self, manifest: dict, shard: Shard) -> dict[str, np.ndarray]:
        from runs.plan import compute_shard

        if shard.start in self.faults.die_once:
            marker = Path(self.faults.marker_dir) / f"died-{shard.start}"
            if not marker.exists():
                marker.touch()
                os._exit(1)
        if shard.start in self.faults.always_fail:
            raise RuntimeError(f"injected failure at chunk {shard.start}")
        return compute_shard(self.model, self.ds, Manifest(**manifest), shard)


@dataclass
class RayExecutor:
    """Computes the shards of runs of one model and dataset on a pool of ShardWorker actors, started on first
    use and kept for every run until `close` (use inside `connect`). `executor.on(manifest)` is the
    runs.jobs.Executor of one run.

    workers: actors (default: one per GPU, else one per `threads` CPUs of the cluster); threads: torch threads
    (and Ray CPUs) per CPU worker; gpu: GPU workers when the cluster has GPUs; retries: attempts after the first
    before a shard is given up (Ray restarts a dead worker as often)."""

    model_name: str
    ds: Dataset
    model_fingerprint: str
    workers: int | None = None
    threads: int = 1
    gpu: bool = True
    retries: int = 2
    faults: Faults = field(default_factory=Faults.from_env)  # tests only: $HEADSCOPE_FAULTS (runs.faults)
    description: str = field(init=False, default="")

    def __post_init__(self):
        import ray

        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0)) if self.gpu else 0
        self.gpu = gpus > 0
        if self.workers is None:
            self.workers = gpus or max(1, int(resources.get("CPU", 1)) // self.threads)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        threads = "" if self.gpu else f" x {_plural(self.threads, 'thread')}"
        self.description = (
            f"ray: {_plural(self.workers, 'GPU worker' if self.gpu else 'CPU worker')}{threads} "
            f"on {_plural(nodes, 'node')}"
        )
        self._pool: list | None = None

    def start(self) -> None:
        """Start the workers and wait until each has loaded the model and the dataset (done by the first run
        otherwise); ClusterError with the reason when none could start, workers that could not are dropped."""
        import ray
        from ray.exceptions import RayActorError

        if self._pool is not None:
            return
        pool, errors = self._launch(), []
        for i, worker in enumerate(pool):
            try:
                ray.get(worker.ready.remote())
            except RayActorError as e:
                pool[i] = None
                errors.append(_reason(e))
        if all(w is None for w in pool):
            raise ClusterError(f"No Ray worker could start: {errors[0]}")
        self._pool = pool

    def _launch(self) -> list:
        import ray

        path = Path(self.ds.source).expanduser()  # workers open a local file or folder by its absolute path
        source = str(path.resolve()) if path.exists() else self.ds.source
        actor = ray.remote(ShardWorker).options(
            max_restarts=self.retries,
            max_task_retries=self.retries,
            **({"num_gpus": 1} if self.gpu else {"num_cpus": self.threads}),
        )
        return [
            actor.remote(
                self.model_name,
                "cuda" if self.gpu else "cpu",
                self.threads,
                source,
                self.ds.split,
                self.ds.load_args,
                self.model_fingerprint,
                self.ds.fingerprint(),
                self.faults,
            )
            for _ in range(self.workers or 1)
        ]

    def close(self) -> None:
        import ray

        for worker in self._pool or []:
            if worker is not None:
                ray.kill(worker)
        self._pool = None

    def on(self, manifest: Manifest):
        """The runs.jobs.Executor of this run: shards in, (start, arrays) out as each finishes."""
        return lambda shards: self._compute(manifest, shards)

    def _compute(self, manifest: Manifest, shards: list[Shard]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        if not shards:
            return
        self.start()
        pool, spec = self._pool, asdict(manifest)
        assert pool is not None  # start() raises when no worker could start
        pending = deque(shards)
        errors: dict[int, list[str]] = {s.start: [] for s in shards}
        failed_on: dict[int, set[int]] = {s.start: set() for s in shards}  # shard start -> workers it failed on
        in_flight: dict = {}  # ObjectRef -> (shard, worker index)
        failures: list[tuple[str, str]] = []

        def name(shard: Shard) -> str:
            return f"shard {shard.start // manifest.chunk_size} ({shard.describe(self.ds)})"

        def feed() -> None:
            """Queue pending shards on live workers with room, a shard preferably on a worker it has not failed on."""
            for w, worker in enumerate(pool):
                while worker is not None and pending and sum(i == w for _, i in in_flight.values()) < IN_FLIGHT:
                    shard = next((s for s in pending if w not in failed_on[s.start]), pending[0])
                    pending.remove(shard)
                    in_flight[worker.compute.remote(spec, shard)] = (shard, w)

        feed()
        while in_flight:
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            shard, w = in_flight.pop(ref)
            try:
                arrays = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                if isinstance(e, RayActorError):  # the worker is gone for good (Ray's restarts are spent)
                    pool[w] = None
                failed_on[shard.start].add(w)
                errors[shard.start].append(_reason(e))
                if len(errors[shard.start]) <= self.retries and any(p is not None for p in pool):
                    pending.append(shard)
                else:
                    failures.append((name(shard), errors[shard.start][-1]))
                if all(p is None for p in pool):
                    failures += [(name(s), "no worker left: " + errors[shard.start][-1]) for s in pending]
                    pending.clear()
            else:
                yield shard.start, arrays
            feed()
        if failures:
            raise ShardsFailed(failures)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _reason(error: Exception) -> str:
    """The last line of a Ray error: the worker's own exception, without Ray's traceback."""
    from ray.exceptions import RayTaskError

    if isinstance(error, RayTaskError) and error.cause is not None:
        return f"{type(error.cause).__name__}: {error.cause}"
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(error).__name__


PROBE_SECONDS = 5


def _probe(address: str) -> None:
    """Fail at once when a host:port address does not answer (ray.init would wait for minutes)."""
    if address in ("local", "auto"):
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_SECONDS).close()
    except (OSError, ValueError) as e:
        raise ClusterError(
            f"No Ray cluster answers at {address!r} ({e}). Check the head node's address (`ray "
            "status` on it prints it), or use --ray local to start Ray on this machine."
        ) from e


def runtime_env() -> dict:
    """The Ray job's runtime environment: HeadScope's packages shipped to every worker (Ray py_modules; the
    libraries must be installed on every node) and the Hugging Face / HeadScope settings of this process."""
    return {
        "py_modules": [str(ROOT / p) for p in PACKAGES],
        "excludes": ["__pycache__", "*.pyc"],
        "env_vars": {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ},
    }


def check_cluster(address: str) -> None:
    """The checks that take no time, before anything loads: Ray is installed, and a host:port address answers
    (ClusterError saying what is wrong)."""
    try:
        import ray
    except ImportError as e:
        raise ClusterError("--ray needs Ray: pip install ray") from e
    if not ray.is_initialized():
        _probe(address)


@contextlib.contextmanager
def connect(address: str, cpus: int | None = None):
    """Use a Ray cluster for the block: "local" starts one on this machine (cpus CPUs, default all) and stops
    it after; "auto" or a "host:port" address joins a running cluster (`ray start --head`). A Ray already
    initialised in this process (e.g. by a test, with runtime_env()) is used as it is."""
    check_cluster(address)
    import ray

    if ray.is_initialized():
        yield
        return
    try:
        if address == "local":
            ray.init(
                num_cpus=cpus,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
                runtime_env=runtime_env(),
            )
            if sys.platform == "linux":  # Ray's agents can outlive a killed driver: runs.reaper stops them then
                subprocess.Popen(
                    [sys.executable, "-m", "runs.reaper", str(os.getpid())],
                    cwd=ROOT,
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, runtime_env=runtime_env())
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(
            f"Could not reach a Ray cluster at {address!r} ({e}). Start one with `ray start --head` "
            "(see docs/ray.md) or use --ray local."
        ) from e
    try:
        yield
    finally:
        ray.shutdown()
