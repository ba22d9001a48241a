"""Attention-pattern summary over a dataset sample (Li et al.'s VA paper, view D; the Attention-heads section of
the methods document under docs/).

Each (input, head) pattern becomes a fixed-size vector (pattern_vectors): the CLS row on the patch grid
(images; without a prefix token, the mean attention each patch receives), the mean relative-offset
profile of the positioned queries (where, relative to itself, a query looks: a (2K+1) x (2K+1) kernel on
the grid, 2K+1 offsets for text, farther offsets pooled at the border), the attention given to the prefix
tokens and the normalised entropy. The vectors are embedded (PCA, or a small torch autoencoder as in the
VA paper), clustered (scikit-learn), projected to 2-D (PCA or UMAP), and summarised by a prototype per
cluster (the mean vector of its members, which unpacks back into a CLS map and an offset kernel).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from analysis.attention import as_batch, binned_mass, geometry, masked_keys, query_mean, query_weights

MAX_OFFSET = 7  # offsets beyond +-K per axis are pooled into the border bins

Layout = dict[str, tuple[int, int, tuple[int, ...]]]  # part -> (start, stop, shape)


def pattern_layout(grid: tuple[int, int] | None, max_offset: int = MAX_OFFSET) -> Layout:
    """Where each part sits in a pattern vector: name -> (start, stop, shape to unpack it)."""
    parts: list[tuple[str, tuple[int, ...]]] = []
    if grid is not None:
        parts.append(("cls_map", tuple(grid)))
        kr, kc = min(max_offset, grid[0] - 1), min(max_offset, grid[1] - 1)
        parts.append(("offsets", (2 * kr + 1, 2 * kc + 1)))
    else:
        parts.append(("offsets", (1, 2 * max_offset + 1)))
    parts += [("prefix_mass", (1,)), ("entropy", (1,))]
    layout, start = {}, 0
    for name, shape in parts:
        size = int(np.prod(shape))
        layout[name] = (start, start + size, shape)
        start += size
    return layout


def unpack(vector: np.ndarray, layout: Layout) -> dict[str, np.ndarray]:
    """A pattern vector [..., F] split into its parts, each reshaped (e.g. cls_map [..., h, w])."""
    return {k: vector[..., a:b].reshape(*vector.shape[:-1], *shape) for k, (a, b, shape) in layout.items()}


def pattern_vectors(
    attn: torch.Tensor,
    grid: tuple[int, int] | None,
    n_prefix: int = 1,
    token_mask: torch.Tensor | None = None,
    max_offset: int = MAX_OFFSET,
) -> np.ndarray:
    """One vector per (input, head): attn [L, B, H, T, T] (or [L, H, T, T]) -> [B, L, H, F] (numpy), laid out
    as pattern_layout(grid, max_offset) says. Works on padded text batches (token_mask [B, T])."""
    attn, mask = as_batch(attn, token_mask)
    T = attn.shape[-1]
    pos, _, _ = geometry(attn, n_prefix, grid)
    a = masked_keys(attn, mask)
    w = query_weights(attn, mask, n_prefix)
    off = (pos[None, :, :] - pos[:, None, :]).long()  # [N, N, 2] key - query
    kr = 0 if grid is None else min(max_offset, grid[0] - 1)
    kc = max_offset if grid is None else min(max_offset, grid[1] - 1)
    bins = torch.full((T, T), -1, dtype=torch.long, device=attn.device)
    bins[n_prefix:, n_prefix:] = (off[..., 0].clamp(-kr, kr) + kr) * (2 * kc + 1) + off[..., 1].clamp(-kc, kc) + kc
    parts = []
    if grid is not None:
        # the CLS row on the grid, or without a prefix token the mean attention each patch receives
        parts.append(a[..., 0, n_prefix:] if n_prefix > 0 else torch.einsum("lbhij,bi->lbhj", a, w))
    parts.append(binned_mass(a, w, bins, (2 * kr + 1) * (2 * kc + 1)))
    parts.append(query_mean(a[..., :n_prefix].sum(-1), w)[..., None])
    n_real = torch.full((attn.shape[1],), float(T), device=attn.device) if mask is None else mask.sum(-1)
    ent = query_mean(torch.special.entr(attn).sum(-1), query_weights(attn, mask))
    parts.append((ent / torch.log(n_real.clamp_min(2.0))[None, :, None])[..., None])
    return torch.cat(parts, -1).transpose(0, 1).cpu().numpy()


# -- embedding, clustering, projection -------------------------------------------------------------
class PatternAutoencoder(torch.nn.Module):
    """F -> 64 -> dim -> 64 -> F multilayer autoencoder (the VA paper embeds attention maps this way)."""

    def __init__(self, n_features: int, dim: int, hidden: int = 64):
        super().__init__()
        self.encoder = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, dim)
        )
        self.decoder = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, n_features)
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


def autoencode(
    x: np.ndarray,
    dim: int = 8,
    epochs: int = 60,
    batch_size: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Train a PatternAutoencoder on standardised rows x [N, F]; returns (codes [N, dim], loss per epoch)."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    t = torch.as_tensor(x, dtype=torch.float32)
    t = (t - t.mean(0)) / t.std(0).clamp_min(1e-6)
    net = PatternAutoencoder(t.shape[1], dim)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for idx in torch.randperm(len(t), generator=g).split(batch_size):
            loss = torch.nn.functional.mse_loss(net(t[idx]), t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(t))
        if progress:
            progress((epoch + 1) / epochs, f"autoencoder epoch {epoch + 1}/{epochs}, loss {losses[-1]:.3f}")
    with torch.no_grad():
        return net.encoder(t).numpy(), losses


def embed(
    x: np.ndarray,
    method: str = "pca",
    dim: int = 8,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> np.ndarray:
    """Rows x [N, F] -> codes [N, dim'] with "pca" (dim' = min(dim, N, F)) or "autoencoder"."""
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=min(dim, *x.shape), random_state=seed).fit_transform(x)
    if method == "autoencoder":
        return autoencode(x, dim, seed=seed, progress=progress)[0]
    raise ValueError(f"Unknown embedding {method!r}: use 'pca' or 'autoencoder'.")


def cluster(z: np.ndarray, k: int, method: str = "kmeans", seed: int = 0) -> np.ndarray:
    """Cluster labels [N] of codes z [N, d] into k clusters ("kmeans" or "agglomerative", Ward)."""
    k = int(min(k, len(z)))
    if k < 1:
        raise ValueError("Need at least one pattern to cluster.")
    if method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(z)
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        return AgglomerativeClustering(n_clusters=k).fit_predict(z)
    raise ValueError(f"Unknown clustering {method!r}: use 'kmeans' or 'agglomerative'.")


def project_2d(z: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Codes z [N, d] -> [N, 2] with "pca" or "umap" (UMAP coordinates are not comparable across runs)."""
    if z.shape[1] <= 2:
        return np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(z)
    if method == "umap":
        import umap

        return umap.UMAP(n_components=2, n_neighbors=min(15, len(z) - 1), random_state=seed, n_jobs=1).fit_transform(z)
    raise ValueError(f"Unknown projection {method!r}: use 'pca' or 'umap'.")


def prototypes(x: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: the prototype (mean of its members' vectors) [k, F] and its medoid, the row index of
    the member nearest to the prototype [k] (-1 for an empty cluster)."""
    protos = np.zeros((k, x.shape[1]), dtype=np.float64)
    medoids = np.full(k, -1)
    for c in range(k):
        rows = np.flatnonzero(labels == c)
        if len(rows):
            protos[c] = x[rows].mean(0)
            medoids[c] = rows[np.argmin(((x[rows] - protos[c]) ** 2).sum(1))]
    return protos, medoids


@dataclass
class PatternSummary:
    """The pattern map of N = B * L * H (input, head) vectors.

    codes [N, d]; coords [N, 2]; labels [N]; prototypes [k, F]; medoids [k]; input, layer, head [N]: which
    (input, head) each row is; share [k, L, H]: the fraction of the inputs whose pattern at that head falls
    in each cluster."""

    codes: np.ndarray
    coords: np.ndarray
    labels: np.ndarray
    prototypes: np.ndarray
    medoids: np.ndarray
    input: np.ndarray
    layer: np.ndarray
    head: np.ndarray
    share: np.ndarray

    def inputs_of(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(input indices, member counts) of cluster c, most members first."""
        idx, counts = np.unique(self.input[self.labels == c], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        return idx[order], counts[order]


def summarise_patterns(
    vectors: np.ndarray,
    k: int = 6,
    embedding: str = "pca",
    dim: int = 8,
    clustering: str = "kmeans",
    projection: str = "pca",
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
) -> PatternSummary:
    """Embed, cluster and project pattern vectors [B, L, H, F] (from pattern_vectors)."""
    B, L, H, F = vectors.shape
    x = vectors.reshape(-1, F).astype(np.float64)
    inp, layer, head = (a.ravel() for a in np.meshgrid(np.arange(B), np.arange(L), np.arange(H), indexing="ij"))
    codes = embed(x, embedding, dim, seed, progress)
    labels = cluster(codes, k, clustering, seed)
    k = int(labels.max()) + 1
    coords = project_2d(codes, projection, seed)
    protos, medoids = prototypes(x, labels, k)
    share = (labels.reshape(B, L, H)[None] == np.arange(k)[:, None, None, None]).mean(1)
    return PatternSummary(codes, coords, labels, protos, medoids, inp, layer, head, share)
