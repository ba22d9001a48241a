"""The exact minimiser of Dong et al.'s composite norm ||X - 1 x^T||_{1,inf} over the token vector x.

Dong, Cordonnier & Loukas (ICML 2021) measure rank collapse by res(X) = X - 1 x^T with
x = argmin_x ||X - 1 x^T||_{1,inf}, where ||R||_{1,inf} = sqrt(||R||_1 ||R||_inf): ||R||_1 = A is the largest
column abs-sum, ||R||_inf = B the largest row abs-sum. The token mean minimises the Frobenius norm only; under
this norm it is an upper bound (1.04 to 1.27x the minimum on real residual streams). A and B are convex in x,
their product is not, but the product is quasi-concave in (A, B): its minimum over the convex set of
achievable (A, B) lies at a vertex of that set's lower-left (Pareto) boundary. Every boundary vertex minimises
mu * A + B for some mu > 0, one linear program each (HiGHS through scipy). The search walks the boundary from
its two ends (least A, least B), bisecting by slope, and drops a stretch whose best conceivable product
(least A times least B of the stretch) cannot beat the best found: the answer is exact to the LP tolerance.
Cost: one LP has T * D variables; 3 to 10 LPs per matrix: 1.5 s per digits-vit state (65 tokens x 64 features),
10 to 50 s per minilm state (20 to 30 x 384) on one CPU core (bench/spectral.py).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

RTOL = 1e-7  # relative tolerance of the boundary search, that of the HiGHS solutions


def _abs_sums(X: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(A, B) = (largest column abs-sum, largest row abs-sum) of X - 1 x^T; X [T, D], x [D]."""
    r = np.abs(X - x)
    return float(r.sum(0).max()), float(r.sum(1).max())


class _BoundaryLP:
    """The LP over z = [x (D), e (T*D), A, B]: e_ij >= |X_ij - x_j|, sum_i e_ij <= A, sum_j e_ij <= B."""

    def __init__(self, X: np.ndarray):
        T, D = X.shape
        m = T * D
        i, j = np.divmod(np.arange(m), D)
        e = D + np.arange(m)
        a, b = D + m, D + m + 1
        r = np.arange(m)
        ones = np.ones(m)
        rows = np.concatenate([r, r, m + r, m + r, 2 * m + j, 2 * m + np.arange(D), 2 * m + D + i])
        rows = np.concatenate([rows, 2 * m + D + np.arange(T)])
        cols = np.concatenate([j, e, j, e, e, np.full(D, a), e, np.full(T, b)])
        vals = np.concatenate([-ones, -ones, ones, -ones, ones, -np.ones(D), ones, -np.ones(T)])
        self.A_ub = sp.csr_matrix((vals, (rows, cols)), shape=(2 * m + D + T, m + D + 2))
        self.b_ub = np.concatenate([-X.ravel(), X.ravel(), np.zeros(D + T)])
        self.D, self.n = D, m + D + 2

    def solve(self, mu: float, nu: float, a_max: float | None = None, b_max: float | None = None) -> np.ndarray:
        """x [D] minimising mu * A + nu * B subject to A <= a_max, B <= b_max (None: no bound)."""
        c = np.zeros(self.n)
        c[-2], c[-1] = mu, nu
        bounds = [(None, None)] * self.D + [(0, None)] * (self.n - self.D - 2) + [(0, a_max), (0, b_max)]
        res = linprog(c, A_ub=self.A_ub, b_ub=self.b_ub, bounds=bounds, method="highs")
        if res.status != 0:
            raise RuntimeError(f"the composite-norm LP failed: {res.message}")
        return res.x[: self.D]


def _lower_bound(p: tuple, q: tuple) -> float:
    """Least A * B the achievable set can have between boundary points p and q (A, B, mu; p.A < q.A): the
    boundary there lies in the box [p.A, q.A] x [q.B, p.B] and above both supporting lines, i.e. in the triangle
    p, c, q (c where the lines cross); A * B is quasi-concave, so its least value is at a corner."""
    ka, kb = p[2] * p[0] + p[1], q[2] * q[0] + q[1]
    ca = p[0] if np.isinf(p[2]) else (ka - kb) / (p[2] - q[2])
    cb = kb - q[2] * ca
    return max(p[0] * q[1], min(ca * cb, p[0] * p[1], q[0] * q[1]))


def l1inf_minimum(X) -> tuple[float, np.ndarray]:
    """min over x of ||X - 1 x^T||_{1,inf} and the minimising x; X [T, D] (float64 internally). The LPs see X
    centred on its token mean and scaled to a largest entry of 1, so their absolute tolerances are relative to
    the residual (the problem is equivariant to both); the mean and the coordinate-wise median are candidates."""
    X = np.asarray(X, dtype=np.float64)
    if X.shape[0] < 2:
        return 0.0, X[0] if len(X) else np.zeros(X.shape[1])
    centre = X.mean(0)
    scale = float(np.abs(X - centre).max())
    if scale == 0.0:
        return 0.0, centre
    value, x = _scaled_minimum((X - centre) / scale)
    return value * scale, x * scale + centre


def _scaled_minimum(X: np.ndarray) -> tuple[float, np.ndarray]:
    """l1inf_minimum's search on X [T, D] centred and scaled to entries of size 1."""
    lp = _BoundaryLP(X)
    best = [np.inf, X.mean(0)]

    def point(x: np.ndarray) -> tuple[float, float]:
        a, b = _abs_sums(X, x)
        if a * b < best[0]:
            best[:] = [a * b, x]
        return a, b

    point(X.mean(0))
    a_min = point(np.median(X, 0))[0]  # each column's least abs-sum sits at its median
    b_min = point(lp.solve(0.0, 1.0))[1]
    # boundary points (A, B, mu): mu * A + B is least there, i.e. the line of slope -mu through it supports the set
    p = (*point(lp.solve(0.0, 1.0, a_max=a_min * (1 + RTOL))), np.inf)  # least A, then least B
    q = (*point(lp.solve(1.0, 0.0, b_max=b_min * (1 + RTOL))), 0.0)  # least B, then least A
    stack = [(p, q)]
    while stack:
        p, q = stack.pop()
        if q[0] - p[0] <= RTOL * q[0] or p[1] - q[1] <= RTOL * p[1] or _lower_bound(p, q) >= best[0] * (1 - RTOL):
            continue  # nothing between p and q can beat the best product found
        mu = (p[1] - q[1]) / (q[0] - p[0])
        r = (*point(lp.solve(mu, 1.0)), mu)
        if mu * r[0] + r[1] < (mu * p[0] + p[1]) * (1 - RTOL):  # a boundary vertex below the segment p-q
            stack += [(p, r), (r, q)]
    return float(np.sqrt(best[0])), best[1]
