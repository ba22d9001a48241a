"""Faithfulness of relevance maps: do the tokens a map calls relevant really drive the prediction?
(the Faithfulness part of the Relevance section of the methods document under docs/).

    report = evaluate(model, load_dataset("shapes", "test"), ["rollout", "attnlrp"], n=64, progress=print)
    report.table    # one row per method (plus a seeded random map): AUCs, pointing game, mIoU
    report.curves   # long format: method, test, fraction, value

Shapes: N inputs, T' input tokens (prefix excluded), K perturbation levels. Removing a token replaces it
by the baseline: the zero pixel value (the normalisation's mean colour) over its patch for images, the
zero vector in place of its embedding for text. Insertion reveals tokens into a start input chosen from
INSERTION_STARTS (default: blurred images, zero embeddings for text); the model's probability on that start
is the insertion AUC's floor (`insertion_floor`). Maps are explained for the predicted class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from analysis.relevance import METHODS, explain, to_pixels
from data.labels import match_labels
from models import Batch, HookedModel, Resume

FRACTIONS = np.round(np.arange(0.0, 1.0, 0.1), 2)  # Chefer's perturbation levels p = 0, 0.1, ..., 0.9
RANDOM = "random"
# metric -> (column label, higher is better)
METRICS = {
    "positive_auc": ("Positive perturbation AUC (%) ↓", False),
    "negative_auc": ("Negative perturbation AUC (%) ↑", True),
    "deletion_auc": ("Deletion AUC ↓", False),
    "insertion_auc": ("Insertion AUC ↑", True),
    "pointing_game": ("Pointing game ↑", True),
    "miou": ("mIoU ↑", True),
    "pixel_accuracy": ("Pixel accuracy ↑", True),
}
# the input insertion starts from: name -> {modality it applies to: label}; the first per modality is its default
INSERTION_STARTS = {
    "blur": {"image": "a blurred copy of the image (RISE)"},
    "zero": {"image": "the normalisation's mean colour (zero pixels)", "text": "zero embeddings"},
    "mean": {"image": "the image's own mean colour", "text": "the text's mean token embedding"},
}


def insertion_starts(modality: str) -> list[str]:
    """The INSERTION_STARTS that apply to a modality ("image" or "text"), the default first."""
    return [k for k, labels in INSERTION_STARTS.items() if modality in labels]


def method_label(name: str) -> str:
    """The display label of a relevance method (or of the random baseline map), as legends and tables show it."""
    return "Random map" if name == RANDOM else METHODS[name].label if name in METHODS else name


# -- AUCs (the oracles of the methods document) -------------------------------------------------------------------
def perturbation_auc(accuracy, fractions=FRACTIONS) -> np.ndarray:
    """Chefer's AUC: trapz(accuracy [..., K], fractions [K]) with p = 0 included, in percent."""
    return 100.0 * np.asarray(
        np.trapezoid(np.asarray(accuracy, dtype=np.float64), np.asarray(fractions, dtype=np.float64), axis=-1)
    )


def rise_auc(scores) -> np.ndarray:
    """RISE's AUC of scores s_0 .. s_n [..., n+1]: (sum s_k - s_0/2 - s_n/2) / n (a constant s gives s)."""
    s = np.asarray(scores, dtype=np.float64)
    n = s.shape[-1] - 1
    return (s.sum(-1) - s[..., 0] / 2 - s[..., -1] / 2) / n


# -- perturbing inputs ----------------------------------------------------------------------------------
def _inputs(model: HookedModel, batch: Batch) -> torch.Tensor:
    """What gets perturbed: pixel values [B, C, S, S] (images) or the embedding output [B, T, D] (text)."""
    if model.spec.modality == "image":
        return batch.tensors["pixel_values"].to(model.device)
    with torch.no_grad():
        return model.embed(batch)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of images [B, C, S, S] (sigma = S / 12), RISE's insertion start."""
    s = x.shape[-1]
    sigma = max(s / 12.0, 1.0)
    r = int(2 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, device=x.device, dtype=x.dtype) / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _start_input(x: torch.Tensor, real: torch.Tensor, start: str) -> torch.Tensor:
    """The insertion start for inputs x (pixels [B, C, S, S] or embeddings [B, T, D]; real [B, T] marks the
    text's real tokens) under an INSERTION_STARTS name."""
    image = x.dim() == 4
    allowed = insertion_starts("image" if image else "text")
    if start not in allowed:
        raise ValueError(f"Unknown insertion start {start!r} for this model: use one of {', '.join(allowed)}.")
    if start == "blur":
        return _blur(x)
    if start == "zero":
        return torch.zeros_like(x)
    if image:
        return x.mean((-2, -1), keepdim=True).expand_as(x)
    w = real.to(x.dtype)[..., None]
    return ((x * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1)).expand_as(x)


def _token_to_input_mask(model: HookedModel, keep: torch.Tensor) -> torch.Tensor:
    """keep [N, T'] in {0, 1} -> a mask broadcastable to the perturbed inputs [N, ...]."""
    if model.spec.modality == "image":
        h, w, p, _, _ = model.spec.image_layout()
        grid = keep.reshape(-1, 1, h, w)
        return grid.repeat_interleave(p, 2).repeat_interleave(p, 3)
    prefix = torch.ones(keep.shape[0], model.spec.n_prefix, device=keep.device, dtype=keep.dtype)
    return torch.cat([prefix, keep], 1)[..., None]


def mixed_logits(
    model: HookedModel, batch: Batch, keep: torch.Tensor, reference: torch.Tensor | None = None, chunk: int = 256
) -> torch.Tensor:
    """Logits with some tokens replaced: keep [K, B, T'] (1 = original token, 0 = reference) -> [K, B, C].

    reference: inputs of the same shape as the batch's (pixels or embeddings); None = zeros (baseline)."""
    batch = batch.to(model.device)
    x = _inputs(model, batch)
    ref = torch.zeros_like(x) if reference is None else reference
    k, b = keep.shape[:2]
    out = []
    with torch.no_grad():
        for start in range(0, k * b, chunk):
            idx = torch.arange(start, min(start + chunk, k * b), device=model.device)
            m = _token_to_input_mask(model, keep.reshape(k * b, -1)[idx].to(x.dtype))
            xi, ri = x[idx % b], ref[idx % b]
            mixed = m * xi + (1 - m) * ri
            sub = batch.select((idx % b).tolist())
            if model.spec.modality == "image":
                sub.tensors["pixel_values"] = mixed
                out.append(model.run(sub, capture=False).logits)
            else:
                out.append(model.run(sub, capture=False, resume=Resume(mixed)).logits)
    return torch.cat(out).reshape(k, b, -1)


def _ranks(maps: torch.Tensor, real: torch.Tensor, descending: bool) -> torch.Tensor:
    """Rank of each real token [B, T'] in the order tokens are removed (0 = first); padding ranks last."""
    key = maps.float().masked_fill(~real, float("-inf") if descending else float("inf"))
    order = torch.sort(key, dim=-1, descending=descending, stable=True).indices
    return order.argsort(-1)


def perturbation_accuracy(
    model: HookedModel, batch: Batch, maps, labels, positive: bool = True, fractions=FRACTIONS
) -> np.ndarray:
    """Chefer's perturbation test: top-1 correctness [K, B] after removing the top-p fraction of tokens
    (positive: most relevant first; negative: least relevant first) for each p in fractions [K]."""
    real = batch.token_mask[:, model.spec.n_prefix :].to(model.device)
    m = torch.as_tensor(np.asarray(maps), device=model.device)
    rank = _ranks(m, real, descending=positive)
    n_real = real.sum(-1, keepdim=True)
    removed = torch.stack([rank < torch.round(float(p) * n_real) for p in fractions])  # [K, B, T']
    logits = mixed_logits(model, batch, (~removed).float())
    y = torch.as_tensor(np.asarray(labels), device=model.device)
    return (logits.argmax(-1) == y).float().cpu().numpy()


def deletion_insertion(
    model: HookedModel, batch: Batch, maps, target, steps: int = 16, start: str | None = None
) -> dict[str, np.ndarray]:
    """RISE: probability of class target [B] as the most relevant tokens are removed (deletion: replaced
    by the baseline) or revealed (insertion: into the start input, an INSERTION_STARTS name; None = the
    modality's default), in `steps` equal steps. Returns {"deletion": [steps+1, B], "insertion": [steps+1, B]}."""
    real = batch.token_mask[:, model.spec.n_prefix :].to(model.device)
    m = torch.as_tensor(np.asarray(maps), device=model.device)
    rank = _ranks(m, real, descending=True)
    n_real = real.sum(-1, keepdim=True)
    first = torch.stack([rank < torch.round(k / steps * n_real) for k in range(steps + 1)]).float()  # [K, B, T']
    tgt = torch.as_tensor(np.asarray(target), device=model.device)
    batch = batch.to(model.device)
    x = _inputs(model, batch)
    start_x = _start_input(x, batch.token_mask, start or insertion_starts(model.spec.modality)[0])
    out = {}
    for name, keep, ref in (("deletion", 1 - first, None), ("insertion", first, start_x)):
        probs = mixed_logits(model, batch, keep, ref).softmax(-1)
        out[name] = probs.gather(-1, tgt.expand(steps + 1, -1)[..., None])[..., 0].cpu().numpy()
    return out


# -- localisation ---------------------------------------------------------------------------------------
def pointing_game(pixel_maps, masks) -> np.ndarray:
    """Whether each map's maximum [N, H, W] falls inside the object mask [N, H, W] -> bool [N]."""
    p = np.asarray(pixel_maps)
    flat = p.reshape(len(p), -1).argmax(-1)
    return np.asarray(masks).reshape(len(p), -1)[np.arange(len(p)), flat].astype(bool)


def segmentation_counts(pixel_maps, masks) -> np.ndarray:
    """Each map thresholded at its mean vs the mask (Chefer's segmentation test): counts [N, 5] of
    (intersection fg, union fg, intersection bg, union bg, correct pixels); see `segmentation_scores`."""
    p = np.asarray(pixel_maps, dtype=np.float32)
    pred = p >= p.mean((1, 2), keepdims=True)
    gt = np.asarray(masks).astype(bool)
    ax = (1, 2)
    return np.stack(
        [(pred & gt).sum(ax), (pred | gt).sum(ax), (~pred & ~gt).sum(ax), (~pred | ~gt).sum(ax), (pred == gt).sum(ax)],
        -1,
    ).astype(np.float64)


def segmentation_scores(counts: np.ndarray, n_pixels: int) -> tuple[float, float]:
    """(mIoU over the two classes object / background, pixel accuracy) from counts [N, 5] accumulated over
    the dataset as in Chefer's evaluation."""
    c = counts.sum(0)
    miou = 0.5 * (c[0] / max(c[1], 1) + c[2] / max(c[3], 1))
    return float(miou), float(c[4] / max(len(counts) * n_pixels, 1))


def random_maps(shape, seed: int = 0) -> np.ndarray:
    """Seeded uniform random maps [N, T'] (the chance baseline of every score)."""
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def disagreement(maps: dict[str, np.ndarray], mask=None) -> np.ndarray:
    """Per input, the mean over pairs of methods of 1 - Spearman correlation of their maps [N, T'] -> [N]
    (0: all methods rank tokens alike; up to 2: opposite rankings). mask [N, T']: real tokens (text
    padding is left out of the ranking)."""
    m = np.stack([np.asarray(v, dtype=np.float64) for v in maps.values()])  # [M, N, T']
    real = np.ones(m.shape[1:], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if len(m) < 2:
        return np.zeros(m.shape[1])
    ranks = np.argsort(np.argsort(np.where(real, m, np.inf), -1), -1).astype(np.float64)
    n = real.sum(-1, keepdims=True).clip(1)
    z = np.where(real, ranks - (n - 1) / 2, 0.0)
    z /= np.linalg.norm(z, axis=-1, keepdims=True).clip(1e-12)
    corr = np.einsum("mnt,knt->mkn", z, z)
    iu = np.triu_indices(len(m), 1)
    return (1 - corr[iu]).mean(0)


# -- over a dataset sample ------------------------------------------------------------------------------
@dataclass
class FaithfulnessReport:
    """table: one row per method (random last): method, label, then the METRICS columns (NaN when not
    measurable, e.g. localisation without masks); curves: long DataFrame (method, test, fraction, value)
    with test in positive / negative (accuracy) and deletion / insertion (probability of the class);
    maps: method -> [N, T'] raw maps (text: zero-padded to the longest input); real [N, T']: which
    entries are real tokens; indices [N]: dataset rows used; predictions [N]."""

    table: pd.DataFrame
    curves: pd.DataFrame
    maps: dict[str, np.ndarray]
    real: np.ndarray
    indices: np.ndarray
    predictions: np.ndarray

    def disagreement(self) -> np.ndarray:
        """[N] how much the methods (random excluded) disagree on each input (see `disagreement`)."""
        return disagreement({k: v for k, v in self.maps.items() if k != RANDOM}, self.real)


def per_input_scores(
    model: HookedModel,
    dataset,
    methods: Sequence[str],
    n: int = 64,
    batch_size: int = 32,
    steps: int = 16,
    progress: Callable[[float, str], None] | None = None,
    seed: int = 0,
    start: str | None = None,
) -> dict[str, np.ndarray]:
    """Every per-input faithfulness result of `methods` (plus a seeded random map; batch b of the sample uses
    seed + b) on the first n inputs of `dataset` (a data.Dataset; its masks give the localisation scores);
    insertion starts from `start` (an INSERTION_STARTS name, None = the modality's default).

    Returns, for each method m (RANDOM included): "<test>/<m>" for test in positive / negative [N, K]
    (top-1 correct after removing FRACTIONS of the tokens, most / least relevant first) and deletion /
    insertion [N, steps+1] (probability of the predicted class); with masks "pointing/<m>" [N] and
    "segmentation/<m>" [N, 5] (segmentation_counts); "map/<m>" [N, T'] the maps (text: zero-padded);
    and "real" [N, T'] (real tokens), "predictions" [N]. The perturbation test scores top-1 accuracy
    against the dataset's labels mapped to the model's classes (data.match_labels), and against the
    prediction for inputs whose label the model does not know."""
    n = min(int(n), len(dataset))
    true = match_labels(model.spec.class_names, dataset.class_names).to_model(dataset.labels)
    indices = np.arange(n)
    names = list(methods) + [RANDOM]
    chunks = [indices[i : i + batch_size] for i in range(0, n, batch_size)]
    parts: dict[str, list[np.ndarray]] = {}
    total = len(chunks) * len(names)
    done = 0
    for ci, idx in enumerate(chunks):
        batch = model.prepare([dataset.inputs[i] for i in idx]).to(model.device)
        with torch.no_grad():
            pred = model.run(batch, capture=False).logits.argmax(-1)
        out = {"predictions": pred.cpu().numpy(), "real": batch.token_mask[:, model.spec.n_prefix :].cpu().numpy()}
        labels = np.where(true[idx] >= 0, true[idx], pred.cpu().numpy())
        for m in names:
            if progress:
                progress(done / total, f"{m}: inputs {idx[0] + 1}-{idx[-1] + 1} of {n}")
            mp = (
                random_maps((len(idx), batch.token_mask.shape[1] - model.spec.n_prefix), seed + ci)
                if m == RANDOM
                else explain(model, batch, m, target=pred)
            )
            out[f"map/{m}"] = mp
            out[f"positive/{m}"] = perturbation_accuracy(model, batch, mp, labels, positive=True).T
            out[f"negative/{m}"] = perturbation_accuracy(model, batch, mp, labels, positive=False).T
            for k, v in deletion_insertion(model, batch, mp, pred, steps, start).items():
                out[f"{k}/{m}"] = np.asarray(v).T
            if dataset.masks is not None and model.spec.grid is not None:
                masks = dataset.mask_batch(idx, model.spec.image_size)
                px = to_pixels(model, mp, size=masks.shape[-1])
                out[f"pointing/{m}"] = pointing_game(px, masks)
                out[f"segmentation/{m}"] = segmentation_counts(px, masks)
            done += 1
        for k, v in out.items():
            parts.setdefault(k, []).append(np.asarray(v))
    if progress:
        progress(1.0, "done")
    width = max(p.shape[1] for p in parts["real"])

    def stack(chunks):  # chunks of text have different lengths: zero-pad to the longest
        return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]))) for p in chunks])

    return {k: stack(v) if k == "real" or k.startswith("map/") else np.concatenate(v) for k, v in parts.items()}


def summarise_scores(
    scores: dict[str, np.ndarray], n_pixels: int, steps: int = 16
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(table, curves) of a FaithfulnessReport from per-input results (`per_input_scores`, or the same arrays
    from a stored run). n_pixels: the model's input pixels (pixel accuracy)."""
    names = [k.split("/", 1)[1] for k in scores if k.startswith("positive/")]
    rows, curves = [], []
    for m in names:
        a = {t: np.asarray(scores[f"{t}/{m}"], dtype=np.float64).mean(0) for t in ("positive", "negative")}  # [K]
        r = {t: np.asarray(scores[f"{t}/{m}"], dtype=np.float64) for t in ("deletion", "insertion")}  # [N, steps+1]
        row = {
            "method": m,
            "label": method_label(m),
            "positive_auc": float(perturbation_auc(a["positive"])),
            "negative_auc": float(perturbation_auc(a["negative"])),
            "deletion_auc": float(rise_auc(r["deletion"]).mean()),
            "insertion_auc": float(rise_auc(r["insertion"]).mean()),
            "pointing_game": float(np.mean(scores[f"pointing/{m}"])) if f"pointing/{m}" in scores else np.nan,
            "miou": np.nan,
            "pixel_accuracy": np.nan,
        }
        if f"segmentation/{m}" in scores:
            row["miou"], row["pixel_accuracy"] = segmentation_scores(np.asarray(scores[f"segmentation/{m}"]), n_pixels)
        rows.append(row)
        for test, values in a.items():
            curves += [(m, test, float(f), float(v)) for f, v in zip(FRACTIONS, values)]
        for test, values in r.items():
            curves += [(m, test, k / steps, float(v)) for k, v in enumerate(values.mean(0))]
    return pd.DataFrame(rows), pd.DataFrame(curves, columns=["method", "test", "fraction", "value"])


def best_methods(table: pd.DataFrame) -> dict[str, str | None]:
    """For each METRICS column a summarise_scores table has values in: the method with the best value if it beats
    the seeded random map (chance) there, else None (no method beats chance on that metric)."""
    chance = table.set_index("method")[list(METRICS)].loc[RANDOM] if RANDOM in set(table["method"]) else None
    out: dict[str, str | None] = {}
    for metric, (_, higher) in METRICS.items():
        col = table.loc[table["method"] != RANDOM].set_index("method")[metric].dropna()
        if col.empty:
            continue
        best = col.idxmax() if higher else col.idxmin()
        floor = np.nan if chance is None else chance[metric]
        beats = bool(np.isnan(floor) or (col[best] > floor if higher else col[best] < floor))
        out[metric] = str(best) if beats else None
    return out


def insertion_floor(curves: pd.DataFrame) -> float:
    """The mean probability of the predicted class on the insertion start itself (fraction 0 of the curves of
    `summarise_scores`): the insertion AUC of a map that reveals nothing useful, its floor."""
    start = curves[(curves["test"] == "insertion") & (curves["fraction"] == 0)]
    return float(start["value"].mean())


def evaluate(
    model: HookedModel,
    dataset,
    methods: Sequence[str],
    n: int = 64,
    batch_size: int = 32,
    steps: int = 16,
    progress: Callable[[float, str], None] | None = None,
    seed: int = 0,
    start: str | None = None,
) -> FaithfulnessReport:
    """All faithfulness scores of `methods` (plus a seeded random map) on the first n inputs of `dataset`:
    per_input_scores (insertion from `start`), summarised (summarise_scores)."""
    scores = per_input_scores(model, dataset, methods, n, batch_size, steps, progress, seed, start)
    n_pixels = (model.spec.image_size or 0) ** 2
    table, curves = summarise_scores(scores, n_pixels, steps)
    names = list(methods) + [RANDOM]
    return FaithfulnessReport(
        table,
        curves,
        {m: scores[f"map/{m}"] for m in names},
        scores["real"].astype(bool),
        np.arange(len(scores["predictions"])),
        scores["predictions"],
    )
