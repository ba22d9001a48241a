"""Class-embedding space: tokens read through the model's own classifier layer by layer (the logit lens,
Vilas et al. NeurIPS 2023), identifiability of the true class, 2-D maps of the embeddings per layer and
how separable the classes are at each layer. Formulas: the Class-embedding section of the methods document under docs/.

Shapes: L blocks, B (or N) inputs, T tokens, D width, C classes. "Block l" of a projection is the output
of block l (1..L, stored at index l-1); embeddings per layer [L+1, N, D] start with the embedding output
(layer 0). The summary token is the CLS token for images and the hidden states pooled as the model pools
them for text encoders.

    from analysis.embedding import class_projection, summary_projection, identifiability
    tr = m.run(batch)
    scores = class_projection(m, tr)                               # [L, B, T, C]
    ident = identifiability(scores, labels, summary_projection(m, tr), tr.token_mask)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from data.labels import match_labels
from models import HookedModel, TextModel, Trace

WHERE = ("resid", "attn_out", "mlp_out")
METHODS = ("pca", "umap", "tsne")
CHANCE = 0.5
KNN_K = 20
MEMORY_BUDGET = 1 << 29  # bytes of class scores + captured activations per batch in embed_sample
Progress = Callable[[float, str], None]


def _hidden(trace: Trace, where: str) -> torch.Tensor:
    """[L, B, T, D]: the residual stream after each block, or the attention / MLP sublayer outputs."""
    if where not in WHERE:
        raise ValueError(f"where must be one of {', '.join(WHERE)}, got {where!r}.")
    return trace.resid[1:] if where == "resid" else getattr(trace, where)


def summary_token(model, hidden: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """[B, T, D] -> [B, D]: the CLS token (images) or the model's own pooling (text, `model.pool`)."""
    if isinstance(model, TextModel):
        return model.pool(hidden, token_mask.to(hidden.device))
    return hidden[:, 0]


def summary_names(model) -> tuple[str, str]:
    """Display names of the two token groups: (summary token, the other tokens)."""
    return ("pooled", "word tokens") if model.spec.modality == "text" else ("CLS", "image tokens")


def class_projection(model: HookedModel, trace: Trace, where: str = "resid") -> torch.Tensor:
    """[L, B, T, C] class scores of every token after every block through the model's own final norm and
    classifier (or prompt head), `model.unembed`, applied to the residual stream after each block
    (where="resid") or to the attention / MLP sublayer outputs ("attn_out", "mlp_out").

    For a ViT, scores[-1, :, 0] (the last CLS) equals trace.logits."""
    hidden = _hidden(trace, where)
    with model.lock, torch.no_grad():
        return torch.stack([model.unembed(h) for h in hidden]).float()


def summary_projection(model: HookedModel, trace: Trace, where: str = "resid") -> torch.Tensor:
    """[L, B, C] class scores of the summary token after every block (see `summary_token`). For the last
    block this reproduces trace.logits (ViT: the CLS; prompt-head text encoders: the pooled scores)."""
    hidden = _hidden(trace, where)
    with model.lock, torch.no_grad():
        return torch.stack([model.unembed(summary_token(model, h, trace.token_mask)) for h in hidden]).float()


def rank_score(scores, labels) -> np.ndarray:
    """r = 1 - rank_c / |C| of the true class c among a token's class scores (0-based rank: the number of
    classes scored strictly higher). scores [L, B, T, C], labels [B] -> r [L, B, T] in (0, 1]; 1 means the
    true class ranks first; chance is 0.5 (exactly (|C|+1) / (2|C|) for uniformly random ranks)."""
    s = torch.as_tensor(scores).float()
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=s.device)
    if s.dim() != 4 or y.shape != (s.shape[1],):
        raise ValueError(f"scores must be [L, B, T, C] and labels [B]; got {tuple(s.shape)} and {tuple(y.shape)}.")
    if bool(((y < 0) | (y >= s.shape[-1])).any()):
        raise ValueError(f"labels must be class indices in 0..{s.shape[-1] - 1}.")
    true = s.gather(-1, y.view(1, -1, 1, 1).expand(*s.shape[:3], 1))
    return (1.0 - (s > true).sum(-1).float() / s.shape[-1]).cpu().numpy()


@dataclass
class Identifiability:
    """Identifiability of the true class per block.

    summary: [L, B] r of the summary token (CLS / pooled); tokens: [L, B, T] r of every token, NaN where
    the token is padding or a prefix token (CLS, DeiT's distillation token); names: (summary group,
    token group) for display."""

    summary: np.ndarray
    tokens: np.ndarray
    names: tuple[str, str] = ("CLS", "image tokens")

    def groups(self) -> dict[str, np.ndarray]:
        """{group name: [L, n] r values}; the token group keeps NaN where a token is padding or a prefix."""
        L = self.summary.shape[0]
        return {self.names[0]: self.summary, self.names[1]: self.tokens.reshape(L, -1)}

    def rates(self) -> pd.DataFrame:
        """Per block and group: identifiability rate (share with r = 1), mean and median r, count."""
        rows = []
        for group, r in self.groups().items():
            for l, v in enumerate(r):
                v = v[~np.isnan(v)]
                rows.append(
                    {
                        "block": l + 1,
                        "group": group,
                        "rate": float((v == 1).mean()) if v.size else np.nan,
                        "mean r": float(v.mean()) if v.size else np.nan,
                        "median r": float(np.median(v)) if v.size else np.nan,
                        "n": int(v.size),
                    }
                )
        return pd.DataFrame(rows)


def identifiability(
    scores, labels, summary=None, token_mask=None, n_prefix: int = 1, names: tuple[str, str] = ("CLS", "image tokens")
) -> Identifiability:
    """Identifiability r = 1 - rank/|C| of the true class per block and token, split into the summary token
    and the other tokens.

    scores [L, B, T, C] (class_projection); labels [B]; summary [L, B, C] (summary_projection; default the
    CLS token's scores, scores[:, :, 0]); token_mask [B, T] (True = real token; default all); n_prefix:
    tokens before the patches / words, left out of the token group."""
    scores = torch.as_tensor(scores)
    r_tokens = rank_score(scores, labels)
    if summary is None:
        r_summary = r_tokens[:, :, 0].copy()
    else:
        r_summary = rank_score(torch.as_tensor(summary).unsqueeze(2), labels)[:, :, 0]
    keep = (
        np.ones(r_tokens.shape[1:], dtype=bool)
        if token_mask is None
        else torch.as_tensor(token_mask).bool().cpu().numpy().copy()
    )
    if keep.shape != r_tokens.shape[1:]:
        raise ValueError(f"token_mask must be [B, T] = {list(r_tokens.shape[1:])}, got {list(keep.shape)}.")
    keep[:, :n_prefix] = False
    r_tokens = np.where(keep[None], r_tokens, np.nan)
    return Identifiability(r_summary, r_tokens, (names[0], names[1]))


def token_class_map(scores, grid: tuple[int, int] | None, cls: int, n_prefix: int = 1) -> np.ndarray:
    """Which tokens of one input already rank class `cls` first, per block.

    scores [L, T, C] (one input of class_projection) -> bool [L, h, w] over the patch grid (images), or
    [L, T - n_prefix] over the words (grid None)."""
    s = torch.as_tensor(scores)
    if s.dim() != 3:
        raise ValueError(f"scores must be [L, T, C] for one input, got {tuple(s.shape)}.")
    if not 0 <= cls < s.shape[-1]:
        raise ValueError(f"class index {cls} is out of range 0..{s.shape[-1] - 1}.")
    first = (s[:, n_prefix:].argmax(-1) == cls).cpu().numpy()
    if grid is None:
        return first
    if first.shape[1] != grid[0] * grid[1]:
        raise ValueError(f"{first.shape[1]} tokens after the prefix do not fill a {grid[0]}x{grid[1]} grid.")
    return first.reshape(first.shape[0], *grid)


def top_classes(summary_scores, class_names: Sequence[str], k: int = 3) -> pd.DataFrame:
    """The k most probable classes of the summary token per block. summary_scores [L, C] (one input) ->
    DataFrame (block, rank, class, probability)."""
    p = torch.as_tensor(summary_scores).float().softmax(-1).cpu().numpy()
    order = np.argsort(-p, axis=-1)[:, :k]
    return pd.DataFrame(
        [
            {"block": l + 1, "rank": j + 1, "class": class_names[c], "probability": float(p[l, c])}
            for l in range(p.shape[0])
            for j, c in enumerate(order[l])
        ]
    )


def align_labels(dataset_classes: Sequence[str], labels, model_classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a dataset whose class matches one of the model's classes (data.match_labels), and their labels
    as model class indices.

    dataset_classes: names of the dataset's classes; labels [N] indices into them (-1 = none); model_classes:
    the model's class names -> (rows [M] positions in the dataset, labels [M] indices into model_classes)."""
    mapped = match_labels(model_classes, dataset_classes).to_model(labels)
    rows = np.flatnonzero(mapped >= 0)
    return rows, mapped[rows]


@dataclass
class SampleEmbedding:
    """Class-embedding results over a sample of N inputs.

    ident: Identifiability (summary [L, N], tokens [L, N, T] padded with NaN to the longest input);
    summary_scores: [L, N, C] class scores of the summary token per block; embeddings: [L+1, N, D] the
    summary token in the residual stream at the embedding output (layer 0) and after each block; labels: [N]."""

    ident: Identifiability
    summary_scores: np.ndarray
    embeddings: np.ndarray
    labels: np.ndarray


def embed_sample(
    model, inputs: Sequence, labels, where: str = "resid", batch_size: int = 128, progress: Progress | None = None
) -> SampleEmbedding:
    """Run `model` over raw inputs (images or strings) in batches and collect, for every block, the
    identifiability of the true class (labels [N]; -1 = unknown: the model's own prediction, read off the same
    forward) and the summary token's embeddings (see SampleEmbedding, whose labels are the classes scored).
    batch_size is lowered for large models so that one batch's scores and attention stay near MEMORY_BUDGET."""
    labels = np.array(labels)  # a copy: unknown labels (-1) become the predictions
    if len(inputs) == 0 or len(inputs) != len(labels):
        raise ValueError(f"Need as many labels as inputs (got {len(inputs)} inputs, {len(labels)} labels).")
    names = summary_names(model)
    spec = model.spec
    t = spec.n_prefix + spec.grid[0] * spec.grid[1] if spec.grid else (spec.max_tokens or 512)
    per_input = 4 * spec.n_layers * t * (spec.n_classes + spec.n_heads * t + 3 * spec.d_model)  # bytes
    batch_size = max(1, min(batch_size, MEMORY_BUDGET // per_input))
    r_sum, r_tok, sums, embs = [], [], [], []
    for i in range(0, len(inputs), batch_size):
        batch = model.prepare(list(inputs[i : i + batch_size]))
        tr = model.run(batch, capture=True)
        y = labels[i : i + batch_size].copy()
        unknown = y < 0
        y[unknown] = tr.logits.argmax(-1).cpu().numpy()[unknown]
        labels[i : i + batch_size] = y
        summary = summary_projection(model, tr, where)
        ident = identifiability(
            class_projection(model, tr, where), y, summary, tr.token_mask, model.spec.n_prefix, names
        )
        r_sum.append(ident.summary)
        r_tok.append(ident.tokens)
        sums.append(summary.cpu().numpy())
        with torch.no_grad():
            embs.append(torch.stack([summary_token(model, h, tr.token_mask) for h in tr.resid]).float().cpu().numpy())
        if progress:
            done = min(i + batch_size, len(inputs))
            progress(done / len(inputs), f"{done}/{len(inputs)} inputs")
    t = max(r.shape[2] for r in r_tok)
    r_tok = [np.pad(r, ((0, 0), (0, 0), (0, t - r.shape[2])), constant_values=np.nan) for r in r_tok]
    ident = Identifiability(np.concatenate(r_sum, 1), np.concatenate(r_tok, 1), names)
    return SampleEmbedding(ident, np.concatenate(sums, 1), np.concatenate(embs, 1), labels)


@dataclass
class Map2D:
    """2-D coordinates of embeddings. coords: [L, N, 2]; comparable: True when one map is shared by all
    layers (PCA), False when each layer has its own (UMAP, t-SNE: distances and axes differ per layer);
    explained: [2] explained variance ratio of the shared PCA axes (None otherwise)."""

    coords: np.ndarray
    method: str
    comparable: bool
    explained: np.ndarray | None = None


def project(embeddings, method: str = "pca", seed: int = 0, progress: Progress | None = None) -> Map2D:
    """embeddings [L, N, D] (or [N, D]) -> Map2D with coords [L, N, 2].

    "pca": one PCA fitted once on all layers' embeddings together and applied to every layer, so positions
    are comparable across layers. "umap" (cosine metric) and "tsne": fitted per layer, not comparable
    across layers. Seeded; progress(fraction, message) is called once per layer."""
    x = np.asarray(embeddings, dtype=np.float32)
    x = x[None] if x.ndim == 2 else x
    if x.ndim != 3:
        raise ValueError(f"embeddings must be [L, N, D] or [N, D], got {list(x.shape)}.")
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    L, n, d = x.shape
    if n < 3:
        raise ValueError(f"A 2-D map needs at least 3 inputs, got {n}.")
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(x.reshape(L * n, d))
        coords = pca.transform(x.reshape(L * n, d)).reshape(L, n, 2)
        if progress:
            progress(1.0, "PCA")
        return Map2D(coords.astype(np.float32), "pca", True, pca.explained_variance_ratio_)
    out = []
    for l in range(L):
        if progress:
            progress(l / L, f"{method.upper()} layer {l + 1}/{L}")
        out.append(_nonlinear(x[l], method, seed))
    if progress:
        progress(1.0, method.upper())
    return Map2D(np.stack(out).astype(np.float32), method, False)


def _nonlinear(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    """[N, D] -> [N, 2] with UMAP (cosine) or t-SNE (cosine, PCA init)."""
    n = x.shape[0]
    if method == "umap":
        import umap

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(15, n - 1),
            metric="cosine",
            random_state=seed,
            init="spectral" if n > 10 else "random",
            n_jobs=1,
        )
        return reducer.fit_transform(x)
    from sklearn.manifold import TSNE

    return TSNE(
        n_components=2, perplexity=min(30.0, (n - 1) / 3), metric="cosine", init="pca", random_state=seed
    ).fit_transform(x)


def separability(
    embeddings, labels, k: int = KNN_K, test_size: float = 0.3, seed: int = 0, progress: Progress | None = None
) -> pd.DataFrame:
    """How separable the classes are at each layer. embeddings [L, N, D], labels [N] -> DataFrame with one
    row per layer: silhouette (cosine distance), kNN accuracy (cosine, k neighbours, leave-one-out majority
    vote) and linear-probe accuracy (logistic regression on standardised features, trained on a stratified
    split and scored on the held-out test_size share)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(embeddings, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 3 or x.shape[1] != y.shape[0]:
        raise ValueError(f"embeddings must be [L, N, D] with N = len(labels); got {list(x.shape)}, {len(y)} labels.")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or len(y) <= len(classes):
        raise ValueError(
            f"Separability needs at least 2 classes and more inputs than classes "
            f"(got {len(y)} inputs in {len(classes)} classes)."
        )
    stratify = y if counts.min() >= 2 and round(test_size * len(y)) >= len(classes) else None
    train, test = train_test_split(np.arange(len(y)), test_size=test_size, random_state=seed, stratify=stratify)
    rows = []
    for l, e in enumerate(x):
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probe.fit(e[train], y[train])
        rows.append(
            {
                "layer": l,
                "silhouette": float(silhouette_score(e, y, metric="cosine")),
                "kNN accuracy": knn_accuracy(e, y, k),
                "probe accuracy": float(probe.score(e[test], y[test])),
            }
        )
        if progress:
            progress((l + 1) / len(x), f"layer {l}/{len(x) - 1}")
    return pd.DataFrame(rows)


def knn_accuracy(x, labels, k: int = KNN_K) -> float:
    """Leave-one-out kNN accuracy with cosine similarity: each point takes the majority label of its k
    nearest other points (ties: the smallest label). x [N, D], labels [N]; k is capped at N - 1."""
    x = torch.nn.functional.normalize(torch.as_tensor(np.asarray(x), dtype=torch.float64), dim=-1)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    k = max(1, min(k, len(y) - 1))
    sim = x @ x.T
    sim.fill_diagonal_(-float("inf"))
    nn_labels = y[sim.topk(k, dim=-1).indices]  # [N, k]
    votes = torch.zeros(len(y), int(y.max()) + 1, dtype=torch.long)
    votes.scatter_add_(1, nn_labels, torch.ones_like(nn_labels))
    return float((votes.argmax(-1) == y).double().mean())
