"""Tests for mipeaks.theory (Theorems 1-2). Exact values are worked out by hand in comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mipeaks.theory import (
    bayes_error,
    bayes_error_joint,
    binary_entropy,
    bounds_curve,
    conditional_entropy,
    entropy,
    fano_function,
    fano_lower_bound,
    fano_lower_bound_explicit,
    upper_bound,
)

LN2 = math.log(2.0)


# ------------------------------------------------------------ entropies


def test_binary_entropy_hand_values():
    assert binary_entropy(0.5, base=2) == pytest.approx(1.0)
    # H_b(1/4) = 1/4 * log2 4 + 3/4 * log2(4/3) = 0.5 + 0.75 * log2(4/3)
    assert binary_entropy(0.25, base=2) == pytest.approx(0.5 + 0.75 * math.log2(4 / 3))
    assert binary_entropy(0.5) == pytest.approx(LN2)
    assert binary_entropy(0.0) == 0.0 and binary_entropy(1.0) == 0.0
    out = binary_entropy(np.array([0.0, 0.5, 1.0]), base=2)
    np.testing.assert_allclose(out, [0.0, 1.0, 0.0])


def test_entropy_and_bayes_error_hand_values():
    # H(1/2, 1/4, 1/4) = 1/2 * 1 + 2 * 1/4 * 2 = 1.5 bits
    assert entropy([0.5, 0.25, 0.25], base=2) == pytest.approx(1.5)
    assert entropy(np.full(5, 0.2)) == pytest.approx(math.log(5))
    assert entropy([1.0, 0.0, 0.0]) == 0.0
    assert bayes_error([0.5, 0.3, 0.2]) == pytest.approx(0.5)
    # Joint p(y, h): columns h = 0, 1. y | h=0 is (0.3, 0.1) -> MAP error 0.1;
    # y | h=1 is (0.2, 0.4) -> error 0.2; total 0.3. H(y|h) = .4 H_b(1/4) + .6 H_b(1/3).
    p_yh = np.array([[0.3, 0.2], [0.1, 0.4]])
    assert bayes_error_joint(p_yh) == pytest.approx(0.3)
    expected = 0.4 * binary_entropy(0.25) + 0.6 * binary_entropy(1 / 3)
    assert conditional_entropy(p_yh) == pytest.approx(expected)


# --------------------------------------------------------- Theorem 1: Fano


def test_fano_hand_values():
    # |Y| = 2, H(y|h) = 1 bit: H_b(p) >= 1 -> p = 1/2.
    assert fano_lower_bound(1.0, 0.0, 2, base=2) == pytest.approx(0.5)
    # |Y| = 2, residual = H_b(0.1) -> p = 0.1.
    assert fano_lower_bound(binary_entropy(0.1), 0.0, 2) == pytest.approx(0.1)
    # |Y| = 4, uniform y, no information: F(3/4) = H_b(3/4) + 3/4 log2 3 = 2 bits -> 3/4.
    assert fano_lower_bound(2.0, 0.0, 4, base=2) == pytest.approx(0.75)
    # |Y| = 3, p = 1/2: F(1/2) = ln 2 + 1/2 ln 2 = 1.5 ln 2 nats.
    assert fano_lower_bound(1.5 * LN2, 0.0, 3) == pytest.approx(0.5)
    assert fano_lower_bound(math.log(3), math.log(3) - 1.5 * LN2, 3) == pytest.approx(0.5)
    # Same problem in bits gives the same probability.
    assert fano_lower_bound(1.5, 0.0, 3, base=2) == pytest.approx(0.5)
    # All information -> 0; MI estimate larger than H(y) -> 0.
    assert fano_lower_bound(2.0, 2.0, 4, base=2) == 0.0
    assert fano_lower_bound(1.0, 5.0, 4) == 0.0


def test_fano_solution_satisfies_equation():
    rng = np.random.default_rng(1)
    for _ in range(50):
        k = int(rng.integers(2, 12))
        h_y = rng.uniform(0, math.log(k))
        p = fano_lower_bound(h_y, 0.0, k)
        assert 0.0 <= p <= 1 - 1 / k
        assert fano_function(p, k) == pytest.approx(h_y, abs=1e-10)


def test_explicit_form_hand_value_and_relation():
    # |Y| = 4, 2 bits: (2 - H_b(3/4)) / log2 3 = (3/4 log2 3) / log2 3 = 3/4.
    assert fano_lower_bound_explicit(2.0, 0.0, 4, 0.75, base=2) == pytest.approx(0.75)
    # At p_e = 0 the RHS is (H - I) / log(|Y|-1): 2 / log2 3.
    assert fano_lower_bound_explicit(2.0, 0.0, 4, 0.0, base=2) == pytest.approx(2 / math.log2(3))
    # p >= RHS(p) exactly when p >= the solved bound (on [0, 1 - 1/|Y|]).
    rng = np.random.default_rng(2)
    for _ in range(200):
        k = int(rng.integers(3, 10))
        h_y = rng.uniform(0, math.log(k))
        i = rng.uniform(0, h_y)
        p_min = fano_lower_bound(h_y, i, k)
        p = rng.uniform(0, 1 - 1 / k)
        if abs(p - p_min) > 1e-9:
            assert (p >= fano_lower_bound_explicit(h_y, i, k, p)) == (p >= p_min)
        if p_min > 0:
            assert fano_lower_bound_explicit(h_y, i, k, p_min) == pytest.approx(p_min, abs=1e-9)


def test_fano_below_true_bayes_error_random_joints():
    rng = np.random.default_rng(3)
    for _ in range(300):
        k, m = int(rng.integers(2, 8)), int(rng.integers(1, 8))
        alpha = rng.choice([0.1, 1.0, 5.0])
        p_yh = rng.dirichlet(np.full(k * m, alpha)).reshape(k, m)
        h_y = entropy(p_yh.sum(axis=1))
        cum_mi = h_y - conditional_entropy(p_yh)  # I(y; h)
        err = bayes_error_joint(p_yh)
        lo = fano_lower_bound(h_y, max(cum_mi, 0.0), k)
        up = upper_bound(h_y, max(cum_mi, 0.0))
        assert lo <= err + 1e-9
        assert err <= up + 1e-9
        assert lo <= up + 1e-12


# ------------------------------------------------ Theorem 2: Hellman-Raviv


def test_upper_bound_hand_values_and_units():
    # Fair coin: 1 bit = ln 2 nats -> 1/2 either way (inputs converted to bits).
    assert upper_bound(1.0, 0.0, base=2) == pytest.approx(0.5)
    assert upper_bound(LN2, 0.0) == pytest.approx(0.5)
    assert upper_bound(3.0, 1.0, base=2) == pytest.approx(1.0)  # 1/2 * 2 bits
    assert upper_bound(5.0, 0.0, base=2) == 1.0  # clipped
    assert upper_bound(1.0, 2.0) == 0.0  # I > H(y) -> 0


def test_half_entropy_bound_needs_bits():
    # Fair coin: Bayes error 0.5 = 1/2 * 1 bit, but 1/2 * ln 2 = 0.347 < 0.5 in nats.
    p = [0.5, 0.5]
    assert bayes_error(p) <= 0.5 * entropy(p, base=2) + 1e-12
    assert bayes_error(p) > 0.5 * entropy(p, base="e")


def test_upper_bound_dirichlet_no_information():
    rng = np.random.default_rng(4)
    for _ in range(500):
        k = int(rng.integers(2, 20))
        p = rng.dirichlet(np.full(k, rng.choice([0.05, 0.5, 1.0, 10.0])))
        assert bayes_error(p) <= upper_bound(entropy(p), 0.0) + 1e-12
        assert bayes_error(p) <= upper_bound(entropy(p, base=2), 0.0, base=2) + 1e-12
        # Fano with no observation is also below the error.
        assert fano_lower_bound(entropy(p), 0.0, k) <= bayes_error(p) + 1e-9


# ------------------------------------------------------------ curve


def test_bounds_curve_monotone():
    k, h_y = 10, math.log(10)
    cum = np.linspace(0, 1.2 * h_y, 40)
    df = bounds_curve(h_y, cum, k)
    assert list(df.columns) == ["cum_mi", "cond_entropy", "lower", "upper"]
    assert len(df) == 40
    assert np.all(np.diff(df["lower"]) <= 1e-12)
    assert np.all(np.diff(df["upper"]) <= 1e-12)
    assert np.all(df["lower"] <= df["upper"] + 1e-12)
    # Uniform y over 10 classes, no info: Fano gives 1 - 1/10.
    assert df["lower"].iloc[0] == pytest.approx(0.9)
    assert df["lower"].iloc[-1] == 0.0 and df["upper"].iloc[-1] == 0.0
    assert df["cond_entropy"].iloc[0] == pytest.approx(h_y)


# ------------------------------------------------------------ errors


def test_bad_inputs():
    with pytest.raises(ValueError, match="n_classes"):
        fano_lower_bound(0.1, 0.0, 1)
    with pytest.raises(ValueError, match="exceeds"):
        fano_lower_bound(2.0, 0.0, 2, base=2)  # H(y) <= 1 bit for 2 classes
    with pytest.raises(ValueError, match="cum_mi"):
        fano_lower_bound(0.5, -0.1, 3)
    with pytest.raises(ValueError, match="h_y"):
        upper_bound(float("nan"), 0.0)
    with pytest.raises(ValueError, match="base"):
        upper_bound(1.0, 0.0, base="bits")
    with pytest.raises(ValueError, match="base"):
        entropy([0.5, 0.5], base=1)
    with pytest.raises(ValueError, match=r"\|Y\| = 2"):
        fano_lower_bound_explicit(0.5, 0.0, 2, 0.1)
    with pytest.raises(ValueError, match="p_e"):
        fano_lower_bound_explicit(0.5, 0.0, 3, 1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary_entropy(1.5)
    with pytest.raises(ValueError, match="sum to 1"):
        entropy([0.5, 0.6])
    with pytest.raises(ValueError, match="negative"):
        bayes_error([1.5, -0.5])
    with pytest.raises(ValueError, match="empty"):
        bayes_error([])
    with pytest.raises(ValueError, match="NaN"):
        entropy([np.nan, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        bounds_curve(0.5, [], 3)
    with pytest.raises(ValueError, match=">= 0"):
        bounds_curve(0.5, [0.1, -0.2], 3)


def test_random_table_check():
    from mipeaks.theory import random_table_check

    tables = random_table_check(3, 50, seed=1, n_obs=4)
    assert len(tables) == 50 and list(tables.columns) == ["H(y|h)", "Bayes error", "lower", "upper", "lower ok",
                                                          "upper ok"]
    assert tables["lower ok"].all() and tables["upper ok"].all()  # the theorems hold on every table
    assert (tables["H(y|h)"] <= math.log2(3) + 1e-12).all() and (tables["Bayes error"] <= 2 / 3 + 1e-12).all()
    assert tables.equals(random_table_check(3, 50, seed=1, n_obs=4))  # seeded
    # one table by hand: the same first draw, recomputed from the module's primitives
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.full(12, 10 ** rng.uniform(-1.5, 0.7))).reshape(3, 4)
    assert tables.loc[0, "Bayes error"] == pytest.approx(1 - p.max(axis=0).sum())
    with pytest.raises(ValueError, match="n_tables must be a positive integer, got 0"):
        random_table_check(3, 0)
