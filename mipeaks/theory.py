"""Theorems 1-2 of the paper: MI bounds on the error probability (paper_notes.md §5).

Notation: ``y`` is the gold answer with ``|Y|`` possible values, ``h_1:T`` the
hidden states, ``I = sum_j I(y; h_j | h_<j) = I(y; h_1:T)`` (chain rule) the
*cumulative MI*, and ``H(y | h_1:T) = H(y) - I``. ``p_e = Pr(yhat != y)``.

* **Theorem 1** (Fano + data processing), for any predictor ``yhat = f(h_1:T)``::

      p_e >= [H(y) - I - H_b(p_e)] / log(|Y| - 1).

  ``p_e`` appears on both sides. :func:`fano_lower_bound` solves it: it returns the
  smallest ``p`` in ``[0, 1 - 1/|Y|]`` with ``H_b(p) + p log(|Y| - 1) >= H(y) - I``.
  :func:`fano_lower_bound_explicit` evaluates the paper's right-hand side for a
  given ``p_e``. Fano holds in any logarithm base, as long as all terms use the same one.

* **Theorem 2** (Hellman-Raviv), for the Bayes (MAP) predictor::

      p_e <= 1/2 * [H(y) - I] = 1/2 * H(y | h_1:T).

  This is true **only with entropies in bits** (base 2): for a fair coin the
  Bayes error is 1/2 = 1/2 * (1 bit), while 1/2 * ln 2 = 0.347 nats would be a false
  bound. :func:`upper_bound` takes its inputs in any base and converts to bits.

All functions take ``base`` = the logarithm base of their entropy/MI inputs and
outputs: ``"e"`` (nats, default) or a positive number != 1 (``2`` for bits).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd
from jaxtyping import Float
from scipy.optimize import brentq

__all__ = [
    "BoundsConfig",
    "bayes_error",
    "bayes_error_joint",
    "binary_entropy",
    "bounds_curve",
    "conditional_entropy",
    "entropy",
    "fano_lower_bound",
    "fano_lower_bound_explicit",
    "fano_function",
    "random_table_check",
    "upper_bound",
]

_PROB_ATOL = 1e-6  # tolerance on sum(p) == 1
_ENT_ATOL = 1e-9  # tolerance on H(y) <= log|Y|


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _ln_base(base: float | str) -> float:
    """Natural log of the logarithm base (``"e"`` -> 1)."""
    if isinstance(base, str):
        if base == "e":
            return 1.0
        raise ValueError(f"base must be 'e' or a positive number != 1 (e.g. 2), got {base!r}")
    b = float(base)
    if not math.isfinite(b) or b <= 0 or b == 1:
        raise ValueError(f"base must be 'e' or a positive number != 1 (e.g. 2), got {base!r}")
    return math.log(b)


def _as_distribution(p: Any, name: str = "p") -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries")
    total = float(arr.sum())
    if abs(total - 1.0) > _PROB_ATOL:
        raise ValueError(f"{name} must sum to 1, sums to {total:.6g}")
    return arr


def _as_nonneg(x: Any, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a real number, got {x!r}") from err
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {v}")
    return v


def _check_n_classes(n_classes: Any) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes (|Y|) must be an integer >= 2, got {n_classes!r}")
    return int(n_classes)


def _check_h_y(h_y: Any, n_classes: int, ln_b: float) -> float:
    h = _as_nonneg(h_y, "h_y")
    h_max = math.log(n_classes) / ln_b
    if h > h_max + _ENT_ATOL:
        raise ValueError(f"h_y = {h} exceeds log(|Y|) = {h_max} (in the given base) for |Y| = {n_classes}")
    return min(h, h_max)


# ---------------------------------------------------------------------------
# Entropies and Bayes error
# ---------------------------------------------------------------------------


def binary_entropy(
    p: float | Float[np.ndarray, "*shape"], base: float | str = "e"
) -> float | Float[np.ndarray, "*shape"]:
    """Binary entropy ``H_b(p) = -p log p - (1 - p) log(1 - p)``, with ``H_b(0) = H_b(1) = 0``.

    Args:
        p: Probability (scalar or array), each in ``[0, 1]``.
        base: Logarithm base (``"e"`` -> nats, ``2`` -> bits).

    Returns:
        ``H_b(p)`` elementwise; a float for scalar input.

    Raises:
        ValueError: If any ``p`` is NaN or outside ``[0, 1]``.
    """
    ln_b = _ln_base(base)
    arr = np.asarray(p, dtype=np.float64)
    if np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"p must lie in [0, 1], got {p!r}")
    # x log x -> 0 at x = 0 (scipy-free xlogy semantics).
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(arr > 0, arr * np.log(arr), 0.0) + np.where(arr < 1, (1 - arr) * np.log1p(-arr), 0.0))
    h = h / ln_b
    return float(h) if h.ndim == 0 else h


def entropy(p: Float[np.ndarray, "K"], base: float | str = "e") -> float:
    """Shannon entropy ``H(p) = -sum_i p_i log p_i`` (``0 log 0 = 0``).

    Args:
        p: A discrete distribution (non-negative, sums to 1). Any shape; a joint
            table is treated as a distribution over its cells.
        base: Logarithm base (``"e"`` -> nats, ``2`` -> bits).

    Returns:
        ``H(p)`` in units of ``base``.

    Raises:
        ValueError: If ``p`` is empty, has NaN / negative entries, or does not sum to 1.
    """
    ln_b = _ln_base(base)
    arr = _as_distribution(p).ravel()
    nz = arr[arr > 0]
    return float(-(nz * np.log(nz)).sum() / ln_b)


def conditional_entropy(p_yh: Float[np.ndarray, "Y H"], base: float | str = "e") -> float:
    """Conditional entropy ``H(y | h) = H(y, h) - H(h)`` of a joint table.

    Args:
        p_yh: Joint distribution ``p(y, h)`` with rows indexed by ``y`` and
            columns by ``h``; shape (|Y|, |H|), sums to 1.
        base: Logarithm base.

    Returns:
        ``H(y | h) = -sum_{y,h} p(y, h) log p(y | h)`` in units of ``base``.
    """
    arr = _as_distribution(p_yh, "p_yh")
    if arr.ndim != 2:
        raise ValueError(f"p_yh must be 2-D (|Y|, |H|), got shape {arr.shape}")
    return max(entropy(arr, base) - entropy(arr.sum(axis=0), base), 0.0)


def bayes_error(p: Float[np.ndarray, "K"]) -> float:
    """Bayes (MAP) error of guessing ``y ~ p`` with no observation: ``1 - max_i p_i``.

    Args:
        p: A discrete distribution (non-negative, sums to 1).

    Returns:
        ``1 - max_i p_i`` in ``[0, 1 - 1/K]``.
    """
    arr = _as_distribution(p)
    return float(1.0 - arr.max())


def bayes_error_joint(p_yh: Float[np.ndarray, "Y H"]) -> float:
    """Bayes (MAP) error of predicting ``y`` from ``h``: ``1 - sum_h max_y p(y, h)``.

    Args:
        p_yh: Joint distribution ``p(y, h)``, shape (|Y|, |H|), rows indexed by ``y``.

    Returns:
        ``Pr(yhat(h) != y)`` for ``yhat(h) = argmax_y p(y | h)``.
    """
    arr = _as_distribution(p_yh, "p_yh")
    if arr.ndim != 2:
        raise ValueError(f"p_yh must be 2-D (|Y|, |H|), got shape {arr.shape}")
    return float(max(1.0 - arr.max(axis=0).sum(), 0.0))


# ---------------------------------------------------------------------------
# Theorem 1 (Fano lower bound)
# ---------------------------------------------------------------------------


def fano_function(p: float, n_classes: int, base: float | str = "e") -> float:
    """Fano's function ``F(p) = H_b(p) + p log(|Y| - 1)``.

    Fano's inequality reads ``H(y | yhat) <= F(p_e)``. ``F`` increases strictly on
    ``[0, 1 - 1/|Y|]`` from 0 to ``log |Y|``.

    Args:
        p: Error probability in ``[0, 1]``.
        n_classes: ``|Y| >= 2``.
        base: Logarithm base.

    Returns:
        ``F(p)`` in units of ``base``.
    """
    k = _check_n_classes(n_classes)
    ln_b = _ln_base(base)
    return float(binary_entropy(p, base)) + float(p) * math.log(k - 1) / ln_b


def fano_lower_bound(
    h_y: float, cum_mi: float, n_classes: int, base: float | str = "e"
) -> float:
    """Theorem 1 solved for ``p_e``: the Fano lower bound on the error probability.

    With ``r = max(H(y) - I, 0)`` (``I`` = cumulative MI; ``r = H(y | h_1:T)`` for
    true information quantities), returns

        ``p_min = min { p in [0, 1 - 1/|Y|] : H_b(p) + p log(|Y| - 1) >= r }``,

    found by ``brentq`` (the left side increases strictly on that interval).
    Every ``p_e`` satisfying the paper's implicit inequality
    ``p_e >= [r - H_b(p_e)] / log(|Y| - 1)`` with ``p_e <= 1 - 1/|Y|`` is
    ``>= p_min``, so ``p_min`` is a bound that does not depend on ``p_e``.
    Special cases: ``p_min = 0`` when ``r = 0``; ``p_min = 1 - 1/|Y|`` when
    ``r = log |Y|``; for ``|Y| = 2`` the condition is ``H_b(p) >= r`` alone.

    Args:
        h_y: ``H(y)`` in units of ``base``; ``0 <= h_y <= log |Y|``.
        cum_mi: ``I = sum_j I(y; h_j | h_<j) >= 0`` in units of ``base``. Values
            above ``h_y`` (possible only for estimates) are treated as ``r = 0``.
        n_classes: ``|Y| >= 2``.
        base: Logarithm base of ``h_y`` and ``cum_mi`` (``"e"`` nats, ``2`` bits).
            The result does not depend on it once the inputs are consistent.

    Returns:
        ``p_min`` in ``[0, 1 - 1/|Y|]``.

    Raises:
        ValueError: On negative / non-finite inputs, ``h_y > log |Y|``,
            ``n_classes < 2`` or a bad ``base``.
    """
    k = _check_n_classes(n_classes)
    ln_b = _ln_base(base)
    h = _check_h_y(h_y, k, ln_b)
    i = _as_nonneg(cum_mi, "cum_mi")
    r = max(h - i, 0.0) * ln_b  # residual entropy in nats
    p_max = 1.0 - 1.0 / k
    if r <= 0.0:
        return 0.0
    if r >= math.log(k) - 1e-15:
        return p_max
    log_k1 = math.log(k - 1)
    return float(brentq(lambda p: float(binary_entropy(p)) + p * log_k1 - r, 0.0, p_max, xtol=1e-15, rtol=1e-14))


def fano_lower_bound_explicit(
    h_y: float, cum_mi: float, n_classes: int, p_e: float, base: float | str = "e"
) -> float:
    """The paper's literal Theorem 1 right-hand side, evaluated at a given ``p_e``.

        ``RHS(p_e) = [H(y) - I - H_b(p_e)] / log(|Y| - 1)``

    Unlike :func:`fano_lower_bound` this is not clipped and depends on ``p_e``
    itself; the theorem says the true error satisfies ``p_e >= RHS(p_e)``. For
    ``p_e <= 1 - 1/|Y|`` this holds exactly when ``p_e >= fano_lower_bound(...)``,
    and at ``p_e = fano_lower_bound(...)`` (if > 0) the two sides are equal.
    Undefined for ``|Y| = 2`` (division by ``log 1 = 0``).

    Args:
        h_y: ``H(y) >= 0`` in units of ``base``.
        cum_mi: ``I >= 0`` in units of ``base``.
        n_classes: ``|Y| >= 3``.
        p_e: The error probability to plug in, in ``[0, 1]``.
        base: Logarithm base of ``h_y``, ``cum_mi``, ``H_b`` and the ``log``.

    Returns:
        ``RHS(p_e)`` (may be negative, i.e. vacuous).

    Raises:
        ValueError: For ``|Y| = 2``, bad ``p_e`` or bad entropies.
    """
    k = _check_n_classes(n_classes)
    if k == 2:
        raise ValueError(
            "the explicit form divides by log(|Y| - 1) = 0 for |Y| = 2; "
            "use fano_lower_bound, which solves H_b(p) >= H(y) - I instead"
        )
    ln_b = _ln_base(base)
    h = _check_h_y(h_y, k, ln_b)
    i = _as_nonneg(cum_mi, "cum_mi")
    p = float(p_e)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p_e must lie in [0, 1], got {p_e!r}")
    return (h - i - float(binary_entropy(p, base))) / (math.log(k - 1) / ln_b)


# ---------------------------------------------------------------------------
# Theorem 2 (Hellman-Raviv upper bound)
# ---------------------------------------------------------------------------


def upper_bound(h_y: float, cum_mi: float, base: float | str = "e") -> float:
    """Theorem 2: ``p_e <= 1/2 * (H(y) - I) = 1/2 * H(y | h_1:T)``, with entropy in **bits**.

    Returns ``clip(0.5 * max(H(y) - I, 0) / log2(b), 0, 1)`` where the inputs are
    in base ``b`` (i.e. converted to bits first). The bound (Hellman & Raviv, 1970:
    ``1 - max_y p(y) <= H(p) / 2`` in bits, averaged over ``h``) bounds the error
    of the Bayes / MAP predictor; it is false if the entropy is left in nats (a
    fair coin has Bayes error 0.5 but ``0.5 * ln 2 = 0.347``).

    Args:
        h_y: ``H(y) >= 0`` in units of ``base``.
        cum_mi: ``I = sum_j I(y; h_j | h_<j) >= 0`` in units of ``base``;
            values above ``h_y`` give 0.
        base: Logarithm base of the inputs (``"e"`` nats by default, ``2`` bits).

    Returns:
        The upper bound on ``p_e`` in ``[0, 1]``.

    Raises:
        ValueError: On negative / non-finite inputs or a bad ``base``.
    """
    ln_b = _ln_base(base)
    h = _as_nonneg(h_y, "h_y")
    i = _as_nonneg(cum_mi, "cum_mi")
    bits = max(h - i, 0.0) * ln_b / math.log(2.0)
    return float(min(max(0.5 * bits, 0.0), 1.0))


def bounds_curve(
    h_y: float,
    cum_mi_array: Float[np.ndarray, "T"],
    n_classes: int,
    base: float | str = "e",
) -> pd.DataFrame:
    """Lower (Theorem 1) and upper (Theorem 2) bounds along a cumulative-MI curve.

    Args:
        h_y: ``H(y)`` in units of ``base``, ``0 <= h_y <= log |Y|``.
        cum_mi_array: Cumulative MI values ``I_t = sum_{j<=t} I(y; h_j | h_<j)``,
            shape (T,), each finite and >= 0 (need not be sorted).
        n_classes: ``|Y| >= 2``.
        base: Logarithm base of ``h_y`` and ``cum_mi_array``.

    Returns:
        DataFrame with one row per entry and columns ``cum_mi`` (``I_t``),
        ``cond_entropy`` (``max(H(y) - I_t, 0)``, units of ``base``), ``lower``
        (:func:`fano_lower_bound`) and ``upper`` (:func:`upper_bound`).

    Raises:
        ValueError: If ``cum_mi_array`` is empty, not 1-D, or has NaN / negative
            entries, or on bad ``h_y`` / ``n_classes`` / ``base``.
    """
    arr = np.asarray(cum_mi_array, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"cum_mi_array must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("cum_mi_array must be finite and >= 0")
    lower = [fano_lower_bound(h_y, i, n_classes, base) for i in arr]  # validates h_y etc.
    upper = [upper_bound(h_y, i, base) for i in arr]
    return pd.DataFrame(
        {
            "cum_mi": arr,
            "cond_entropy": np.maximum(float(h_y) - arr, 0.0),
            "lower": lower,
            "upper": upper,
        }
    )


# ---------------------------------------------------------------------------
# Parameters of the book's chapter on the bounds
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BoundsConfig:
    """Illustrative values at which the book evaluates Theorems 1-2 (chapter 05_error_bounds).

    Attributes:
        n_classes: ``|Y|``, the number of possible answers (>= 2).
        h_y_bits: ``H(y)`` in bits; None means uniform answers, ``log2 |Y|``.
        max_cum_mi_bits: right end of the cumulative-MI axis in bits; None means ``H(y)``.
        points: number of cumulative-MI values on the curve.
        n_tables: random joint tables ``p(y, h)`` for the numerical check of both bounds.
        seed: seed of those tables.
    """

    n_classes: int = 10
    h_y_bits: float | None = None
    max_cum_mi_bits: float | None = None
    points: int = 201
    n_tables: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        from . import validation

        validation.check_types(self)
        _check_n_classes(self.n_classes)
        if self.h_y_bits is not None:
            _check_h_y(self.h_y_bits, self.n_classes, math.log(2.0))
        if self.max_cum_mi_bits is not None:
            _as_nonneg(self.max_cum_mi_bits, "max_cum_mi_bits")
        validation.check_min(self, "points", 2)
        validation.check_min(self, "n_tables", 0)

    @property
    def entropy_bits(self) -> float:
        """``H(y)`` in bits (``log2 |Y|`` when ``h_y_bits`` is None)."""
        return math.log2(self.n_classes) if self.h_y_bits is None else float(self.h_y_bits)

    def cum_mi_grid(self) -> Float[np.ndarray, "P"]:
        """``points`` cumulative-MI values from 0 to ``max_cum_mi_bits`` (default ``H(y)``), in bits."""
        top = self.entropy_bits if self.max_cum_mi_bits is None else float(self.max_cum_mi_bits)
        return np.linspace(0.0, top, self.points)


def random_table_check(n_classes: int, n_tables: int, seed: int = 0, n_obs: int = 8,
                       tol: float = 1e-9) -> pd.DataFrame:
    """Check both theorems on random joint tables ``p(y, h)``: exact Bayes error against the bounds.

    Each table has ``n_classes`` answers and ``n_obs`` observation values, drawn from a symmetric
    Dirichlet whose concentration is ``10**u``, ``u ~ U(-1.5, 0.7)`` (from near-deterministic to
    near-uniform tables). For each, with ``I = I(y; h)`` in bits: the exact conditional entropy,
    the exact Bayes error ``1 - sum_h max_y p(y, h)``, and the two bounds. Theorem 1 holds for any
    predictor, so in particular for the Bayes one.

    Args:
        n_classes: |Y| (>= 2).
        n_tables: number of random tables (>= 1).
        seed: seed of ``numpy.random.default_rng``.
        n_obs: number of values of ``h``.
        tol: slack allowed in the ``ok`` columns (float rounding).

    Returns:
        One row per table: ``H(y|h)``, ``Bayes error``, ``lower``, ``upper`` (bits / probabilities)
        and booleans ``lower ok`` (Bayes error >= lower) and ``upper ok`` (Bayes error <= upper).

    Raises:
        ValueError: ``n_classes < 2``, ``n_tables < 1`` or ``n_obs < 1``.
    """
    n_classes = _check_n_classes(n_classes)
    if isinstance(n_tables, bool) or int(n_tables) != n_tables or n_tables < 1:
        raise ValueError(f"n_tables must be a positive integer, got {n_tables!r}")
    if isinstance(n_obs, bool) or int(n_obs) != n_obs or n_obs < 1:
        raise ValueError(f"n_obs must be a positive integer, got {n_obs!r}")
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(int(n_tables)):
        alpha = 10 ** rng.uniform(-1.5, 0.7)
        p = rng.dirichlet(np.full(n_classes * n_obs, alpha)).reshape(n_classes, n_obs)
        h_y = entropy(p.sum(axis=1), base=2)
        h_cond = conditional_entropy(p, base=2)
        mi = max(h_y - h_cond, 0.0)
        records.append({"H(y|h)": h_cond, "Bayes error": bayes_error_joint(p),
                        "lower": fano_lower_bound(h_y, mi, n_classes, base=2), "upper": upper_bound(h_y, mi, base=2)})
    tables = pd.DataFrame(records)
    tables["lower ok"] = tables["Bayes error"] >= tables["lower"] - tol
    tables["upper ok"] = tables["Bayes error"] <= tables["upper"] + tol
    return tables
