"""Tests for mipeaks.mi: fast HSIC estimators vs dense references, properties, permutation test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.spatial.distance import pdist

from mipeaks import mi

RTOL = 1e-6


@pytest.fixture(autouse=True)
def _seed_and_free():
    """Overrides the conftest fixture of the same name for this module.

    These tests load no model and use no torch RNG. The conftest's per-test
    gc.collect() (~0.3 s each once transformers is imported) would dominate
    the runtime.
    """
    yield


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Single-threaded dense algebra (faster on a shared 2-core box: no spin contention)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pair(d: int, scale: float, outliers: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Dependent pair y = 0.6 x + noise, optionally with a few massive coordinates (|v| ~ 3000)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale, d)
    y = 0.6 * x + rng.normal(0.0, scale, d)
    if outliers:
        idx = rng.choice(d, 4, replace=False)
        x[idx[:3]] = [3000.0, -2800.0, 1500.0]
        y[idx[1:]] = [-3000.0, 2900.0, 1200.0]
    return x, y


def _scratch_paper(x: np.ndarray, y: np.ndarray, sigma: float = 50.0, eps: float = 1e-5) -> float:
    """The official formula, written from scratch in numpy (float64)."""
    d = x.size
    h = np.eye(d) - np.ones((d, d)) / d

    def r(v: np.ndarray) -> np.ndarray:
        k = np.array([[np.exp(-((a - b) ** 2) / (2 * sigma**2)) for b in v] for a in v])
        kc = k @ h
        return kc @ np.linalg.inv(kc + eps * d * np.eye(d))

    return float(np.trace(r(x) @ r(y)))


def _scratch_text(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    n = x.size
    h = np.eye(n) - np.ones((n, n)) / n
    k = np.exp(-np.subtract.outer(x, x) ** 2 / (2 * sigma**2))
    l_ = np.exp(-np.subtract.outer(y, y) ** 2 / (2 * sigma**2))
    return float(np.trace(k @ h @ l_ @ h) / (n - 1) ** 2)


def _dense64(x: np.ndarray, y: np.ndarray, **kw) -> float:
    return mi.hsic_paper_dense(x, y, dtype=torch.float64, **kw)


# --------------------------------------------------------------------------- #
# hsic_paper: fast == dense reference
# --------------------------------------------------------------------------- #
# Cases are looped inside a few tests rather than parametrized, to keep the test count small.
@pytest.mark.parametrize("d", [64, 576, 1024])
def test_fast_matches_dense_float64(d: int) -> None:
    cases = [(s, o) for s in (1.0, 10.0, 100.0) for o in (True, False)]
    if d == 1024:  # the dense float64 reference is the slow part; keep the suite fast
        cases = [(s, True) for s in (1.0, 10.0, 100.0)] + [(10.0, False)]
    for scale, outliers in cases:
        x, y = _pair(d, scale, outliers, seed=d + int(scale) + outliers)
        ref = _dense64(x, y)
        fast = mi.hsic_paper(x, y)
        assert ref > 1e-3, (scale, outliers, ref)  # a meaningful, non-degenerate value
        assert abs(fast - ref) <= RTOL * abs(ref), (scale, outliers, fast, ref)


def test_dense_reference_matches_scratch() -> None:
    rng = np.random.default_rng(0)
    for scale in (1.0, 30.0, 200.0, 1.0, 30.0, 200.0):
        x = rng.normal(0, scale, 40)
        y = np.tanh(x / scale) * scale + rng.normal(0, scale / 2, 40)
        x[3] = 1000.0
        want = _scratch_paper(x, y)
        assert mi.hsic_paper_dense(x, y, dtype=torch.float64) == pytest.approx(want, rel=1e-9)
        assert mi.hsic_paper(x, y) == pytest.approx(want, rel=RTOL)


def test_non_default_sigma_eps() -> None:
    x, y = _pair(128, 20.0, True, seed=5)
    for sigma, eps in [(10.0, 1e-4), (200.0, 1e-6)]:
        ref = _scratch_paper(x[:60], y[:60], sigma, eps)
        assert mi.hsic_paper(x[:60], y[:60], sigma, eps) == pytest.approx(ref, rel=RTOL)
        ref = _dense64(x, y, sigma=sigma, eps=eps)
        assert mi.hsic_paper(x, y, sigma=sigma, eps=eps) == pytest.approx(ref, rel=RTOL)


def test_dense_fallback_when_rank_capped() -> None:
    x, y = _pair(200, 100.0, True, seed=3)
    ref = _dense64(x, y)
    est = mi.PaperHSIC(y, max_rank=3)
    assert est.gold_rank is None  # forced onto the dense path
    assert est(x) == pytest.approx(ref, rel=RTOL)
    assert mi.hsic_paper(x, y, max_rank=3) == pytest.approx(ref, rel=RTOL)


def test_float32_dense_is_only_roughly_right() -> None:
    # The original runs in float32. Kernel eigenvalues near the ridge eps*d are
    # swamped by float32 rounding, so it is only roughly right (errors of ~10-30%
    # are typical). The fast float64 path has no such problem.
    x, y = _pair(256, 5.0, False, seed=11)
    ref = _dense64(x, y)
    f32 = mi.hsic_paper_dense(x, y)
    assert f32 == pytest.approx(ref, rel=0.5)
    assert abs(mi.hsic_paper(x, y) - ref) < 1e-3 * abs(f32 - ref)


def test_gaussian_factor() -> None:
    for scale in (1.0, 100.0, 1000.0):
        _check_factor(scale)


def _check_factor(scale: float) -> None:
    rng = np.random.default_rng(7)
    v = rng.normal(0, scale, 300)
    lf, ok = mi.gaussian_factor(v, 50.0, tol=1e-13, max_rank=300)
    assert ok
    k = np.exp(-np.subtract.outer(v, v) ** 2 / (2 * 50.0**2))
    resid = k - lf @ lf.T
    assert np.max(np.abs(resid)) <= 1e-12
    assert np.min(np.linalg.eigvalsh(resid)) >= -1e-10  # PSD residual
    if scale <= 1.0:
        assert lf.shape[1] < 20  # numerically low rank
    if scale >= 1000.0:
        assert lf.shape[1] > 150  # values spread over ~100 sigmas: high rank
    _, ok = mi.gaussian_factor(v, 50.0, max_rank=2)
    assert not ok  # 2 columns cannot reach tol for any of these spreads


# --------------------------------------------------------------------------- #
# properties
# --------------------------------------------------------------------------- #
def test_permutation_invariance_and_symmetry() -> None:
    x, y = _pair(512, 10.0, True, seed=21)
    p = np.random.default_rng(0).permutation(512)
    a = mi.hsic_paper(x, y)
    assert mi.hsic_paper(x[p], y[p]) == pytest.approx(a, rel=1e-9)
    assert mi.hsic_paper(y, x) == pytest.approx(a, rel=1e-9)
    b = _dense64(x[:200], y[:200])
    assert _dense64(y[:200], x[:200]) == pytest.approx(b, rel=1e-7)
    # permuting only one side changes the value (the pairing of coordinates matters)
    assert abs(mi.hsic_paper(x[p], y) - a) > 1e-3 * a


def test_one_sided_centring_equals_nocco_form_and_bound() -> None:
    # tr(R_x R_y) with Kc = K H equals the symmetric form with HKH; 0 <= MI < min(tr S_x, tr S_y).
    x, y = _pair(50, 30.0, True, seed=13)
    d, c = 50, 1e-5 * 50
    h = np.eye(d) - 1.0 / d

    def s_mat(v: np.ndarray) -> np.ndarray:
        kt = h @ np.exp(-np.subtract.outer(v, v) ** 2 / (2 * 50.0**2)) @ h
        return kt @ np.linalg.inv(kt + c * np.eye(d))

    sx, sy = s_mat(x), s_mat(y)
    val = mi.hsic_paper(x, y)
    assert val == pytest.approx(float(np.trace(sx @ sy)), rel=1e-7)
    assert 0 < val < min(np.trace(sx), np.trace(sy))


def test_constant_vector_gives_zero() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(0, 10, 300)
    c = np.full(300, 3.7)
    assert abs(mi.hsic_paper(c, y)) < 1e-12
    assert abs(mi.hsic_paper(y, c)) < 1e-12
    assert abs(_dense64(c, y)) < 1e-8
    assert abs(mi.hsic_text(c, y)) < 1e-15


def test_identical_beats_independent() -> None:
    rng = np.random.default_rng(4)
    for scale in (1.0, 10.0, 100.0):
        x = rng.normal(0, scale, 400)
        z = rng.normal(0, scale, 400)
        same = mi.hsic_paper(x, x)
        indep = mi.hsic_paper(x, z)
        assert same > 10 * indep > 0
        assert mi.hsic_text(x, x) > 10 * mi.hsic_text(x, z)


# --------------------------------------------------------------------------- #
# hsic_text
# --------------------------------------------------------------------------- #
def test_hsic_text_matches_dense() -> None:
    for scale, outliers in [(1.0, False), (10.0, True), (100.0, False), (100.0, True)]:
        _check_text(scale, outliers)


def _check_text(scale: float, outliers: bool) -> None:
    x, y = _pair(700, scale, outliers, seed=31)
    for sigma in (50.0, 400.0):
        ref = mi.hsic_text_dense(x, y, sigma)
        assert mi.hsic_text(x, y, sigma) == pytest.approx(ref, rel=RTOL)
    ref = mi.hsic_text_dense(x, y)
    assert mi.hsic_text(x, y) == pytest.approx(ref, rel=RTOL)
    want = mi.hsic_text_dense(x, y, 100.0)
    assert mi.hsic_text(x, y, 100.0, max_rank=2) == pytest.approx(want, rel=1e-12)


def test_hsic_text_dense_matches_scratch() -> None:
    x, y = _pair(60, 40.0, True, seed=8)
    for sigma in (50.0, 200.0):
        want = _scratch_text(x, y, sigma)
        assert mi.hsic_text_dense(x, y, sigma) == pytest.approx(want, rel=1e-10)


def test_hsic_text_grid_is_max() -> None:
    x, y = _pair(300, 80.0, True, seed=9)
    singles = [mi.hsic_text(x, y, s) for s in mi.SIGMA_GRID]
    assert len(set(np.round(singles, 15))) > 1  # the grid values differ
    assert mi.hsic_text(x, y) == pytest.approx(max(singles), rel=1e-12)
    assert mi.hsic_text(x, y, mi.SIGMA_GRID) == pytest.approx(max(singles), rel=1e-12)
    np.testing.assert_allclose(mi.TextHSIC(y).per_sigma(x), singles, rtol=1e-12)


# --------------------------------------------------------------------------- #
# trajectory
# --------------------------------------------------------------------------- #
def test_trajectory_shape_and_agreement() -> None:
    rng = np.random.default_rng(12)
    gold = rng.normal(0, 4, 256)
    gold[:2] = [400.0, -300.0]
    states = 0.3 * gold + rng.normal(0, 4, (7, 256))
    m = mi.trajectory(states, gold)
    assert m.shape == (7,) and m.dtype == np.float64
    np.testing.assert_allclose(m, [mi.hsic_paper(s, gold) for s in states], rtol=1e-12)
    md = mi.trajectory(states, gold, "hsic_paper_dense", dtype=torch.float64)
    np.testing.assert_allclose(m, md, rtol=RTOL)
    mt = mi.trajectory(states, gold, "hsic_text", sigma=100.0)
    np.testing.assert_allclose(mt, [mi.hsic_text(s, gold, 100.0) for s in states], rtol=1e-12)
    # torch input, progress bar
    mtorch = mi.trajectory(torch.tensor(states), torch.tensor(gold), progress=True)
    np.testing.assert_allclose(mtorch, m, rtol=1e-12)
    assert mi.trajectory(states[:0], gold).shape == (0,)


def test_trajectory_errors() -> None:
    with pytest.raises(ValueError, match="hsic_paper.*hsic_paper_dense.*hsic_text"):
        mi.trajectory(np.zeros((2, 8)), np.zeros(8), estimator="ksg")
    with pytest.raises(ValueError):
        mi.trajectory(np.zeros(8), np.zeros(8))
    with pytest.raises(ValueError):
        mi.trajectory(np.zeros((2, 8)), np.zeros(9))
    with pytest.raises(ValueError):
        mi.hsic_paper(np.zeros((2, 4)), np.zeros(8))
    with pytest.raises(ValueError):
        mi.hsic_paper(np.zeros(8), np.zeros(8), sigma=0.0)
    with pytest.raises(ValueError):
        mi.hsic_paper(np.array([1.0, np.nan]), np.zeros(2))


# --------------------------------------------------------------------------- #
# cross-sample HSIC
# --------------------------------------------------------------------------- #
def _cross_data(n: int, d: int, dependent: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 1, (n, d))
    if dependent:
        w = rng.normal(0, 1, (d, d)) / np.sqrt(d)
        x = np.tanh(y @ w) + 0.3 * rng.normal(0, 1, (n, d))
    else:
        x = rng.normal(0, 1, (n, d))
    return x, y


def test_cross_sample_dependent_and_independent() -> None:
    x, y = _cross_data(60, 16, True, seed=0)
    r = mi.cross_sample_hsic(x, y, n_permutations=200, seed=0)
    assert r.p_value < 0.05 and r.p_value == pytest.approx(1 / 201)
    assert r.statistic > r.null_mean + 3 * r.null_std
    x, y = _cross_data(60, 16, False, seed=0)
    r = mi.cross_sample_hsic(x, y, n_permutations=200, seed=0)
    assert r.p_value > 0.05
    assert r.n == 60 and r.n_permutations == 200


def test_cross_sample_calibrated_under_null() -> None:
    # Under H0 the p-value is ~uniform, so about 1 rejection in 20 datasets is expected.
    ps = [
        mi.cross_sample_hsic(*_cross_data(30, 8, False, seed=s), n_permutations=99, seed=s).p_value
        for s in range(20)
    ]
    assert sum(p < 0.05 for p in ps) <= 3
    assert all(1 / 100 <= p <= 1 for p in ps)


def test_cross_sample_reproducible_and_formula() -> None:
    x, y = _cross_data(25, 5, True, seed=3)
    a = mi.cross_sample_hsic(x, y, seed=7)
    b = mi.cross_sample_hsic(torch.tensor(x), torch.tensor(y), seed=7)
    assert a == b
    c = mi.cross_sample_hsic(x, y, seed=8)
    assert c.statistic == a.statistic and c.null_mean != a.null_mean
    # statistic == tr(K H L H) / (n-1)^2 written out
    sx, sy = mi.median_bandwidth(x), mi.median_bandwidth(y)
    assert sx == pytest.approx(np.median(pdist(x)), rel=1e-10)
    n = 25
    h = np.eye(n) - 1.0 / n
    k = np.exp(-np.square(x[:, None, :] - x[None, :, :]).sum(-1) / (2 * sx**2))
    l_ = np.exp(-np.square(y[:, None, :] - y[None, :, :]).sum(-1) / (2 * sy**2))
    assert a.statistic == pytest.approx(np.trace(k @ h @ l_ @ h) / (n - 1) ** 2, rel=1e-10)
    assert a.sigma_x == pytest.approx(sx) and a.sigma_y == pytest.approx(sy)
    with pytest.raises(ValueError):
        mi.cross_sample_hsic(x, y[:-1])


def test_aligned_positions() -> None:
    out = mi.aligned_positions([10, 3, 0], 5)
    np.testing.assert_array_equal(out[0], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    np.testing.assert_array_equal(out[1], [0, 1, 3])
    assert out[2].shape == (0,)
    for t_len in (10, 100, 513):
        b = mi.aligned_positions([t_len], 10)[0]
        assert b.min() == 0 and b.max() == 9 and np.all(np.diff(b) >= 0)


def test_cross_sample_trajectory() -> None:
    for reduce in ("mean", "center"):
        _check_cross_traj(reduce)


def _check_cross_traj(reduce: str) -> None:
    rng = np.random.default_rng(5)
    n, d = 40, 12
    golds = rng.normal(0, 1, (n, d))
    states = [golds[i] + 0.5 * rng.normal(0, 1, (int(rng.integers(20, 60)), d)) for i in range(n)]
    df = mi.cross_sample_trajectory(states, golds, n_bins=4, reduce=reduce, n_permutations=99)
    assert isinstance(df, pd.DataFrame)
    assert list(df["bin"]) == [0, 1, 2, 3]
    assert {"statistic", "p_value", "n"} <= set(df.columns)
    assert (df["n"] == n).all()
    assert (df["p_value"] < 0.05).all()
    # shuffling the golds against the states destroys the dependence
    perm = rng.permutation(n)
    df0 = mi.cross_sample_trajectory(
        states, golds[perm], n_bins=4, reduce=reduce, n_permutations=99
    )
    assert df0["statistic"].mean() < df["statistic"].mean()
    # too-short traces leave bins empty -> NaN
    short = [s[:2] for s in states]
    df2 = mi.cross_sample_trajectory(short, golds, n_bins=4, reduce=reduce, n_permutations=19)
    assert df2.loc[df2["n"] == 0, "p_value"].isna().all() and (df2["n"] == 0).sum() == 2
