"""Mutual-information (HSIC) estimators for MI trajectories (paper_notes.md §2).

The paper scores every reasoning step ``t`` by an "MI" between the last-layer
hidden state ``h_t`` (a vector of ``d`` numbers) and the representation ``h_y``
of the gold solution (another ``d`` numbers).

**What one pair of vectors measures (MI-Peaks issue #7).** A single pair
``(h_t, h_y)`` is one sample, and no mutual information between random
variables can be estimated from one sample. The official code makes the
estimate possible by treating the ``d`` *coordinates* as ``d`` paired scalar
samples ``(h_t[i], h_y[i])``, ``i = 1..d``. It then measures a kernel dependence
between the coordinate *values* of ``h_t`` and those of ``h_y``. Example: does
the coordinate where ``h_t`` is large tend to be large in ``h_y`` too (in any
nonlinear, Gaussian-kernel sense)? This is a similarity between two vectors,
related to a kernelised correlation of their entries. It is not the mutual
information ``I(h_t; h_y)`` between hidden states and gold representations as
random variables over problems. :func:`cross_sample_hsic` offers that
population-level alternative, with a permutation test.

Estimators (the samples are the ``d`` coordinates, ``K`` a Gaussian kernel
``K_ij = exp(-(v_i - v_j)^2 / (2 sigma^2))`` and ``H = I - 11^T/d``):

* ``hsic_paper`` (official code, from HSIC-bottleneck's
  ``hsic_normalized_cca``): ``Kc = K H`` (centred on the right only),
  ``R = Kc (Kc + eps d I)^{-1}`` and ``MI = tr(R_x R_y)``, with
  ``sigma = 50`` and ``eps = 1e-5``. :func:`hsic_paper` evaluates it exactly
  (within 1e-6 relative; typically 1e-12 to 1e-8) from pivoted-Cholesky factors of the kernel,
  in ``O(d r^2)`` rather than ``O(d^3)``. :func:`hsic_paper_dense` is the
  original dense method: two ``d x d`` inverses in torch, float32 as in the
  original code.
  Because ``H^2 = H``, centring on the right only gives the same trace as
  centring on both sides: ``tr(R_x R_y) = tr(S_x S_y)`` with
  ``S = K~ (K~ + eps d I)^{-1}`` and ``K~ = H K H``. ``S`` is symmetric with
  eigenvalues ``lambda / (lambda + eps d)`` in ``[0, 1)``, a soft projection
  onto the kernel's leading centred components. So the statistic is the
  normalised ("NOCCO") HSIC, a kernel-CCA-like overlap of two such soft
  projections, with ``0 <= MI < min(tr S_x, tr S_y)``. Each trace is
  bounded by the number of centred kernel eigenvalues above ``~eps d``.
* ``hsic_text`` (paper text): the biased empirical HSIC
  ``tr(K_x H K_y H) / (d - 1)^2``, with ``sigma`` chosen from a grid (see
  :func:`hsic_text`).

Why the fast path is exact. For 1-D samples, a Gaussian kernel whose ``sigma``
is large compared with the spread of the values is numerically low rank. A
pivoted Cholesky ``K = L L^T + E`` stops once the PSD residual ``E`` has
``max_i E_ii <= tol`` (so ``|E_ij| <= tol`` everywhere). With ``A = L`` and
``B = H L`` we have ``Kc = A B^T``, and the push-through identity gives
``R = A (B^T A + c I)^{-1} B^T`` with ``c = eps d``. Here ``B^T A = B^T B`` is
symmetric PSD, so ``M = (B^T B + c I)^{-1}`` is SPD with eigenvalues
``<= 1/c``. Then

    tr(R_x R_y) = tr(M_x G M_y G^T),   G = L_x^T H L_y   (r_x x r_y).

The error from dropping ``E`` is of order ``tol / eps``. That is 1e-8 at the
default ``tol = 1e-13``. The tests measure 1e-12 to 1e-8 against a dense
float64 evaluation. That is the level at which two dense float64
implementations agree with each other, because the ridge ``eps`` limits the
conditioning. If the rank reaches ``max_rank``, for example because the
values are spread over many multiples of ``sigma``, the code falls back to a
dense float64 evaluation, which is still exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
import torch
from jaxtyping import Float, Int

__all__ = [
    "EPS_PAPER",
    "ESTIMATORS",
    "SIGMA_GRID",
    "SIGMA_PAPER",
    "CrossSampleResult",
    "PaperHSIC",
    "PaperHSICDense",
    "TextHSIC",
    "aligned_positions",
    "cross_sample_hsic",
    "cross_sample_trajectory",
    "gaussian_factor",
    "hsic_paper",
    "hsic_paper_dense",
    "hsic_text",
    "hsic_text_dense",
    "median_bandwidth",
    "trajectory",
]

SIGMA_PAPER: float = 50.0
"""Kernel width of the official code (``estimate_mi_hsic``)."""
EPS_PAPER: float = 1e-5
"""Ridge of ``hsic_normalized_cca``; the ridge added to ``Kc`` is ``eps * d``."""
SIGMA_GRID: tuple[float, ...] = (50.0, 100.0, 200.0, 300.0, 400.0)
"""Our grid for the paper text's "grid search over [50, 400]"."""
DEFAULT_TOL: float = 1e-13
"""Pivoted-Cholesky stopping threshold on the largest residual diagonal."""
ESTIMATORS: tuple[str, ...] = ("hsic_paper", "hsic_paper_dense", "hsic_text")

Vector = Float[np.ndarray, "d"] | Float[torch.Tensor, "d"]
Matrix = Float[np.ndarray, "n d"] | Float[torch.Tensor, "n d"]


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _to_numpy(a: Any) -> np.ndarray:
    """Returns ``a`` as a float64 numpy array. Torch tensors are detached and moved to the CPU."""
    if isinstance(a, torch.Tensor):
        return a.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _as_vector(a: Any, name: str) -> Float[np.ndarray, "d"]:
    v = _to_numpy(a)
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one hidden state), got shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or inf")
    return v


def _check_pair(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.shape} and {y.shape}")


def _check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a positive finite number, got {sigma}")
    return sigma


def _sigmas(sigma: float | Sequence[float]) -> tuple[float, ...]:
    if np.ndim(sigma) == 0:
        return (_check_sigma(sigma),)  # type: ignore[arg-type]
    out = tuple(_check_sigma(s) for s in sigma)  # type: ignore[union-attr]
    if not out:
        raise ValueError("sigma grid is empty")
    return out


def _check_eps(eps: float) -> float:
    eps = float(eps)
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number, got {eps}")
    return eps


def _default_max_rank(d: int, max_rank: int | None) -> int:
    if max_rank is None:
        # Beyond ~d/2 columns the dense O(d^3) evaluation is about as cheap.
        return max(1, d // 2)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    return min(int(max_rank), d)


def _gauss_dense(v: np.ndarray, sigma: float) -> Float[np.ndarray, "d d"]:
    """Dense float64 Gaussian kernel of the scalar samples ``v``."""
    diff = v[:, None] - v[None, :]
    return np.exp(-(diff * diff) / (2.0 * sigma * sigma))


# --------------------------------------------------------------------------- #
# low-rank factor of a 1-D Gaussian kernel
# --------------------------------------------------------------------------- #
def gaussian_factor(
    v: Vector,
    sigma: float,
    *,
    tol: float = DEFAULT_TOL,
    max_rank: int | None = None,
) -> tuple[Float[np.ndarray, "d r"], bool]:
    """Pivoted (incomplete) Cholesky factor of the 1-D Gaussian kernel.

    The kernel is ``K_ij = exp(-(v_i - v_j)^2 / (2 sigma^2))``. The factor
    ``L`` is built one column at a time, so the ``d x d`` matrix ``K`` is never
    formed. Each step takes the pivot with the largest residual diagonal and
    stops when ``max_i (K - L L^T)_ii <= tol``. The residual is PSD, so then
    every entry satisfies ``|(K - L L^T)_ij| <= tol``.

    Args:
        v: The ``d`` scalar samples (e.g. one hidden state).
        sigma: Kernel width (> 0).
        tol: Stopping threshold on the largest residual diagonal entry.
        max_rank: The most columns to build. Default ``d // 2``.

    Returns:
        ``(L, converged)``, where ``L`` has shape ``(d, r)``. ``converged`` is
        False when ``max_rank`` columns did not bring the residual below
        ``tol``. ``L`` is then the truncated factor, and callers should use
        a dense evaluation instead.
    """
    lt, ok = _pchol_rows(_as_vector(v, "v"), _check_sigma(sigma), tol, max_rank)
    return lt.T, ok


def _pchol_rows(
    v: np.ndarray, sigma: float, tol: float, max_rank: int | None
) -> tuple[Float[np.ndarray, "r d"], bool]:
    """Pivoted Cholesky returning ``L^T`` (rows contiguous, for fast gemv)."""
    d = v.size
    rmax = _default_max_rank(d, max_rank)
    g = 0.5 / (sigma * sigma)
    diag = np.ones(d)  # residual diagonal; K_ii = 1
    lt = np.empty((min(rmax, 32), d))
    for k in range(rmax):
        i = int(np.argmax(diag))
        piv = diag[i]
        if piv <= tol:
            return lt[:k], True
        if k == lt.shape[0]:  # grow storage geometrically
            lt = np.concatenate([lt, np.empty((min(rmax, 2 * k) - k, d))])
        col = v - v[i]
        col *= col
        col *= -g
        np.exp(col, out=col)  # kernel column K[:, i]
        if k:
            col -= lt[:k, i] @ lt[:k]
        col *= 1.0 / math.sqrt(piv)
        lt[k] = col
        col *= col
        diag -= col
    return lt[:rmax], bool(np.max(diag) <= tol)


class _Side:
    """Cached low-rank quantities of one vector for ``sigma`` (internal).

    Attributes:
        lt: ``L^T`` ``(r, d)`` with ``K ~= L L^T``, or None after a dense fallback.
        bt: ``(H L)^T`` (rows of ``lt`` minus their means).
    """

    __slots__ = ("v", "sigma", "lt", "bt", "_chol")

    def __init__(self, v: np.ndarray, sigma: float, tol: float, max_rank: int | None):
        self.v = v
        self.sigma = sigma
        lt, ok = _pchol_rows(v, sigma, tol, max_rank)
        if ok:
            self.lt = lt
            self.bt = lt - lt.mean(axis=1, keepdims=True)
        else:
            self.lt = self.bt = None
        self._chol: Any = None

    @property
    def low_rank(self) -> bool:
        return self.lt is not None

    def cho(self, c: float) -> Any:
        """Cholesky of ``B^T B + c I``. It is cached, because ``c`` is fixed per object."""
        if self._chol is None:
            s = self.bt @ self.bt.T
            s[np.diag_indices_from(s)] += c
            self._chol = sla.cho_factor(s, lower=True)
        return self._chol


# --------------------------------------------------------------------------- #
# the official-code estimator
# --------------------------------------------------------------------------- #
def _paper_R_np(v: np.ndarray, sigma: float, eps: float) -> Float[np.ndarray, "d d"]:
    """Dense float64 ``R = Kc (Kc + eps d I)^{-1}`` with ``Kc = K H`` (the fallback)."""
    d = v.size
    kc = _gauss_dense(v, sigma)
    kc -= kc.mean(axis=1, keepdims=True)  # K H: subtract row means
    a = kc.copy()
    a[np.diag_indices(d)] += eps * d
    # R = Kc A^{-1}  <=>  A^T R^T = Kc^T
    return sla.solve(a.T, kc.T).T


class PaperHSIC:
    """The official code's statistic against a fixed gold vector (cached).

    ``PaperHSIC(gold)(x) == hsic_paper(x, gold)``. The gold-side factorisation
    is computed once, so each call only factorises ``x``.

    Attributes:
        sigma: Kernel width.
        eps: Ridge; the matrix inverted is ``Kc + eps * d * I``.
        d: Vector length.
    """

    def __init__(
        self,
        gold: Vector,
        sigma: float = SIGMA_PAPER,
        eps: float = EPS_PAPER,
        *,
        tol: float = DEFAULT_TOL,
        max_rank: int | None = None,
    ) -> None:
        """Factorises the gold side.

        Args:
            gold: Gold representation ``h_y``, shape ``(d,)``.
            sigma: Gaussian kernel width (official code: 50).
            eps: Ridge coefficient (official code: 1e-5).
            tol: Pivoted-Cholesky tolerance (see :func:`gaussian_factor`).
            max_rank: Rank cap per side before a dense fallback. Default ``d // 2``.
        """
        self.sigma = _check_sigma(sigma)
        self.eps = _check_eps(eps)
        self.tol = float(tol)
        self.max_rank = max_rank
        y = _as_vector(gold, "gold")
        self.d = y.size
        self.c = self.eps * self.d
        self._y = _Side(y, self.sigma, self.tol, max_rank)
        self._ry_dense: np.ndarray | None = None

    @property
    def gold_rank(self) -> int | None:
        """Rank of the gold factor, or None if the gold side needs the dense fallback."""
        return None if self._y.lt is None else self._y.lt.shape[0]

    def __call__(self, x: Vector) -> float:
        """Computes ``tr(R_x R_y)`` for one hidden state.

        Args:
            x: Hidden state ``h_t``, shape ``(d,)``.

        Returns:
            The official-code "MI" between ``x`` and the gold vector.
        """
        xv = _as_vector(x, "x")
        _check_pair(xv, self._y.v)
        sx = _Side(xv, self.sigma, self.tol, self.max_rank)
        sy = self._y
        if sx.low_rank and sy.low_rank:
            g = sx.lt @ sy.bt.T  # L_x^T H L_y, (r_x, r_y)
            mg = sla.cho_solve(sx.cho(self.c), g)  # M_x G
            gm = sla.cho_solve(sy.cho(self.c), g.T).T  # G M_y (M_y symmetric)
            return float(np.sum(mg * gm))  # tr(M_x G M_y G^T)
        # Dense fallback: the rank exceeded max_rank on some side.
        if self._ry_dense is None:
            self._ry_dense = _paper_R_np(sy.v, self.sigma, self.eps)
        rx = _paper_R_np(xv, self.sigma, self.eps)
        return float(np.sum(rx * self._ry_dense.T))


def hsic_paper(
    x: Vector,
    y: Vector,
    sigma: float = SIGMA_PAPER,
    eps: float = EPS_PAPER,
    *,
    tol: float = DEFAULT_TOL,
    max_rank: int | None = None,
) -> float:
    """The official code's "MI" of one pair of vectors (fast, float64).

    The ``d`` coordinates are the samples. With
    ``K_ij = exp(-(v_i - v_j)^2 / (2 sigma^2))`` and ``H = I - 11^T/d``, define
    ``Kc = K H`` and ``R = Kc (Kc + eps d I)^{-1}`` for each vector. The result
    is ``tr(R_x R_y) = sum_ij R_x[i, j] R_y[j, i]``. It is symmetric in x and y,
    non-negative, and 0 when either vector is constant.

    It is evaluated from pivoted-Cholesky factors in ``O(d r^2)``, and agrees
    with the dense float64 formula to within 1e-6 relative (typically 1e-12 to
    1e-8; see the module docstring).

    Args:
        x: Hidden state ``h_t``, shape ``(d,)`` (numpy or torch).
        y: Gold representation ``h_y``, shape ``(d,)``.
        sigma: Gaussian kernel width (official code: 50).
        eps: Ridge coefficient (official code: 1e-5).
        tol: Pivoted-Cholesky tolerance.
        max_rank: Rank cap per side before the dense float64 fallback.

    Returns:
        ``tr(R_x R_y)`` as a Python float.
    """
    return PaperHSIC(y, sigma, eps, tol=tol, max_rank=max_rank)(x)


def _paper_R_torch(v: torch.Tensor, sigma: float, eps: float) -> torch.Tensor:
    """``R = Kc (Kc + eps m I)^{-1}`` computed densely in the original's arithmetic.

    The arithmetic mirrors HSIC-bottleneck: the squared distances come from
    the expansion ``|a|^2 - 2ab + |b|^2`` (then ``abs``), the centring is a full
    matrix product ``K @ H``, and an explicit inverse is formed.
    """
    m = v.shape[0]
    col = v.reshape(m, 1)
    sq = (col * col).sum(dim=1)
    dist = (sq.reshape(-1, 1) - 2.0 * (col @ col.T) + sq.reshape(1, -1)).abs()
    k = torch.exp(-dist / (2.0 * sigma * sigma * col.shape[1]))
    eye = torch.eye(m, dtype=v.dtype)
    h = eye - 1.0 / m
    kc = k @ h
    return kc @ torch.inverse(kc + eps * m * eye)


class PaperHSICDense:
    """Dense (original-method) ``tr(R_x R_y)`` with the gold ``R_y`` cached.

    Attributes:
        dtype: Torch dtype of the computation (float32 as in the original code).
    """

    def __init__(
        self,
        gold: Vector,
        sigma: float = SIGMA_PAPER,
        eps: float = EPS_PAPER,
        *,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """Computes the dense gold-side ``R_y``.

        Args:
            gold: Gold representation, shape ``(d,)``.
            sigma: Gaussian kernel width.
            eps: Ridge coefficient.
            dtype: Torch dtype for the dense algebra.
        """
        self.sigma = _check_sigma(sigma)
        self.eps = _check_eps(eps)
        self.dtype = dtype
        y = torch.as_tensor(_as_vector(gold, "gold"), dtype=dtype)
        self._ry_t = _paper_R_torch(y, self.sigma, self.eps).T.contiguous()

    def __call__(self, x: Vector) -> float:
        """Computes ``sum_ij R_x[i, j] R_y[j, i]`` for one hidden state.

        Args:
            x: Hidden state, shape ``(d,)``.

        Returns:
            The statistic as a Python float.
        """
        xv = torch.as_tensor(_as_vector(x, "x"), dtype=self.dtype)
        if xv.shape[0] != self._ry_t.shape[0]:
            raise ValueError(f"x has length {xv.shape[0]}, gold has {self._ry_t.shape[0]}")
        rx = _paper_R_torch(xv, self.sigma, self.eps)
        return float(torch.sum(rx * self._ry_t))


def hsic_paper_dense(
    x: Vector,
    y: Vector,
    sigma: float = SIGMA_PAPER,
    eps: float = EPS_PAPER,
    dtype: torch.dtype = torch.float32,
) -> float:
    """The original dense method: two ``d x d`` inverses per step, in torch.

    Same quantity as :func:`hsic_paper`. It follows the official code's
    arithmetic: expanded squared distances, ``Kc = K @ H``,
    ``R = Kc @ inv(Kc + eps d I)`` and ``sum(R_x * R_y^T)``. Cost is
    ``O(d^3)``. With ``dtype=torch.float32`` it reproduces the original's
    rounding; with ``torch.float64`` it is the exact reference.

    Args:
        x: Hidden state, shape ``(d,)``.
        y: Gold representation, shape ``(d,)``.
        sigma: Gaussian kernel width.
        eps: Ridge coefficient.
        dtype: Torch dtype for the whole computation.

    Returns:
        ``tr(R_x R_y)`` as a Python float.
    """
    xv, yv = _as_vector(x, "x"), _as_vector(y, "y")
    _check_pair(xv, yv)
    return PaperHSICDense(yv, sigma, eps, dtype=dtype)(xv)


# --------------------------------------------------------------------------- #
# the paper-text estimator
# --------------------------------------------------------------------------- #
def _text_dense_one(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    d = x.size
    if d < 2:
        return 0.0
    kx = _gauss_dense(x, sigma)
    kx -= kx.mean(axis=0, keepdims=True)
    kx -= kx.mean(axis=1, keepdims=True)  # H K H
    return float(np.sum(kx * _gauss_dense(y, sigma)) / (d - 1) ** 2)


def hsic_text_dense(x: Vector, y: Vector, sigma: float | Sequence[float] = SIGMA_GRID) -> float:
    """Dense float64 reference for :func:`hsic_text` (``O(d^2)`` memory).

    Args:
        x: First vector, shape ``(d,)``.
        y: Second vector, shape ``(d,)``.
        sigma: Kernel width, or a grid (the max over the grid is returned).

    Returns:
        ``max_sigma tr(K_x H K_y H) / (d - 1)^2``.
    """
    xv, yv = _as_vector(x, "x"), _as_vector(y, "y")
    _check_pair(xv, yv)
    return max(_text_dense_one(xv, yv, s) for s in _sigmas(sigma))


class TextHSIC:
    """Paper-text HSIC against a fixed gold vector (gold factors cached per sigma)."""

    def __init__(
        self,
        gold: Vector,
        sigma: float | Sequence[float] = SIGMA_GRID,
        *,
        tol: float = DEFAULT_TOL,
        max_rank: int | None = None,
    ) -> None:
        """Factorises the gold side for every sigma.

        Args:
            gold: Gold representation, shape ``(d,)``.
            sigma: Kernel width or grid (see :func:`hsic_text`).
            tol: Pivoted-Cholesky tolerance.
            max_rank: Rank cap before the dense fallback.
        """
        self.sigmas = _sigmas(sigma)
        self.tol = float(tol)
        self.max_rank = max_rank
        y = _as_vector(gold, "gold")
        self.d = y.size
        self._y = [_Side(y, s, self.tol, max_rank) for s in self.sigmas]

    def per_sigma(self, x: Vector) -> Float[np.ndarray, "S"]:
        """HSIC for each sigma of the grid.

        Args:
            x: Hidden state, shape ``(d,)``.

        Returns:
            ``tr(K_x H K_y H) / (d - 1)^2`` for each sigma, in grid order.
        """
        xv = _as_vector(x, "x")
        _check_pair(xv, self._y[0].v)
        d = self.d
        out = np.empty(len(self.sigmas))
        for j, sy in enumerate(self._y):
            if d < 2:
                out[j] = 0.0
                continue
            sx = _Side(xv, sy.sigma, self.tol, self.max_rank)
            if sx.low_rank and sy.low_rank:
                # tr(Lx Lx^T H Ly Ly^T H) = ||Lx^T H Ly||_F^2
                g = sx.lt @ sy.bt.T
                out[j] = float(np.sum(g * g)) / (d - 1) ** 2
            else:
                out[j] = _text_dense_one(xv, sy.v, sy.sigma)
        return out

    def __call__(self, x: Vector) -> float:
        """The max over the grid of :meth:`per_sigma`.

        Args:
            x: Hidden state, shape ``(d,)``.

        Returns:
            The paper-text HSIC as a Python float.
        """
        return float(np.max(self.per_sigma(x)))


def hsic_text(
    x: Vector,
    y: Vector,
    sigma: float | Sequence[float] = SIGMA_GRID,
    *,
    tol: float = DEFAULT_TOL,
    max_rank: int | None = None,
) -> float:
    """The paper-text estimator: biased empirical HSIC of the coordinate samples.

    ``HSIC = tr(K_x H K_y H) / (d - 1)^2``, with
    ``K_ij = exp(-(v_i - v_j)^2 / (2 sigma^2))`` and ``H = I - 11^T/d``. The
    ``d`` coordinates are the samples, because one pair of vectors gives no
    other way to get a number. It is computed as ``||L_x^T H L_y||_F^2``
    from pivoted-Cholesky factors ``K = L L^T``.

    The paper says sigma is "chosen by grid search over [50, 400]" but does not
    give the selection criterion. **Our reading**: when ``sigma`` is a
    sequence, the result is the largest HSIC over the grid (the bandwidth most
    sensitive to the dependence). Pass a float for one fixed width.

    Args:
        x: Hidden state, shape ``(d,)``.
        y: Gold representation, shape ``(d,)``.
        sigma: Kernel width, or a grid (default :data:`SIGMA_GRID`).
        tol: Pivoted-Cholesky tolerance.
        max_rank: Rank cap before the dense fallback.

    Returns:
        The HSIC (maximised over the grid if one is given).
    """
    yv = _as_vector(y, "y")
    return TextHSIC(yv, sigma, tol=tol, max_rank=max_rank)(x)


# --------------------------------------------------------------------------- #
# trajectories
# --------------------------------------------------------------------------- #
def trajectory(
    states: Matrix,
    gold: Vector,
    estimator: str = "hsic_paper",
    *,
    progress: bool = False,
    **kw: Any,
) -> Float[np.ndarray, "T"]:
    """The MI trajectory ``m_t = MI(h_t; h_y)`` over the steps of one trace.

    Args:
        states: Hidden states ``h_0..h_{T-1}``, shape ``(T, d)``.
        gold: Gold representation ``h_y``, shape ``(d,)``.
        estimator: One of :data:`ESTIMATORS`:
            ``"hsic_paper"`` (:class:`PaperHSIC`),
            ``"hsic_paper_dense"`` (:class:`PaperHSICDense`, slow) or
            ``"hsic_text"`` (:class:`TextHSIC`).
        progress: Show a tqdm progress bar.
        **kw: Passed to the estimator's constructor (e.g. ``sigma``, ``eps``,
            ``tol``, ``max_rank``, ``dtype``).

    Returns:
        Array of shape ``(T,)`` (float64).

    Raises:
        ValueError: Unknown estimator, or shapes that do not match.
    """
    factories = {"hsic_paper": PaperHSIC, "hsic_paper_dense": PaperHSICDense, "hsic_text": TextHSIC}
    if estimator not in factories:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    s = _to_numpy(states)
    if s.ndim != 2:
        raise ValueError(f"states must be 2-D (T, d), got shape {s.shape}")
    est = factories[estimator](gold, **kw)
    rows: Any = s
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(s, desc=estimator, unit="step")
    return np.array([est(row) for row in rows], dtype=np.float64).reshape(s.shape[0])


# --------------------------------------------------------------------------- #
# across-problems HSIC with a permutation test
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class CrossSampleResult:
    """Result of :func:`cross_sample_hsic`.

    Attributes:
        statistic: Biased HSIC ``tr(K H L H) / (n - 1)^2``.
        p_value: Permutation p-value ``(1 + #{null >= statistic}) / (1 + B)``.
        null_mean: Mean of the permutation null.
        null_std: Standard deviation of the permutation null.
        n: Number of problems (samples).
        sigma_x: Bandwidth used for X.
        sigma_y: Bandwidth used for Y.
        n_permutations: ``B``.
    """

    statistic: float
    p_value: float
    null_mean: float
    null_std: float
    n: int
    sigma_x: float
    sigma_y: float
    n_permutations: int


def _sq_dists(z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", z, z)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return d2


def median_bandwidth(Z: Matrix) -> float:
    """Median heuristic: the median Euclidean distance between distinct rows.

    Args:
        Z: Samples, shape ``(n, d)``.

    Returns:
        ``median_{i<j} ||z_i - z_j||``. If that median is 0 (mostly duplicate
        rows), returns the mean of the positive distances, or 1.0 if there are
        none.
    """
    z = _to_numpy(Z)
    z = z.reshape(z.shape[0], -1)
    n = z.shape[0]
    if n < 2:
        return 1.0
    dist = np.sqrt(_sq_dists(z)[np.triu_indices(n, k=1)])
    med = float(np.median(dist))
    if med > 0:
        return med
    pos = dist[dist > 0]
    return float(pos.mean()) if pos.size else 1.0


def cross_sample_hsic(
    X: Matrix,
    Y: Matrix,
    *,
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    n_permutations: int = 200,
    seed: int = 0,
) -> CrossSampleResult:
    """HSIC between hidden states and gold representations across problems.

    Sample ``i`` is the pair ``(x_i, y_i)``: the state of problem ``i`` at an
    aligned position and that problem's gold representation. The kernels are
    Gaussian on the whole ``d``-dim vectors,
    ``K_ij = exp(-||x_i - x_j||^2 / (2 sigma_x^2))``, and ``L`` likewise for Y.
    The statistic is ``tr(K H L H) / (n - 1)^2`` with ``H = I - 11^T/n``. It is
    a consistent dependence measure for characteristic kernels and is 0 in
    population iff X and Y are independent. The test statistic is compared to
    its null distribution, obtained by permuting the rows of Y. This tests
    ``H0: X independent of Y``.

    Args:
        X: States, shape ``(n, d)``, one row per problem.
        Y: Gold representations, shape ``(n, d_y)``, aligned with X.
        sigma_x: Bandwidth for X. Default: the median heuristic.
        sigma_y: Bandwidth for Y. Default: the median heuristic.
        n_permutations: Number of permutations ``B`` (>= 1).
        seed: Seed of the permutation RNG.

    Returns:
        A :class:`CrossSampleResult`.
    """
    x = _to_numpy(X)
    y = _to_numpy(Y)
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X and Y need the same number of rows, got {n} and {y.shape[0]}")
    if n < 2:
        raise ValueError("need at least 2 samples")
    if n_permutations < 1:
        raise ValueError("n_permutations must be >= 1")
    sx = _check_sigma(sigma_x) if sigma_x is not None else median_bandwidth(x)
    sy = _check_sigma(sigma_y) if sigma_y is not None else median_bandwidth(y)
    k = np.exp(-_sq_dists(x) / (2.0 * sx * sx))
    l_ = np.exp(-_sq_dists(y) / (2.0 * sy * sy))
    k -= k.mean(axis=0, keepdims=True)
    k -= k.mean(axis=1, keepdims=True)  # H K H (symmetric)
    norm = (n - 1) ** 2
    stat = float(np.sum(k * l_)) / norm  # tr(HKH L)
    rng = np.random.default_rng(seed)
    null = np.empty(n_permutations)
    for b in range(n_permutations):
        p = rng.permutation(n)
        null[b] = np.sum(k * l_[np.ix_(p, p)]) / norm
    p_value = (1.0 + np.count_nonzero(null >= stat)) / (1.0 + n_permutations)
    return CrossSampleResult(
        statistic=stat,
        p_value=float(p_value),
        null_mean=float(null.mean()),
        null_std=float(null.std(ddof=1)) if n_permutations > 1 else 0.0,
        n=n,
        sigma_x=sx,
        sigma_y=sy,
        n_permutations=int(n_permutations),
    )


def aligned_positions(lengths: Sequence[int], n_bins: int) -> list[Int[np.ndarray, "T_i"]]:
    """Relative-position bin of every step of every trace.

    Step ``t`` of a trace of length ``T`` goes to bin ``floor(t * n_bins / T)``.
    So bin ``b`` holds the steps whose relative position ``t / T`` lies in
    ``[b / n_bins, (b + 1) / n_bins)``. A trace shorter than ``n_bins`` leaves
    some bins empty.

    Args:
        lengths: Number of steps ``T_i`` of each trace.
        n_bins: Number of bins (>= 1).

    Returns:
        One int array per trace, with shape ``(T_i,)`` and values in ``[0, n_bins)``.
    """
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    out = []
    for t_len in lengths:
        t_len = int(t_len)
        if t_len < 0:
            raise ValueError("lengths must be >= 0")
        out.append((np.arange(t_len, dtype=np.int64) * n_bins) // max(t_len, 1))
    return out


def cross_sample_trajectory(
    states_list: Sequence[Matrix],
    golds: Matrix | Sequence[Vector],
    n_bins: int = 10,
    *,
    reduce: str = "mean",
    sigma_x: float | None = None,
    sigma_y: float | None = None,
    n_permutations: int = 200,
    seed: int = 0,
    min_problems: int = 5,
) -> pd.DataFrame:
    """Across-problems HSIC at each relative position of the reasoning trace.

    Each trace ``i`` (states of shape ``(T_i, d)``) is cut into ``n_bins``
    relative-position bins (:func:`aligned_positions`). In bin ``b``, each
    problem with at least one step there gives one state: the mean of its
    states in the bin (``reduce="mean"``), or the step closest to the bin's
    centre (``reduce="center"``). These states are tested against the
    problems' gold vectors with :func:`cross_sample_hsic`, using seed
    ``seed + b``.

    Args:
        states_list: One ``(T_i, d)`` array per problem.
        golds: Gold representations, ``(n, d_y)`` or a list of ``(d_y,)``.
        n_bins: Number of relative-position bins.
        reduce: ``"mean"`` or ``"center"``.
        sigma_x: Fixed X bandwidth. Default: the median heuristic per bin.
        sigma_y: Fixed Y bandwidth. Default: the median heuristic per bin.
        n_permutations: Permutations per bin.
        seed: Base seed.
        min_problems: Bins with fewer problems get NaN results.

    Returns:
        DataFrame with one row per bin and columns ``bin``, ``rel_start``,
        ``rel_end``, ``n``, ``statistic``, ``p_value``, ``null_mean`` and
        ``null_std``.
    """
    if reduce not in ("mean", "center"):
        raise ValueError(f"reduce must be 'mean' or 'center', got {reduce!r}")
    states = [_to_numpy(s) for s in states_list]
    for s in states:
        if s.ndim != 2:
            raise ValueError(f"each states array must be 2-D (T, d), got shape {s.shape}")
    g = np.stack([_to_numpy(v).reshape(-1) for v in golds])
    if g.shape[0] != len(states):
        raise ValueError(f"{len(states)} traces but {g.shape[0]} gold vectors")
    bins = aligned_positions([s.shape[0] for s in states], n_bins)
    rows = []
    for b in range(n_bins):
        xs, keep = [], []
        for i, (s, bi) in enumerate(zip(states, bins)):
            idx = np.flatnonzero(bi == b)
            if idx.size == 0:
                continue
            if reduce == "mean":
                xs.append(s[idx].mean(axis=0))
            else:
                centre = (b + 0.5) / n_bins * s.shape[0] - 0.5
                xs.append(s[idx[np.argmin(np.abs(idx - centre))]])
            keep.append(i)
        row: dict[str, Any] = {
            "bin": b,
            "rel_start": b / n_bins,
            "rel_end": (b + 1) / n_bins,
            "n": len(keep),
        }
        if len(keep) >= max(min_problems, 2):
            r = cross_sample_hsic(
                np.stack(xs),
                g[keep],
                sigma_x=sigma_x,
                sigma_y=sigma_y,
                n_permutations=n_permutations,
                seed=seed + b,
            )
            row.update(
                statistic=r.statistic, p_value=r.p_value, null_mean=r.null_mean, null_std=r.null_std
            )
        else:
            row.update(statistic=np.nan, p_value=np.nan, null_mean=np.nan, null_std=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)
