"""Tests for mipeaks.peaks. Expected numbers are computed by hand in the comments."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from mipeaks.peaks import (
    PAPER_TABLE1,
    PAPER_TABLE2,
    PAPER_TABLE2_PAIRS,
    PAPER_TABLE3,
    PeakStats,
    average,
    find_peaks,
    gaussian_fence_rate,
    peak_stats,
    peak_table,
    quartiles,
    summarize,
    table1,
    table2,
    trajectory_frame,
)
from mipeaks.pipeline import MIConfig

# Example A, T = 8: m = [0, 1, 0, 5, 0, 0, 4, 0]
#   sorted s = [0, 0, 0, 0, 0, 1, 4, 5]
#   Q1: 0.25 * 7 = 1.75 -> s1 + .75 (s2 - s1) = 0
#   Q3: 0.75 * 7 = 5.25 -> s5 + .25 (s6 - s5) = 1 + .75 = 1.75;  IQR = 1.75
#   median: 3.5 -> (s3 + s4) / 2 = 0
#   fence (tau 1.5) = 1.75 + 2.625 = 4.375 -> only m_3 = 5 is a peak (4 < 4.375)
#   mean = 10 / 8 = 1.25;  E[m^2] = 42 / 8 = 5.25;  var = 5.25 - 1.5625 = 3.6875
#   AOM = |5 - 0| / 1.75 = 20 / 7
M_A = [0, 1, 0, 5, 0, 0, 4, 0]

# Example B, T = 12: m = [1, 9, 1, 2, 8, 2, 1, 2, 1, 2, 7, 1]
#   sorted s = [1, 1, 1, 1, 1, 2, 2, 2, 2, 7, 8, 9]
#   Q1: 0.25 * 11 = 2.75 -> 1;  Q3: 8.25 -> s8 + .25 (s9 - s8) = 2 + 1.25 = 3.25
#   IQR = 2.25; median: 5.5 -> (s5 + s6) / 2 = 2
#   fence = 3.25 + 1.5 * 2.25 = 6.625 -> peaks at 1 (9), 4 (8), 10 (7)
#   intervals 3, 6 -> max 6, min 3, avg 4.5; ratio 3 / 12 = 0.25
#   mean = (5*1 + 4*2 + 7 + 8 + 9) / 12 = 37 / 12
#   E[m^2] = (5 + 16 + 49 + 64 + 81) / 12 = 215 / 12; var = 1211 / 144
#   AOM = ((9-2) + (8-2) + (7-2)) / 3 / 2.25 = 6 / 2.25 = 8 / 3
M_B = [1, 9, 1, 2, 8, 2, 1, 2, 1, 2, 7, 1]


# --------------------------------------------------------------------- peaks


def test_quartiles_hand_computed():
    assert quartiles(M_A) == pytest.approx((0.0, 0.0, 1.75))
    assert quartiles(M_B) == pytest.approx((1.0, 2.0, 3.25))


def test_iqr_rule_hand_computed():
    np.testing.assert_array_equal(find_peaks(M_A), [3])
    np.testing.assert_array_equal(find_peaks(M_B), [1, 4, 10])
    # Example A with tau = 1: fence 1.75 + 1.75 = 3.5 -> 5 and 4 are peaks.
    np.testing.assert_array_equal(find_peaks(M_A, tau=1.0), [3, 6])
    # Example B with tau = 3: fence 3.25 + 6.75 = 10 -> none.
    assert find_peaks(M_B, tau=3.0).size == 0


def test_iqr_rule_is_strict():
    # m = [0, 0, 0, 1, 2]: sorted positions 0.25*4 = 1 -> Q1 = 0, 0.75*4 = 3 -> Q3 = 1,
    # IQR = 1; tau = 1 -> fence = 2 and m_4 = 2 is NOT > 2.
    assert find_peaks([0, 0, 0, 1, 2], tau=1.0).size == 0
    np.testing.assert_array_equal(find_peaks([0, 0, 0, 1, 2], tau=0.5), [4])


def test_topk_rule():
    np.testing.assert_array_equal(find_peaks(M_B, rule="topk", k=2), [1, 4])
    np.testing.assert_array_equal(find_peaks(M_A, rule="topk", k=2), [3, 6])
    # Ties go to the lower index: the top-1 of [1, 3, 3, 0] is index 1; top-2 is {1, 2}.
    np.testing.assert_array_equal(find_peaks([1, 3, 3, 0], rule="topk", k=1), [1])
    np.testing.assert_array_equal(find_peaks([0, 2, 5, 2, 2], rule="topk", k=3), [1, 2, 3])
    # k >= T -> everything; k = 0 -> nothing.
    np.testing.assert_array_equal(find_peaks([3, 1, 2], rule="topk", k=5), [0, 1, 2])
    assert find_peaks([3, 1, 2], rule="topk", k=0).size == 0


def test_topk_default_k_is_20():
    m = np.arange(30, dtype=float)
    np.testing.assert_array_equal(find_peaks(m, rule="topk"), np.arange(10, 30))


def test_planted_peaks_recovered_by_both_rules():
    rng = np.random.default_rng(0)
    T = 500
    # Bounded flat noise on [0, 0.1]: Q3 ~ .075, IQR ~ .05, fence ~ .15 > max noise.
    m = rng.uniform(0.0, 0.1, size=T)
    planted = np.array([17, 120, 121, 300, 499])
    m[planted] = rng.uniform(1.0, 2.0, size=planted.size)
    np.testing.assert_array_equal(find_peaks(m, rule="iqr"), planted)
    np.testing.assert_array_equal(find_peaks(m, rule="topk", k=planted.size), planted)
    out = find_peaks(m)
    assert out.dtype == np.int64


def test_flat_trajectory():
    # Constant: Q1 = Q3 -> fence = value, nothing strictly above it.
    assert find_peaks(np.ones(10)).size == 0
    st = peak_stats(np.ones(10))
    assert st.n_peaks == 0 and st.iqr == 0.0 and math.isnan(st.aom)


# ------------------------------------------------------------------ stats


def test_peak_stats_example_a():
    st = peak_stats(M_A)
    assert isinstance(st, PeakStats)
    assert st.n_peaks == 1 and st.n_steps == 8
    assert st.ratio == pytest.approx(1 / 8)
    assert math.isnan(st.max_interval) and math.isnan(st.min_interval) and math.isnan(st.avg_interval)
    assert st.mean == pytest.approx(1.25)
    assert st.std == pytest.approx(math.sqrt(3.6875))
    assert st.median == pytest.approx(0.0)
    assert st.iqr == pytest.approx(1.75)
    assert st.aom == pytest.approx(20 / 7)
    assert st.peaks == (3,)


def test_peak_stats_example_b():
    st = peak_stats(M_B)
    assert (st.n_peaks, st.n_steps) == (3, 12)
    assert st.ratio == pytest.approx(0.25)
    assert (st.max_interval, st.min_interval, st.avg_interval) == pytest.approx((6.0, 3.0, 4.5))
    assert st.mean == pytest.approx(37 / 12)
    assert st.std == pytest.approx(math.sqrt(1211) / 12)
    assert st.aom == pytest.approx(8 / 3)
    assert st.peaks == (1, 4, 10)


def test_peak_stats_topk_and_explicit_peaks():
    # Example A, top-2: peaks 3, 6; one interval of 3; AOM = (5/1.75 + 4/1.75) / 2 = 18/7.
    st = peak_stats(M_A, rule="topk", k=2)
    assert st.peaks == (3, 6)
    assert (st.max_interval, st.min_interval, st.avg_interval) == (3.0, 3.0, 3.0)
    assert st.aom == pytest.approx(18 / 7)
    # Explicit peaks (unsorted input is sorted): Example B at {10, 1}: intervals [9];
    # AOM = (7 + 5) / 2 / 2.25 = 8 / 3.
    st2 = peak_stats(M_B, peaks=[10, 1])
    assert st2.peaks == (1, 10) and st2.avg_interval == 9.0
    assert st2.aom == pytest.approx(8 / 3)
    assert peak_stats(M_B, peaks=[]).n_peaks == 0


def test_peak_stats_no_peaks_gives_nan():
    st = peak_stats(M_B, tau=3.0)
    assert st.n_peaks == 0 and st.ratio == 0.0
    assert math.isnan(st.avg_interval) and math.isnan(st.aom)
    assert st.mean == pytest.approx(37 / 12)


def test_peak_stats_is_frozen():
    st = peak_stats(M_A)
    with pytest.raises(dataclasses.FrozenInstanceError):
        st.n_peaks = 3  # type: ignore[misc]
    assert "peaks" not in st.as_dict() and st.as_dict(include_peaks=True)["peaks"] == (3,)


# --------------------------------------------------------------- averaging


def test_summarize_and_average():
    df = summarize({"a": M_A, "b": M_B})
    assert list(df["id"]) == ["a", "b"]
    assert list(df["n_peaks"]) == [1, 3]
    avg = average(df)
    assert avg["n_peaks"] == pytest.approx(2.0)
    assert avg["n_steps"] == pytest.approx(10.0)
    assert avg["ratio"] == pytest.approx((1 / 8 + 1 / 4) / 2)
    # Intervals only from B (A has 1 peak -> NaN, skipped).
    assert avg["max_interval"] == pytest.approx(6.0)
    assert avg["min_interval"] == pytest.approx(3.0)
    assert avg["avg_interval"] == pytest.approx(4.5)
    assert avg["aom"] == pytest.approx((20 / 7 + 8 / 3) / 2)
    assert avg["mean"] == pytest.approx((1.25 + 37 / 12) / 2)
    assert (avg["n_samples"], avg["n_interval_samples"], avg["n_aom_samples"]) == (2, 1, 2)


def test_summarize_sequence_has_no_id_and_rule_kwargs():
    df = summarize([M_A, M_B], rule="topk", k=2, include_peaks=True)
    assert "id" not in df.columns
    assert df["peaks"].tolist() == [(3, 6), (1, 4)]
    assert list(df["n_peaks"]) == [2, 2]


def test_average_all_nan_column():
    df = summarize([M_A, M_A])  # one peak each -> no intervals anywhere
    avg = average(df)
    assert math.isnan(avg["avg_interval"]) and avg["n_interval_samples"] == 0


def test_table1_table2():
    df_a, df_b = summarize([M_A]), summarize([M_B])
    t1 = table1({"A": df_a, "B": df_b})
    assert t1.index.name == "model" and list(t1.index) == ["A", "B"]
    paper_cols = [c for c in PAPER_TABLE1[0] if c != "model"]
    assert list(t1.columns[: len(paper_cols)]) == paper_cols
    assert t1.loc["B", "avg_interval"] == pytest.approx(4.5)
    assert math.isnan(t1.loc["A", "avg_interval"]) and t1.loc["A", "n_interval_samples"] == 0
    t2 = table2(summarize([M_A, M_B]))
    assert len(t2) == 1 and list(t2.columns) == ["mean", "std", "aom", "n_samples", "n_aom_samples"]
    assert t2.loc[0, "aom"] == pytest.approx((20 / 7 + 8 / 3) / 2)


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad, match",
    [
        ([], "empty"),
        ([1.0, np.nan, 2.0], "non-finite"),
        ([1.0, np.inf], "non-finite"),
        ([[1.0, 2.0]], "1-D"),
    ],
)
def test_bad_trajectory(bad, match):
    with pytest.raises(ValueError, match=match):
        find_peaks(bad)
    with pytest.raises(ValueError, match=match):
        peak_stats(bad)


def test_bad_rule_lists_options():
    with pytest.raises(ValueError, match=r"'iqr', 'topk'"):
        find_peaks(M_A, rule="tukey")
    with pytest.raises(ValueError, match="valid options"):
        summarize([M_A], rule="top20")


def test_bad_parameters():
    with pytest.raises(ValueError, match="tau"):
        find_peaks(M_A, tau=-1.0)
    with pytest.raises(ValueError, match="tau"):
        find_peaks(M_A, tau=float("nan"))
    with pytest.raises(ValueError, match="k must"):
        find_peaks(M_A, rule="topk", k=-2)
    with pytest.raises(ValueError, match="k must"):
        find_peaks(M_A, rule="topk", k=2.5)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        peak_stats(M_A, peaks=[8])
    with pytest.raises(ValueError, match="duplicates"):
        peak_stats(M_A, peaks=[1, 1])
    with pytest.raises(ValueError, match="integer"):
        peak_stats(M_A, peaks=[1.0])


def test_summarize_errors_name_the_trajectory():
    with pytest.raises(ValueError, match="'bad'"):
        summarize({"ok": M_A, "bad": [1.0, np.nan]})
    with pytest.raises(ValueError, match="no trajectories"):
        summarize([])
    with pytest.raises(ValueError, match="empty"):
        average(pd.DataFrame())


# ---------------------------------------------------------- paper numbers


def test_paper_tables_are_frame_friendly():
    t1 = pd.DataFrame(PAPER_TABLE1).set_index("model")
    assert t1.shape == (6, 6)
    assert t1.loc["R1-Llama-8B", "n_peaks"] == 24.54
    assert t1.loc["R1-Qwen-7B", "ratio"] == 0.0051
    t2 = pd.DataFrame(PAPER_TABLE2).pivot(index="pair", columns="variant")
    assert t2.loc["Llama-8B", ("aom", "reasoning")] == 4.5176
    assert set(t2.index) == set(PAPER_TABLE2_PAIRS)
    t3 = pd.DataFrame(PAPER_TABLE3)
    assert t3.shape == (4, 4) and t3["aom_gpqa"].iloc[1] == 4.0809


def test_iqr_fence_hand_computed():
    from mipeaks.peaks import iqr_fence

    # M_B: Q1 = 1, Q3 = 3.25 (see test_quartiles_hand_computed) -> fence 3.25 + 1.5 * 2.25 = 6.625
    assert iqr_fence(M_B) == pytest.approx(6.625)
    assert iqr_fence([0, 0, 0, 1, 2], tau=1.0) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        iqr_fence(M_B, tau=-1.0)


# ---------------------------------------------------------------------------
# Tables of a run's trajectories and peaks (chapter 1), the Gaussian baseline (chapter 2)
# ---------------------------------------------------------------------------


def test_trajectory_frame_and_peak_table(tiny_llama, tiny_run):
    cfg, run, trajs = tiny_run
    frame = trajectory_frame(trajs, ["1", "0"])
    assert list(frame.columns) == ["id", "step", "rel_step", "mi"]
    assert list(frame.id.unique()) == ["1", "0"] and len(frame) == len(trajs["0"]) + len(trajs["1"])
    np.testing.assert_array_equal(frame[frame.id == "0"].mi, trajs["0"])
    table = peak_table(tiny_llama, run, trajs, cfg, ids=["0"])
    for rule in ("iqr", "topk"):
        rows = table[table.rule == rule]
        assert list(rows.step) == list(find_peaks(trajs["0"], rule=rule, tau=cfg.tau, k=cfg.top_k))
    trace = next(run.traces())
    first = table[table.rule == "topk"].iloc[0]
    assert first.token == repr(tiny_llama.tokenizer.decode([int(trace.token_ids[first.step])]))
    # no config: the peak rules of a default MIConfig (tau 1.5, top 20)
    pd.testing.assert_frame_equal(peak_table(tiny_llama, run, trajs, ids=["0"]),
                                  peak_table(tiny_llama, run, trajs, MIConfig(), ids=["0"]))


def test_gaussian_fence_rate_matches_simulation():
    assert gaussian_fence_rate(1.5) == pytest.approx(0.0034883, rel=1e-4)
    assert gaussian_fence_rate(0.0) == pytest.approx(0.25)
    assert gaussian_fence_rate(3.0) < gaussian_fence_rate(1.5) < gaussian_fence_rate(1.0)
    z = np.random.default_rng(0).standard_normal((200, 2000))
    rate = np.mean([len(find_peaks(row, rule="iqr", tau=1.0)) / row.size for row in z])
    assert rate == pytest.approx(gaussian_fence_rate(1.0), rel=0.1)
