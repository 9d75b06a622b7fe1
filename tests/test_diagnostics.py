"""What the single-pair HSIC measures (mipeaks.diagnostics, chapter 9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mipeaks.diagnostics import (
    compare_trajectories,
    coordinate_dominance,
    correlates,
    float32_error,
    gold_swap,
    own_gold_rank,
)


def test_compare_trajectories_on_hand_examples():
    ref = {"a": np.array([0.0, 1.0, 0.0, 0.0, 9.0, 0.0, 1.0, 0.0]), "b": np.arange(8.0)}
    flipped = {k: v[::-1].copy() for k, v in ref.items()}
    out = compare_trajectories({"ref": ref, "flip": flipped, "x2": {k: 2 * v for k, v in ref.items()}}, "ref")
    assert out.loc["ref", "spearman"] == pytest.approx(1.0) and out.loc["ref", "max_rel_diff"] == 0
    assert out.loc["x2", "spearman"] == pytest.approx(1.0) and out.loc["x2", "max_rel_diff"] == pytest.approx(1.0)
    assert out.loc["flip", "spearman"] < 0
    assert out.loc["ref", "peak_jaccard"] == 1.0 and out.loc["flip", "peak_jaccard"] == 0.0  # peak 4 -> 3
    assert out.loc["ref", "mean_mi"] == pytest.approx((11 / 8 + 3.5) / 2)
    with pytest.raises(ValueError):
        compare_trajectories({"ref": ref}, "missing")


def test_float32_error_and_coordinate_dominance(tiny_run):
    cfg, run, _ = tiny_run
    err = float32_error(run, cfg, n_problems=2, n_steps=3)
    assert len(err) == 6 and (err.rel_err_fast < 1e-6).all()
    np.testing.assert_allclose(err.fast, err.float64_dense, rtol=1e-6)
    dom = coordinate_dominance(run, cfg, thresholds=(0.0, 1e9))
    assert dom.loc["all", "spearman"] == pytest.approx(1.0)
    assert dom.loc["|v| >= 0", "max_rel_diff"] == pytest.approx(0.0, abs=1e-12)  # nothing zeroed
    assert dom.loc["|v| >= 1e+09", "kept_fraction"] == 0.0 and dom.loc["|v| >= 1e+09", "mean_mi"] == 0.0


def test_correlates_recovers_a_planted_property(tiny_run):
    _, run, _ = tiny_run
    planted = {}
    for t in run.traces():
        s, g = t.states.double().numpy(), t.gold.double().numpy()
        planted[t.problem_id] = s @ g / (np.linalg.norm(s, axis=1) * np.linalg.norm(g))
    corr = correlates(run, planted)
    assert list(corr.columns) == ["id", "n_steps", "norm", "position", "cosine", "coord_pearson", "max_abs"]
    np.testing.assert_allclose(corr.cosine, 1.0)
    assert corr[["norm", "position", "coord_pearson", "max_abs"]].abs().le(1.0 + 1e-12).all().all()


def test_gold_swap_diagonal_and_own_rank(tiny_run):
    cfg, run, trajs = tiny_run
    swap = gold_swap(run, cfg)
    assert swap.shape == (4, 4)
    np.testing.assert_allclose(np.diag(swap), [trajs[k].mean() for k in swap.index], rtol=1e-12)
    hand = pd.DataFrame([[3.0, 1.0, 2.0], [5.0, 4.0, 0.0], [1.0, 1.0, 1.0]])
    ranks = own_gold_rank(hand)
    assert list(ranks["rank"]) == [1, 2, 3]  # ties count against the own gold
    np.testing.assert_allclose(ranks.others_mean, [1.5, 2.5, 1.0])
    with pytest.raises(ValueError):
        own_gold_rank(pd.DataFrame(np.zeros((2, 3))))
