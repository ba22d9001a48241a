"""Head importance (the Head-importance section of the methods document under docs/): ablation and gradient
scores, agreement between scores, per-class scores (partial and cumulative pruning: analysis/pruning.py).

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

What "removed" means is the ablation kind (ABLATIONS): a gate g interpolates between the head's output z and its
ablation value r, z' = g z + (1 - g) r, with r = 0 (zero), the head's output averaged over a reference sample per
token position (mean; Wang et al. 2022), or its output on another, seeded random input of the reference (resample;
Chan et al. 2022, causal scrubbing). The reference is the sample itself unless one is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from data.labels import match_labels
from models import Batch, HookedModel, Resume, TextModel
from models.hooks import Hook, keep

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
ABLATIONS = ("zero", "mean", "resample")


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


# -- what a removed head's output becomes ------------------------------------------------------------------
def head_z(model: HookedModel, batch: Batch) -> list[torch.Tensor]:
    """Every block's head outputs [B, T, H, dh] (attn.hook_z) of one ungated forward, one tensor per layer."""
    acts: dict[str, torch.Tensor] = {}
    names = [f"blocks.{l}.attn.hook_z" for l in range(model.spec.n_layers)]
    with torch.no_grad():
        model.run(batch, capture=False, hooks=[(n, keep(acts)) for n in names])
    return [acts[n] for n in names]


def _fit(x: torch.Tensor, T: int, fill: torch.Tensor | float = 0.0) -> torch.Tensor:
    """x [b, Tx, H, dh] cut or padded (with fill [H, dh]) to T token positions."""
    if x.shape[1] >= T:
        return x[:, :T]
    pad = torch.zeros(x.shape[0], T - x.shape[1], *x.shape[2:], dtype=x.dtype, device=x.device) + fill
    return torch.cat([x, pad], 1)


@dataclass
class Ablation:
    """What a removed head's output becomes (module docstring). means: per layer [1, T, H, dh] the reference's mean
    head output per token position (mean); donors, donor_of: the reference inputs and each sample input's donor
    among them [N] (resample); neither for zero."""

    kind: str = "zero"
    means: list[torch.Tensor] | None = None
    donors: Batch | None = None
    donor_of: np.ndarray | None = None

    def values(self, model: HookedModel, idx: Sequence[int], T: int) -> list[torch.Tensor] | None:
        """Per layer the replacement r [1 or n, T, H, dh] of the sample inputs idx (T tokens); None for zero."""
        if self.means is not None:
            return [_fit(m, T, m.mean(1)[0]) for m in self.means]
        if self.donors is None or self.donor_of is None:
            return None
        donors = self.donors.select(self.donor_of[list(idx)])
        real = donors.token_mask.to(model.device)[..., None, None]  # a position past the donor's tokens takes 0
        return [_fit(z * real, T) for z in head_z(model, donors)]


def make_ablation(
    model: HookedModel, sample: Sample, kind: str = "zero", reference=None, seed: int = 0, batch_size: int = 256
) -> Ablation:
    """The ablation `kind` of the inputs of `sample`, over `reference` (a Sample, Batch or Dataset; default the
    sample). mean: the head outputs of the reference averaged per token position over its real tokens (a position
    none of it has takes the mean over all positions); resample: each input's donor drawn with `seed` from the
    reference (never the input itself when the reference is the sample)."""
    if kind not in ABLATIONS:
        raise ValueError(f"Unknown ablation {kind!r}: choose from {', '.join(ABLATIONS)}.")
    if kind == "zero":
        return Ablation()
    ref = sample if reference is None else as_sample(model, reference)
    if kind == "resample":
        N, R, rng = len(sample), len(ref), np.random.default_rng(seed)
        if reference is None and R > 1:
            donor_of = (np.arange(N) + 1 + rng.integers(0, R - 1, N)) % R
        else:
            donor_of = rng.integers(0, R, N)
        return Ablation(kind, donors=ref.batch, donor_of=donor_of)
    sums, counts = [], []
    for idx in _chunks(len(ref), batch_size):
        part = ref.batch.select(idx)
        real = part.token_mask.to(model.device).float()  # [b, T]
        counts.append(real.sum(0))
        sums.append([(z * real[..., None, None]).sum(0) for z in head_z(model, part)])  # per layer [T, H, dh]
    T = max(len(c) for c in counts)
    count = torch.stack([F.pad(c, (0, T - len(c))) for c in counts]).sum(0)[:, None, None]  # [T, 1, 1]
    means = []
    for l in range(model.spec.n_layers):
        s = torch.cat([_fit(chunk[l][None], T) for chunk in sums]).sum(0)  # [T, H, dh]
        means.append(torch.where(count > 0, s / count.clamp_min(1), s.sum(0) / count.sum())[None])
    return Ablation(kind, means=means)


def ablation_hooks(values: list[torch.Tensor] | None, gates: torch.Tensor, n: int) -> list[Hook]:
    """Hooks that complete head gating into z' = g z + (1 - g) r at every attn.hook_z (after the gates' own hook,
    which made g z): values per layer r [1 or n, T, H, dh] (Ablation.values), gates [L, H] or [k * n, L, H] (k
    settings in blocks). No hooks for zero ablation."""
    if values is None:
        return []

    def fill(l: int):
        def fn(z: torch.Tensor, name: str) -> torch.Tensor:
            g = gates[l].expand(z.shape[0], -1) if gates.dim() == 2 else gates[:, l]
            r = values[l][:, : z.shape[1]].to(z.dtype)
            r = r if r.shape[0] == 1 else r.repeat(z.shape[0] // n, 1, 1, 1)
            return z + (1 - g.to(z.dtype))[:, None, :, None] * r

        return fn

    return [(f"blocks.{l}.attn.hook_z", fill(l)) for l in range(len(values))]


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


def _resume(
    model: HookedModel,
    batch: Batch,
    want_emb: bool,
    tr,
    layer: int,
    heads: torch.Tensor,
    gates: torch.Tensor,
    values: list[torch.Tensor] | None,
):
    """_run of gate settings [k * n, L, H] (k settings in blocks) whose first changed layer is `layer`,
    resumed inside that block from the kept forward `tr` and its head outputs, removed heads replaced by
    `values` (Ablation.values); the last block computes only the tokens the head reads unless a pooled
    embedding is wanted."""
    k = gates.shape[0] // len(batch)
    return _run(
        model,
        batch,
        want_emb,
        capture=False,
        head_gates=gates,
        resume=Resume(tr.resid_list[layer].repeat(k, 1, 1), layer, heads.repeat(k, 1, 1)),
        readout_only=not want_emb,
        hooks=ablation_hooks(values, gates, len(batch)),
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
    ablation: str = "zero",
    reference=None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Metric values [K, N] of K gate configurations `configs` [K, L, H] over the sample, a gate below 1 moving
    the head's output towards its `ablation` value (make_ablation's kind, reference and seed).

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
    removed = make_ablation(model, sample, ablation, reference, seed, batch_size)
    done = 0
    for idx in chunks:
        part, n = sample.select(idx), len(idx)
        cols = slice(idx[0], idx[-1] + 1)
        values = removed.values(model, idx, part.batch.token_mask.shape[1])
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
                logits, emb, _ = _resume(model, part.batch, "cosine" in metrics, tr, l, heads, gates, values)
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
    ablation: str = "zero",
    reference=None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Per-input importance [L, H, N] of every head by exhaustive single-head ablation (L*H + 1 settings).

    base_gates [L, H] (default all 1): the setting each head is removed from (iterative pruning). ablation,
    reference, seed: what a removed head's output becomes (make_ablation).
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
    removed = make_ablation(model, sample, ablation, reference, seed, batch_size)
    for ci, idx in enumerate(chunks):
        part, n = sample.select(idx), len(idx)
        values = removed.values(model, idx, part.batch.token_mask.shape[1])
        logits, emb, tr = _run(
            model,
            part.batch,
            "cosine" in metrics,
            capture=True,
            head_gates=base,
            hooks=[] if ungated else ablation_hooks(values, base, n),
        )
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
                logits, emb, _ = _resume(model, part.batch, "cosine" in metrics, tr, l, heads, gates, values)
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


def ranking_agreement(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], metrics: Sequence[str], top: int = 5
) -> pd.DataFrame:
    """How alike two sets of head scores {metric: [L, H]} (higher = more important; e.g. two ablation kinds) rank
    the heads, per metric: Spearman's rho over all heads and how many heads both put among their `top` most
    important. DataFrame (metric, spearman, shared)."""
    rows = []
    for m in metrics:
        x, y = np.ravel(a[m]).astype(np.float64), np.ravel(b[m]).astype(np.float64)
        k = min(top, x.size)
        tops = [set(np.argsort(-v, kind="stable")[:k].tolist()) for v in (x, y)]
        rho = pd.Series(x).corr(pd.Series(y), method="spearman")
        rows.append({"metric": m, "spearman": rho, "shared": len(tops[0] & tops[1])})
    return pd.DataFrame(rows)
