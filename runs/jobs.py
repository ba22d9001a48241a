"""Dataset-scale jobs: run one analysis over a whole dataset (or a sample), chunk by chunk, into the store.

Each analysis is a `Job`: a function from one chunk of inputs to per-input arrays [n, ...], and one that
turns the finished arrays into summary tables. Chunks have a fixed composition (rows [start, start + chunk))
and each chunk is computed in batches of `batch_size`, so a resumed run gives exactly the numbers of an
uninterrupted one.

    from runs import precompute
    runs = precompute("digits-vit", "digits", analyses=["importance", "relevance"], n=256)
    runs[0].arrays()["accuracy"]      # [N, L, H] per-input drop in accuracy when each head is removed
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from analysis.evaluation import predict
from data import Dataset, load_dataset, match_labels
from models import HookedModel, load_model
from runs.store import Manifest, Run, Store, StoreError, run_key

Progress = Callable[[int, int], None] | None  # (inputs done, inputs in total)
DEFAULT_METHODS = ("rollout", "grad_rollout", "attnlrp")
BACKGROUND_BATCH = 32  # the app's background runs
CHUNK_INPUTS = 64  # inputs per stored chunk (rounded up to whole batches, so chunks keep the batch composition)


@dataclass(frozen=True)
class Chunk:
    """The inputs of one chunk: dataset (the chunk's rows as a Dataset), rows [n] positions in the run's
    dataset, labels [n] model class indices (-1 = unknown), rows_offset: where the chunk starts in the run."""

    dataset: Dataset
    rows: np.ndarray
    labels: np.ndarray
    rows_offset: int = 0


def _batches(n: int, size: int):
    return [np.arange(i, min(i + size, n)) for i in range(0, n, size)]


# -- the analyses ------------------------------------------------------------------------------------------
def _importance(model: HookedModel, chunk: Chunk, params: dict) -> dict[str, np.ndarray]:
    from analysis.importance import Sample, head_scores

    batch = model.prepare(list(chunk.dataset.inputs))
    labels = torch.as_tensor(chunk.labels) if (chunk.labels >= 0).any() else None
    scores = head_scores(model, Sample(batch, labels), tuple(params["metrics"]), batch_size=params["batch_size"])
    return {k: np.moveaxis(v, -1, 0).astype(np.float32) for k, v in scores.items()}  # [n, L, H]


def _importance_tables(model: HookedModel, arrays: dict[str, np.ndarray], params: dict) -> dict[str, pd.DataFrame]:
    from analysis.importance import scores_frame, summarise

    per = {k: np.moveaxis(np.asarray(arrays[k]), 0, -1) for k in list(params["metrics"]) + ["gradient"]}
    return {"summary": scores_frame(summarise(per))}


def read_importance(run: Run) -> dict:
    """A finished importance run in the layout of the view's live computation: {"scores": {metric: [L, H, N]}
    (the ablation metrics and the gradient), "metrics": the ablation metrics, "labels": [N] model class
    indices (-1 = unknown) or None when none is known, "rows": [N] dataset rows}."""
    arrays, metrics = run.arrays(), tuple(run.manifest.params["metrics"])
    scores = {k: np.moveaxis(np.asarray(arrays[k], dtype=np.float64), 0, -1) for k in metrics + ("gradient",)}
    labels = np.asarray(arrays["label"])
    return {
        "scores": scores,
        "metrics": metrics,
        "labels": labels if (labels >= 0).any() else None,
        "rows": np.asarray(arrays["row"]),
    }


def read_relevance(run: Run) -> dict:
    """A finished relevance run: {"maps": {method: [N, T']}, "real": [N, T'] bool (real tokens), "predicted",
    "labels" (-1 = unknown), "rows": [N], "disagreement": [N] (analysis.faithfulness.disagreement)}."""
    from analysis.faithfulness import disagreement

    arrays = run.arrays()
    maps = {
        k[len("map_") :]: np.nan_to_num(np.asarray(v, dtype=np.float32))
        for k, v in arrays.items()
        if k.startswith("map_")
    }
    width = next(iter(maps.values())).shape[1]
    real = np.arange(width)[None] < np.asarray(arrays["n_tokens"])[:, None]
    return {
        "maps": maps,
        "real": real,
        "predicted": np.asarray(arrays["predicted"]),
        "labels": np.asarray(arrays["label"]),
        "rows": np.asarray(arrays["row"]),
        "disagreement": disagreement(maps, real),
    }


def read_embedding(run: Run, names: tuple[str, str]):
    """A finished embedding run as the view's (analysis.embedding.SampleEmbedding, dataset rows [M]), over the
    M inputs with a label the model knows; names: the (summary token, other tokens) group names."""
    from analysis.embedding import Identifiability, SampleEmbedding

    a = run.arrays()
    keep = np.flatnonzero(np.asarray(a["label"]) >= 0)
    ident = Identifiability(
        np.asarray(a["identifiability"])[keep].T.astype(np.float64),
        np.moveaxis(np.asarray(a["token_identifiability"])[keep], 0, 1).astype(np.float64),
        names,
    )
    sample = SampleEmbedding(
        ident,
        np.moveaxis(np.asarray(a["summary_scores"])[keep], 0, 1),
        np.moveaxis(np.asarray(a["embeddings"])[keep], 0, 1),
        np.asarray(a["label"])[keep],
    )
    return sample, np.asarray(a["row"])[keep]


def _relevance(model: HookedModel, chunk: Chunk, params: dict) -> dict[str, np.ndarray]:
    from analysis.relevance import explain

    out: dict[str, list] = {"predicted": [], "n_tokens": []} | {f"map_{m}": [] for m in params["methods"]}
    width = 0
    for idx in _batches(len(chunk.rows), params["batch_size"]):
        batch = model.prepare([chunk.dataset.inputs[int(i)] for i in idx])
        with torch.no_grad():
            pred = model.run(batch, capture=False).logits.argmax(-1)
        out["predicted"].append(pred.cpu().numpy())
        out["n_tokens"].append((batch.token_mask.sum(1) - model.spec.n_prefix).cpu().numpy())
        for m in params["methods"]:
            # a text run without read_at predates reading at the word embeddings: resume it as it began
            maps = explain(model, batch, m, target=pred, read_at=params.get("read_at", "embedding"))
            out[f"map_{m}"].append(maps)
            width = max(width, maps.shape[1])
    result = {"predicted": np.concatenate(out["predicted"]), "n_tokens": np.concatenate(out["n_tokens"])}
    for m in params["methods"]:
        result[f"map_{m}"] = np.concatenate(
            [
                np.pad(x.astype(np.float32), ((0, 0), (0, width - x.shape[1])), constant_values=np.nan)
                for x in out[f"map_{m}"]
            ]
        )
    return result


def _attention(model: HookedModel, chunk: Chunk, params: dict) -> dict[str, np.ndarray]:
    from analysis.attention import dataset_statistics

    stats = dataset_statistics(model, list(chunk.dataset.inputs), batch_size=params["batch_size"])
    return {k: np.asarray(v, dtype=np.float32) for k, v in stats.items()}


def _embedding(model: HookedModel, chunk: Chunk, params: dict) -> dict[str, np.ndarray]:
    from analysis.embedding import embed_sample

    inputs = list(chunk.dataset.inputs)
    labels = chunk.labels.copy()
    if (labels < 0).any():  # no true class: identifiability of the model's own prediction
        unknown = np.flatnonzero(labels < 0)
        labels[unknown] = model.logits(model.prepare([inputs[i] for i in unknown])).argmax(-1).cpu().numpy()
    s = embed_sample(model, inputs, labels, where=params["where"], batch_size=params["batch_size"])
    return {
        "identifiability": s.ident.summary.T.astype(np.float32),  # [n, L]
        "token_identifiability": np.moveaxis(s.ident.tokens, 1, 0).astype(np.float16),  # [n, L, T]
        "summary_scores": np.moveaxis(s.summary_scores, 1, 0).astype(np.float32),  # [n, L, C]
        "embeddings": np.moveaxis(s.embeddings, 1, 0).astype(np.float32),  # [n, L+1, D]
        "target": labels,
    }


TOP_K = 5


def _predictions(model: HookedModel, chunk: Chunk, params: dict) -> dict[str, np.ndarray]:
    """Per input: the top-5 classes and probabilities, and the probability and loss of the true class (NaN
    where the label is unknown)."""
    probs = predict(model, chunk.dataset.inputs, batch_size=params["batch_size"])  # [n, C]
    k = min(TOP_K, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    known = chunk.labels >= 0
    true_prob = np.where(known, probs[np.arange(len(probs)), np.clip(chunk.labels, 0, None)], np.nan)
    return {
        "top_classes": top,
        "top_probs": np.take_along_axis(probs, top, 1).astype(np.float32),
        "true_prob": true_prob.astype(np.float32),
        "loss": (-np.log(np.clip(true_prob, 1e-12, 1))).astype(np.float32),
    }


def _predictions_tables(model: HookedModel, arrays: dict[str, np.ndarray], params: dict) -> dict[str, pd.DataFrame]:
    """Accuracy per class over the inputs with a known label."""
    label, pred = np.asarray(arrays["label"]), np.asarray(arrays["top_classes"])[:, 0]
    classes = np.unique(label[label >= 0])
    return {
        "per_class": pd.DataFrame(
            {
                "class": [model.spec.class_names[c] for c in classes],
                "n": [int((label == c).sum()) for c in classes],
                "accuracy": [float((pred[label == c] == c).mean()) for c in classes],
            }
        )
    }


FAITHFULNESS_STEPS = 16


def _faithfulness(model: HookedModel, chunk: Chunk, params: dict) -> dict[str, np.ndarray]:
    """Per-input faithfulness curves and localisation counts of every method and a random map (see
    analysis.faithfulness.per_input_scores); the random map of batch b of the run uses seed b, as in one
    in-memory evaluation of the whole run. Stored names use '__' for '/'."""
    from analysis.faithfulness import per_input_scores

    first_batch = int(chunk.rows_offset) // params["batch_size"]
    scores = per_input_scores(
        model,
        chunk.dataset,
        params["methods"],
        len(chunk.rows),
        params["batch_size"],
        FAITHFULNESS_STEPS,
        seed=first_batch,
        start=params.get("insertion_start"),
    )
    return {
        k.replace("/", "__"): np.asarray(v, dtype=np.float32) if v.dtype.kind == "f" else v
        for k, v in scores.items()
        if not k.startswith("map/")
    }


def _faithfulness_defaults(model: HookedModel, methods: Sequence[str]) -> dict:
    """The methods, and insertion from the modality's default start (analysis.faithfulness.INSERTION_STARTS)."""
    from analysis.faithfulness import insertion_starts

    return {"methods": list(methods), "insertion_start": insertion_starts(model.spec.modality)[0]}


def _faithfulness_tables(model: HookedModel, arrays: dict[str, np.ndarray], params: dict) -> dict[str, pd.DataFrame]:
    from analysis.faithfulness import RANDOM, summarise_scores

    order = list(params["methods"]) + [RANDOM]  # the arrays come back sorted by file name
    scores = {
        k.replace("__", "/"): np.asarray(v)
        for k, v in sorted(arrays.items(), key=lambda kv: order.index(kv[0].split("__")[-1]) if "__" in kv[0] else -1)
        if "__" in k
    }
    table, curves = summarise_scores(scores, (model.spec.image_size or 0) ** 2, FAITHFULNESS_STEPS)
    return {"scores": table, "curves": curves}


# spectral_metrics keys with the batch on axis 1 ([L(+1), B, ...]), stored as [N, L(+1), ...]
SPECTRAL_PER_INPUT = (
    "resid_ratio",
    "resid_share",
    "attn_out_ratio",
    "attn_out_share",
    "mlp_out_ratio",
    "mlp_out_share",
    "rank",
    "entropy",
    "profile",
    "variance",
)


def _spectral(model: HookedModel, chunk: Chunk, params: dict) -> dict[str, np.ndarray]:
    """Per-input spectral metrics per layer (analysis.spectral.spectral_metrics without the per-head responses)."""
    from analysis.spectral import spectral_metrics

    parts: dict[str, list] = {}
    for idx in _batches(len(chunk.rows), params["batch_size"]):
        out = spectral_metrics(model, model.prepare([chunk.dataset.inputs[int(i)] for i in idx]), attention=False)
        for k in SPECTRAL_PER_INPUT:
            if k in out:
                parts.setdefault(k, []).append(np.moveaxis(np.asarray(out[k], dtype=np.float32), 1, 0))
    return {k: np.concatenate(v) for k, v in parts.items()}


@dataclass(frozen=True)
class Job:
    """One analysis the command line can precompute: defaults(model) -> its parameters; compute(model, chunk,
    params) -> per-input arrays [n, ...]; tables(model, arrays, params) -> summary tables of the finished run."""

    name: str
    description: str
    compute: Callable
    defaults: Callable
    tables: Callable | None = None


JOBS = {
    "predictions": Job(
        "predictions",
        "top-5 classes and probabilities, probability and loss of the true class [N]; accuracy per class",
        _predictions,
        lambda model, methods: {},
        _predictions_tables,
    ),
    "importance": Job(
        "importance",
        "per-input ablation deltas of every head under each metric, and the gradient score [N, L, H]",
        _importance,
        lambda model, methods: {"metrics": list(_importance_metrics(model))},
        _importance_tables,
    ),
    "relevance": Job(
        "relevance",
        "relevance maps per method for the predicted class [N, T'] and the prediction",
        _relevance,
        lambda model, methods: (
            {"methods": list(methods)} | ({"read_at": "words"} if model.spec.modality == "text" else {})
        ),
    ),
    "attention": Job(
        "attention",
        "attention statistics per input and head: distance, rings, entropy, CLS/sink mass",
        _attention,
        lambda model, methods: {},
    ),
    "faithfulness": Job(
        "faithfulness",
        "per input and method (plus a random map): perturbation curves (positive, "
        "negative), deletion/insertion curves, with masks the pointing game and segmentation counts; "
        "the AUC table and mean curves",
        _faithfulness,
        _faithfulness_defaults,
        _faithfulness_tables,
    ),
    "spectral": Job(
        "spectral",
        "per layer: HC/DC ratio and HC share of the residual stream, attention and MLP outputs, "
        "rank collapse, attention entropy per head; for images the Fourier profile and feature-map "
        "variance",
        _spectral,
        lambda model, methods: {},
    ),
    "embedding": Job(
        "embedding",
        "identifiability per layer [N, L], class scores and embeddings of the summary token per layer",
        _embedding,
        lambda model, methods: {"where": "resid"},
    ),
}


def _importance_metrics(model: HookedModel) -> tuple[str, ...]:
    from analysis.importance import available_metrics

    return available_metrics(model)


def check_analyses(names: Sequence[str]) -> list[str]:
    unknown = [a for a in names if a not in JOBS]
    if unknown:
        raise ValueError(f"Unknown analysis {', '.join(map(repr, unknown))}: choose from {', '.join(JOBS)}.")
    return list(names)


# -- keys ---------------------------------------------------------------------------------------------------
_FINGERPRINTS: weakref.WeakKeyDictionary[HookedModel, str] = weakref.WeakKeyDictionary()


def model_fingerprint(model: HookedModel) -> str:
    """A hash of the model's config, class names and every weight (cached per model object)."""
    if model not in _FINGERPRINTS:
        h = hashlib.sha256()
        config = getattr(model.net, "config", None)
        h.update((config.to_json_string() if config is not None else type(model.net).__name__).encode())
        h.update(json.dumps(list(model.spec.class_names)).encode())
        for name, t in sorted(model.net.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        _FINGERPRINTS[model] = h.hexdigest()[:24]
    return _FINGERPRINTS[model]


_BUNDLED_FINGERPRINTS: dict[str, str] = {}  # a bundled set's key -> its content hash (fixed within a process)


def dataset_fingerprint(ds: Dataset) -> str:
    """The user source's key (file list, sizes, mtimes), or a hash of a bundled set's content (computed once per
    bundled set and process: the views ask on every run)."""
    if not ds.bundled:
        return ds.key
    if ds.key in _BUNDLED_FINGERPRINTS:
        return _BUNDLED_FINGERPRINTS[ds.key]
    h = hashlib.sha256(ds.key.encode())  # in memory, so hash what is there
    for x in ds.inputs:
        h.update(x.encode() if isinstance(x, str) else np.asarray(x).tobytes())
    h.update(np.asarray(ds.labels).tobytes())
    fingerprint = f"{ds.key}|{h.hexdigest()[:16]}"
    if ds.key:  # a key names the content (Dataset.key); a set made without one is hashed every time
        _BUNDLED_FINGERPRINTS[ds.key] = fingerprint
    return fingerprint


def run_rows(ds: Dataset, n: int | None) -> np.ndarray:
    """The dataset rows a run covers: all of them (n None), else the dataset's sample of n (Dataset.sample_rows)."""
    return np.arange(len(ds)) if n is None or n >= len(ds) else ds.sample_rows(n)


def manifest_for(
    model: HookedModel,
    model_name: str,
    ds: Dataset,
    analysis: str,
    n: int | None,
    batch_size: int,
    methods: Sequence[str] = DEFAULT_METHODS,
    chunk_size: int | None = None,
) -> Manifest:
    """What a run of `analysis` over `ds` would be (its key fixes the model, data and parameters)."""
    job = JOBS[analysis]
    rows = run_rows(ds, n)
    params = job.defaults(model, methods) | {"batch_size": int(batch_size), "n": int(len(rows))}
    data = dataset_fingerprint(ds)
    key = run_key(model_fingerprint(model), data, analysis, params)
    return Manifest(
        key=key,
        analysis=analysis,
        model=model_name,
        model_fingerprint=model_fingerprint(model),
        dataset=ds.source,
        dataset_key=data,
        split=ds.split,
        params=params,
        n_inputs=len(rows),
        chunk_size=int(chunk_size or batch_size * -(-CHUNK_INPUTS // batch_size)),
    )


# -- running ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shard:
    """One chunk of a run to compute: start (its first position in the run), rows [n] dataset rows, labels [n]
    model class indices (-1 = unknown). Ray workers get shards: indices, never decoded inputs."""

    start: int
    rows: np.ndarray
    labels: np.ndarray

    def describe(self, ds: Dataset) -> str:
        """'inputs 64-127 (first: cat/001.jpg)' for error messages."""
        first = ds.names[int(self.rows[0])] if len(self.rows) else ""
        return f"inputs {self.start}-{self.start + len(self.rows) - 1} (first: {first})"


def pending_shards(ds: Dataset, manifest: Manifest, done: set[int], class_names: Sequence[str]) -> list[Shard]:
    """The run's chunks not in `done`, as shards (the run's rows and their labels in the model's classes)."""
    rows = run_rows(ds, manifest.params["n"])
    labels = match_labels(class_names, ds.class_names).to_model(np.asarray(ds.labels)[rows])
    return [
        Shard(s, rows[s : s + manifest.chunk_size], labels[s : s + manifest.chunk_size])
        for s in manifest.chunk_starts()
        if s not in done
    ]


def compute_shard(model: HookedModel, ds: Dataset, manifest: Manifest, shard: Shard) -> dict[str, np.ndarray]:
    """One chunk's per-input arrays [n, ...], with its dataset rows and model labels."""
    arrays = JOBS[manifest.analysis].compute(
        model, Chunk(ds.subset(shard.rows), shard.rows, shard.labels, shard.start), manifest.params
    )
    return arrays | {"row": shard.rows.astype(np.int64), "label": shard.labels}


# computes the given shards and yields (start, arrays) as each finishes, in any order; raises after the last
# one when some could not be computed (runs.cluster.RayExecutor is one)
Executor = Callable[[list[Shard]], Iterator[tuple[int, dict[str, np.ndarray]]]]


def run_job(
    model: HookedModel,
    ds: Dataset,
    manifest: Manifest,
    store: Store,
    force: bool = False,
    progress: Progress = None,
    fail_after_chunks: int | None = None,
    executor: Executor | None = None,
) -> Run:
    """Compute (or resume) one run into the store; returns it finished. A finished run with the same key is
    returned as it is unless force. Chunks are computed here one after another, or by `executor` (e.g. on a Ray
    cluster); either way this process alone writes the run. fail_after_chunks: stop with an error after that
    many new chunks (tests)."""
    found = store.find(manifest.key)
    if found is not None and not force:
        if progress:
            progress(manifest.n_inputs, manifest.n_inputs)
        return found
    run = store.open_or_create(manifest)
    with run.lock():
        if force:
            run.save_manifest(manifest)
        done = set(run.done_chunks())
        finished = sum(min(manifest.chunk_size, manifest.n_inputs - s) for s in done)
        run.update(state="running", error="", done_inputs=finished, workers=manifest.workers)
        shards = pending_shards(ds, manifest, done, model.spec.class_names)
        if progress:
            progress(finished, manifest.n_inputs)
        written = 0
        try:
            results = (
                executor(shards) if executor else ((s.start, compute_shard(model, ds, manifest, s)) for s in shards)
            )
            for start, arrays in results:
                run.write_chunk(start, arrays)
                finished += len(arrays["row"])
                run.update(done_inputs=finished)
                if progress:
                    progress(finished, manifest.n_inputs)
                written += 1
                if fail_after_chunks is not None and written >= fail_after_chunks:
                    raise RuntimeError(f"stopped after {written} chunk(s) (fault injection)")

            def tables(arrays: dict[str, np.ndarray]) -> dict[str, pd.DataFrame]:
                names = np.asarray(ds.names)[np.asarray(arrays["row"])]
                label = np.asarray(arrays["label"])
                inputs = pd.DataFrame(
                    {
                        "row": arrays["row"],
                        "name": names,
                        "label": label,
                        "label_name": [model.spec.class_names[c] if c >= 0 else "" for c in label],
                    }
                )
                job = JOBS[manifest.analysis]
                return {"inputs": inputs} | (job.tables(model, arrays, manifest.params) if job.tables else {})

            run.finish(tables)
        except (KeyboardInterrupt, SystemExit):
            run.update(state="cancelled")
            raise
        except StoreError:
            raise
        except Exception as e:
            run.update(state="failed", error=f"{type(e).__name__}: {e}")
            raise
    return run


def precompute(
    model_name: str,
    source: str,
    split: str | None = None,
    analyses: Sequence[str] = ("importance",),
    methods: Sequence[str] = DEFAULT_METHODS,
    n: int | None = None,
    batch_size: int = 32,
    device: str | None = None,
    store: str | None = None,
    force: bool = False,
    progress: Callable[[Manifest], Progress] | None = None,
    threads: int | None = None,
    ray: str | None = None,
    workers: int | None = None,
    retries: int = 2,
    faults=None,
) -> list[Run]:
    """Load the model and the dataset, and run each analysis into the store (see run_job). progress(manifest)
    returns the (done, total) callback of that run; threads: torch's CPU threads (per Ray worker with ray).

    ray: compute on a Ray cluster instead of this process ("local", "auto" or an address; runs.cluster), with
    `workers` workers (default: the cluster's GPUs, else its CPUs / threads), each shard tried 1 + `retries`
    times; faults: runs.cluster.Faults (tests only). The results and keys are those of a single-process run."""
    analyses = check_analyses(analyses)
    if threads is not None and ray is None:
        torch.set_num_threads(threads)
    with contextlib.ExitStack() as stack:
        if ray:  # reach the cluster first: a wrong address fails before the model loads
            from runs.cluster import RayExecutor, connect

            stack.enter_context(connect(ray, cpus=workers * (threads or 1) if workers else None))
        model = load_model(model_name, device="cpu" if ray else device)  # with ray this process only writes
        if {"relevance", "faithfulness"} & set(analyses):
            from analysis.relevance import check_method

            for m in methods:
                check_method(model, m)
        ds = load_dataset(source, split)
        if ds.modality != model.spec.modality:
            raise ValueError(f"{source} holds {ds.modality}s, but {model_name} reads {model.spec.modality}s.")
        st = Store(store)
        executor = None
        if ray:
            executor = RayExecutor(
                model_name,
                ds,
                model_fingerprint(model),
                workers,
                threads or 1,
                gpu=device != "cpu",
                retries=retries,
                faults=faults,
            )
            stack.callback(executor.close)
        out = []
        for a in analyses:
            m = manifest_for(model, model_name, ds, a, n, batch_size, methods)
            m.workers = executor.description if executor else ""
            out.append(
                run_job(
                    model,
                    ds,
                    m,
                    st,
                    force,
                    progress(m) if progress else None,
                    executor=executor.on(m) if executor else None,
                )
            )
    return out
