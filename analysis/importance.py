"""Head importance (the Head-importance section of the methods document under docs/): ablation and gradient
scores, partial and cumulative pruning, agreement between scores, per-class scores.

Every head's output (before the output projection) is multiplied by a gate g[l, h] (1 = unchanged); the
model interface applies the gates (`model.run(..., head_gates=g)`, a hook at each block's attn.hook_z).

Shapes: L layers, H heads, N inputs in the sample, C classes. Head-level results are [L, H]; per-sample
scores [L, H, N]. Tables are long DataFrames with columns (layer, head, metric, value) (+ class).

Metrics (per input, then averaged over the sample):
  accuracy   1 if the top class is the target class
  loss       cross-entropy of the class scores against the target class
  true_prob  softmax probability of the target class
  cosine     (text models) cosine distance of the pooled embedding to the ungated model's
The target is the true label when the sample has labels the model knows, otherwise the ungated model's
own prediction. For text encoders with a prompt head, the class scores are the prompt-head scores.
Importance is signed so that a positive score always means "removing the head hurts":
accuracy / true_prob: M(g = 1) - M(g[l, h] = 0); loss / cosine: M(g[l, h] = 0) - M(g = 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from data.labels import match_labels
from models import Batch, HookedModel, TextModel

Progress = Callable[[float, str], None] | None

LABEL_METRICS = ("accuracy", "loss", "true_prob")
METRICS = LABEL_METRICS + ("cosine",)
SIGN = {"accuracy": 1.0, "loss": -1.0, "true_prob": 1.0, "cosine": -1.0}
METRIC_TITLES = {
    "accuracy": "accuracy",
    "loss": "loss",
    "true_prob": "probability of the target class",
    "cosine": "cosine distance of the pooled embedding",
    "gradient": "gradient |dL/dg|",
    "gradient_norm": "gradient |dL/dg|, L2-normalised per layer",
}
GRADIENT = ("gradient", "gradient_norm")
PARTIAL_STEPS = 11  # gate values of partial pruning: 1.0, 0.9, ..., 0.0


# -- the sample ------------------------------------------------------------------------------------------
@dataclass
class Sample:
    """Inputs and their targets. batch: the prepared inputs (N of them); labels: [N] class indices into
    the model's class names, -1 for an input whose label the model does not know (its target is the
    ungated model's prediction), or None when no input has a label the model knows."""

    batch: Batch
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.batch)

    def select(self, idx) -> Sample:
        idx = list(idx)
        return Sample(self.batch.select(idx), None if self.labels is None else self.labels[idx])


def make_sample(
    model: HookedModel, inputs: Sequence, labels: Sequence[int] | None = None, label_names: Sequence[str] | None = None
) -> Sample:
    """Prepare raw inputs (images or strings). labels: [N] indices into label_names (the dataset's class
    names; default the model's), -1 = no label; mapped to the model's classes by data.match_labels. Inputs
    whose class the model does not know get label -1; if none is known the sample is unlabelled."""
    batch = model.prepare(list(inputs))
    if labels is None:
        return Sample(batch, None)
    names = list(model.spec.class_names)
    mapped = match_labels(names, list(label_names) if label_names is not None else names).to_model(labels)
    if not (mapped >= 0).any():
        return Sample(batch, None)
    return Sample(batch, torch.as_tensor(mapped, dtype=torch.long))


def targets(labels: torch.Tensor | None, logits: torch.Tensor) -> torch.Tensor:
    """[N] the target class of each input: its label where known (>= 0), else the argmax of logits [N, C]."""
    pred = logits.argmax(-1)
    return pred if labels is None else torch.where(labels.to(pred.device) >= 0, labels.to(pred.device), pred)


def as_sample(model: HookedModel, data) -> Sample:
    """A Sample from a Sample, a prepared Batch (unlabelled) or a data.Dataset."""
    if isinstance(data, Sample):
        return data
    if isinstance(data, Batch):
        return Sample(data, None)
    if hasattr(data, "inputs") and hasattr(data, "labels"):
        return make_sample(model, data.inputs, data.labels, getattr(data, "class_names", None))
    raise TypeError(f"Expected a Sample, a Batch or a Dataset, got {type(data).__name__}.")


def available_metrics(model: HookedModel) -> tuple[str, ...]:
    """The ablation metrics that apply to the model (cosine needs a pooled text embedding)."""
    return METRICS if model.spec.modality == "text" else LABEL_METRICS


def default_metrics(model: HookedModel, sample: Sample) -> tuple[str, ...]:
    """What the view computes: label metrics when there are labels (plus cosine for text); for text
    without labels the change of the pooled embedding comes first."""
    if model.spec.modality != "text":
        return LABEL_METRICS
    return METRICS if sample.labels is not None else ("cosine",) + LABEL_METRICS


def _check_metrics(model: HookedModel, metrics: Sequence[str]) -> tuple[str, ...]:
    metrics = tuple(metrics)
    allowed = available_metrics(model)
    bad = [m for m in metrics if m not in allowed]
    if bad or not metrics:
        raise ValueError(f"Unknown or inapplicable metric(s) {bad or metrics}: choose from {', '.join(allowed)}.")
    return metrics


# -- running gate configurations -----------------------------------------------------------------------
@dataclass
class _Reference:
    """What an input's metrics are measured against: the target class [n] and the ungated pooled
    embedding [n, D] (text, cosine only)."""

    target: torch.Tensor
    embedding: torch.Tensor | None


def _run(model: HookedModel, batch: Batch, want_emb: bool, **run_kwargs):
    """(logits [R, C], pooled embedding [R, D] or None, trace); R may be a multiple of len(batch)."""
    tr = model.run(batch, **run_kwargs)
    emb = None
    if want_emb:
        if tr.hidden is None or not isinstance(model, TextModel):
            raise ValueError("the cosine metric needs a text encoder's pooled last hidden state.")
        mask = batch.token_mask.to(tr.hidden.device).repeat(tr.hidden.shape[0] // len(batch), 1)
        emb = model.pool(tr.hidden, mask)
    return tr.logits, emb, tr


def _heads(model: HookedModel, tr, layer: int, batch: Batch, want_emb: bool) -> torch.Tensor:
    """Block `layer`'s head outputs [n, T', H*dh] (before gating) in the kept forward `tr`: gates act after
    attention, so every gate setting first changed at `layer` resumes from them (the readout rows only
    when that is the last block and the metrics need no pooled embedding)."""
    rows = model.readout_rows if layer == model.spec.n_layers - 1 and not want_emb else None
    return model.head_outputs(layer, tr.resid_list[layer], batch, rows)


def _resume(model: HookedModel, batch: Batch, want_emb: bool, tr, layer: int, heads: torch.Tensor, gates: torch.Tensor):
    """_run of gate settings [k * n, L, H] (k settings in blocks) whose first changed layer is `layer`,
    resumed inside that block from the kept forward `tr` and its head outputs; the last block computes
    only the tokens the head reads unless a pooled embedding is wanted."""
    k = gates.shape[0] // len(batch)
    return _run(
        model,
        batch,
        want_emb,
        capture=False,
        head_gates=gates,
        start_layer=layer,
        start_resid=tr.resid_list[layer].repeat(k, 1, 1),
        start_heads=heads.repeat(k, 1, 1),
        readout_only=not want_emb,
    )


def _metric_values(
    logits: torch.Tensor, emb: torch.Tensor | None, ref: _Reference, metrics: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Per-row metric values [R] for R = n_configs * n rows (configs in blocks, as Batch.repeat tiles)."""
    n_rep = logits.shape[0] // ref.target.shape[0]
    target = ref.target.to(logits.device).repeat(n_rep)
    logits = logits.float()
    out = {}
    if "accuracy" in metrics:
        out["accuracy"] = (logits.argmax(-1) == target).float()
    if "loss" in metrics:
        out["loss"] = F.cross_entropy(logits, target, reduction="none")
    if "true_prob" in metrics:
        out["true_prob"] = logits.softmax(-1).gather(1, target[:, None])[:, 0]
    if "cosine" in metrics:
        if emb is None or ref.embedding is None:
            raise ValueError("the cosine metric needs the pooled embeddings of the run and of the reference.")
        out["cosine"] = 1.0 - F.cosine_similarity(emb.float(), ref.embedding.float().repeat(n_rep, 1), dim=-1)
    return out


def _reference(sample: Sample, logits: torch.Tensor, emb: torch.Tensor | None) -> _Reference:
    """Targets and embeddings from the ungated model's logits [n, C] and pooled embeddings on `sample`."""
    return _Reference(targets(sample.labels, logits), emb)


def _rows(model: HookedModel, max_rows: int | None) -> int:
    """Rows per batched forward: big on a GPU, where batching pays; ~256 on a CPU, where larger tiles
    of gate settings run slower per row than separate forwards (cache-bound attention)."""
    return max_rows or (4096 if model.device.type == "cuda" else 256)


def _chunks(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def _gates_tensor(model: HookedModel, gates) -> torch.Tensor:
    L, H = model.spec.n_layers, model.spec.n_heads
    g = torch.ones(L, H) if gates is None else torch.as_tensor(gates, dtype=torch.float32)
    if g.shape != (L, H):
        raise ValueError(f"gates must be [L, H] = [{L}, {H}], got {tuple(g.shape)}.")
    return g.to(model.device)


def evaluate_gates(
    model: HookedModel,
    data,
    configs,
    metrics: Sequence[str] = LABEL_METRICS,
    batch_size: int = 256,
    max_rows: int | None = None,
    progress: Progress = None,
) -> dict[str, np.ndarray]:
    """Metric values [K, N] of K gate configurations `configs` [K, L, H] over the sample.

    Fast path: duplicate configurations run once; one forward keeps the residual stream, and the
    configurations whose first changed layer is l run together through the batch dimension from block l's
    head outputs (at most max_rows rows a forward; default by device, see `_rows`), the last block at the
    readout tokens only. All-ones configurations reuse the first forward."""
    sample = as_sample(model, data)
    metrics = _check_metrics(model, metrics)
    configs = torch.as_tensor(configs, dtype=torch.float32).to(model.device)
    L = model.spec.n_layers
    unique, inverse = torch.unique(configs, dim=0, return_inverse=True)
    changed = (unique != 1).any(-1)  # [U, L]
    first = torch.where(changed.any(-1), changed.float().argmax(-1), L)  # first changed layer, L = none
    groups = [(l, (first == l).nonzero()[:, 0].tolist()) for l in range(L + 1) if bool((first == l).any())]
    U, N = unique.shape[0], len(sample)
    vals = {m: np.empty((U, N), dtype=np.float64) for m in metrics}
    chunks = _chunks(N, batch_size)
    done = 0
    for idx in chunks:
        part, n = sample.select(idx), len(idx)
        cols = slice(idx[0], idx[-1] + 1)
        logits, emb, tr = _run(model, part.batch, "cosine" in metrics, capture=True)
        ref = _reference(part, logits, emb)
        base = _metric_values(logits, emb, ref, metrics)
        per = max(1, _rows(model, max_rows) // n)
        for l, members in groups:
            if l == L:  # all gates 1: the first forward
                for m in metrics:
                    vals[m][members, cols] = base[m].double().cpu().numpy()[None]
                continue
            heads = _heads(model, tr, l, part.batch, "cosine" in metrics)
            for k0 in range(0, len(members), per):
                ks = members[k0 : k0 + per]
                gates = unique[ks].repeat_interleave(n, 0)  # [len(ks) * n, L, H], configurations in blocks
                logits, emb, _ = _resume(model, part.batch, "cosine" in metrics, tr, l, heads, gates)
                for m, v in _metric_values(logits, emb, ref, metrics).items():
                    vals[m][ks, cols] = v.reshape(len(ks), n).double().cpu().numpy()
                done += len(ks)
                if progress:
                    progress(done / (U * len(chunks)), f"{done}/{U * len(chunks)} gate settings")
    inverse = inverse.cpu().numpy()
    return {m: v[inverse] for m, v in vals.items()}


# -- ablation importance ----------------------------------------------------------------------------------
def ablation_per_sample(
    model: HookedModel,
    data,
    metrics: Sequence[str] = LABEL_METRICS,
    base_gates=None,
    batch_size: int = 256,
    max_rows: int | None = None,
    progress: Progress = None,
) -> dict[str, np.ndarray]:
    """Per-input importance [L, H, N] of every head by exhaustive single-head ablation (L*H + 1 settings).

    base_gates [L, H] (default all 1): the setting each head is removed from (iterative pruning).
    Fast path: one forward keeps the residual stream entering each block; for layer l the H settings
    that zero one of its heads run together through the batch dimension, resuming block l after its
    attention (heads of layer l cannot change anything before their output projection), with the last
    block computed at the readout tokens only."""
    sample = as_sample(model, data)
    metrics = _check_metrics(model, metrics)
    L, H = model.spec.n_layers, model.spec.n_heads
    base = _gates_tensor(model, base_gates)
    N = len(sample)
    out = {m: np.empty((L, H, N), dtype=np.float64) for m in metrics}
    eye = torch.eye(H, device=model.device)
    chunks = _chunks(N, batch_size)
    ungated = bool((base == 1).all())
    for ci, idx in enumerate(chunks):
        part, n = sample.select(idx), len(idx)
        logits, emb, tr = _run(model, part.batch, "cosine" in metrics, capture=True, head_gates=base)
        ref = (
            _reference(part, logits, emb)
            if ungated
            else _reference(part, *_run(model, part.batch, "cosine" in metrics, capture=False)[:2])
        )
        base_vals = _metric_values(logits, emb, ref, metrics)
        per = max(1, _rows(model, max_rows) // n)
        for l in range(L):
            heads = _heads(model, tr, l, part.batch, "cosine" in metrics)
            for h0 in range(0, H, per):
                hs = list(range(h0, min(h0 + per, H)))
                gates = base.repeat(len(hs), 1, 1)
                gates[:, l] = gates[:, l] * (1 - eye[hs])  # setting j zeroes head hs[j] of layer l
                gates = gates.repeat_interleave(n, 0)
                logits, emb, _ = _resume(model, part.batch, "cosine" in metrics, tr, l, heads, gates)
                for m, v in _metric_values(logits, emb, ref, metrics).items():
                    drop = SIGN[m] * (base_vals[m][None] - v.reshape(len(hs), n))
                    out[m][l, h0 : h0 + len(hs), idx[0] : idx[-1] + 1] = drop.double().cpu().numpy()
            if progress:
                progress((ci + (l + 1) / L) / len(chunks), f"layer {l + 1}/{L} ablated")
    return out


def ablation_cost(model: HookedModel) -> float:
    """Rough cost of `ablation_per_sample` in forwards over the sample (the naive loop: L*H + 1), counting a
    block as 1/L forward, its attention 1/3 and the rest 2/3 of a block, and a readout-only block 1/6."""
    L, H = model.spec.n_layers, model.spec.n_heads
    last = 1 / 6 if model.readout_rows else 1.0
    tails = sum(2 / 3 + (L - 2 - l) + last for l in range(L - 1)) + (0.0 if model.readout_rows else 2 / 3)
    return 1 + (H * tails + (L - 1) / 3) / L


def ablation_naive(
    model: HookedModel, data, metrics: Sequence[str] = LABEL_METRICS, progress: Progress = None
) -> dict[str, np.ndarray]:
    """The reference loop for `ablation_per_sample`: one full forward per zeroed head. [L, H, N]."""
    sample = as_sample(model, data)
    metrics = _check_metrics(model, metrics)
    L, H = model.spec.n_layers, model.spec.n_heads
    out = {m: np.empty((L, H, len(sample))) for m in metrics}
    logits, emb, _ = _run(model, sample.batch, "cosine" in metrics, capture=False)
    ref = _reference(sample, logits, emb)
    base = _metric_values(logits, emb, ref, metrics)
    for l in range(L):
        for h in range(H):
            g = torch.ones(L, H, device=model.device)
            g[l, h] = 0
            logits, emb, _ = _run(model, sample.batch, "cosine" in metrics, capture=False, head_gates=g)
            for m, v in _metric_values(logits, emb, ref, metrics).items():
                out[m][l, h] = (SIGN[m] * (base[m] - v)).double().cpu().numpy()
        if progress:
            progress((l + 1) / L, f"layer {l + 1}/{L}")
    return out


def ablation_importance(
    model: HookedModel, data, metrics: Sequence[str] = LABEL_METRICS, progress: Progress = None, **kwargs
) -> pd.DataFrame:
    """Exhaustive single-head ablation importance of all L*H heads, averaged over the sample:
    DataFrame (layer, head, metric, value). kwargs go to `ablation_per_sample`."""
    per = ablation_per_sample(model, data, metrics, progress=progress, **kwargs)
    return scores_frame({m: v.mean(-1) for m, v in per.items()})


# -- gradient importance ----------------------------------------------------------------------------------
def gradient_per_sample(model: HookedModel, data, gates=None, batch_size: int = 256) -> np.ndarray:
    """Per-input |dL(x)/dg[l, h]| [L, H, N] at gates `gates` (default all 1), L = cross-entropy against
    the target. One forward and one backward per chunk of inputs: every input gets its own copy of the
    gates ([N, L, H]), so the gradient of the summed loss w.r.t. copy n is dL(x_n)/dg."""
    sample = as_sample(model, data)
    base = _gates_tensor(model, gates)
    L, H, N = model.spec.n_layers, model.spec.n_heads, len(sample)
    out = np.empty((L, H, N), dtype=np.float64)
    for idx in _chunks(N, batch_size):
        part = sample.select(idx)
        with torch.no_grad():
            target = (
                part.labels.to(model.device)
                if part.labels is not None and bool((part.labels >= 0).all())
                else targets(part.labels, model.run(part.batch, capture=False).logits)
            )
        g = base.repeat(len(idx), 1, 1).requires_grad_(True)
        logits = model.run(part.batch, capture=False, head_gates=g).logits.float()
        loss = F.cross_entropy(logits, target, reduction="sum")
        (grad,) = torch.autograd.grad(loss, g)  # parameters' .grad stay untouched
        out[:, :, idx[0] : idx[-1] + 1] = grad.abs().permute(1, 2, 0).double().cpu().numpy()
    return out


def normalise_per_layer(scores: np.ndarray) -> np.ndarray:
    """[L, H] scores divided by each layer's L2 norm over heads (Michel et al.); all-zero layers stay 0."""
    norm = np.linalg.norm(scores, axis=-1, keepdims=True)
    return np.divide(scores, norm, out=np.zeros_like(scores, dtype=np.float64), where=norm > 0)


def gradient_importance(model: HookedModel, data, gates=None, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Michel et al. 2019: I[l, h] = E_x |dL(x)/dg[l, h]| at g = 1, one backward pass over the sample.
    Returns {"gradient": raw [L, H], "gradient_norm": L2-normalised per layer [L, H]}."""
    raw = gradient_per_sample(model, data, gates, batch_size).mean(-1)
    return {"gradient": raw, "gradient_norm": normalise_per_layer(raw)}


# -- per-sample scores -> tables ----------------------------------------------------------------------------
def head_scores(
    model: HookedModel,
    data,
    metrics: Sequence[str] | None = None,
    gradient: bool = True,
    progress: Progress = None,
    **kwargs,
) -> dict[str, np.ndarray]:
    """Per-input importance [L, H, N] under each ablation metric and (gradient=True) the gradient,
    everything the view shows. kwargs go to `ablation_per_sample`."""
    sample = as_sample(model, data)
    metrics = default_metrics(model, sample) if metrics is None else metrics
    out = ablation_per_sample(
        model, sample, metrics, progress=(lambda f, msg: progress(0.9 * f, msg)) if progress else None, **kwargs
    )
    if gradient:
        if progress:
            progress(0.92, "gradient w.r.t. the gates")
        out["gradient"] = gradient_per_sample(model, sample, batch_size=kwargs.get("batch_size", 256))
    if progress:
        progress(1.0, "done")
    return out


def summarise(per_sample: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mean [L, H] of per-input scores [L, H, N] (over inputs where mask [N] is True); adds the per-layer
    normalised gradient when the gradient is there."""
    out = {m: (v if mask is None else v[..., mask]).mean(-1) for m, v in per_sample.items()}
    if "gradient" in out:
        out["gradient_norm"] = normalise_per_layer(out["gradient"])
    return out


def scores_frame(scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """{metric: [L, H]} -> DataFrame (layer, head, metric, value)."""
    rows = []
    for m, v in scores.items():
        L, H = v.shape
        layer, head = np.meshgrid(np.arange(L), np.arange(H), indexing="ij")
        rows.append(
            pd.DataFrame(
                {
                    "layer": layer.ravel(),
                    "head": head.ravel(),
                    "metric": m,
                    "value": np.asarray(v, dtype=np.float64).ravel(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def per_class_frame(per_sample: dict[str, np.ndarray], labels: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """Importance restricted to each label: DataFrame (class, n, layer, head, metric, value); classes
    without inputs in the sample are left out."""
    labels = np.asarray(labels)
    frames = []
    for c, name in enumerate(class_names):
        mask = labels == c
        if mask.any():
            f = scores_frame(summarise(per_sample, mask))
            f.insert(0, "n", int(mask.sum()))
            f.insert(0, "class", name)
            frames.append(f)
    return pd.concat(frames, ignore_index=True)


def per_class_importance(
    model: HookedModel,
    data,
    metrics: Sequence[str] = LABEL_METRICS,
    gradient: bool = True,
    progress: Progress = None,
    **kwargs,
) -> pd.DataFrame:
    """The ablation (and gradient) scores restricted to each label of the sample: DataFrame
    (class, n, layer, head, metric, value). Needs a labelled sample."""
    sample = as_sample(model, data)
    if sample.labels is None:
        raise ValueError("Per-class importance needs labels the model knows; this sample has none.")
    per = head_scores(model, sample, metrics, gradient, progress, **kwargs)
    return per_class_frame(per, sample.labels.cpu().numpy(), model.spec.class_names)


# -- agreement -----------------------------------------------------------------------------------------------
def agreement(scores: dict[str, np.ndarray] | pd.DataFrame) -> pd.DataFrame:
    """Spearman rank correlation between metrics over heads: {metric: [L, H]} or a (layer, head, metric,
    value) frame -> a metric x metric DataFrame (NaN where a metric is constant)."""
    if isinstance(scores, pd.DataFrame):
        wide = scores.pivot_table(index=["layer", "head"], columns="metric", values="value", sort=False)
    else:
        wide = pd.DataFrame({m: np.asarray(v, dtype=np.float64).ravel() for m, v in scores.items()})
    return wide.corr(method="spearman")


# -- partial and cumulative pruning ------------------------------------------------------------------------
def partial_pruning(
    model: HookedModel,
    data,
    layer: int,
    head: int,
    steps: int = PARTIAL_STEPS,
    metrics: Sequence[str] = LABEL_METRICS,
    **kwargs,
) -> pd.DataFrame:
    """Metric means as the gate of head (layer, head) goes 1 -> 0 in `steps` equal steps (VA paper B2/B3):
    DataFrame (gate, metric, value)."""
    L, H = model.spec.n_layers, model.spec.n_heads
    if not (0 <= layer < L and 0 <= head < H):
        raise ValueError(f"No head ({layer}, {head}): layers are 0..{L - 1}, heads 0..{H - 1}.")
    if steps < 2:
        raise ValueError("partial_pruning needs at least 2 steps (gate 1 and gate 0).")
    values = torch.linspace(1.0, 0.0, steps)
    configs = torch.ones(steps, L, H)
    configs[:, layer, head] = values
    res = evaluate_gates(model, data, configs, metrics, **kwargs)
    return pd.concat(
        [
            pd.DataFrame({"gate": values.numpy().astype(np.float64), "metric": m, "value": v.mean(-1)})
            for m, v in res.items()
        ],
        ignore_index=True,
    )


def pruning_order(scores: np.ndarray) -> list[tuple[int, int]]:
    """Heads (layer, head) from least to most important by scores [L, H] (ties: lower layer, head first)."""
    L, H = scores.shape
    flat = np.asarray(scores, dtype=np.float64).ravel()
    return [(int(i // H), int(i % H)) for i in np.lexsort((np.arange(L * H), flat))]


def random_order(n_layers: int, n_heads: int, seed: int = 0) -> list[tuple[int, int]]:
    """A seeded random order of all heads (the baseline pruning order)."""
    perm = np.random.default_rng(seed).permutation(n_layers * n_heads)
    return [(int(i // n_heads), int(i % n_heads)) for i in perm]


def _removal_counts(n_heads_total: int, steps: int) -> list[int]:
    return sorted({int(round(k * n_heads_total / steps)) for k in range(steps + 1)})


def _curve_frame(counts: list[int], total: int, res: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.concat(
        [
            pd.DataFrame({"fraction": np.asarray(counts) / total, "n_removed": counts, "metric": m, "value": v})
            for m, v in res.items()
        ],
        ignore_index=True,
    )


def _as_order(model: HookedModel, order, seed: int) -> list[tuple[int, int]]:
    """A validated removal order from a list of heads, scores [L, H] or "random"."""
    L, H = model.spec.n_layers, model.spec.n_heads
    if isinstance(order, str):  # "random" (pruning_curves refuses other names)
        return random_order(L, H, seed)
    if not isinstance(order, list):
        arr = np.asarray(order)
        if arr.shape != (L, H):
            raise ValueError(f"Scores for a pruning order must be [L, H] = [{L}, {H}], got {arr.shape}.")
        return pruning_order(arr)
    order = [(int(l), int(h)) for l, h in order]
    if sorted(order) != [(l, h) for l in range(L) for h in range(H)]:
        raise ValueError(f"A pruning order must list each of the {L * H} heads exactly once.")
    return order


def pruning_curves(
    model: HookedModel,
    data,
    orders: dict,
    iterative: bool = False,
    steps: int = 10,
    metrics: Sequence[str] = LABEL_METRICS,
    seed: int = 0,
    progress: Progress = None,
    **kwargs,
) -> pd.DataFrame:
    """Cumulative pruning curves (Michel et al.) for several orders {name: order} at once: heads go in
    order of increasing importance, 1/steps of all heads at a time, and the metric means are measured
    after each step. DataFrame (order, fraction, n_removed, metric, value); each curve starts at the
    unablated model and ends with every head removed.

    An order is a list of (layer, head), scores [L, H] (least important removed first) or "random"
    (seeded); with iterative=True, the name of the importance to re-estimate between steps on the heads
    that are left ("gradient", "gradient_norm", an ablation metric or "random"). Without iterative, the
    gate settings of all orders are evaluated together (shared settings, such as the endpoints, once)."""
    sample = as_sample(model, data)
    L, H = model.spec.n_layers, model.spec.n_heads
    if iterative:
        frames = []
        for i, (name, criterion) in enumerate(orders.items()):
            sub = (
                (lambda f, msg, i=i, name=name: progress((i + f) / len(orders), f"{name}: {msg}")) if progress else None
            )
            frames.append(
                _iterative_curve(model, sample, criterion, steps, metrics, seed, sub, **kwargs).assign(order=name)
            )
        return pd.concat(frames, ignore_index=True)[["order", "fraction", "n_removed", "metric", "value"]]
    counts = _removal_counts(L * H, steps)
    configs = torch.ones(len(orders), len(counts), L, H)
    for i, order in enumerate(orders.values()):
        if isinstance(order, str) and order != "random":
            raise ValueError(
                "Iterative pruning re-estimates importance: pass iterative=True to prune by a "
                f"metric's name ({order!r}), or pass its scores."
            )
        order = _as_order(model, order, seed)
        for k, c in enumerate(counts):
            for l, h in order[:c]:
                configs[i, k, l, h] = 0
    res = evaluate_gates(model, sample, configs.flatten(0, 1), metrics, progress=progress, **kwargs)
    frames = [
        _curve_frame(
            counts, L * H, {m: v.reshape(len(orders), len(counts), -1)[i].mean(-1) for m, v in res.items()}
        ).assign(order=name)
        for i, name in enumerate(orders)
    ]
    return pd.concat(frames, ignore_index=True)[["order", "fraction", "n_removed", "metric", "value"]]


def pruning_curve(
    model: HookedModel,
    data,
    order,
    iterative: bool = False,
    steps: int = 10,
    metrics: Sequence[str] = LABEL_METRICS,
    seed: int = 0,
    progress: Progress = None,
    **kwargs,
) -> pd.DataFrame:
    """One cumulative pruning curve: DataFrame (fraction, n_removed, metric, value); see `pruning_curves`."""
    if iterative and not isinstance(order, str):
        raise ValueError("Iterative pruning re-estimates importance: give the metric's name as `order`.")
    return pruning_curves(model, data, {"curve": order}, iterative, steps, metrics, seed, progress, **kwargs).drop(
        columns="order"
    )


def _iterative_curve(model, sample, criterion, steps, metrics, seed, progress, **kwargs) -> pd.DataFrame:
    """One iterative pruning curve: importance by `criterion` re-estimated on the remaining heads."""
    L, H = model.spec.n_layers, model.spec.n_heads
    counts = _removal_counts(L * H, steps)
    if criterion == "random":
        return pruning_curve(
            model, sample, "random", metrics=metrics, seed=seed, progress=progress, steps=steps, **kwargs
        )
    if criterion not in GRADIENT and criterion not in available_metrics(model):
        raise ValueError(
            f"Unknown importance {criterion!r} for iterative pruning: use gradient, random or "
            f"one of {', '.join(available_metrics(model))}."
        )
    gates = torch.ones(L, H)
    configs = [gates.clone()]
    for k in range(1, len(counts)):
        if criterion in GRADIENT:
            scores = summarise({"gradient": gradient_per_sample(model, sample, gates)})[criterion]
        else:
            scores = ablation_per_sample(model, sample, (criterion,), base_gates=gates, **kwargs)[criterion].mean(-1)
        left = [(l, h) for l, h in pruning_order(scores) if gates[l, h] != 0]
        for l, h in left[: counts[k] - counts[k - 1]]:
            gates[l, h] = 0
        configs.append(gates.clone())
        if progress:
            progress(k / len(counts), f"step {k}/{len(counts) - 1}: {counts[k]} heads removed")
    res = evaluate_gates(model, sample, torch.stack(configs), metrics, **kwargs)
    if progress:
        progress(1.0, "done")
    return _curve_frame(counts, L * H, {m: v.mean(-1) for m, v in res.items()})
