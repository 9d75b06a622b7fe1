"""Tests that fail on hand-made bugs which the rest of the suite let through (issue 12.11).

Each test names the bug it catches; each was checked by introducing the bug by hand.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from mipeaks import mi
from mipeaks.collect import CollectConfig, collect
from mipeaks.data import Problem, encode_prompt
from mipeaks.diagnostics import correlates
from mipeaks.evaluate import EvalConfig, EvalResult, _mean_ci, compare_arms, evaluate, gold_logprob
from mipeaks.generation import generate
from mipeaks.models import wrap_model
from mipeaks.peaks import peak_stats
from mipeaks.recycling import Recycle

from conftest import Force, tiny_config

PROMPT = "Natalia sold clips to 48 of her friends. How many clips did she sell?"
PROBLEMS = [Problem(id=f"p{i}", question=f"Tom has {i} apples and buys 2 more. How many now?",
                    solution=f"{i} + 2 = {i + 2}. #### {i + 2}", answer=str(i + 2)) for i in range(3)]


@pytest.fixture(scope="module")
def pair(tokenizer_dir):
    """A tiny wrapped Llama and an untouched Hugging Face copy of the same weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = tiny_config(tok)
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config).float().eval()
    reference = copy.deepcopy(hf)  # before the bridge replaces the decoder layers
    return wrap_model(hf, tok, name="tiny-llama"), reference


# ---------------------------------------------------------------------------
# Representation Recycling
# ---------------------------------------------------------------------------


@torch.no_grad()
def _block_output_twice(hf, ids: list[int], position: int, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block ``layer``'s output at ``position``: once (plain pass) and with the block run twice there."""
    block = hf.model.layers[layer]
    out = {}

    def save(name):
        return lambda m, a, o: out.__setitem__(name, (o[0] if isinstance(o, tuple) else o)[0, position].clone())

    handle = block.register_forward_hook(save("once"))
    hf(input_ids=torch.tensor([ids]))
    handle.remove()

    def feed_back(module, args, kwargs):
        hs = (args[0] if args else kwargs["hidden_states"]).clone()
        hs[:, position] = out["once"]
        return ((hs, *args[1:]), kwargs) if args else (args, {**kwargs, "hidden_states": hs})

    handles = [block.register_forward_pre_hook(feed_back, with_kwargs=True), block.register_forward_hook(save("twice"))]
    try:
        hf(input_ids=torch.tensor([ids]))
    finally:
        for h in handles:
            h.remove()
    return out["once"], out["twice"]


def test_recycled_step_captures_the_recomputed_state(pair) -> None:
    """Bug: the state captured at a recycled step kept from the first pass, not the recomputed one."""
    model, hf = pair
    layer = 1
    prompt = model.tokenizer.encode(PROMPT)
    (plain,) = generate(model, PROMPT, max_new_tokens=4, stop_ids=())
    g = plain.token_ids.tolist()
    s = next(i for i in range(1, 4) if g[i] not in g[:i])  # a cached step whose token is new
    rr = Recycle(layer, trigger_ids=[g[s]], p=1.0)
    (out,) = generate(model, PROMPT, max_new_tokens=s + 1, stop_ids=(), capture_layers=[layer], interventions=[rr])
    assert rr.recycles == [1] and out.token_ids.tolist()[:s] == g[:s]
    once, twice = _block_output_twice(hf, prompt + g[:s], len(prompt) + s - 1, layer)
    assert not torch.allclose(once, twice, atol=1e-3)  # the two passes are distinguishable
    torch.testing.assert_close(out.states[layer][s], twice, rtol=1e-4, atol=1e-4)
    before, _ = _block_output_twice(hf, prompt + g[:s - 1], len(prompt) + s - 2, layer)  # not recycled
    torch.testing.assert_close(out.states[layer][s - 1], before, rtol=1e-4, atol=1e-4)


def test_recycle_coins_differ_between_prompts(pair) -> None:
    """Bug: the coin seeded without the prompt, so that every row draws the same stream."""
    model, _ = pair
    prompts = [f"Problem {i}: what is {i} times {i + 3}?" for i in range(8)]
    rr = Recycle(1, trigger_ids=range(len(model.tokenizer)), p=0.5, seed=0)  # every step triggers
    generate(model, prompts, max_new_tokens=12, stop_ids=(), interventions=[rr])
    assert rr.triggers == [12] * 8
    # 8 independent Binomial(12, 0.5) counts all equal has probability < 1e-5; one shared stream: certain
    assert len(set(rr.recycles)) > 1, f"every prompt drew the same coins: {rr.recycles}"


# ---------------------------------------------------------------------------
# Peak statistics and the cross-sample trajectory
# ---------------------------------------------------------------------------


def test_avg_interval_is_the_mean_gap_with_three_gaps() -> None:
    """Bug: ``avg_interval`` computed as a median (equal to the mean with <= 2 gaps)."""
    m = np.zeros(12)
    st = peak_stats(m, peaks=[0, 1, 2, 10])  # gaps 1, 1, 8: mean 10/3, median 1
    assert st.avg_interval == pytest.approx(10 / 3)
    assert (st.min_interval, st.max_interval) == (1.0, 8.0)


def test_reduce_center_takes_the_step_nearest_the_bin_centre() -> None:
    """Bug: ``reduce="center"`` taking a bin's first step."""
    rng = np.random.default_rng(0)
    n, d, T = 8, 6, 10
    states = [rng.normal(size=(T, d)) for _ in range(n)]
    golds = rng.normal(size=(n, 3))
    df = mi.cross_sample_trajectory(states, golds, n_bins=2, reduce="center", sigma_x=2.0, sigma_y=2.0,
                                    n_permutations=9, min_problems=2)
    # T = 10, two bins: steps 0-4 and 5-9, centres at steps 2 and 7 (by hand)
    for b, centre, first in ((0, 2, 0), (1, 7, 5)):
        want = mi.cross_sample_hsic(np.stack([s[centre] for s in states]), golds, sigma_x=2.0, sigma_y=2.0,
                                    n_permutations=9, seed=b).statistic
        wrong = mi.cross_sample_hsic(np.stack([s[first] for s in states]), golds, sigma_x=2.0, sigma_y=2.0,
                                     n_permutations=9, seed=b).statistic
        assert want != pytest.approx(wrong)
        assert df.loc[b, "statistic"] == pytest.approx(want, rel=1e-12)


# ---------------------------------------------------------------------------
# Evaluation records and their comparison
# ---------------------------------------------------------------------------


def test_gold_logprob_leaves_the_stop_token_out(pair, tmp_path) -> None:
    """Bug: EOS left in the reasoning that the gold log-prob scores."""
    model, _ = pair
    tok = model.tokenizer
    force = Force(tok.encode(" we add two", add_special_tokens=False), tok.eos_token_id)
    res = evaluate(model, PROBLEMS[:1], EvalConfig(max_new_tokens=8, out_dir=str(tmp_path)), intervention=force,
                   progress=False)
    [record] = res.records
    assert record["stop_reason"] == "eos" and record["output_ids"][-1] == tok.eos_token_id
    prompt = encode_prompt(tok, PROBLEMS[0], "deepseek-math").tolist()
    reasoning = tok.encode(" we add two", add_special_tokens=False)
    assert record["output_ids"][:-1] == reasoning
    want = gold_logprob(model, prompt + reasoning, PROBLEMS[0].answer)
    with_eos = gold_logprob(model, prompt + reasoning + [tok.eos_token_id], PROBLEMS[0].answer)
    assert want != pytest.approx(with_eos, abs=1e-6)
    assert record["gold_logprob"] == pytest.approx(want, abs=1e-6)


def test_mean_ci_matches_a_hand_computation() -> None:
    """Bug: a wrong standard error in the paired interval."""
    # values 1, 2, 3, 4: mean 2.5, sample variance 5/3, standard error sqrt(5/3 / 4) = 0.6454972
    mean, low, high = _mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5
    assert (low, high) == pytest.approx((2.5 - 1.96 * 0.6454972244, 2.5 + 1.96 * 0.6454972244), abs=1e-9)
    assert _mean_ci([1.0, 1.0, 4.0], z=1.0)[1:] == pytest.approx((1.0, 3.0))  # sd sqrt(3), se 1
    assert math.isnan(_mean_ci([3.0])[1]) and _mean_ci([3.0])[0] == 3.0


def _result(extracted: list[str | None], gold_logprob: list[float], output: int) -> EvalResult:
    """Hand-written records of four problems (the fields :func:`compare_arms` reads)."""
    records = [dict(id=f"p{i}", output_ids=[output, i], extracted=x, correct=False, tokens=2, gold_logprob=g)
               for i, (x, g) in enumerate(zip(extracted, gold_logprob))]
    return EvalResult(config=EvalConfig(), records=records)


def test_compare_arms_counts_changed_answers_and_the_paired_interval() -> None:
    """Bugs: ``answer_changed`` always 0; a wrong standard error in the paired gold log-prob interval."""
    ref = _result(["4", "5", None, "7"], [0.0, 0.0, 0.0, 0.0], output=1)
    same_answers = _result(["4", "5", None, "7"], [-1.0, -2.0, -3.0, -4.0], output=2)
    two_changed = _result(["4", "6", "1", "7"], [0.0, 0.0, 0.0, 0.0], output=1)
    table = compare_arms({"ref": ref, "same": same_answers, "two": two_changed}, reference="ref").set_index("arm")
    assert table.loc["same", "changed"] == 4 and table.loc["same", "answer_changed"] == 0
    assert table.loc["two", "changed"] == 0 and table.loc["two", "answer_changed"] == 2  # None -> "1" counts
    half = 1.96 * 0.6454972244  # the hand computation above, for the diffs -1, -2, -3, -4
    row = table.loc["same"]
    assert row["gold_logprob_diff"] == -2.5
    assert (row["gold_logprob_diff_ci_low"], row["gold_logprob_diff_ci_high"]) == pytest.approx(
        (-2.5 - half, -2.5 + half), abs=1e-9)


# ---------------------------------------------------------------------------
# Chapter 09's correlates
# ---------------------------------------------------------------------------


def test_correlates_position_column_runs_forward(pair, tmp_path) -> None:
    """Bug: ``correlates``' position column reversed (``t`` counted from the end)."""
    model, _ = pair
    cfg = CollectConfig(model=model.name, n=2, max_new_tokens=6, prompt_style="raw")
    run = collect(model, PROBLEMS[:2], cfg, tmp_path / "run", progress=False)
    traces = list(run.traces())
    rising = {t.problem_id: np.arange(len(t.token_ids), dtype=float) ** 2 for t in traces}  # increasing in t
    falling = {k: -v for k, v in rising.items()}
    assert correlates(run, rising)["position"].tolist() == pytest.approx([1.0, 1.0])
    assert correlates(run, falling)["position"].tolist() == pytest.approx([-1.0, -1.0])
