"""The MI pipeline on a tiny model: collect → trajectories → peaks → thinking tokens."""

from __future__ import annotations

import numpy as np
import pytest

from mipeaks import mi, peaks
from mipeaks.collect import collect
from mipeaks.data import load_problems
from mipeaks.pipeline import MIConfig, run_dir, thinking_tokens, trajectories


def test_pipeline_end_to_end_on_tiny_model(tiny, tmp_path):
    cfg = MIConfig(model=tiny.name, n=2, max_new_tokens=10, prompt_style="raw", peak_rule="topk", top_k=3,
                   run_root=str(tmp_path))
    run = collect(tiny, load_problems("gsm8k", 2), cfg.collect_config(), run_dir(cfg), progress=False)
    trajs = trajectories(run, cfg)
    assert set(trajs) == {"0", "1"}
    for trace in run.traces():
        expected = [mi.hsic_paper(h, trace.gold) for h in trace.states]
        np.testing.assert_allclose(trajs[trace.problem_id], expected, rtol=1e-9)
    words = thinking_tokens(tiny, run, trajs, cfg)
    assert sum(w.freq for w in words) <= 2 * 3
    assert all(w.word.isalpha() and w.token_ids for w in words)
    stats = peaks.summarize(trajs, rule="topk", k=3)
    assert list(stats["n_peaks"]) == [3, 3]


def test_run_dir_depends_only_on_collection_fields():
    a, b = MIConfig(), MIConfig(estimator="hsic_text", peak_rule="topk")
    assert run_dir(a) == run_dir(b)
    assert run_dir(a) != run_dir(MIConfig(max_new_tokens=64))
    assert run_dir(a).name.startswith("smollm2-135m-instruct-gsm8k-")


@pytest.mark.parametrize("bad", [dict(estimator="mine"), dict(peak_rule="z"), dict(token_mode="x"), dict(gold="y")])
def test_config_rejects_unknown_options(bad):
    with pytest.raises(ValueError):
        MIConfig(**bad)


# ---------------------------------------------------------------------------
# The book's analyses (chapters 01-04 and 09)
# ---------------------------------------------------------------------------

import dataclasses  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from conftest import build_tiny  # noqa: E402

from mipeaks import lens  # noqa: E402
from mipeaks.pipeline import (  # noqa: E402
    CompareConfig,
    compare_trajectories,
    coordinate_dominance,
    correlates,
    float32_error,
    gaussian_fence_rate,
    gold_swap,
    group_lift,
    layer_traces,
    own_gold_rank,
    peak_table,
    runs_root,
    settings_text,
    teacher_forced_states,
    thinking_tokens_path,
    traces_trajectories,
    trajectory_frame,
    word_enrichment,
)


@pytest.fixture(scope="module")
def tiny_llama(tokenizer_dir):
    return build_tiny("llama", tokenizer_dir, n_layers=4)


@pytest.fixture(scope="module")
def tiny_run(tiny_llama, tmp_path_factory):
    cfg = MIConfig(model=tiny_llama.name, n=4, max_new_tokens=12, prompt_style="raw", peak_rule="topk", top_k=3,
                   run_root=str(tmp_path_factory.mktemp("runs")))
    run = collect(tiny_llama, load_problems("gsm8k", 4), cfg.collect_config(), run_dir(cfg), progress=False)
    return cfg, run, trajectories(run, cfg)


def test_runs_root_default_env_and_explicit(monkeypatch, tmp_path):
    monkeypatch.delenv("MIPEAKS_RUNS", raising=False)
    assert runs_root().name == "runs" and (runs_root().parent / "mipeaks").is_dir()  # the repository's runs/
    assert run_dir(MIConfig()).parent == runs_root()
    monkeypatch.setenv("MIPEAKS_RUNS", str(tmp_path))
    assert run_dir(MIConfig()).parent == tmp_path
    assert run_dir(MIConfig(run_root="elsewhere")).parent.name == "elsewhere"


def test_compare_config_shares_the_run_and_builds_the_base_config():
    names = [f.name for f in dataclasses.fields(CompareConfig)]
    assert names == [f.name for f in dataclasses.fields(MIConfig)] + ["base_model", "contrast_layer"]
    cfg = CompareConfig(base_model="some/base", sigma=25.0)
    assert run_dir(cfg) == run_dir(MIConfig(sigma=25.0))  # the reasoning model reuses the MI chapters' run
    base = cfg.base_config()
    assert type(base) is MIConfig and base.model == "some/base" and base.sigma == 25.0
    assert run_dir(base) != run_dir(cfg)
    with pytest.raises(ValueError):
        CompareConfig().base_config()


def test_scale_is_sigma_over_scale(tiny_run):
    cfg, run, trajs = tiny_run
    doubled = trajectories(run, cfg, scale=2.0)
    half_sigma = trajectories(run, dataclasses.replace(cfg, sigma=cfg.sigma / 2))
    for k in trajs:
        np.testing.assert_allclose(doubled[k], half_sigma[k], rtol=1e-9)


def test_trajectory_frame_and_peak_table(tiny_llama, tiny_run):
    cfg, run, trajs = tiny_run
    frame = trajectory_frame(trajs, ["1", "0"])
    assert list(frame.columns) == ["id", "step", "rel_step", "mi"]
    assert list(frame.id.unique()) == ["1", "0"] and len(frame) == len(trajs["0"]) + len(trajs["1"])
    np.testing.assert_array_equal(frame[frame.id == "0"].mi, trajs["0"])
    table = peak_table(tiny_llama, run, trajs, cfg, ids=["0"])
    for rule in ("iqr", "topk"):
        rows = table[table.rule == rule]
        assert list(rows.step) == list(peaks.find_peaks(trajs["0"], rule=rule, tau=cfg.tau, k=cfg.top_k))
    trace = next(run.traces())
    first = table[table.rule == "topk"].iloc[0]
    assert first.token == repr(tiny_llama.tokenizer.decode([int(trace.token_ids[first.step])]))


def test_teacher_forced_states_match_the_capture(tiny_llama, tiny_run):
    _, run, trajs = tiny_run
    trace = next(run.traces())
    torch.testing.assert_close(teacher_forced_states(tiny_llama, trace, trace.layer), trace.states, rtol=1e-4,
                               atol=1e-4)
    same = layer_traces(tiny_llama, run, "last")
    for a, b in zip(same, run.traces()):
        torch.testing.assert_close(a.gold, b.gold)
        torch.testing.assert_close(a.states, b.states, rtol=1e-4, atol=1e-4)
    middle = layer_traces(tiny_llama, run, "middle")
    assert {t.layer for t in middle} == {tiny_llama.n_layers // 2}
    assert set(traces_trajectories(middle)) == set(trajs)


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


def test_word_enrichment_counts_agree_with_thinking_tokens(tiny_llama, tiny_run):
    cfg, run, trajs = tiny_run
    words = thinking_tokens(tiny_llama, run, trajs, cfg)
    enrich = word_enrichment(tiny_llama, run, trajs, cfg)
    assert dict(zip(enrich.word, enrich.at_peaks)) == {**{w: 0 for w in enrich.word}, **{t.word: t.freq for t in words}}
    attrs = enrich.attrs
    assert attrs["peak_kept"] == sum(t.freq for t in words) and attrs["peak_tokens"] == 4 * cfg.top_k
    assert attrs["all_tokens"] == sum(len(t.token_ids) for t in run.traces())
    assert enrich.all_steps.sum() == attrs["all_kept"] and all(lens.ALPHABETIC.match(w) for w in enrich.word)
    np.testing.assert_allclose(enrich.lift, enrich.peak_share / enrich.all_share)
    hand = pd.DataFrame({"word": ["So", "so", "the"], "at_peaks": [3, 1, 0], "all_steps": [4, 4, 12]})
    g = group_lift(hand, ["upper", "lower", "lower"])
    assert g.loc["upper", "lift"] == pytest.approx((3 / 4) / (4 / 20))
    assert g.loc["lower", "lift"] == pytest.approx((1 / 4) / (16 / 20))


def test_thinking_tokens_path_names_the_settings(tiny_run):
    cfg, run, _ = tiny_run
    assert thinking_tokens_path(run, cfg).name == "thinking_tokens-hsic_paper-s50-top3-generated.jsonl"
    other = dataclasses.replace(cfg, peak_rule="iqr", estimator="hsic_text", sigma=None, token_mode="lens")
    assert thinking_tokens_path(run, other).name == "thinking_tokens-hsic_text-sgrid-iqr1.5-lens.jsonl"
    assert thinking_tokens_path(run, cfg).parent == run.path


def test_gaussian_fence_rate_matches_simulation():
    assert gaussian_fence_rate(1.5) == pytest.approx(0.0034883, rel=1e-4)
    assert gaussian_fence_rate(0.0) == pytest.approx(0.25)
    assert gaussian_fence_rate(3.0) < gaussian_fence_rate(1.5) < gaussian_fence_rate(1.0)
    z = np.random.default_rng(0).standard_normal((200, 2000))
    rate = np.mean([len(peaks.find_peaks(row, rule="iqr", tau=1.0)) / row.size for row in z])
    assert rate == pytest.approx(gaussian_fence_rate(1.0), rel=0.1)


def test_settings_text_names_everything(tiny_run):
    cfg, run, _ = tiny_run
    text = settings_text(cfg, run)
    for part in (cfg.model, "gsm8k", "n=4", "prompt raw", "<= 12 new tokens", "block 3 of 4", "hsic_paper",
                 "sigma=50", "top-3 rule", "generated"):
        assert part in text, part
