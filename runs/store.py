"""The result store: one folder per run, written chunk by chunk, readable without HeadScope.

    <store>/<key>/manifest.json        what the run is (model, dataset, analysis, parameters), its state and progress
    <store>/<key>/lock                 flock-ed by the process writing the run (pid, host, start time inside)
    <store>/<key>/chunks/<start>.npz   per-input arrays of inputs [start, start + chunk size), numpy's own format
    <store>/<key>/chunks/<start>.json  the chunk's sha256 and row range, written after the .npz (its presence
                                       marks the chunk done)
    <store>/<key>/arrays/<name>.npy    the finished run: every per-input array concatenated [N, ...]
    <store>/<key>/tables/<name>.parquet  the finished run's tables (per-input table, summaries)

Every file is written to a temporary name and renamed into place, so a run killed at any moment (even
SIGKILL) leaves only whole chunks behind; a rerun checks each chunk's checksum, keeps the good ones and
computes the rest. The key hashes everything that determines the result (see `run_key`), so the same key
means the same result. Nothing is pickled (np.load(allow_pickle=False) and pyarrow read every file).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT_VERSION = 3  # bump when what a job stores changes: runs of another version are not reused or shown
OLD_STORE = "headscope-runs"  # earlier versions' default store, in the working folder: still read where it exists


class StoreError(RuntimeError):
    """The store cannot be used (unwritable, full, damaged) or a run is busy; the message says what to do."""


def home() -> Path:
    """HeadScope's folder for the user's own files (the store, recent datasets, tours): $HEADSCOPE_HOME, default
    ~/.headscope."""
    return Path(os.environ.get("HEADSCOPE_HOME") or Path.home() / ".headscope").expanduser()


def default_store() -> Path:
    """$HEADSCOPE_STORE, else $HEADSCOPE_HOME/runs: one store for the app and the command line, from any folder."""
    return Path(os.environ.get("HEADSCOPE_STORE") or home() / "runs").expanduser()


def old_store() -> Path | None:
    """./headscope-runs, earlier versions' default store, when the working folder has one and the store is the
    default one (no --store or $HEADSCOPE_STORE): the default store reads its runs too, so none is lost."""
    old = Path(OLD_STORE)
    if os.environ.get("HEADSCOPE_STORE") or not old.is_dir() or old.resolve() == default_store().resolve():
        return None
    return old.resolve()


def run_key(model_fingerprint: str, dataset_key: str, analysis: str, params: dict) -> str:
    """The run's id: a hash of the model, the dataset, the analysis, its parameters and the format version."""
    blob = json.dumps([FORMAT_VERSION, model_fingerprint, dataset_key, analysis, params], sort_keys=True)
    return f"{analysis}-{hashlib.sha256(blob.encode()).hexdigest()[:20]}"


@dataclass
class Manifest:
    """What a run is and where it stands. dataset_key: the dataset's fingerprint (data.Dataset.fingerprint);
    state: "running", "done", "failed" or "cancelled"."""

    key: str
    analysis: str
    model: str
    model_fingerprint: str
    dataset: str
    dataset_key: str
    split: str
    params: dict
    n_inputs: int
    chunk_size: int
    state: str = "running"
    done_inputs: int = 0
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    error: str = ""
    workers: str = ""  # where the chunks are computed: "" for this process, else e.g. "ray: 4 GPU workers"
    format_version: int = FORMAT_VERSION
    files: dict = field(default_factory=dict)  # a finished run's files: {"arrays/x.npy": [size, sha256], ...}
    skipped: list = field(default_factory=list)  # [name, reason] of each input left out: it could not be decoded

    @property
    def n_chunks(self) -> int:
        return -(-self.n_inputs // self.chunk_size)

    def chunks_done(self, done_inputs: int | None = None) -> int:
        """Finished chunks when done_inputs (default: the manifest's) are done: all chunks but the last hold
        chunk_size inputs, so the count of inputs tells how many chunks."""
        return -(-(self.done_inputs if done_inputs is None else done_inputs) // self.chunk_size)

    def chunk_starts(self) -> list[int]:
        return list(range(0, self.n_inputs, self.chunk_size))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_HASHES: dict[tuple[str, int, int], str] = {}  # (path, mtime_ns, size) -> sha256: a file is hashed once per change


def _sha256_cached(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _HASHES:
        _HASHES[key] = _sha256(path)
    return _HASHES[key]


def _write_atomic(path: Path, write) -> None:
    """write(tmp_path) then rename onto path; a full disk or unwritable folder becomes a StoreError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as f:  # on the disk before it takes the real name
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(
            f"Could not write {path}: {_why(e)}. Earlier runs are untouched; free space or choose "
            "another store (--store or HEADSCOPE_STORE)."
        ) from e


def _read(path: Path, read: Callable):
    """read(path); StoreError naming the file when it is damaged or unreadable."""
    try:
        return read(path)
    except (OSError, ValueError) as e:
        raise StoreError(
            f"{path.parent.parent.name}: {path.parent.name}/{path.name} is damaged ({e}); run it again to repair it."
        ) from e


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _why(e: OSError) -> str:
    """An OSError of the store in words."""
    if e.errno == errno.ENOSPC:
        return "the disk is full"
    if e.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return "the store folder is not writable"
    return e.strerror or str(e)


def _write_json(path: Path, obj) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(obj, indent=1, default=float)))


class Run:
    """One run's folder: its manifest, chunks and final arrays."""

    def __init__(self, root: Path):
        self.root = root

    # -- manifest -----------------------------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        try:
            return Manifest(**json.loads((self.root / "manifest.json").read_text()))
        except (OSError, ValueError, TypeError) as e:
            raise StoreError(f"{self.root} is not a readable run ({e}).") from e

    def save_manifest(self, m: Manifest) -> None:
        m.updated = time.time()
        _write_json(self.root / "manifest.json", asdict(m))

    def update(self, **changes) -> Manifest:
        m = self.manifest
        for k, v in changes.items():
            setattr(m, k, v)
        self.save_manifest(m)
        return m

    # -- chunks -------------------------------------------------------------------------------------------
    def _chunk(self, start: int) -> tuple[Path, Path]:
        return self.root / "chunks" / f"{start:010d}.npz", self.root / "chunks" / f"{start:010d}.json"

    def chunk_ok(self, start: int) -> bool:
        """The chunk at `start` was finished and its file matches its checksum."""
        data, meta = self._chunk(start)
        try:
            return json.loads(meta.read_text())["sha256"] == _sha256(data)
        except (OSError, ValueError, KeyError):
            return False

    def done_chunks(self) -> list[int]:
        return [s for s in self.manifest.chunk_starts() if self.chunk_ok(s)]

    def write_chunk(self, start: int, arrays: dict[str, np.ndarray]) -> None:
        """Store one chunk's per-input arrays (each [n, ...]); atomic: data first, then its checksum marker."""
        data, meta = self._chunk(start)
        data.parent.mkdir(parents=True, exist_ok=True)
        named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
        _write_atomic(data, lambda p: np.savez(open(p, "wb"), **named))
        n = len(next(iter(arrays.values())))
        _write_json(meta, {"start": start, "stop": start + n, "sha256": _sha256(data)})

    def read_chunk(self, start: int) -> dict[str, np.ndarray]:
        with np.load(self._chunk(start)[0], allow_pickle=False) as z:
            return {k: z[k] for k in z.files}

    # -- the finished run ---------------------------------------------------------------------------------
    def finish(
        self,
        tables: Callable[[dict[str, np.ndarray]], dict[str, pd.DataFrame]] | None = None,
        skipped: Callable[[np.ndarray], list] | None = None,
    ) -> None:
        """Concatenate the chunks into arrays/<name>.npy, write tables(arrays) as Parquet, drop the chunks, mark
        the run done (a kill in between leaves the chunks, and the rerun finishes again). skipped(rows): the
        [name, reason] of the inputs the arrays' rows leave out (they could not be decoded), for the manifest."""
        m = self.manifest
        arrays = concat_chunks([self.read_chunk(s) for s in m.chunk_starts()])
        left_out = skipped(arrays["row"]) if skipped else []
        (self.root / "arrays").mkdir(exist_ok=True)
        for name, values in arrays.items():
            _write_atomic(self.root / "arrays" / f"{name}.npy", lambda p, v=values: np.save(open(p, "wb"), v))
        (self.root / "tables").mkdir(exist_ok=True)
        for name, df in (tables(self.arrays()) if tables else {}).items():
            _write_atomic(self.root / "tables" / f"{name}.parquet", lambda p, d=df: d.to_parquet(p, index=False))
        written = sorted(p for folder in ("arrays", "tables") for p in (self.root / folder).iterdir() if p.is_file())
        for folder in ("arrays", "tables"):  # the new names on the disk too, before the run says done
            _fsync_folder(self.root / folder)
        files = {str(p.relative_to(self.root)): [p.stat().st_size, _sha256_cached(p)] for p in written}
        self.update(state="done", done_inputs=m.n_inputs, error="", files=files, skipped=left_out)
        shutil.rmtree(self.root / "chunks", ignore_errors=True)

    def damage(self) -> list[str]:
        """What is wrong with a finished run's files: each one missing, of another size or whose content no longer
        matches the checksum recorded when the run finished (hashes are cached while a file is unchanged); []
        when intact."""
        out = []
        for name, (size, sha) in self.manifest.files.items():
            path = self.root / name
            if not path.is_file():
                out.append(f"{name} is missing")
            elif path.stat().st_size != size or _sha256_cached(path) != sha:
                out.append(f"{name} does not match its checksum")
        return out

    def tidy(self) -> None:
        """Remove what a process killed while writing left behind: temporary files (`.<name>.<pid>.tmp`), and the
        chunks of a run already done (killed between marking it done and removing them). Call under the lock."""
        for tmp in self.root.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
        if (self.root / "chunks").exists() and self.manifest.state == "done":
            shutil.rmtree(self.root / "chunks", ignore_errors=True)

    def arrays(self, mmap: bool = True) -> dict[str, np.ndarray]:
        """The finished run's per-input arrays {name: [N, ...]} (memory-mapped: reading is instant); StoreError
        naming the file when one cannot be read."""
        return {
            p.stem: _read(p, lambda q: np.load(q, mmap_mode="r" if mmap else None, allow_pickle=False))
            for p in sorted((self.root / "arrays").glob("*.npy"))
        }

    def tables(self) -> dict[str, pd.DataFrame]:
        return {p.stem: _read(p, pd.read_parquet) for p in sorted((self.root / "tables").glob("*.parquet"))}

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    # -- the writer's lock ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self):
        """Hold the run's lock while writing it; StoreError naming the holder when another process has it.
        The OS releases it when the holder dies, however it dies."""
        path = self.root / "lock"
        try:
            f = open(path, "a+")
        except OSError as e:
            raise StoreError(f"Cannot write to run {self.root.name} ({_why(e)}); choose another store.") from e
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise StoreError(
                    f"Run {self.root.name} is being computed by {holder}; wait for it to finish or stop that process."
                ) from None
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
            f.flush()
            yield
        finally:
            f.close()

    def is_locked(self) -> bool:
        """Some process is writing this run now."""
        try:
            with open(self.root / "lock", "a+") as f:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return False
        except BlockingIOError:
            return True
        except OSError:
            return False

    def holder_pid(self) -> int | None:
        try:
            return int((self.root / "lock").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return None


def concat_chunks(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The per-input arrays of consecutive chunks as one array per name [N, ...] (see _concat); a chunk none of
    whose inputs could be decoded holds only its empty "row" and "label" and is passed over. StoreError when
    every chunk is such a chunk."""
    full = [c for c in chunks if len(c["row"])]
    if not full:
        raise StoreError("None of the run's inputs could be decoded: see the dataset's skipped files.")
    return {name: _concat([c[name] for c in full]) for name in full[0]}


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate per-input arrays along axis 0, padding trailing axes with NaN where chunks differ (text)."""
    shape = np.max([p.shape[1:] for p in parts], axis=0) if parts[0].ndim > 1 else ()
    if all(p.shape[1:] == tuple(shape) for p in parts):
        return np.concatenate(parts)
    padded = []
    for p in parts:
        pad = [(0, 0)] + [(0, int(s) - d) for s, d in zip(shape, p.shape[1:])]
        padded.append(np.pad(p.astype(np.float32), pad, constant_values=np.nan))
    return np.concatenate(padded)


class Store:
    """A folder of runs, `root`, where runs are written; the default store (no root given) also reads the runs of
    old_store(), the folders listed in `also`."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root else default_store()
        self.also = [] if root else [p for p in [old_store()] if p is not None]

    @property
    def folders(self) -> list[Path]:
        """root, then the folders whose runs it reads too."""
        return [self.root, *self.also]

    def run(self, key: str) -> Run:
        """The run of this key: in the first folder that has it (root first), else a new one in root."""
        found = next((f / key for f in self.folders if (f / key / "manifest.json").exists()), None)
        return Run(found or self.root / key)

    def open_or_create(self, manifest: Manifest) -> Run:
        """The run of manifest.key, created when new (an unwritable or full store raises StoreError)."""
        run = self.run(manifest.key)
        try:
            run.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(
                f"Cannot create the run folder {run.root} ({e.strerror}). Choose a writable store "
                "with --store or HEADSCOPE_STORE."
            ) from e
        if not (run.root / "manifest.json").exists():
            run.save_manifest(manifest)
        return run

    def runs(self) -> list[Run]:
        """Every run of root and `also`, by key; a key in two folders is root's."""
        found: dict[str, Path] = {}
        for folder in self.folders:
            if folder.is_dir():
                for p in sorted(folder.iterdir()):
                    if (p / "manifest.json").exists():
                        found.setdefault(p.name, p)
        return [Run(found[key]) for key in sorted(found)]

    def find(self, key: str) -> Run | None:
        """The finished, intact run of this key (in this format version), or None (a damaged one is computed again
        by the next run of it)."""
        run = self.run(key)
        try:
            m = run.manifest
            return run if m.state == "done" and m.format_version == FORMAT_VERSION and not run.damage() else None
        except StoreError:
            return None

    def index(self) -> pd.DataFrame:
        """One row per run: key, analysis, model, dataset, split, inputs, done, state (running, interrupted, done,
        failed, cancelled, or outdated: written by another result-format version), workers (where the chunks were
        computed), size, created, updated."""
        rows = []
        for run in self.runs():
            try:
                m = run.manifest
            except StoreError:
                continue
            state = (
                "outdated"
                if m.format_version != FORMAT_VERSION
                else "interrupted"
                if m.state == "running" and not run.is_locked()
                else m.state
            )
            rows.append(
                {
                    "key": m.key,
                    "analysis": m.analysis,
                    "model": m.model,
                    "dataset": m.dataset,
                    "split": m.split,
                    "inputs": m.n_inputs,
                    "done": m.done_inputs,
                    "state": state,
                    "workers": m.workers or "this machine",
                    "params": json.dumps(m.params, sort_keys=True),
                    "size_mb": run.size_bytes() / 2**20,
                    "created": pd.Timestamp(m.created, unit="s"),
                    "updated": pd.Timestamp(m.updated, unit="s"),
                }
            )
        return pd.DataFrame(
            rows,
            columns=[
                "key",
                "analysis",
                "model",
                "dataset",
                "split",
                "inputs",
                "done",
                "state",
                "workers",
                "params",
                "size_mb",
                "created",
                "updated",
            ],
        )

    def delete(self, key: str) -> None:
        run = self.run(key)
        if not run.root.is_dir():
            raise StoreError(f"No run {key} in {self.root}.")
        if run.is_locked():
            raise StoreError(f"Run {key} is being computed right now; stop it first.")
        try:
            shutil.rmtree(run.root)
        except OSError as e:
            raise StoreError(f"Could not delete run {key} ({_why(e)}).") from e
