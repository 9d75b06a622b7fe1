"""What the single-pair HSIC measures: the estimator diagnostics of chapter 9 (MI-Peaks issue #7).

Every ``m_t`` of the paper is computed from one pair of vectors, ``h_t`` and ``h_y``; the
official statistic treats their ``d`` coordinates as ``d`` scalar samples (see :mod:`mipeaks.mi`).
These functions test, on the trajectories of a run, what that statistic responds to:

* :func:`compare_trajectories`: how far variants of the trajectories (another estimator, another
  scale, masked coordinates) agree with a reference, in rank and in peak sets;
* :func:`gold_swap`, :func:`own_gold_rank`: whether a trace scores highest against its *own* gold;
* :func:`float32_error`: the original float32 dense evaluation against exact float64;
* :func:`correlates`: which simple properties of ``h_t`` (norm, position, cosine with ``h_y``, ...)
  ``m_t`` follows;
* :func:`coordinate_dominance`: how much of the statistic the large coordinates carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import mi, peaks
from .collect import Run
from .pipeline import MIConfig

__all__ = [
    "compare_trajectories",
    "coordinate_dominance",
    "correlates",
    "float32_error",
    "gold_swap",
    "own_gold_rank",
]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else float("nan")


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    return float("nan") if not (sa | sb) else len(sa & sb) / len(sa | sb)


def compare_trajectories(variants: Mapping[str, Mapping[str, np.ndarray]], reference: str, *,
                         rule: str = "iqr", tau: float = peaks.DEFAULT_TAU, k: int | None = None) -> pd.DataFrame:
    """How much each variant of the trajectories agrees with a reference variant.

    Args:
        variants: ``{variant label: {problem id: trajectory}}``, all over the same problems.
        reference: the label to compare against.
        rule, tau, k: peak rule for the peak-set comparison.

    Returns:
        One row per variant (index ``variant``): ``mean_mi`` (mean over problems of the
        trajectory mean), ``spearman`` (mean over problems of the Spearman rank correlation with
        the reference trajectory), ``max_rel_diff`` (largest ``|m - m_ref| / max|m_ref|`` over
        problems), ``n_peaks`` (mean per problem) and ``peak_jaccard`` (mean over problems with
        a peak in either of |P ∩ P_ref| / |P ∪ P_ref|).
    """
    if reference not in variants:
        raise ValueError(f"reference {reference!r} is not among the variants {list(variants)}")
    ref = variants[reference]
    rows = {}
    for name, trajs in variants.items():
        rho, rel, npk, jac, means = [], [], [], [], []
        for pid, m_ref in ref.items():
            m = np.asarray(trajs[pid], dtype=np.float64)
            m_ref = np.asarray(m_ref, dtype=np.float64)
            if m.shape != m_ref.shape:
                raise ValueError(f"variant {name!r}, problem {pid!r}: length {m.size} != {m_ref.size}")
            means.append(m.mean())
            rho.append(_spearman(m, m_ref))
            rel.append(np.max(np.abs(m - m_ref)) / max(np.max(np.abs(m_ref)), 1e-300))
            p, p_ref = (peaks.find_peaks(x, rule=rule, tau=tau, k=k) for x in (m, m_ref))
            npk.append(p.size)
            jac.append(_jaccard(p, p_ref))
        rows[name] = {"mean_mi": float(np.mean(means)), "spearman": _nanmean(rho),
                      "max_rel_diff": float(np.max(rel)), "n_peaks": float(np.mean(npk)),
                      "peak_jaccard": _nanmean(jac)}
    out = pd.DataFrame(rows).T
    out.index.name = "variant"
    return out


def float32_error(run: Run, config: MIConfig | None = None, *, n_problems: int = 4, n_steps: int = 5) -> pd.DataFrame:
    """The original float32 dense evaluation against exact float64, on real steps of a run.

    For ``n_steps`` evenly spaced steps of the first ``n_problems`` traces, computes the official
    statistic three ways: :func:`mipeaks.mi.hsic_paper_dense` in float32 (the original code's
    arithmetic) and in float64 (the exact reference), and the fast :func:`mipeaks.mi.hsic_paper`.

    Returns:
        Columns ``id``, ``step``, ``float64_dense``, ``float32_dense``, ``fast``, ``rel_err_float32``
        and ``rel_err_fast`` (relative to ``float64_dense``).
    """
    config = config or MIConfig()
    sigma = mi.SIGMA_PAPER if config.sigma is None else config.sigma
    rows = []
    for i, trace in enumerate(run.traces()):
        if i >= n_problems:
            break
        T = len(trace.token_ids)
        for t in np.unique(np.linspace(0, T - 1, n_steps).round().astype(int)):
            x, y = trace.states[t], trace.gold
            ref = mi.hsic_paper_dense(x, y, sigma, dtype=torch.float64)
            f32 = mi.hsic_paper_dense(x, y, sigma, dtype=torch.float32)
            fast = mi.hsic_paper(x, y, sigma)
            rows.append({"id": trace.problem_id, "step": int(t), "float64_dense": ref, "float32_dense": f32,
                         "fast": fast, "rel_err_float32": abs(f32 - ref) / abs(ref),
                         "rel_err_fast": abs(fast - ref) / abs(ref)})
    return pd.DataFrame(rows)


def correlates(run: Run, trajs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Spearman correlation, within each trajectory, of ``m_t`` with simple properties of ``h_t``.

    Properties: ``norm`` = ``||h_t||``; ``position`` = ``t``; ``cosine`` = cosine similarity of
    ``h_t`` and ``h_y``; ``coord_pearson`` = Pearson correlation of the ``d`` coordinate pairs
    ``(h_t[i], h_y[i])`` (the linear counterpart of the statistic, which also treats the
    coordinates as samples); ``max_abs`` = ``max_i |h_t[i]|``.

    Returns:
        One row per problem: ``id``, ``n_steps`` and one column per property.
    """
    rows = []
    for trace in run.traces():
        m = np.asarray(trajs[trace.problem_id], dtype=np.float64)
        s = trace.states.double().numpy()
        g = trace.gold.double().numpy()
        norm = np.linalg.norm(s, axis=1)
        sc, gc = s - s.mean(axis=1, keepdims=True), g - g.mean()
        props = {"norm": norm, "position": np.arange(len(m), dtype=np.float64),
                 "cosine": s @ g / (norm * np.linalg.norm(g)),
                 "coord_pearson": sc @ gc / (np.linalg.norm(sc, axis=1) * np.linalg.norm(gc)),
                 "max_abs": np.abs(s).max(axis=1)}
        rows.append({"id": trace.problem_id, "n_steps": len(m), **{k: _spearman(m, v) for k, v in props.items()}})
    return pd.DataFrame(rows)


def coordinate_dominance(run: Run, config: MIConfig | None = None, *,
                         thresholds: Sequence[float] = (10.0, 25.0, 50.0, 100.0)) -> pd.DataFrame:
    """How much of the statistic the large coordinates carry.

    For each threshold ``c``, every coordinate with ``|v_i| < c`` is set to 0 in both ``h_t`` and
    ``h_y`` (they then sit in one kernel cluster) and the trajectory is recomputed with the
    config's estimator. If the trajectory barely changes, the statistic is determined by the few
    coordinates whose values are large compared with the kernel width.

    Returns:
        One row per threshold: ``threshold``, ``kept_fraction`` (mean fraction of state coordinates
        kept), then the :func:`compare_trajectories` columns against the untouched trajectories.
    """
    config = config or MIConfig()
    kw = config.estimator_kwargs()
    traces = list(run.traces())
    base = {t.problem_id: mi.trajectory(t.states, t.gold, estimator=config.estimator, **kw) for t in traces}
    variants: dict[str, dict[str, np.ndarray]] = {"all": base}
    kept: dict[str, float] = {"all": 1.0}
    for c in thresholds:
        label = f"|v| >= {c:g}"
        variants[label] = {}
        fracs = []
        for t in traces:
            s, g = t.states.double(), t.gold.double()
            mask_s = s.abs() >= c
            fracs.append(float(mask_s.double().mean()))
            variants[label][t.problem_id] = mi.trajectory(s * mask_s, g * (g.abs() >= c),
                                                          estimator=config.estimator, **kw)
        kept[label] = float(np.mean(fracs))
    out = compare_trajectories(variants, "all", rule=config.peak_rule, tau=config.tau, k=config.top_k)
    out.insert(0, "kept_fraction", pd.Series(kept))
    out.insert(0, "threshold", [0.0, *map(float, thresholds)])
    return out


def gold_swap(run: Run, config: MIConfig | None = None) -> pd.DataFrame:
    """Mean MI of every trace's states against every problem's gold representation.

    If the single-pair statistic carried information about *which* solution the states are
    working towards, each trace would score highest against its own gold (the diagonal).

    Returns:
        A square DataFrame: row ``i`` = the states of problem ``i``, column ``j`` = the gold of
        problem ``j``, value = mean over steps of ``MI(h_t^(i); h_y^(j))``. Index ``states``,
        columns ``gold``, both the problem ids in run order.
    """
    config = config or MIConfig()
    kw = config.estimator_kwargs()
    traces = list(run.traces())
    ids = [t.problem_id for t in traces]
    values = np.array([[mi.trajectory(t.states, g.gold, estimator=config.estimator, **kw).mean() for g in traces]
                       for t in traces])
    return pd.DataFrame(values, index=pd.Index(ids, name="states"), columns=pd.Index(ids, name="gold"))


def own_gold_rank(swap: pd.DataFrame) -> pd.DataFrame:
    """Where each trace's own gold ranks among all golds in a :func:`gold_swap` matrix.

    Returns:
        One row per problem: ``own`` (the diagonal), ``others_mean`` (mean of the rest of the
        row), ``rank`` (1 = the own gold scores highest; ties count against it) and ``n_golds``.
        Under "no problem-specific information" the rank is uniform on ``1..n``, with mean
        ``(n + 1) / 2``.
    """
    values = swap.to_numpy(dtype=np.float64)
    n = values.shape[0]
    if values.shape != (n, n):
        raise ValueError(f"expected a square matrix, got {values.shape}")
    own = np.diag(values)
    others = (values.sum(axis=1) - own) / max(n - 1, 1)
    rank = (values >= own[:, None]).sum(axis=1)  # includes the own gold itself
    return pd.DataFrame({"own": own, "others_mean": others, "rank": rank, "n_golds": n}, index=swap.index)

