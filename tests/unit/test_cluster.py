"""Scale out on Ray (runs/cluster.py): a local Ray with 2 CPUs, digits-vit over a generated image folder. Few and
small on purpose: each test starts two workers that load the model."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runs import Store, precompute
from runs.cluster import ShardsFailed, runtime_env
from runs.faults import FAULTS_ENV, Faults
from tests.conftest import write_digit_folder

ray = pytest.importorskip("ray")
ROOT = Path(__file__).resolve().parents[2]
ANALYSES = ["importance", "relevance"]
N, BATCH = 150, 16  # chunks of 64 inputs: shards at 0, 64 and 128


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False, runtime_env=runtime_env()
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_digit_folder(tmp_path_factory.mktemp("digits-folder"), N)


@pytest.fixture(scope="module")
def single(folder, tmp_path_factory):
    """The single-process runs (1 torch thread, as each CPU worker) of ANALYSES: {analysis: arrays}."""
    import torch

    threads = torch.get_num_threads()
    try:
        runs = precompute(
            "digits-vit",
            str(folder),
            analyses=ANALYSES,
            batch_size=BATCH,
            threads=1,
            store=str(tmp_path_factory.mktemp("single")),
        )
    finally:
        torch.set_num_threads(threads)
    return {r.manifest.analysis: (r.manifest.key, r.arrays(mmap=False)) for r in runs}


def _same(run, single) -> None:
    key, want = single[run.manifest.analysis]
    got = run.arrays()
    assert run.manifest.key == key and got.keys() == want.keys()
    for name in want:
        assert np.array_equal(got[name], want[name], equal_nan=True), name


@pytest.mark.slow
def test_ray_run_with_a_killed_worker_equals_the_single_process_run(local_ray, folder, single, tmp_path, monkeypatch):
    """The worker process computing shard 1 exits mid-job (as if killed); Ray restarts it, the shard is retried,
    and every array is bit-for-bit the single-process one."""
    monkeypatch.setenv(*Faults.env(die_once=[64], marker_dir=str(tmp_path)).popitem())
    runs = precompute(
        "digits-vit",
        str(folder),
        analyses=ANALYSES,
        batch_size=BATCH,
        threads=1,
        store=str(tmp_path),
        ray="local",
        workers=2,
    )
    assert (tmp_path / "died-64").exists()  # the fault did fire
    for run in runs:
        assert run.manifest.state == "done" and run.manifest.workers.startswith(
            "ray: 2 CPU workers x 1 thread on 1 node"
        )
        _same(run, single)
    assert Store(tmp_path).index()["workers"].str.startswith("ray: 2").all()


@pytest.mark.slow
def test_a_shard_that_always_fails_is_named_and_a_rerun_computes_only_it(
    local_ray, folder, single, tmp_path, monkeypatch
):
    monkeypatch.setenv(*Faults.env(always_fail=[64]).popitem())
    with pytest.raises(ShardsFailed) as failed:
        precompute(
            "digits-vit",
            str(folder),
            analyses=["importance"],
            batch_size=BATCH,
            threads=1,
            store=str(tmp_path),
            ray="local",
            workers=2,
            retries=1,
        )
    [(name, error)] = failed.value.failures
    assert name.startswith("shard 1 (inputs 64-127 (first: ") and "injected failure at chunk 64" in error
    run = Store(tmp_path).runs()[0]
    assert run.manifest.state == "failed" and "shard 1" in run.manifest.error
    assert run.done_chunks() == [0, 128]  # the other shards are stored

    seen = []
    monkeypatch.delenv(FAULTS_ENV)  # the shard computes now
    [rerun] = precompute(
        "digits-vit",
        str(folder),
        analyses=["importance"],
        batch_size=BATCH,
        threads=1,
        store=str(tmp_path),
        ray="local",
        workers=2,
        progress=lambda m: lambda done, total: seen.append(done),
    )
    assert seen[0] == N - 64 and seen[1:] == [N]  # resumed with two shards done; one shard computed
    _same(rerun, single)


def test_unreachable_cluster_fails_at_once_with_a_clear_message():
    """In a fresh process (this one's Ray is up): exit 2 and the message, in seconds, not Ray's minutes of retries."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "headscope",
            "precompute",
            "--model",
            "digits-vit",
            "--dataset",
            "digits",
            "--ray",
            "127.0.0.1:1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and "No Ray cluster answers" in out.stderr and "--ray local" in out.stderr


def test_a_worker_that_loads_other_weights_is_refused(local_ray, folder):
    from data import load_dataset
    from runs.cluster import ClusterError, RayExecutor

    executor = RayExecutor("digits-vit", load_dataset(str(folder)), "another-model's-fingerprint", workers=1, retries=0)
    with pytest.raises(ClusterError, match="No Ray worker could start: .*loaded different weights for digits-vit"):
        executor.start()


def test_a_ray_rerun_of_finished_runs_starts_no_cluster(folder, tmp_path, monkeypatch):
    """Every run already in the store: nothing to compute, so no Ray is started or joined."""
    import runs.cluster

    store = str(tmp_path / "store")
    done = precompute("digits-vit", str(folder), analyses=["predictions"], n=32, store=store)

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started for finished runs")

    monkeypatch.setattr(runs.cluster, "connect", no_cluster)
    again = precompute("digits-vit", str(folder), analyses=["predictions"], n=32, store=store, ray="local")
    assert [r.manifest.key for r in again] == [r.manifest.key for r in done]
    with pytest.raises(AssertionError, match="a cluster was started"):  # one left to compute: the cluster is used
        precompute("digits-vit", str(folder), analyses=["predictions"], n=40, store=store, ray="local")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the reaper follows processes through /proc")
def test_a_killed_driver_leaves_no_ray_process_behind(folder, tmp_path):
    """kill -9 of `precompute --ray local` while its workers compute: runs.reaper stops every process the driver's
    Ray started (raylet, GCS, the dashboard and runtime-env agents, the workers) within seconds."""
    import signal
    import time

    from runs.reaper import alive, descendants

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "headscope", "precompute", "--model", "digits-vit", "--dataset", str(folder)]
    command += ["--analyses", "faithfulness", "--store", str(tmp_path), "--ray", "local", "--workers", "1"]
    driver = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, tree = time.time() + 240, {}
    while time.time() < deadline and not any("ShardWorker" in _name(p) for p in tree):
        time.sleep(1)  # until a worker actor runs: Ray is fully up
        tree = descendants(driver.pid)
    assert any("raylet" in _name(p) for p in tree), [_name(p) for p in tree]
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(p) for p in tree):
        time.sleep(0.5)
    assert not [_name(p) for p in tree if alive(p)]


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
