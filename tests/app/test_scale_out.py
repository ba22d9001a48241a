"""The app and Ray: background runs go to the cluster named by HEADSCOPE_RAY, and a run computed on Ray shows
its shards and workers in the view's progress bar."""

from types import SimpleNamespace

from data import load_dataset
from runs import Store
from runs.jobs import BACKGROUND_BATCH
from runs.plan import manifest_for
from tests.app.helpers import open_view
from ui import stored


def test_background_command_uses_the_cluster_named_by_headscope_ray(digits_vit, monkeypatch):
    ctx = SimpleNamespace(model_name="digits-vit", model=digits_vit, dataset=load_dataset("digits", "test"))
    monkeypatch.delenv(stored.RAY_ENV, raising=False)
    local = stored._command(ctx, "importance")
    assert "--ray" not in local and local[local.index("--device") + 1] == "cpu"
    monkeypatch.setenv(stored.RAY_ENV, "head-node:6379")
    command = stored._command(ctx, "importance")
    assert command[command.index("--ray") + 1] == "head-node:6379" and "--device" not in command
    assert command[command.index("--analyses") + 1] == "importance"


def test_a_run_on_ray_shows_shards_and_workers_in_the_progress_bar(digits_vit):
    ds = load_dataset("digits", "test")
    m = manifest_for(digits_vit, "digits-vit", ds, "importance", None, BACKGROUND_BATCH)
    m.workers, m.done_inputs = "ray: 2 CPU workers x 1 thread on 1 node", 2 * m.chunk_size
    run = Store().open_or_create(m)
    try:
        with run.lock():  # as the driver holds it while the workers compute
            at = open_view("pages/importance.py")
            bars = [p for p in at.get("progress") if "Running head importance in the background" in p.proto.text]
            assert bars, [p.proto.text for p in at.get("progress")]
            assert bars[0].proto.text == (
                f"Running head importance in the background: {2 * m.chunk_size}/{m.n_inputs} inputs, "
                f"shards 2/{m.n_chunks} on ray: 2 CPU workers x 1 thread on 1 node"
            )
    finally:
        Store().delete(m.key)
