"""The exact minimiser of Dong et al.'s composite norm (analysis.l1inf) against brute force written here: a grid
over x for two-column matrices, and a scan over the column-sum budget t of an LP for least row-sum (the product's
minimum is min over t of t * B*(t)), on random and heavy-tailed matrices."""

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from analysis import spectral as S
from analysis.l1inf import l1inf_minimum


def composite(X: np.ndarray, x: np.ndarray) -> np.ndarray:
    """||X - 1 x^T||_{1,inf} for x [..., D] (any leading dims)."""
    r = np.abs(X - x[..., None, :])
    return np.sqrt(r.sum(-2).max(-1) * r.sum(-1).max(-1))


def least_row_sum(X: np.ndarray, t: float) -> float:
    """B*(t) = min over x of the largest row abs-sum of X - 1 x^T with every column abs-sum <= t (dense LP)."""
    T, D = X.shape
    n = D + T * D + 1  # x, e_ij >= |X_ij - x_j|, b
    rows = []
    for i in range(T):
        for j in range(D):
            for sign in (1.0, -1.0):  # sign * (X_ij - x_j) <= e_ij
                row = np.zeros(n)
                row[j], row[D + i * D + j] = -sign, -1.0
                rows.append((row, -sign * X[i, j]))
        row = np.zeros(n)
        row[D + i * D : D + (i + 1) * D], row[-1] = 1.0, -1.0
        rows.append((row, 0.0))
    for j in range(D if np.isfinite(t) else 0):
        row = np.zeros(n)
        row[D + j :: D][:T] = 1.0
        rows.append((row, t))
    c = np.zeros(n)
    c[-1] = 1.0
    bounds = [(None, None)] * D + [(0, None)] * (T * D + 1)
    res = linprog(c, A_ub=np.array([r for r, _ in rows]), b_ub=[b for _, b in rows], bounds=bounds, method="highs")
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_columns_match_a_grid_search(seed):
    X = np.random.default_rng(seed).standard_t(2, size=(5, 2))
    value, x = l1inf_minimum(X)
    assert composite(X, x) == pytest.approx(value, rel=1e-9)  # the returned x attains the value
    lo, hi = X.min(0), X.max(0)  # the minimiser lies in the columns' ranges
    for _ in range(6):  # a grid, then zoom in around its best point
        axes = [np.linspace(lo[j], hi[j], 401) for j in range(2)]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
        g = composite(X, grid)
        best = grid[np.unravel_index(g.argmin(), g.shape)]
        step = (hi - lo) / 400
        lo, hi = best - 4 * step, best + 4 * step
    assert value <= g.min() * (1 + 1e-7)  # no grid point beats it
    assert value >= g.min() * (1 - 1e-6)  # and the grid comes down to it


@pytest.mark.parametrize("shape,heavy", [((6, 5), False), ((6, 5), True), ((9, 4), True)])
def test_matches_a_scan_of_the_column_budget(shape, heavy):
    rng = np.random.default_rng(sum(shape))
    X = rng.standard_t(2, size=shape) if heavy else rng.normal(size=shape)
    value, _ = l1inf_minimum(X)
    a_min = np.abs(X - np.median(X, 0)).sum(0).max()
    b_min = least_row_sum(X, np.inf)
    t_hi = composite(X, X.mean(0)) ** 2 / b_min  # an optimum has A <= (its product) / B <= this
    ts = np.linspace(a_min, t_hi, 400)
    scan = min(t * least_row_sum(X, t) for t in ts)
    assert value**2 <= scan * (1 + 1e-7)
    # t * B*(t) at the grid point after the optimal t* is at most (t* + step) B*(t*): the scan's own error
    assert value**2 >= scan / (1 + (ts[1] - ts[0]) / a_min)


def test_invariants_and_the_token_mean_is_only_an_upper_bound():
    rng = np.random.default_rng(3)
    X = rng.standard_t(2, size=(17, 64))
    value, x = l1inf_minimum(X)
    shift = rng.normal(size=64)
    assert l1inf_minimum(X + shift)[0] == pytest.approx(value, rel=1e-6)  # X + 1 c^T has the same residual
    assert l1inf_minimum(3.0 * X)[0] == pytest.approx(3.0 * value, rel=1e-6)
    assert value < composite(X, X.mean(0)) / 1.05  # the mean is > 5% off on heavy tails
    assert value <= composite(X, np.zeros(64))  # x = 0 is a candidate: the ratio never exceeds 1
    assert l1inf_minimum(np.outer(np.ones(7), rng.normal(size=5)))[0] < 1e-9  # rank one: nothing left


def test_rank_collapse_l1inf_uses_the_real_tokens_only():
    rng = np.random.default_rng(4)
    x = torch.as_tensor(rng.standard_t(2, size=(2, 6, 5)), dtype=torch.float32)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
    x[1, 4:] = 100.0  # padding: must not count
    got = S.rank_collapse(x, mask, norm="l1inf")
    for b, n in enumerate((6, 4)):
        X = x[b, :n].double().numpy()
        assert float(got[b]) == pytest.approx(l1inf_minimum(X)[0] / composite(X, np.zeros(5)), rel=1e-5)
    assert bool((got <= 1.0).all()) and bool((got < S.rank_collapse(x, mask, norm="fro") * 10).all())


@pytest.mark.parametrize("seed", [0, 1])
def test_tiny_residuals_are_solved_to_their_own_scale(seed):
    """Nearly rank-one matrices (every token the same vector, plus 1e-9 noise): the residual's minimum is the
    noise's own minimum (X + 1 c^T has the same residual; the norm scales), never above the token mean's or the
    coordinate-wise median's, whatever the LP's absolute tolerances."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(10, 6))
    X = np.outer(np.ones(10), 10 * rng.normal(size=6)) + 1e-9 * noise
    value, x = l1inf_minimum(X)
    assert value == pytest.approx(1e-9 * l1inf_minimum(noise)[0], rel=1e-5)
    assert value <= min(composite(X, X.mean(0)), composite(X, np.median(X, 0)))
    assert composite(X, x) == pytest.approx(value, rel=1e-6)
