"""MI peaks and the per-trajectory statistics of Tables 1-3 (paper_notes.md §3, §10).

An *MI trajectory* is a 1-D array ``m = (m_0, ..., m_{T-1})`` where ``m_t`` is the
estimated mutual information between the hidden state ``h_t`` that predicts
generated token ``t`` and the representation of the gold solution.

Two peak rules are offered:

* ``rule="iqr"`` (paper text): Tukey's outlier fence,
  ``O = {t : m_t > Q3(m) + tau * IQR(m)}`` with ``IQR = Q3 - Q1`` and ``tau = 1.5``.
* ``rule="topk"`` (official notebook, "approximately take top-20"): the ``k``
  largest values (``k = 20`` by default).

Per-trajectory statistics are collected in :class:`PeakStats`; :func:`summarize`
builds one row per trajectory and :func:`average` / :func:`table1` / :func:`table2`
average them over problems, as the paper's tables are per-sample means.

:func:`gaussian_fence_rate` is the IQR rule's peak ratio on featureless Gaussian noise (the
baseline of chapter 2). :func:`trajectory_frame` and :func:`peak_table` lay a run's trajectories
and its peaks, with the token generated at each, out as long tables (chapter 1).

``PAPER_TABLE1``, ``PAPER_TABLE2`` and ``PAPER_TABLE3`` hold the *published*
numbers (copied from the paper, not computed here) so they can be shown beside
a reproduction.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from jaxtyping import Float, Int

from . import lens

if TYPE_CHECKING:
    from .collect import Run
    from .models import LoadedModel
    from .pipeline import MIConfig

__all__ = [
    "PAPER_FIG2",
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "PAPER_TABLE2_PAIRS",
    "PAPER_TABLE3",
    "PEAK_RULES",
    "TABLE1_COLUMNS",
    "TABLE2_COLUMNS",
    "PeakStats",
    "average",
    "find_peaks",
    "gaussian_fence_rate",
    "iqr_fence",
    "peak_stats",
    "peak_table",
    "quartiles",
    "summarize",
    "table1",
    "table2",
    "trajectory_frame",
]

PEAK_RULES: tuple[str, ...] = ("iqr", "topk")
DEFAULT_TAU: float = 1.5
DEFAULT_TOPK: int = 20

TABLE1_COLUMNS: tuple[str, ...] = (
    "n_peaks",
    "n_steps",
    "ratio",
    "max_interval",
    "min_interval",
    "avg_interval",
)
TABLE2_COLUMNS: tuple[str, ...] = ("mean", "std", "aom")

# ---------------------------------------------------------------------------
# Published numbers (the paper's, NOT ours). Source: paper_notes.md §3 and §10.
# ---------------------------------------------------------------------------

#: Table 1 of the paper (published numbers): per-sample means over 100 MATH-train
#: problems, peaks by the IQR rule (tau = 1.5), last layer, 512 new tokens.
#: ``pd.DataFrame(PAPER_TABLE1).set_index("model")`` lines up with :func:`table1`.
#: Note: R1-Qwen-32B and QwQ-32B share min_interval 19.35 as printed in the paper.
PAPER_TABLE1: list[dict[str, Any]] = [
    {"model": "R1-Qwen-7B", "n_peaks": 2.57, "n_steps": 507.97, "ratio": 0.0051,
     "max_interval": 152.67, "min_interval": 52.74, "avg_interval": 87.38},
    {"model": "R1-Llama-8B", "n_peaks": 24.54, "n_steps": 511.03, "ratio": 0.0480,
     "max_interval": 69.37, "min_interval": 6.65, "avg_interval": 27.84},
    {"model": "R1-Qwen-14B", "n_peaks": 18.30, "n_steps": 510.09, "ratio": 0.0359,
     "max_interval": 85.50, "min_interval": 5.33, "avg_interval": 31.09},
    {"model": "R1-Qwen-32B", "n_peaks": 10.82, "n_steps": 511.22, "ratio": 0.0212,
     "max_interval": 138.07, "min_interval": 19.35, "avg_interval": 59.30},
    {"model": "QwQ-32B", "n_peaks": 5.41, "n_steps": 489.80, "ratio": 0.0110,
     "max_interval": 167.85, "min_interval": 19.35, "avg_interval": 66.53},
    {"model": "R1-Llama-70B", "n_peaks": 16.60, "n_steps": 512.00, "ratio": 0.0324,
     "max_interval": 93.03, "min_interval": 6.77, "avg_interval": 34.71},
]

#: Table 2 of the paper (published numbers): Mean / Std / AOM of the MI trajectory,
#: non-reasoning ("origin") vs reasoning model of each pair. One record per
#: (pair, variant); ``pd.DataFrame(PAPER_TABLE2).pivot(index="pair", columns="variant")``
#: gives the paper's layout.
PAPER_TABLE2: list[dict[str, Any]] = [
    {"pair": "Llama-8B", "variant": "origin", "mean": 0.0863, "std": 0.0512, "aom": 3.3573},
    {"pair": "Llama-8B", "variant": "reasoning", "mean": 0.1279, "std": 0.0707, "aom": 4.5176},
    {"pair": "Qwen-Math-7B", "variant": "origin", "mean": 2.1971, "std": 0.8639, "aom": 2.6320},
    {"pair": "Qwen-Math-7B", "variant": "reasoning", "mean": 3.3016, "std": 0.8936, "aom": 2.7541},
    {"pair": "14B", "variant": "origin", "mean": 1.3128, "std": 0.4326, "aom": 2.6541},
    {"pair": "14B", "variant": "reasoning", "mean": 3.3508, "std": 0.6703, "aom": 3.0820},
    {"pair": "32B", "variant": "origin", "mean": 1.7669, "std": 0.5113, "aom": 2.5466},
    {"pair": "32B", "variant": "reasoning", "mean": 4.0352, "std": 0.6036, "aom": 2.5998},
    {"pair": "70B", "variant": "origin", "mean": 0.0400, "std": 0.0277, "aom": 2.4326},
    {"pair": "70B", "variant": "reasoning", "mean": 0.0599, "std": 0.0484, "aom": 3.2866},
]

#: Model names behind the Table 2 pair labels, as (origin, reasoning). The origin
#: models are listed in the paper (§10); matching each to a reasoning model is our
#: reading of the pair labels (the 32B reasoning model could also be QwQ-32B).
PAPER_TABLE2_PAIRS: dict[str, tuple[str, str]] = {
    "Llama-8B": ("Llama-3.1-8B", "R1-Llama-8B"),
    "Qwen-Math-7B": ("Qwen2.5-Math-7B", "R1-Qwen-7B"),
    "14B": ("Qwen2.5-14B", "R1-Qwen-14B"),
    "32B": ("Qwen2.5-32B", "R1-Qwen-32B"),
    "70B": ("Llama-3.3-70B-Instruct", "R1-Llama-70B"),
}

#: Fig. 2 of the paper (published only as a plot; the scales read off it): one sample per LRM,
#: 512 steps. The MI scale depends on the model family.
PAPER_FIG2: list[dict[str, str]] = [
    {"model": "R1-Llama-8B, R1-Llama-70B", "MI scale (as published)": "peaks at about 0.2-0.6"},
    {"model": "R1-Qwen-7B/14B/32B, QwQ-32B", "MI scale (as published)": "values at about 2-7"},
]

#: Table 3 of the paper (published numbers, NeurIPS camera-ready only): AOM of the
#: MI trajectory on GPQA and MedQA.
PAPER_TABLE3: list[dict[str, Any]] = [
    {"pair": "Llama-8B", "variant": "origin", "aom_gpqa": 3.5193, "aom_medqa": 3.6337},
    {"pair": "Llama-8B", "variant": "reasoning", "aom_gpqa": 4.0809, "aom_medqa": 3.8436},
    {"pair": "Qwen-14B", "variant": "origin", "aom_gpqa": 2.7671, "aom_medqa": 2.4355},
    {"pair": "Qwen-14B", "variant": "reasoning", "aom_gpqa": 2.9444, "aom_medqa": 2.6281},
]


# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _as_trajectory(mi: Any, name: str = "mi") -> Float[np.ndarray, "T"]:
    """Return ``mi`` as a finite, non-empty 1-D float64 array or raise ValueError."""
    arr = np.asarray(mi, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one MI value per step), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: an MI trajectory needs at least one step")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(
            f"{name} contains {bad.size} non-finite value(s) (NaN/inf), first at index {bad[0]}"
        )
    return arr


def _check_rule(rule: str) -> None:
    if rule not in PEAK_RULES:
        raise ValueError(f"unknown peak rule {rule!r}; valid options are {list(PEAK_RULES)}")


def _check_tau(tau: float) -> float:
    tau = float(tau)
    if not math.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be a finite number >= 0, got {tau}")
    return tau


def _check_k(k: int | None) -> int:
    if k is None:
        return DEFAULT_TOPK
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative integer or None, got {k!r}")
    return int(k)


def _as_peak_indices(peaks: Any, n_steps: int) -> Int[np.ndarray, "P"]:
    """Validate explicit peak positions: integers in [0, T), no duplicates; returns sorted."""
    arr = np.asarray(peaks)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1:
        raise ValueError(f"peaks must be a 1-D array of indices, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"peaks must be integer indices, got dtype {arr.dtype}")
    arr = np.sort(arr.astype(np.int64))
    if arr[0] < 0 or arr[-1] >= n_steps:
        raise ValueError(f"peak indices must lie in [0, {n_steps}), got {arr[0]}..{arr[-1]}")
    if np.any(np.diff(arr) == 0):
        raise ValueError("peak indices contain duplicates")
    return arr


# ---------------------------------------------------------------------------
# Peaks
# ---------------------------------------------------------------------------


def quartiles(mi: Float[np.ndarray, "T"]) -> tuple[float, float, float]:
    """Quartiles of a trajectory.

    Uses numpy's default ``"linear"`` percentile method (Hyndman & Fan type 7):
    for sorted values ``s_0 <= ... <= s_{T-1}`` the q-quantile is
    ``s_j + f * (s_{j+1} - s_j)`` with ``j + f = q * (T - 1)``.

    Args:
        mi: MI trajectory ``m``, shape (T,).

    Returns:
        ``(Q1, median, Q3)`` = the 0.25, 0.5 and 0.75 quantiles of ``m``.
    """
    m = _as_trajectory(mi)
    q1, med, q3 = np.percentile(m, [25.0, 50.0, 75.0])
    return float(q1), float(med), float(q3)


def iqr_fence(mi: Float[np.ndarray, "T"], tau: float = DEFAULT_TAU) -> float:
    """The IQR rule's fence ``Q3 + tau * (Q3 - Q1)`` of a trajectory (a step is a peak above it).

    Args:
        mi: MI trajectory ``m``, shape (T,).
        tau: fence multiplier (>= 0).

    Raises:
        ValueError: on a bad trajectory or a negative ``tau``.
    """
    tau = _check_tau(tau)
    q1, _, q3 = quartiles(mi)
    return q3 + tau * (q3 - q1)


def gaussian_fence_rate(tau: float = DEFAULT_TAU) -> float:
    """Share of i.i.d. Gaussian values above the IQR fence ``Q3 + tau·IQR`` (in population).

    The IQR rule's peak count depends only on the distribution of a trajectory's values, not on
    their order, so this is the peak ratio that featureless Gaussian noise would give: about
    0.0035 for ``tau = 1.5`` (the fence sits at 2.698 standard deviations).
    """
    from scipy.stats import norm

    q3 = float(norm.ppf(0.75))
    return float(norm.sf(q3 + tau * 2.0 * q3))


def find_peaks(
    mi: Float[np.ndarray, "T"],
    rule: str = "iqr",
    tau: float = DEFAULT_TAU,
    k: int | None = None,
) -> Int[np.ndarray, "P"]:
    """Positions of the MI peaks of one trajectory.

    * ``rule="iqr"`` (paper): ``O = {t : m_t > Q3 + tau * (Q3 - Q1)}`` (strict ``>``),
      with quartiles from numpy's default linear interpolation (see :func:`quartiles`).
      ``k`` is ignored.
    * ``rule="topk"`` (official notebook): the ``k`` positions with the largest
      ``m_t``; ties are broken in favour of the lower index. If ``k >= T`` every
      position is returned. ``tau`` is ignored.

    Args:
        mi: MI trajectory ``m``, shape (T,); must be non-empty and finite.
        rule: ``"iqr"`` or ``"topk"``.
        tau: Fence multiplier for ``rule="iqr"`` (>= 0; 1.5 is Tukey's / the paper's).
        k: Number of peaks for ``rule="topk"``; ``None`` means 20.

    Returns:
        Sorted (ascending) int64 array of peak positions, shape (P,), possibly empty.

    Raises:
        ValueError: On empty / non-1-D / non-finite ``mi``, an unknown ``rule``,
            negative ``tau`` or a bad ``k``.
    """
    _check_rule(rule)
    m = _as_trajectory(mi)
    if rule == "iqr":
        return np.flatnonzero(m > iqr_fence(m, tau)).astype(np.int64)
    k = _check_k(k)
    if k >= m.size:
        return np.arange(m.size, dtype=np.int64)
    # Stable sort of -m keeps equal values in index order: lower index wins ties.
    top = np.argsort(-m, kind="stable")[:k]
    return np.sort(top).astype(np.int64)


# ---------------------------------------------------------------------------
# Per-trajectory statistics
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PeakStats:
    """Statistics of one MI trajectory ``m`` (length T) and its peak set ``O``.

    Let ``p_1 < ... < p_n`` be the peak positions and ``d_i = p_{i+1} - p_i`` the
    intervals between consecutive peaks.

    Attributes:
        n_peaks: ``n = |O|``.
        n_steps: ``T``, the number of generation steps.
        ratio: ``n / T``.
        max_interval: ``max_i d_i``; NaN when ``n < 2``.
        min_interval: ``min_i d_i``; NaN when ``n < 2``.
        avg_interval: ``mean_i d_i = (p_n - p_1) / (n - 1)``; NaN when ``n < 2``.
        mean: ``(1/T) sum_t m_t``.
        std: population standard deviation ``sqrt((1/T) sum_t (m_t - mean)^2)``.
        median: median of ``m`` (numpy linear interpolation).
        iqr: ``Q3 - Q1`` of ``m`` (numpy linear interpolation).
        aom: Average Outlier Magnitude ``(1/n) sum_{i in O} |m_i - median| / iqr``;
            NaN when ``n = 0`` or ``iqr = 0``.
        peaks: The peak positions ``(p_1, ..., p_n)``.
    """

    n_peaks: int
    n_steps: int
    ratio: float
    max_interval: float
    min_interval: float
    avg_interval: float
    mean: float
    std: float
    median: float
    iqr: float
    aom: float
    peaks: tuple[int, ...]

    def as_dict(self, include_peaks: bool = False) -> dict[str, Any]:
        """Fields as a dict (``peaks`` as a tuple, dropped unless ``include_peaks``)."""
        d = dataclasses.asdict(self)
        if not include_peaks:
            d.pop("peaks")
        return d


def peak_stats(
    mi: Float[np.ndarray, "T"],
    peaks: Int[np.ndarray, "P"] | Sequence[int] | None = None,
    *,
    rule: str = "iqr",
    tau: float = DEFAULT_TAU,
    k: int | None = None,
) -> PeakStats:
    """Table 1 and Table 2 statistics of one MI trajectory.

    Definitions are those of :class:`PeakStats`: ``ratio = n_peaks / T``; intervals
    are the differences of consecutive (sorted) peak positions, NaN with fewer than
    two peaks; ``mean = (1/T) sum m``; ``std`` is the population (1/T) standard
    deviation; ``aom = (1/|O|) sum_{i in O} |m_i - median(m)| / IQR(m)``, NaN with no
    peaks or ``IQR(m) = 0``.

    Args:
        mi: MI trajectory ``m``, shape (T,); non-empty and finite.
        peaks: Explicit peak positions (distinct ints in ``[0, T)``). If ``None``,
            they are found with :func:`find_peaks` using ``rule``, ``tau``, ``k``.
        rule: Peak rule for :func:`find_peaks` (``"iqr"`` or ``"topk"``).
        tau: Fence multiplier for ``rule="iqr"``.
        k: Number of peaks for ``rule="topk"`` (``None`` -> 20).

    Returns:
        A frozen :class:`PeakStats`.

    Raises:
        ValueError: On bad ``mi``, bad explicit ``peaks`` or bad rule parameters.
    """
    m = _as_trajectory(mi)
    if peaks is None:
        idx = find_peaks(m, rule=rule, tau=tau, k=k)
    else:
        idx = _as_peak_indices(peaks, m.size)
    n, T = int(idx.size), int(m.size)

    if n >= 2:
        gaps = np.diff(idx).astype(np.float64)
        max_int, min_int, avg_int = float(gaps.max()), float(gaps.min()), float(gaps.mean())
    else:
        max_int = min_int = avg_int = math.nan

    q1, med, q3 = quartiles(m)
    iqr = q3 - q1
    if n == 0 or iqr == 0:
        aom = math.nan
    else:
        aom = float(np.mean(np.abs(m[idx] - med)) / iqr)

    return PeakStats(
        n_peaks=n,
        n_steps=T,
        ratio=n / T,
        max_interval=max_int,
        min_interval=min_int,
        avg_interval=avg_int,
        mean=float(m.mean()),
        std=float(m.std(ddof=0)),
        median=med,
        iqr=float(iqr),
        aom=aom,
        peaks=tuple(int(i) for i in idx),
    )


# ---------------------------------------------------------------------------
# Many trajectories
# ---------------------------------------------------------------------------


def summarize(
    trajectories: Mapping[Any, Float[np.ndarray, "T"]] | Sequence[Float[np.ndarray, "T"]],
    *,
    rule: str = "iqr",
    tau: float = DEFAULT_TAU,
    k: int | None = None,
    include_peaks: bool = False,
) -> pd.DataFrame:
    """Per-trajectory statistics, one row per trajectory.

    Args:
        trajectories: Either a sequence of MI trajectories or a mapping
            ``{id: trajectory}``; trajectories may differ in length.
        rule: Peak rule (``"iqr"`` or ``"topk"``), see :func:`find_peaks`.
        tau: Fence multiplier for ``rule="iqr"``.
        k: Number of peaks for ``rule="topk"`` (``None`` -> 20).
        include_peaks: Add a ``peaks`` column holding each row's peak positions (tuple).

    Returns:
        DataFrame with the :class:`PeakStats` fields as columns (in field order),
        preceded by an ``id`` column when ``trajectories`` is a mapping.

    Raises:
        ValueError: If there are no trajectories, or any of them is invalid (the
            message names the offending trajectory).
    """
    _check_rule(rule)
    if isinstance(trajectories, Mapping):
        items = list(trajectories.items())
        with_id = True
    else:
        items = list(enumerate(trajectories))
        with_id = False
    if not items:
        raise ValueError("no trajectories given")

    rows = []
    for key, mi in items:
        try:
            st = peak_stats(mi, rule=rule, tau=tau, k=k)
        except ValueError as err:
            raise ValueError(f"trajectory {key!r}: {err}") from err
        row = st.as_dict(include_peaks=include_peaks)
        rows.append({"id": key, **row} if with_id else row)
    return pd.DataFrame(rows)


def average(df: pd.DataFrame) -> pd.Series:
    """Average per-sample statistics over problems (the paper's tables are per-sample means).

    For each statistic column ``c`` present in ``df`` the result is the mean over
    rows of ``c``. NaNs are skipped (``nanmean``), which matters for the interval
    columns (NaN for samples with fewer than 2 peaks) and ``aom`` (NaN for samples
    with no peaks or IQR 0): their mean is over the samples that define them only.
    A column that is NaN in every row averages to NaN.

    Args:
        df: Output of :func:`summarize` (at least the Table 1 or Table 2 columns).

    Returns:
        Series with the averaged statistics (Table 1 columns, then Table 2 columns,
        then ``median``/``iqr`` if present), plus ``n_samples`` (rows),
        ``n_interval_samples`` (rows with a finite ``avg_interval``, i.e. >= 2 peaks)
        and ``n_aom_samples`` (rows with a finite ``aom``), where those columns exist.

    Raises:
        ValueError: If ``df`` is empty or has none of the statistic columns.
    """
    if len(df) == 0:
        raise ValueError("cannot average an empty table")
    cols = [c for c in (*TABLE1_COLUMNS, *TABLE2_COLUMNS, "median", "iqr") if c in df.columns]
    if not cols:
        raise ValueError(
            "df has none of the statistic columns "
            f"{list(TABLE1_COLUMNS) + list(TABLE2_COLUMNS)}; pass the output of summarize()"
        )
    out: dict[str, float | int] = {}
    for c in cols:
        x = df[c].to_numpy(dtype=np.float64)
        finite = np.isfinite(x)
        out[c] = float(x[finite].mean()) if finite.any() else math.nan
    out["n_samples"] = int(len(df))
    if "avg_interval" in df.columns:
        out["n_interval_samples"] = int(np.isfinite(df["avg_interval"].to_numpy(float)).sum())
    if "aom" in df.columns:
        out["n_aom_samples"] = int(np.isfinite(df["aom"].to_numpy(float)).sum())
    return pd.Series(out)


def _table(
    dfs: pd.DataFrame | Mapping[str, pd.DataFrame],
    columns: tuple[str, ...],
    counts: tuple[str, ...],
    index_name: str,
) -> pd.DataFrame:
    named = {"": dfs} if isinstance(dfs, pd.DataFrame) else dict(dfs)
    if not named:
        raise ValueError("no tables given")
    rows = {}
    for name, df in named.items():
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"table {name!r} lacks columns {missing}; pass summarize() output")
        avg = average(df)
        rows[name] = avg[[*columns, *[c for c in counts if c in avg.index]]]
    out = pd.DataFrame(rows).T
    for c in counts:
        if c in out.columns:
            out[c] = out[c].astype(int)
    out.index.name = index_name
    if isinstance(dfs, pd.DataFrame):
        out = out.reset_index(drop=True)
    return out


def table1(dfs: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Table 1 (peak sparsity and intervals) from per-sample statistics.

    Each entry is the per-sample mean computed by :func:`average` (intervals
    averaged over samples with >= 2 peaks only).

    Args:
        dfs: One :func:`summarize` DataFrame, or a mapping ``{model: DataFrame}``.

    Returns:
        DataFrame with columns ``n_peaks, n_steps, ratio, max_interval,
        min_interval, avg_interval, n_samples, n_interval_samples``; one row per
        model (index named ``model``), or a single row for a single DataFrame.
        Same column names as :data:`PAPER_TABLE1`.
    """
    return _table(dfs, TABLE1_COLUMNS, ("n_samples", "n_interval_samples"), "model")


def table2(dfs: pd.DataFrame | Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Table 2 (Mean / Std / AOM of MI) from per-sample statistics.

    Each entry is the per-sample mean computed by :func:`average` (AOM averaged
    over samples where it is defined only).

    Args:
        dfs: One :func:`summarize` DataFrame, or a mapping ``{name: DataFrame}``.

    Returns:
        DataFrame with columns ``mean, std, aom, n_samples, n_aom_samples``; one
        row per name (index named ``model``), or a single row for a single DataFrame.
    """
    return _table(dfs, TABLE2_COLUMNS, ("n_samples", "n_aom_samples"), "model")


# ---------------------------------------------------------------------------
# Tables of a run's trajectories and peaks (chapter 1)
# ---------------------------------------------------------------------------


def trajectory_frame(trajs: Mapping[str, np.ndarray], ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Trajectories as a long table with columns ``id``, ``step``, ``rel_step`` (t / T) and ``mi``.

    Args:
        trajs: ``{problem id: (T,) trajectory}`` (e.g. from :func:`mipeaks.pipeline.trajectories`).
        ids: the problems to keep, in this order (default: all).
    """
    keys = list(trajs) if ids is None else list(ids)
    frames = [pd.DataFrame({"id": str(k), "step": np.arange(len(trajs[k])),
                            "rel_step": np.arange(len(trajs[k])) / max(len(trajs[k]), 1),
                            "mi": np.asarray(trajs[k], dtype=np.float64)}) for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", "step", "rel_step", "mi"])



def peak_table(model: LoadedModel, run: Run, trajs: Mapping[str, np.ndarray], config: MIConfig | None = None,
               *, ids: Sequence[str] | None = None, rules: Sequence[str] = ("iqr", "topk")) -> pd.DataFrame:
    """Every peak of the chosen problems under each rule, with the token generated there.

    Step ``t`` is the state ``h_t`` that predicts generated token ``t``, so the token shown is the
    one the model emitted from the peak state (``token_mode="generated"``; under greedy decoding
    it is also the last-layer logit-lens token).

    Args:
        model: the loaded model (for its tokenizer).
        run: the run the trajectories came from.
        trajs: ``{problem id: trajectory}``.
        config: peak-rule parameters (``tau``, ``top_k``), e.g. the run's
            :class:`~mipeaks.pipeline.MIConfig`; None: :data:`DEFAULT_TAU` and :data:`DEFAULT_TOPK`
            (those of a default ``MIConfig``).
        ids: problems to list (default: all).
        rules: peak rules to apply.

    Returns:
        Columns ``id``, ``rule``, ``step``, ``mi``, ``token`` (decoded, repr-quoted so whitespace
        shows) and ``word`` (:func:`mipeaks.lens.word_key`), one row per (problem, rule, peak).
    """
    tau, k = (DEFAULT_TAU, DEFAULT_TOPK) if config is None else (config.tau, config.top_k)
    keep = set(trajs if ids is None else ids)
    rows = []
    for trace in run.traces():
        pid = trace.problem_id
        if pid not in keep:
            continue
        m = trajs[pid]
        for rule in rules:
            found = find_peaks(m, rule=rule, tau=tau, k=k)
            texts = lens.decode_each(model.tokenizer, trace.token_ids[found].tolist())
            rows += [{"id": pid, "rule": rule, "step": int(t), "mi": float(m[t]), "token": repr(text),
                      "word": lens.word_key(text)} for t, text in zip(found, texts)]
    return pd.DataFrame(rows, columns=["id", "rule", "step", "mi", "token", "word"])
