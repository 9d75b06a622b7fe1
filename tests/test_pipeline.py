"""The MI pipeline on a tiny model: collect → trajectories → peaks → thinking tokens."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mipeaks import mi, peaks
from mipeaks.collect import collect
from mipeaks.data import load_problems
from mipeaks.pipeline import (
    CompareConfig,
    MIConfig,
    run_dir,
    runs_root,
    settings_text,
    thinking_tokens,
    thinking_tokens_path,
    trajectories,
)


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


def test_thinking_tokens_path_names_the_settings(tiny_run):
    cfg, run, _ = tiny_run
    assert thinking_tokens_path(run, cfg).name == "thinking_tokens-hsic_paper-s50-top3-generated.jsonl"
    other = dataclasses.replace(cfg, peak_rule="iqr", estimator="hsic_text", sigma=None, token_mode="lens")
    assert thinking_tokens_path(run, other).name == "thinking_tokens-hsic_text-sgrid-iqr1.5-lens.jsonl"
    assert thinking_tokens_path(run, cfg).parent == run.path


def test_settings_text_names_everything(tiny_run):
    cfg, run, _ = tiny_run
    text = settings_text(cfg, run)
    for part in (cfg.model, "gsm8k", "n=4", "prompt raw", "<= 12 new tokens", "block 3 of 4", "hsic_paper",
                 "sigma=50", "top-3 rule", "generated"):
        assert part in text, part
