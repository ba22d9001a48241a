"""Runs: the store round trip per analysis, resume after SIGKILL, the lock, damaged chunks, unwritable stores,
and the command line's errors."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import headscope
from data import load_dataset
from runs import Store, StoreError
from runs.faults import FAULTS_ENV, Faults
from runs.jobs import run_job
from runs.plan import manifest_for, run_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test")


def _run(model, ds, store, analysis, n=100, batch_size=16, **kwargs):
    m = manifest_for(model, "digits-vit", ds, analysis, n, kwargs.pop("chunk_size", 32), batch_size=batch_size)
    return run_job(model, ds, m, Store(store), **kwargs)


# -- stored = computed in memory ---------------------------------------------------------------------------
def test_importance_run_equals_the_analysis(digits_vit, digits, tmp_path):
    from analysis.importance import available_metrics, head_scores, make_sample

    run = _run(digits_vit, digits, tmp_path, "importance")
    got = run.arrays()
    rows = digits.sample_rows(100)  # a run of n inputs covers the dataset's (stratified) sample of n
    sample = make_sample(digits_vit, digits.subset(rows).inputs, digits.labels[rows], digits.class_names)
    ref = head_scores(digits_vit, sample, available_metrics(digits_vit), batch_size=16)
    for k, v in ref.items():
        assert np.array_equal(got[k], np.moveaxis(v, -1, 0).astype(np.float32)), k
    assert np.array_equal(got["row"], rows) and np.array_equal(got["label"], digits.labels[rows])
    tables = run.tables()
    assert len(tables["summary"]) == 4 * 4 * (len(ref) + 1)
    assert list(tables["inputs"]["name"][:2]) == [f"digits #{rows[0]}", f"digits #{rows[1]}"]


def test_relevance_and_attention_runs_equal_the_analysis(digits_vit, digits, tmp_path):
    from analysis.attention import dataset_statistics
    from analysis.relevance import explain

    rel = _run(digits_vit, digits, tmp_path, "relevance", n=40).arrays()
    rows = digits.sample_rows(40)
    batch = digits_vit.prepare(digits.subset(rows[:16]).inputs)
    pred = digits_vit.logits(batch).argmax(-1)
    assert np.array_equal(rel["predicted"][:16], pred.numpy())
    for m in ("rollout", "grad_rollout", "attnlrp"):
        assert np.array_equal(rel[f"map_{m}"][:16], explain(digits_vit, batch, m, target=pred)), m
    att = _run(digits_vit, digits, tmp_path, "attention", n=40).arrays()
    ref = dataset_statistics(digits_vit, digits.subset(rows[:32]).inputs, batch_size=16)
    for k, v in ref.items():
        assert np.allclose(att[k][:32], v, atol=0, rtol=0), k


def test_spectral_and_embedding_runs_equal_the_analysis(shapes_vit, tmp_path):
    from analysis.embedding import embed_sample
    from analysis.spectral import spectral_metrics

    shapes = load_dataset("shapes", "test")
    m = manifest_for(shapes_vit, "shapes-vit", shapes, "spectral", 24, 16, batch_size=8)
    got = run_job(shapes_vit, shapes, m, Store(tmp_path)).arrays()
    sample = shapes.sample(24)
    ref = spectral_metrics(shapes_vit, shapes_vit.prepare(sample.inputs[:8]), attention=False)
    for k in ("resid_ratio", "rank", "entropy", "profile", "variance"):
        assert np.allclose(got[k][:8], np.moveaxis(np.asarray(ref[k]), 1, 0), atol=1e-6), k
    m = manifest_for(shapes_vit, "shapes-vit", shapes, "embedding", 24, 16, batch_size=8)
    emb = run_job(shapes_vit, shapes, m, Store(tmp_path)).arrays()
    s = embed_sample(shapes_vit, sample.inputs[:16], sample.labels[:16], batch_size=8)
    assert np.allclose(emb["identifiability"][:16], s.ident.summary.T, atol=1e-6)
    assert np.allclose(emb["embeddings"][:16], np.moveaxis(s.embeddings, 1, 0), atol=1e-5)


@pytest.mark.slow
def test_faithfulness_run_equals_the_evaluation(shapes_vit, tmp_path):
    from analysis.faithfulness import evaluate

    shapes = load_dataset("shapes", "test")
    m = manifest_for(
        shapes_vit, "shapes-vit", shapes, "faithfulness", 24, 16, batch_size=8, methods=("rollout", "attnlrp")
    )
    run = run_job(shapes_vit, shapes, m, Store(tmp_path))
    ref = evaluate(shapes_vit, shapes.sample(24), ["rollout", "attnlrp"], n=24, batch_size=8)
    got = run.tables()["scores"].set_index("method")
    want = ref.table.set_index("method")
    assert list(got.index) == ["rollout", "attnlrp", "random"]
    cols = ["positive_auc", "negative_auc", "deletion_auc", "insertion_auc", "pointing_game", "miou"]
    assert np.allclose(got[cols].to_numpy(float), want[cols].to_numpy(float), atol=1e-5)
    assert run.arrays()["deletion__attnlrp"].shape == (24, 17)


def test_text_runs_pad_maps_to_the_longest_input(minilm, tmp_path):
    prose = load_dataset("prose", "test")
    m = manifest_for(minilm, "minilm", prose, "relevance", 20, 8, batch_size=8, methods=("rollout",))
    arrays = run_job(minilm, prose, m, Store(tmp_path)).arrays()
    maps = arrays["map_rollout"]
    lengths = [len(minilm.prepare([t]).tokens[0]) - 1 for t in prose.sample(20).inputs]
    assert list(arrays["n_tokens"]) == lengths  # word pieces after the prefix (as_maps reads the real tokens so)
    assert maps.shape == (20, max(lengths))
    assert all(
        np.isfinite(maps[i, :n]).all() and (np.isnan(maps[i, n:]) | (maps[i, n:] == 0)).all()
        for i, n in enumerate(lengths)
    )


def test_same_key_is_reused_and_force_recomputes(digits_vit, digits, tmp_path):
    first = _run(digits_vit, digits, tmp_path, "importance", n=32)
    stamp = first.manifest.updated
    again = _run(digits_vit, digits, tmp_path, "importance", n=32)
    assert again.root == first.root and again.manifest.updated == stamp
    other = _run(digits_vit, digits, tmp_path, "importance", n=33)
    assert other.root != first.root
    forced = _run(digits_vit, digits, tmp_path, "importance", n=32, force=True)
    assert forced.manifest.updated > stamp
    index = Store(tmp_path).index()
    assert sorted(index["inputs"]) == [32, 33] and set(index["state"]) == {"done"}


# -- killed, damaged, locked, unwritable ---------------------------------------------------------------------
def _cli(store: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "headscope",
        "precompute",
        "--model",
        "digits-vit",
        "--dataset",
        "digits",
        "--analyses",
        "importance",
        "--batch-size",
        "8",
        "--store",
        str(store),
        *extra,
    ]


@pytest.mark.slow
def test_sigkill_mid_run_resumes_to_the_identical_result(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    held = {**env, **Faults.env(hold_after_chunks=2)}  # it waits after two chunks: killed there on any machine
    proc = subprocess.Popen(
        _cli(tmp_path / "killed"), cwd=ROOT, env=held, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    manifest = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "killed").glob("*/manifest.json"))
        if found:
            manifest = json.loads(found[0].read_text())
            if manifest["done_inputs"] >= 2 * manifest["chunk_size"]:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert manifest is not None and manifest["done_inputs"] == 2 * manifest["chunk_size"] < 360, manifest
    run = Store(tmp_path / "killed").run(manifest["key"])
    assert run.manifest.state == "running" and not run.is_locked()  # the OS dropped the dead writer's lock
    assert Store(tmp_path / "killed").index()["state"].tolist() == ["interrupted"]
    kept = run.done_chunks()
    assert kept and len(kept) < run.manifest.n_chunks
    subprocess.run(_cli(tmp_path / "killed"), cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(_cli(tmp_path / "clean"), cwd=ROOT, env=env, check=True, capture_output=True)
    resumed, clean = run.arrays(), Store(tmp_path / "clean").run(manifest["key"]).arrays()
    assert resumed.keys() == clean.keys() and all(np.array_equal(resumed[k], clean[k]) for k in clean)


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_or_ctrl_c_cancels_and_a_rerun_resumes(tmp_path, sig, code):
    """What the app's Cancel button does (SIGTERM to the run's process group) and Ctrl-C (SIGINT): the run is
    marked cancelled, the command says so in one line without a traceback, and a rerun resumes it."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    held = {**env, **Faults.env(hold_after_chunks=1)}  # it waits after a chunk: signalled there on any machine
    proc = subprocess.Popen(
        _cli(tmp_path),
        cwd=ROOT,
        env=held,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # Ctrl-C as in a terminal, also when these tests run in a background job (whose shell ignores SIGINT)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        found = list(tmp_path.glob("*/manifest.json"))
        if found and (m := json.loads(found[0].read_text()))["done_inputs"] >= m["chunk_size"]:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, sig)
    assert proc.wait(timeout=60) == code
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "Traceback" not in err
    if sig == signal.SIGINT:
        assert (
            err.strip().splitlines()[-1]
            == "headscope: cancelled; rerun the same command to resume from its finished chunks."
        )
    run = Store(tmp_path).runs()[0]
    assert run.manifest.state == "cancelled" and run.manifest.done_inputs == run.manifest.chunk_size < 360
    assert Store(tmp_path).index()["state"].tolist() == ["cancelled"]
    subprocess.run(_cli(tmp_path), cwd=ROOT, env=env, check=True, capture_output=True)
    assert run.manifest.state == "done" and run.arrays()["accuracy"].shape == (360, 4, 4)


@pytest.mark.slow
def test_damaged_chunk_is_recomputed(digits_vit, digits, tmp_path, monkeypatch):
    monkeypatch.setenv(*Faults.env(fail_after_chunks=2).popitem())
    with pytest.raises(RuntimeError, match="fault injection"):
        _run(digits_vit, digits, tmp_path / "a", "importance", n=96)
    monkeypatch.delenv(FAULTS_ENV)
    store = Store(tmp_path / "a")
    run = store.runs()[0]
    assert run.manifest.state == "failed" and run.done_chunks() == [0, 32]
    chunk = run.root / "chunks" / f"{32:010d}.npz"
    raw = bytearray(chunk.read_bytes())
    raw[-40] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    assert run.done_chunks() == [0]
    resumed = _run(digits_vit, digits, tmp_path / "a", "importance", n=96).arrays()
    clean = _run(digits_vit, digits, tmp_path / "b", "importance", n=96).arrays()
    assert all(np.array_equal(resumed[k], clean[k]) for k in clean)


def test_a_second_writer_is_refused_with_the_holder(digits_vit, digits, tmp_path):
    m = manifest_for(digits_vit, "digits-vit", digits, "importance", 32, 16)
    run = Store(tmp_path).open_or_create(m)
    with run.lock():
        assert run.is_locked()
        with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
            run_job(digits_vit, digits, m, Store(tmp_path))
    assert not run.is_locked()
    assert run_job(digits_vit, digits, m, Store(tmp_path)).manifest.state == "done"


def test_unwritable_or_full_store_gives_a_clear_error_and_keeps_earlier_runs(digits_vit, digits, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="Cannot create the run folder"):
        _run(digits_vit, digits, blocker / "store", "importance", n=16)
    earlier = _run(digits_vit, digits, tmp_path / "s", "importance", n=16)
    before = earlier.arrays()["accuracy"].copy()

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(StoreError, match="disk is full"):
        _run(digits_vit, digits, tmp_path / "s", "importance", n=17)
    monkeypatch.undo()
    assert np.array_equal(Store(tmp_path / "s").run(earlier.root.name).arrays()["accuracy"], before)
    assert not list((tmp_path / "s").rglob("*.tmp"))


# -- the command line --------------------------------------------------------------------------------------
def test_cli_help_and_bad_arguments(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        headscope.main(["precompute", "--help"])
    assert e.value.code == 0 and "--batch-size" in capsys.readouterr().out
    cases = [
        (["--model", "digits-vit", "--dataset", "nowhere/at-all"], "not a bundled dataset"),
        (["--model", "digits-vit", "--dataset", "digits", "--analyses", "bogus"], "Unknown analysis 'bogus'"),
        (
            ["--model", "digits-vit", "--dataset", "digits", "--analyses", "relevance", "--methods", "nope"],
            "--methods got 'nope': choose from attention, rollout",
        ),
        (["--model", "digits-vit", "--dataset", "digits", "--batch-size", "0"], "--batch-size got 0: allowed >= 1"),
        (["--model", "digits-vit", "--dataset", "digits", "--analyses", "relevance", "--read-at", "words"], "text"),
        (["--model", "digits-vit", "--dataset", "digits", "--methods", "rollout"], "Unknown --methods for importance"),
        (["--model", "digits-vit", "--dataset", "prose"], "holds texts"),
        (["--model", "digits-vit", "--dataset", "digits", "--analyses", ","], "Name at least one analysis"),
        (["--model", "digits-vit", "--dataset", "digits", "--device", "cuda:99"], "no such CUDA GPU"),
        (["--model", "digits-vit", "--dataset", "digits", "--n", "0"], "at least 1"),
        (["--model", "digits-vit", "--dataset", "digits", "--ray", "local", "--workers", "0"], "at least 1"),
        (["--model", "digits-vit", "--dataset", "digits", "--ray", "local", "--retries", "-1"], "0 or more"),
    ]
    for args, message in cases:
        assert headscope.main(["precompute", "--store", str(tmp_path), *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("headscope: error:") and message in err[-1], err
    (tmp_path / "a-file").write_text("not a store")
    assert (
        headscope.main(
            ["precompute", "--model", "digits-vit", "--dataset", "digits", "--store", str(tmp_path / "a-file")]
        )
        == 2
    )
    assert "is a file, not a folder" in capsys.readouterr().err
    assert headscope.main(["runs", "show", "no-such-key", "--store", str(tmp_path)]) == 2


def test_cli_runs_list_show_export_delete(capsys, tmp_path):
    assert (
        headscope.main(
            ["precompute", "--model", "digits-vit", "--dataset", "digits", "--n", "16", "--store", str(tmp_path)]
        )
        == 0
    )
    key = capsys.readouterr().out.split()[0]
    assert headscope.main(["runs", "list", "--store", str(tmp_path)]) == 0
    assert key in capsys.readouterr().out
    assert headscope.main(["runs", "show", key, "--store", str(tmp_path)]) == 0
    assert "arrays/accuracy.npy  float32 [16, 4, 4]" in capsys.readouterr().out
    assert headscope.main(["runs", "export", key, "--to", str(tmp_path / "out"), "--store", str(tmp_path)]) == 0
    with np.load(tmp_path / "out" / "arrays.npz") as z:
        assert z["accuracy"].shape == (16, 4, 4)
    assert (tmp_path / "out" / "summary.csv").exists()
    assert headscope.main(["runs", "delete", key, "--store", str(tmp_path)]) == 0
    assert Store(tmp_path).index().empty


def _default_store(monkeypatch, home: Path, cwd: Path) -> None:
    """A user with the default settings ($HEADSCOPE_HOME at `home`, no $HEADSCOPE_STORE) working in `cwd`."""
    monkeypatch.delenv("HEADSCOPE_STORE", raising=False)
    monkeypatch.setenv("HEADSCOPE_HOME", str(home))
    cwd.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(cwd)


def test_the_default_store_is_one_place_for_every_folder(tmp_path, monkeypatch, capsys):
    """`headscope precompute` in one folder and `headscope runs` in another use $HEADSCOPE_HOME/runs."""
    _default_store(monkeypatch, tmp_path / "home", tmp_path / "a")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's headscope, from another working folder
    done = subprocess.run(
        [sys.executable, "-m", "headscope", "precompute", "--model", "digits-vit", "--dataset", "digits", "--n", "8"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    key = done.stdout.split()[0]
    assert (tmp_path / "home" / "runs" / key / "manifest.json").is_file() and not (
        tmp_path / "a" / "headscope-runs"
    ).exists()
    monkeypatch.chdir(tmp_path)
    assert headscope.main(["runs", "list"]) == 0 and key in capsys.readouterr().out
    assert Store().root == tmp_path / "home" / "runs" and Store().also == []


def test_the_default_store_reads_the_working_folders_old_headscope_runs(
    digits_vit, digits, tmp_path, monkeypatch, capsys
):
    """Earlier versions stored runs in ./headscope-runs: the default store lists, reuses and deletes them too;
    a chosen store ($HEADSCOPE_STORE or --store) reads only itself."""
    _default_store(monkeypatch, tmp_path / "home", tmp_path / "work")
    old = _run(digits_vit, digits, tmp_path / "work" / "headscope-runs", "importance", n=16)
    new = _run(digits_vit, digits, Store().root, "attention", n=16)
    key = old.root.name
    store = Store()
    assert store.also == [tmp_path / "work" / "headscope-runs"]
    assert sorted(store.index()["key"]) == sorted([key, new.root.name])
    assert store.find(key) is not None and store.run(key).root == old.root  # a rerun reuses it, computes nothing
    assert headscope.main(["runs", "list"]) == 0 and key in capsys.readouterr().out
    monkeypatch.setenv("HEADSCOPE_STORE", str(Store().root))
    assert Store().also == [] and list(Store().index()["key"]) == [new.root.name]
    monkeypatch.delenv("HEADSCOPE_STORE")
    assert list(Store(tmp_path / "home" / "runs").index()["key"]) == [new.root.name]
    Store().delete(key)
    assert not old.root.exists()


def test_run_rows_cover_all_or_the_views_sample(digits):
    assert np.array_equal(run_rows(digits, None), np.arange(len(digits)))
    assert np.array_equal(run_rows(digits, 10), digits.sample_rows(10))


def test_cli_app_starts_streamlit_on_app_py(capfd):
    assert headscope.main(["app", "--help"]) == 0  # `streamlit run app.py --help`: streamlit's own options
    assert "--server.port" in capfd.readouterr().out


def test_text_relevance_runs_read_at_the_word_embeddings(minilm, digits_vit, digits, tmp_path):
    """A text relevance run records where AttnLRP is read (the view's default, the word embeddings) and stores
    those maps; image runs record none."""
    from analysis.relevance import explain

    prose = load_dataset("prose", "test")
    m = manifest_for(minilm, "minilm", prose, "relevance", 4, batch_size=4, methods=("attnlrp",))
    assert m.params["read_at"] == "words"
    assert manifest_for(digits_vit, "digits-vit", digits, "relevance", 4, batch_size=4).params["read_at"] is None
    maps = run_job(minilm, prose, m, Store(tmp_path)).arrays()["map_attnlrp"]
    batch = minilm.prepare(prose.sample(4).inputs)
    want = explain(minilm, batch, "attnlrp", target=minilm.logits(batch).argmax(-1))
    assert np.allclose(np.nan_to_num(maps), want, atol=1e-5)


def test_a_bundled_sets_fingerprint_is_its_content_hashed_once():
    """The views ask for the dataset's fingerprint on every run: a bundled set (named by its key) is hashed once;
    a set made without a key is hashed each time, so two contents never share one."""
    from dataclasses import replace

    from data import Dataset

    class Counted(list):
        reads = 0

        def __iter__(self):
            Counted.reads += 1
            return super().__iter__()

    labels = np.array([0, 1])
    ds = Dataset("toy", "all", "text", Counted(["a cat", "a dog"]), labels, ["cat", "dog"], key="toy/all/v1")
    first = ds.fingerprint()
    assert ds.fingerprint() == first and Counted.reads == 1
    assert first != replace(ds, key="toy/all/v2").fingerprint()  # the key is part of it
    unnamed = replace(ds, inputs=["a cat", "a dog"], key="")
    assert unnamed.fingerprint() != replace(unnamed, inputs=["a cat", "a cow"]).fingerprint()


def test_a_run_finished_meanwhile_is_reused_and_leftovers_are_tidied(digits_vit, digits, tmp_path, monkeypatch):
    """A process that looked before another finished the run takes the lock after it: it finds the run done and
    computes nothing; files a killed finalisation left (temporary files, the chunks of a done run) are removed."""
    import runs.jobs

    done = _run(digits_vit, digits, tmp_path, "attention", n=40)
    (done.root / "arrays" / ".entropy.npy.4242.tmp").write_bytes(b"half")
    (done.root / "chunks").mkdir()
    (done.root / "chunks" / f"{0:010d}.npz").write_bytes(b"stale")
    real_find, looked = Store.find, []

    def find_late(self, key):  # the first look happened before the other process finished
        looked.append(key)
        return None if len(looked) == 1 else real_find(self, key)

    monkeypatch.setattr(Store, "find", find_late)
    monkeypatch.setattr(runs.jobs, "compute_shard", lambda *a: pytest.fail("recomputed a finished run"))
    again = _run(digits_vit, digits, tmp_path, "attention", n=40)
    assert again.root == done.root and len(looked) == 2
    assert not list(done.root.rglob("*.tmp")) and not (done.root / "chunks").exists()
    assert again.arrays()["entropy"].shape == (40, 4, 4)


def test_a_read_only_store_is_one_line_each(digits_vit, digits, tmp_path, monkeypatch, capsys):
    """Resuming into, deleting from or exporting out of a store the system refuses to write: one line, no traceback."""
    import errno

    import runs.store

    run = _run(digits_vit, digits, tmp_path, "attention", n=40)
    key = run.root.name

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(runs.store.shutil, "rmtree", refuse)
    assert headscope.main(["runs", "delete", key, "--store", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"headscope: error: Could not delete run {key} (the store folder is not writable)."
    )
    monkeypatch.setattr(runs.store, "open", refuse, raising=False)
    with pytest.raises(StoreError, match=f"Cannot write to run {key} \\(the store folder is not writable\\)"):
        _run(digits_vit, digits, tmp_path, "attention", n=40, force=True)
    monkeypatch.undo()
    monkeypatch.setattr(Path, "mkdir", refuse)
    assert headscope.main(["runs", "export", key, "--store", str(tmp_path), "--to", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().endswith("(Read-only file system).")


def test_a_damaged_finished_run_is_found_out_and_a_rerun_repairs_it(digits_vit, digits, tmp_path, capsys):
    """A finished run records every file's size and checksum: flipped bytes in an array are not read silently
    (`runs verify` exits 1 naming the file, the store no longer offers the run, a damaged header is one line in
    `runs show`), and running it again computes it anew, identical to the original."""
    run = _run(digits_vit, digits, tmp_path, "attention", n=40)
    key, want = run.root.name, np.array(run.arrays()["entropy"])
    assert set(run.manifest.files) >= {"arrays/entropy.npy", "tables/inputs.parquet"} and not run.damage()
    assert headscope.main(["runs", "verify", "--store", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"{key}\tok"
    path = run.root / "arrays" / "entropy.npy"
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # a flipped data byte: the same size, another value
    path.write_bytes(bytes(raw))
    assert run.damage() == ["arrays/entropy.npy does not match its checksum"]
    assert Store(tmp_path).find(key) is None
    assert headscope.main(["runs", "verify", key, "--store", str(tmp_path)]) == 1
    assert "damaged: arrays/entropy.npy does not match its checksum" in capsys.readouterr().out
    path.write_bytes(b"not an npy file")
    assert headscope.main(["runs", "show", key, "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arrays/entropy.npy is damaged" in err[0] and "run it again" in err[0]
    again = _run(digits_vit, digits, tmp_path, "attention", n=40)
    assert not again.damage() and np.array_equal(again.arrays()["entropy"], want)


def test_option_words_read_back_as_the_same_options():
    """A background run's command line (headscope.option_args) parses to the options it was made from."""
    options = (
        ("methods", ("rollout", "attnlrp")),
        ("maps", True),
        ("gradient", False),
        ("steps", 8),
        ("ablation", "mean"),
    )
    words = headscope.option_args(options)
    args = headscope._parser().parse_args(["precompute", "--model", "digits-vit", "--dataset", "digits", *words])
    parsed = {k.removeprefix("option_"): v for k, v in vars(args).items() if k.startswith("option_")}
    assert parsed == {
        "methods": ["rollout", "attnlrp"],
        "maps": True,
        "gradient": False,
        "steps": 8,
        "ablation": "mean",
    }
