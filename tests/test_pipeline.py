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
