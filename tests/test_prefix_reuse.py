"""Arms and budgets share the greedy prefix (issue 9 point 3), and TTTS/Origin/RR batch (point 4).

Every record read off another run (``evaluate(..., reuse=...)``, the sweeps) must equal the record
a stand-alone run writes; the savings are counted as forward calls of the Hugging Face model.
"""

from __future__ import annotations


import pytest

from mipeaks.data import Problem
from mipeaks.evaluate import EvalConfig, TTTSSweepConfig, evaluate, load_result, ttts_sweep
from mipeaks.ttts import replay_budget
from mipeaks.models import count_forward_calls

QUESTIONS = [("What is 2 + 3?", "5"), ("Tom has 4 apples and buys 2 more. How many apples does he have?", "6"),
             ("What is 10 times 3?", "30"), ("Is 7 a prime number?", "yes")]
PROBLEMS = [Problem(id=f"q{i}", question=q, solution="", answer=a, dataset="toy") for i, (q, a) in enumerate(QUESTIONS)]


def _strip(records):
    return [{k: v for k, v in r.items() if k not in ("seconds", "reused_prefix")} for r in records]


def test_replay_budget_follows_the_recipe_rules() -> None:
    # a budget-10 run: the base stopped after 3 tokens, a word, then a continuation cut at its limit 6
    src = [("base", [1, 2, 3]), ("word", [9]), ("continue", [4, 5, 6, 7, 8, 10]), ("suffix", [7]), ("answer", [1])]
    kw = dict(source_budget=10, source_base=None, base_tokens=None, word_len=1)
    assert replay_budget(src, budget=4, **kw) == [("base", [1, 2, 3])]  # 4 - 3 leaves no room after the word
    assert replay_budget(src, budget=5, **kw) == [("base", [1, 2, 3]), ("word", [9]), ("continue", [4])]
    assert replay_budget(src, budget=10, **kw) == src[:3]
    assert replay_budget(src, budget=2, **kw) == [("base", [1, 2])]
    assert replay_budget(src, budget=12, **kw) is None  # the source was cut before this budget would stop
    assert replay_budget(src, budget=8, word_len=None, source_budget=10, source_base=None,
                         base_tokens=None) == [("base", [1, 2, 3])]  # Origin: the base segment, stopped
    cut = [("base", [1, 2, 3, 4]), ("suffix", [7]), ("answer", [1])]  # Origin at 4, cut: unknown beyond
    assert replay_budget(cut, source_budget=4, source_base=None, budget=6, base_tokens=None, word_len=1) is None
    assert replay_budget(cut, source_budget=4, source_base=None, budget=3, base_tokens=None,
                         word_len=1) == [("base", [1, 2, 3])]


@pytest.mark.heavy
def test_ttts_sweep_reads_every_budget_off_the_largest(embedded, tmp_path) -> None:
    m = embedded
    cfg = TTTSSweepConfig(prompt_style="chat", max_new_tokens=28, budgets=(6, 16, 28), batch_size=4,
                          params={"answer_tokens": 4}, out_dir=str(tmp_path / "sweep"))
    with count_forward_calls(m) as sweep_calls:
        df = ttts_sweep(m, PROBLEMS, cfg, progress=False)
    reused = []
    for budget, method, path in df[["budget", "method", "path"]].itertuples(index=False, name=None):
        res = load_result(path)
        params = {"answer_tokens": 4, "total_budget": budget, **({"word": "Wait"} if method == "ttts" else {})}
        alone = evaluate(m, PROBLEMS, cfg.eval_config(intervention=method, params=params,
                                                      out_dir=str(tmp_path / "alone")), progress=False)
        assert alone.path.name == res.path.name  # the same run: a stand-alone call would resume this file
        assert _strip(res.records) == _strip(alone.records), (budget, method)
        reused += [r["reused_prefix"]["tokens"] for r in res.records if "reused_prefix" in r]
    assert sum(df[df.method == "ttts"]["continuations"]) > 0  # the word path is exercised
    assert len(reused) == 5 * len(PROBLEMS) and min(reused) > 0  # every run but the largest TTTS
    with count_forward_calls(m) as top_calls:
        for method in ("ttts", "origin"):
            evaluate(m, PROBLEMS, cfg.eval_config(intervention=method, params={"answer_tokens": 4, "total_budget": 28},
                                                  out_dir=str(tmp_path / "top")), progress=False)
    assert sweep_calls[0] <= 1.5 * top_calls[0], (sweep_calls[0], top_calls[0])


def _arm_equals_alone(m, base, tmp_path, intervention, params):
    cfg = base.config.eval_config(intervention=intervention, params=params, out_dir=str(tmp_path / intervention))
    with count_forward_calls(m) as calls:
        arm = evaluate(m, PROBLEMS, cfg, reuse=base, progress=False)
    alone = evaluate(m, PROBLEMS, replace_dir(cfg, tmp_path / "alone", 1), progress=False)
    assert _strip(arm.records) == _strip(alone.records)
    return arm, calls[0]


def replace_dir(cfg, path, batch_size):
    return cfg.eval_config(out_dir=str(path), batch_size=batch_size)


@pytest.fixture(scope="module")
def baseline(embedded, tmp_path_factory):
    cfg = EvalConfig(prompt_style="chat", max_new_tokens=16, batch_size=4,
                     out_dir=str(tmp_path_factory.mktemp("base")))
    return evaluate(embedded, PROBLEMS, cfg, progress=False)


@pytest.mark.heavy
def test_suppression_arm_decodes_from_the_first_banned_step(embedded, baseline, tmp_path) -> None:
    arm, calls = _arm_equals_alone(embedded, baseline, tmp_path, "suppress", {"words": ["apples", "is"]})
    steps = [r["reused_prefix"]["tokens"] for r in arm.records]
    assert any(0 < j < len(r["output_ids"]) for j, r in zip(steps, arm.records))  # resumed mid-output
    assert any(j == len(r["output_ids"]) for j, r in zip(steps, arm.records))  # never banned: copied
    never, calls = _arm_equals_alone(embedded, baseline, tmp_path, "suppress", {"words": ["zebra"]})
    assert calls == 0  # a word the baseline never chose costs nothing


@pytest.mark.heavy
def test_recycle_arm_draws_the_coins_of_a_stand_alone_run(embedded, baseline, tmp_path) -> None:
    # seed 5 gives every case: a recycle at step 0, resumes after skipped coins, a row never recycled
    params = {"layer": 20, "words": ["Tom", "The", "apples", "is", "2"], "p": 0.5, "seed": 5}
    arm, _ = _arm_equals_alone(embedded, baseline, tmp_path, "recycle", params)  # batch 4 read off == batch 1
    steps = [r["reused_prefix"]["tokens"] for r in arm.records]
    assert any(j > 0 and r["triggers"] > r["recycles"] > 0 for j, r in zip(steps, arm.records))  # coins skipped
    assert any(j == len(r["output_ids"]) and r["triggers"] > 0 == r["recycles"] for j, r in zip(steps, arm.records))
    batched = evaluate(embedded, PROBLEMS, arm.config.eval_config(out_dir=str(tmp_path / "b4")), progress=False)
    assert _strip(batched.records) == _strip(arm.records)  # RR at batch 4 from scratch, too


def test_replay_budget_of_the_official_recipe_and_a_different_base() -> None:
    src = [("base", [1, 2, 3, 4]), ("word", [9]), ("continue", [5, 6, 7]), ("suffix", [7]), ("answer", [1])]
    kw = dict(source_budget=3, source_base=4, base_tokens=4, word_len=1, source_recipe="official", recipe="official")
    assert replay_budget(src, budget=2, **kw) == [("base", [1, 2, 3, 4]), ("word", [9]), ("continue", [5, 6])]
    assert replay_budget(src, budget=5, **kw) is None  # the continuation was cut at 3
    assert replay_budget(src, **{**kw, "recipe": "budget"}, budget=2) is None  # recipes differ
    # a smaller base cuts the source's base: the word then follows other tokens, so nothing is read
    budget_src = [("base", [1, 2, 3, 4]), ("word", [9]), ("continue", [5]), ("word", [9]), ("continue", []),
                  ("suffix", [7]), ("answer", [1])]
    assert replay_budget(budget_src, source_budget=10, source_base=4, budget=10, base_tokens=2, word_len=1) is None
