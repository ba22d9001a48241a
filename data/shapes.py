"""`shapes`: a seeded synthetic dataset of one coloured shape over a cluttered, textured background.

Each 48x48 RGB image holds exactly one foreground shape (circle, square, triangle, star, cross or ring)
at a random position, size, colour and rotation, drawn over a textured background (smooth colour noise,
a grating and pixel noise) with distractors that are none of the classes (thin straight or bent strokes
and soft blurry blobs). The shape's random colour is always lighter than the (random, darker) background
colour: with a fixed contrast polarity a small ViT learns the task from scratch in minutes on a CPU. The pixel
mask of the shape is known exactly, which makes the dataset the ground truth for localisation scores
(pointing game, mIoU).

Everything is vectorised over images (no per-image Python loop) and deterministic given the seed.
"""

from __future__ import annotations

import numpy as np

SIZE = 48
CLASS_NAMES = ["circle", "square", "triangle", "star", "cross", "ring"]
SEEDS = {"train": 1001, "test": 2002}
COUNTS = {"train": 5000, "test": 500}

_SUPERSAMPLE = 2  # sub-pixel samples per axis for anti-aliased edges
_MIN_LIGHTER = 0.3  # the shape's mean RGB exceeds the background's by at least this (light shape, darker ground)


def _inside(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points (u, v) in the shape's own frame (unit size, no rotation) lie inside class `label`.

    u, v: float arrays of any (equal) shape; returns a bool array of that shape.
    """
    rho = np.hypot(u, v)
    name = CLASS_NAMES[label]
    if name == "circle":
        return rho <= 1.0
    if name == "ring":
        return (rho <= 1.0) & (rho >= 0.58)
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if name == "cross":
        arm, width = 1.0, 0.32
        return ((np.abs(u) <= arm) & (np.abs(v) <= width)) | ((np.abs(v) <= arm) & (np.abs(u) <= width))
    theta = np.arctan2(v, u)
    if name == "triangle":  # regular polygon with circumradius 1.1: fold the angle into one edge's sector
        n, radius = 3, 1.1
        sector = 2 * np.pi / n
        t = np.mod(theta, sector) - sector / 2
        return rho * np.cos(t) <= radius * np.cos(np.pi / n)
    if name == "star":  # five points: outer radius 1.1, inner radius 0.5
        n, outer, inner = 5, 1.1, 0.5
        sector = 2 * np.pi / n
        t = np.abs(np.mod(theta, sector) - sector / 2)  # 0 at an inner vertex, sector/2 at an outer one
        px, py = rho * np.cos(t), rho * np.sin(t)
        ox, oy = outer * np.cos(sector / 2), outer * np.sin(sector / 2)
        # same side of the edge inner vertex -> outer vertex as the origin
        return (ox - inner) * py - oy * (px - inner) >= 0
    raise ValueError(f"Unknown shape class {label}")


def _uniform(rng: np.random.Generator, low, high, size) -> np.ndarray:
    """Seeded uniform floats as float32 (the whole pipeline stays in float32 for speed)."""
    return rng.uniform(low, high, size).astype(np.float32)


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] bilinear upsampling matrix (align_corners=True)."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    frac = pos - lo
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), lo] = 1 - frac
    m[np.arange(n_out), lo + 1] = frac
    return m


def _smooth_noise(rng: np.random.Generator, n: int, coarse: int, amplitude: float) -> np.ndarray:
    """[n, SIZE, SIZE, 3] smooth colour noise: a coarse random grid upsampled bilinearly."""
    m = _interp_matrix(coarse, SIZE).astype(np.float32)
    grid = _uniform(rng, -amplitude, amplitude, (n, 3, coarse, coarse))
    return (m @ grid @ m.T).transpose(0, 2, 3, 1)


def _segment_distance(py, px, a, b) -> np.ndarray:
    """Distance of pixel centres (py, px [S, S]) to segments a -> b ([n, 2] as (y, x)) -> [n, S, S]."""
    ay, ax = a[:, 0, None, None], a[:, 1, None, None]
    dy, dx = (b - a)[:, 0, None, None], (b - a)[:, 1, None, None]
    t = np.clip(((py - ay) * dy + (px - ax) * dx) / np.maximum(dy * dy + dx * dx, 1e-9), 0, 1)
    return np.hypot(py - ay - t * dy, px - ax - t * dx)


def _blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """img [n, S, S, 3] with colour [n, 3] laid over it with opacity alpha [n, S, S] (float32, in place)."""
    a = alpha[..., None].astype(np.float32)
    img += a * (colour[:, None, None, :].astype(np.float32) - img)
    return img


def _background(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Textured, cluttered backgrounds [n, S, S, 3] in [0, 1] and their mean colours [n, 3]."""
    py, px = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    base = _uniform(rng, 0.05, 0.5, (n, 3))
    img = base[:, None, None, :] + _smooth_noise(rng, n, 5, 0.18) + _smooth_noise(rng, n, 13, 0.07)
    # a faint grating of random orientation and period
    angle = _uniform(rng, 0, np.pi, n)[:, None, None]
    period = _uniform(rng, 4, 12, n)[:, None, None]
    phase = _uniform(rng, 0, 2 * np.pi, n)[:, None, None]
    grating = np.sin(2 * np.pi * (px * np.cos(angle) + py * np.sin(angle)) / period + phase)
    img = img + (_uniform(rng, 0.0, 0.08, n)[:, None, None] * grating)[..., None]
    # distractor blobs: small soft Gaussian spots (no sharp edge, so never a circle)
    for _ in range(5):
        on = rng.random(n) < 0.7
        cy, cx = _uniform(rng, 0, SIZE, (2, n))[:, :, None, None]
        sy, sx = _uniform(rng, 1.2, 3.0, (2, n))[:, :, None, None]
        alpha = np.exp(-0.5 * (((py - cy) / sy) ** 2 + ((px - cx) / sx) ** 2)) * on[:, None, None]
        img = _blend(img, alpha * _uniform(rng, 0.5, 0.9, n)[:, None, None], _uniform(rng, 0, 1, (n, 3)))
    # distractor strokes: thin straight or bent lines
    for _ in range(6):
        on = rng.random(n) < 0.75
        a = _uniform(rng, -4, SIZE + 4, (n, 2))
        b = a + _uniform(rng, -22, 22, (n, 2))
        c = b + _uniform(rng, -14, 14, (n, 2))
        bent = rng.random(n) < 0.5
        dist = _segment_distance(py, px, a, b)
        dist = np.where(bent[:, None, None], np.minimum(dist, _segment_distance(py, px, b, c)), dist)
        width = _uniform(rng, 0.4, 1.1, n)[:, None, None]
        alpha = np.clip(width + 0.5 - dist, 0, 1) * on[:, None, None]
        img = _blend(img, alpha, _uniform(rng, 0, 1, (n, 3)))
    return img, base


def _foreground_colour(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """[n, 3] random colours whose mean RGB is at least _MIN_LIGHTER above that of base [n, 3] (or the lightest)."""
    candidates = _uniform(rng, 0, 1, (len(base), 16, 3))
    lighter = candidates.mean(-1) - base.mean(-1)[:, None]
    ok = lighter >= _MIN_LIGHTER
    pick = np.where(ok.any(1), ok.argmax(1), lighter.argmax(1))
    return candidates[np.arange(len(base)), pick]


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n seeded images: uint8 RGB [n, 48, 48, 3], labels int64 [n] and object masks bool [n, 48, 48].

    Classes are balanced (counts differ by at most one); the same (n, seed) always gives the same arrays.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES)).astype(np.int64)
    img, base = _background(rng, n)

    radius = _uniform(rng, 7.0, 14.0, n)
    margin = 1.1 * radius + 1  # the largest shape reaches 1.1 x radius from its centre
    cy, cx = margin + _uniform(rng, 0, 1, (2, n)) * (SIZE - 2 * margin)
    angle = _uniform(rng, 0, 2 * np.pi, n)
    colour = _foreground_colour(rng, base)

    # sub-pixel sample positions -> coverage (anti-aliased alpha) of each pixel
    k = _SUPERSAMPLE
    offsets = (np.arange(k) + 0.5) / k
    sy = (np.arange(SIZE)[:, None] + offsets[None, :]).reshape(-1).astype(np.float32)  # [S*k]
    grid_y, grid_x = np.meshgrid(sy, sy, indexing="ij")
    coverage = np.zeros((n, SIZE, SIZE), np.float32)
    for label in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(labels == label)
        if not len(idx):
            continue
        dy = grid_y[None] - cy[idx, None, None]
        dx = grid_x[None] - cx[idx, None, None]
        cos, sin = np.cos(angle[idx])[:, None, None], np.sin(angle[idx])[:, None, None]
        r = radius[idx, None, None]
        u, v = (cos * dx + sin * dy) / r, (-sin * dx + cos * dy) / r
        inside = _inside(label, u, v).astype(np.float32)
        coverage[idx] = inside.reshape(len(idx), SIZE, k, SIZE, k).mean(axis=(2, 4))
    # the shape carries a gentle shading gradient so it is not a flat fill
    centre_y = np.arange(SIZE, dtype=np.float32) + 0.5
    shade = 1 + 0.12 * np.tanh((centre_y[None, :, None] - cy[:, None, None]) / radius[:, None, None])
    fg = np.clip(colour[:, None, None, :] * shade[..., None], 0, 1)
    img = img * (1 - coverage[..., None]) + fg * coverage[..., None]
    img += 0.03 * rng.standard_normal(img.shape, dtype=np.float32)
    images = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return images, labels, coverage >= 0.5


def arrays(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The split "train" (5000), "test" (500) or "all" (both) as (images uint8 [N, 48, 48, 3], labels [N],
    masks [N, 48, 48])."""
    if split == "all":
        parts = [arrays(s) for s in ("train", "test")]
        images, labels, masks = (np.concatenate(p) for p in zip(*parts))
        return images, labels, masks
    if split not in SEEDS:
        raise ValueError(f"Unknown split {split!r}: use 'train', 'test' or 'all'.")
    return generate(COUNTS[split], SEEDS[split])
