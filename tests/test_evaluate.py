"""Tests for mipeaks.evaluate: records, resume, grading, every intervention, sweeps, Wilson intervals."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from mipeaks.data import Problem
from mipeaks.evaluate import (
    EvalConfig,
    RecyclingSweepConfig,
    SuppressionSweepConfig,
    TTTSSweepConfig,
    compare_arms,
    evaluate,
    gold_logprob,
    benchmark_problems,
    load_result,
    recycling_sweep,
    show_first_change,
    suppression_sweep,
    ttts_sweep,
    wilson_interval,
)
from mipeaks.lens import ThinkingToken, save_thinking_tokens
from mipeaks.suppression import word_ids
from mipeaks.ttts import ANSWER_SUFFIX

from conftest import Force

PROBLEMS = [Problem(id=f"p{i}", question=f"Tom has {i} apples and buys 2 more. How many now?",
                    solution="", answer=str(i + 2), dataset="toy") for i in range(3)]
FIELDS = {"id", "prompt", "output_ids", "output_text", "extracted", "gold", "correct", "tokens", "seconds"}


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_records_manifest_and_resume(tiny, tmp_path) -> None:
    cfg = EvalConfig(max_new_tokens=4, out_dir=str(tmp_path / "a"))
    full = evaluate(tiny, PROBLEMS, cfg, progress=False)
    assert full.path is not None and full.path.parent == tmp_path / "a"
    lines = [json.loads(x) for x in full.path.read_text().splitlines()]
    assert [r["id"] for r in lines] == ["p0", "p1", "p2"] and FIELDS <= set(lines[0])
    assert lines[0]["prompt"].startswith("User: Tom has 0 apples") and lines[0]["tokens"] == 4
    manifest = json.loads(full.path.with_suffix(".manifest.json").read_text())
    assert manifest["model"]["name"] == "tiny-llama" and manifest["config"]["max_new_tokens"] == 4
    assert {"torch", "transformers", "transformer-lens"} <= set(manifest["versions"])
    assert full.ci == wilson_interval(full.correct, 3)

    # an interrupted run (2 problems and a record cut short by a crash), then resumed
    out = tmp_path / "b.jsonl"
    evaluate(tiny, PROBLEMS, cfg, n=2, out_path=out, progress=False)
    with open(out, "a") as fh:
        fh.write('{"id": "p2", "output_te')
    resumed = evaluate(tiny, PROBLEMS, cfg, out_path=out, progress=False)
    assert _strip(resumed.records) == _strip(full.records)
    assert len(out.read_text().splitlines()) == 3
    again = evaluate(tiny, PROBLEMS, cfg, out_path=out, progress=False)  # everything done: nothing rerun
    assert again.records == resumed.records
    with pytest.raises(ValueError, match="different run"):
        evaluate(tiny, PROBLEMS, cfg, out_path=out, max_new_tokens=5, progress=False)


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_grading_of_a_forced_answer(tiny) -> None:
    tok = tiny.tokenizer
    force = Force(tok.encode(" so the answer is \\boxed{4}.", add_special_tokens=False), tok.eos_token_id)
    res = evaluate(tiny, PROBLEMS, EvalConfig(max_new_tokens=32, out_dir=None), intervention=force, progress=False)
    assert [r["extracted"] for r in res.records] == ["4"] * 3
    assert [r["correct"] for r in res.records] == [False, False, True]  # gold answers 2, 3, 4
    assert res.records[0]["stop_reason"] == "eos" and res.accuracy == pytest.approx(1 / 3)


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_a_number_running_into_the_token_limit_is_not_taken(tiny) -> None:
    tok = tiny.tokenizer
    ids = tok.encode(" The answer is 4.\n\nThe answer is 51", add_special_tokens=False)
    force = Force(ids, tok.eos_token_id)
    cut = evaluate(tiny, PROBLEMS, EvalConfig(max_new_tokens=len(ids) - 1, out_dir=None), intervention=force,
                   progress=False)
    assert {r["stop_reason"] for r in cut.records} == {"length"} and cut.records[0]["output_text"].endswith("is 5")
    assert [r["extracted"] for r in cut.records] == ["4"] * 3 and [r["correct"] for r in cut.records] == [
        False, False, True]
    whole = evaluate(tiny, PROBLEMS, EvalConfig(max_new_tokens=len(ids) + 1, out_dir=None), intervention=force,
                     progress=False)
    assert [r["extracted"] for r in whole.records] == ["51"] * 3 and whole.records[0]["stop_reason"] == "eos"
    harness = evaluate(tiny, PROBLEMS, EvalConfig(max_new_tokens=len(ids) - 1, out_dir=None, extraction="harness"),
                       intervention=force, progress=False)
    assert [r["extracted"] for r in harness.records] == ["5"] * 3 and not any(r["correct"] for r in harness.records)
    # TTTS/Origin: only the forced answer is graded, cut by answer_tokens.
    suffix = tok.encode(ANSWER_SUFFIX, add_special_tokens=False)
    base = tok.encode(" So", add_special_tokens=False) * 2  # the 2-token budget; the suffix is forced after it
    answer = Force(base + suffix + ids, tok.eos_token_id)
    for answer_tokens, extracted in ((len(ids) - 1, "4"), (len(ids) + 1, "51")):  # cut; stopped on its own
        cfg = EvalConfig(out_dir=None, intervention="origin", params=dict(total_budget=2, answer_tokens=answer_tokens))
        res = evaluate(tiny, PROBLEMS, cfg, intervention=answer, progress=False)
        assert [r["extracted"] for r in res.records] == [extracted] * 3, res.records[0]["answer_text"]


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_every_intervention_through_one_runner(tiny) -> None:
    base = EvalConfig(max_new_tokens=4, out_dir=None)
    plain = evaluate(tiny, PROBLEMS[:2], base, progress=False)
    banned = sorted({i for r in plain.records for i in r["output_ids"]})
    sup = evaluate(tiny, PROBLEMS[:2], base, intervention="suppress", params=dict(ids=banned), progress=False)
    assert not {i for r in sup.records for i in r["output_ids"]} & set(banned)
    every = list(range(len(tiny.tokenizer)))
    rr = evaluate(tiny, PROBLEMS[:2], base, intervention="recycle", params=dict(layer=1, words=[], ids=every, p=1.0),
                  progress=False)
    assert [(r["triggers"], r["recycles"]) for r in rr.records] == [(4, 4), (4, 4)]
    assert rr.records[0]["output_ids"] != plain.records[0]["output_ids"]
    for method in ("ttts", "origin"):
        res = evaluate(tiny, PROBLEMS[:2], base, intervention=method, params=dict(total_budget=3, answer_tokens=2),
                       progress=False)
        for r in res.records:
            assert r["reasoning_tokens"] <= 3 and "Final Answer within \\boxed{}:" in r["output_text"]
            assert r["segments"][-2][0] == "suffix" and r["segments"][-1][1] <= 2


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_batched_matches_one_at_a_time(tiny) -> None:
    one = evaluate(tiny, PROBLEMS, EvalConfig(max_new_tokens=4, out_dir=None), progress=False)
    batched = evaluate(tiny, PROBLEMS, EvalConfig(max_new_tokens=4, out_dir=None, batch_size=3), progress=False)
    assert [r["output_ids"] for r in batched.records] == [r["output_ids"] for r in one.records]


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_config_errors(tiny) -> None:
    with pytest.raises(ValueError, match="intervention must be one of"):
        EvalConfig(intervention="steer")
    with pytest.raises(ValueError, match="bad params"):
        EvalConfig(intervention="recycle", params=dict(layer=1, colour="red"))
    with pytest.raises(ValueError, match="without an intervention"):
        EvalConfig(params=dict(layer=1))
    with pytest.raises(ValueError, match="grading"):
        EvalConfig(grading="exact")
    with pytest.raises(ValueError, match="config.model"):
        evaluate(tiny, PROBLEMS, EvalConfig(model="other", out_dir=None), progress=False)
    with pytest.raises(ValueError, match="unique"):
        evaluate(tiny, PROBLEMS + PROBLEMS[:1], EvalConfig(out_dir=None), progress=False)


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_suppression_sweep(tiny, tmp_path) -> None:
    cfg = SuppressionSweepConfig(max_new_tokens=3, ks=[0, 2], seed=1, params={"case_sensitive": False})
    df = suppression_sweep(tiny, PROBLEMS[:2], cfg, progress=False)
    assert list(df[["k", "arm"]].itertuples(index=False, name=None)) == [
        (0, "thinking"), (0, "random"), (2, "thinking"), (2, "random")]
    assert df.loc[2, "words"] == "So Let" and len(df.loc[3, "words"].split()) == 2  # the paper list's top 2
    assert df.loc[0, "accuracy"] == df.loc[1, "accuracy"] and (df["n"] == 2).all()
    assert set(word_ids(tiny.tokenizer, df.loc[3, "words"].split()))  # maskable control words
    assert (df["ci_low"] <= df["ci_high"]).all() and (df.loc[:1, "changed"] == 0).all()
    assert df.loc[2, "banned_ids"] == len(word_ids(tiny.tokenizer, ["So", "Let"]))
    # under greedy decoding a mask changes an output exactly when the unmasked output uses a banned id
    assert (df["changed"] == df["baseline_uses_banned"]).all()
    # a chapter-4 style jsonl gives the same words as the built-in list
    path = save_thinking_tokens([ThinkingToken("So", 9), ThinkingToken("\\", 8), ThinkingToken("Let", 7)],
                                tmp_path / "list.jsonl")
    again = suppression_sweep(tiny, PROBLEMS[:2], cfg, thinking_list=str(path), progress=False)
    assert again.loc[2, "words"] == "So Let" and again.loc[2, "correct"] == df.loc[2, "correct"]


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_ttts_sweep(tiny) -> None:
    cfg = TTTSSweepConfig(max_new_tokens=4, budgets=[2, 4], words=["Wait"], params={"answer_tokens": 2})
    df = ttts_sweep(tiny, PROBLEMS[:2], cfg, progress=False)
    assert list(df[["budget", "method"]].itertuples(index=False, name=None)) == [
        (2, "origin"), (2, "ttts"), (4, "origin"), (4, "ttts")]
    assert (df["mean_reasoning_tokens"] <= df["budget"]).all()
    assert (df[df.method == "origin"]["changed"] == 0).all() and (df[df.method == "origin"]["continuations"] == 0).all()
    ttts = load_result(df.path.iloc[-1])
    assert df["continuations"].iloc[-1] == sum(r["continuations"] for r in ttts.records)


TOY = {"gsm8k": PROBLEMS[:2], "math500": [replace(p, id=f"m{p.id}", dataset="toy2") for p in PROBLEMS[1:]]}


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_sweeps_over_benchmarks(tiny, tmp_path) -> None:
    """Issue 11 §2: one sweep config runs every benchmark; each benchmark's rows equal a one-benchmark sweep."""
    base = dict(max_new_tokens=3, out_dir=str(tmp_path))
    both = suppression_sweep(tiny, TOY, SuppressionSweepConfig(datasets=["gsm8k", "math500"], ks=[0, 1], **base),
                             progress=False)
    assert list(both.dataset) == ["gsm8k"] * 4 + ["math500"] * 4 and list(both.n) == [2] * 4 + [2] * 4
    alone = suppression_sweep(tiny, TOY["math500"], SuppressionSweepConfig(datasets=["math500"], ks=[0, 1], **base),
                              progress=False)
    cols = ["k", "arm", "words", "correct", "changed", "mean_tokens"]
    assert both[both.dataset == "math500"][cols].reset_index(drop=True).equals(alone[cols])
    rr = recycling_sweep(tiny, TOY, RecyclingSweepConfig(datasets=["gsm8k", "math500"], params={
        "layer": 1, "words": ["the", "The"], "p": 0.5}, **base), progress=False)
    assert list(rr.arm) == ["Origin", "RR p=0.5 (code)", "RR p=1 (paper text)"] * 2
    # Origin is the suppression sweep's unsuppressed run: the same records file
    assert rr.path.iloc[0] == both.path.iloc[0] and rr.path.iloc[3] == both.path.iloc[4]
    assert (rr.recycles <= rr.triggers).all() and rr.recycles.iloc[2] == rr.triggers.iloc[2]  # p = 1: every trigger
    with pytest.raises(ValueError, match="pass a mapping"):
        suppression_sweep(tiny, PROBLEMS, SuppressionSweepConfig(datasets=["gsm8k", "math500"], **base))
    with pytest.raises(ValueError, match=r"no problems given for the benchmarks \['math500'\]"):
        benchmark_problems(SuppressionSweepConfig(datasets=["gsm8k", "math500"]), {"gsm8k": PROBLEMS})


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_ttts_sweep_per_benchmark_budgets_and_words(tiny, tmp_path) -> None:
    """Issue 11 §2-3: budgets per benchmark, one TTTS curve per word, the official recipe."""
    cfg = TTTSSweepConfig(datasets=["gsm8k", "math500"], max_new_tokens=4, budgets={"gsm8k": [2, 4], "math500": [3]},
                          words=["Wait", "So"], params={"recipe": "official", "base_tokens": 2, "answer_tokens": 2},
                          out_dir=str(tmp_path))
    df = ttts_sweep(tiny, TOY, cfg, progress=False)
    assert list(df[["dataset", "budget", "curve"]].itertuples(index=False, name=None)) == [
        ("gsm8k", 2, "Origin"), ("gsm8k", 2, "TTTS 'Wait'"), ("gsm8k", 2, "TTTS 'So'"),
        ("gsm8k", 4, "Origin"), ("gsm8k", 4, "TTTS 'Wait'"), ("gsm8k", 4, "TTTS 'So'"),
        ("math500", 3, "Origin"), ("math500", 3, "TTTS 'Wait'"), ("math500", 3, "TTTS 'So'")]
    ttts = df[df.method == "ttts"]
    # official: one word per problem, one continuation counted against the budget
    assert (ttts.continuations == ttts.n).all() and (ttts.mean_reasoning_tokens <= ttts.budget).all()
    for row in ttts.itertuples():
        res = load_result(row.path)
        assert res.config.intervention_config().word == row.word and res.config.dataset == row.dataset
        assert all([k for k, _ in r["segments"]][:3] == ["base", "word", "continue"] for r in res.records)
    assert TTTSSweepConfig(budgets={"gsm8k": [8]}, max_new_tokens=8).budgets_for("gsm8k") == (8,)


def test_sweep_config_errors() -> None:
    with pytest.raises(ValueError, match="ks must be"):
        SuppressionSweepConfig(ks=(0, -1))
    with pytest.raises(ValueError, match="case_sensitive"):
        SuppressionSweepConfig(params={"words": ["So"]})
    with pytest.raises(ValueError, match="intervention must be 'suppress'"):
        SuppressionSweepConfig(intervention="recycle", params={"layer": 1})
    with pytest.raises(ValueError, match="budgets must be <= max_new_tokens"):
        TTTSSweepConfig(max_new_tokens=100, budgets=(64, 128))
    with pytest.raises(ValueError, match="total_budget"):
        TTTSSweepConfig(params={"total_budget": 8})
    with pytest.raises(ValueError, match="words go in `words`"):
        TTTSSweepConfig(params={"word": "So"})
    with pytest.raises(ValueError, match="words must be non-empty, distinct"):
        TTTSSweepConfig(words=["So", "So"])
    with pytest.raises(ValueError, match=r"budgets must give budgets for exactly the datasets \['gsm8k', 'aime24'\]"):
        TTTSSweepConfig(datasets=["gsm8k", "aime24"], budgets={"gsm8k": [8]})
    with pytest.raises(ValueError, match="budgets must be <= max_new_tokens=100"):
        TTTSSweepConfig(max_new_tokens=100, datasets=["aime24"], budgets={"aime24": [64, 128]})
    with pytest.raises(ValueError, match="datasets must hold names of .* got 'gsm9k' \\(did you mean 'gsm8k'\\?\\)"):
        SuppressionSweepConfig(datasets=["gsm9k"])
    with pytest.raises(ValueError, match="datasets must name at least one benchmark"):
        RecyclingSweepConfig(datasets=[])
    with pytest.raises(ValueError, match="names a benchmark twice"):
        RecyclingSweepConfig(datasets=["gsm8k", "gsm8k"])
    with pytest.raises(ValueError, match="pass dataset="):
        SuppressionSweepConfig(datasets=["gsm8k", "aime24"]).eval_config()
    assert SuppressionSweepConfig(datasets=["aime24"]).eval_config(intervention=None, params={}).dataset == "aime24"
    sweep = SuppressionSweepConfig(ks=(0, 5), thinking_list="paper")
    arm = sweep.eval_config(params={"words": ["So"]})  # a plain "suppress" config needs its words
    assert type(arm) is EvalConfig and arm.intervention == "suppress"
    # the sweep axis is not part of a run's identity: every k shares the baseline's records
    assert arm.fingerprint() == replace(sweep, ks=(0, 1)).eval_config(params={"words": ["So"]}).fingerprint()


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_compare_arms_and_load_result(tiny, tmp_path) -> None:
    tok = tiny.tokenizer
    base = EvalConfig(max_new_tokens=6, out_dir=str(tmp_path))
    plain = evaluate(tiny, PROBLEMS, base, progress=False)
    answer = Force(tok.encode(" \\boxed{4}", add_special_tokens=False), tok.eos_token_id)
    forced = evaluate(tiny, PROBLEMS, base, intervention=answer, progress=False)
    table = compare_arms({"plain": plain, "forced": forced}, reference="plain").set_index("arm")
    assert table.loc["plain", "changed"] == 0 and table.loc["forced", "changed"] == 3
    assert table.loc["forced", "correct"] == 1 and table.loc["forced", "answer_extracted"] == 3
    assert table.loc["forced", "changed_share"] == 1.0 and table.loc["forced", "changed_ci_low"] > 0.4
    back = load_result(forced.path)
    assert back.records == forced.records and back.config == forced.config
    with pytest.raises(KeyError):
        compare_arms({"plain": plain}, reference="forced")
    short = evaluate(tiny, PROBLEMS[:2], base, progress=False)
    with pytest.raises(ValueError, match="same problems"):
        compare_arms({"plain": plain, "short": short}, reference="plain")


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_records_default_to_the_runs_root_and_dtype_is_checked(tiny, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MIPEAKS_RUNS", str(tmp_path / "elsewhere"))
    res = evaluate(tiny, PROBLEMS[:1], EvalConfig(max_new_tokens=2), progress=False)
    assert res.path.parent == tmp_path / "elsewhere" / "evals" and res.path.exists()
    with pytest.raises(ValueError, match="dtype"):
        evaluate(tiny, PROBLEMS[:1], EvalConfig(max_new_tokens=2, dtype="bfloat16"), progress=False)


@pytest.mark.slow
def test_embedded_model_on_gsm8k_from_one_call(embedded, tmp_path) -> None:
    cfg = EvalConfig(dataset="gsm8k", n=2, max_new_tokens=12, intervention="recycle",
                     params=dict(layer=20, p=1.0), out_dir=str(tmp_path))
    res = evaluate(embedded, config=cfg, progress=False)
    assert res.n == 2 and res.path.exists() and res.records[0]["gold"] == "18"
    assert sum(r["recycles"] for r in res.records) >= 0 and all(r["tokens"] <= 12 for r in res.records)
    assert res.summary()["intervention"] == "recycle"


@pytest.mark.parametrize("tiny", ["llama", "qwen2"], indirect=True)
def test_gold_logprob_scores_exactly_the_answer_tokens(tiny) -> None:
    tok = tiny.tokenizer
    context = tok.encode("Q: 2 + 2? A: we add.", add_special_tokens=False)
    head = context + tok.encode(ANSWER_SUFFIX + " \\boxed{", add_special_tokens=False)
    target = tok.encode("4}", add_special_tokens=False)
    with torch.inference_mode():
        logits = tiny.hf_model(input_ids=torch.tensor([head + target])).logits[0].float()  # every position
    logp = torch.log_softmax(logits, -1)
    want = sum(float(logp[len(head) - 1 + j, t]) for j, t in enumerate(target)) / len(target)
    assert gold_logprob(tiny, context, "4") == pytest.approx(want, abs=1e-5)
    assert gold_logprob(tiny, context, "4") != pytest.approx(gold_logprob(tiny, context, "5"), abs=1e-6)


def _prompt_ids(model, problem) -> list[int]:
    from mipeaks.data import encode_prompt

    return encode_prompt(model.tokenizer, problem, "deepseek-math").tolist()


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_records_carry_the_gold_logprob_of_their_reasoning(tiny) -> None:
    base = EvalConfig(max_new_tokens=5)
    res = evaluate(tiny, PROBLEMS[:2], base, progress=False)
    origin = evaluate(tiny, PROBLEMS[:2], base, intervention="origin", params=dict(total_budget=5, answer_tokens=2),
                      progress=False)
    for plain, forced, problem in zip(res.records, origin.records, PROBLEMS):
        assert plain["gold_logprob"] < 0
        # greedy Origin reasons with the same tokens as plain decoding, so the score is the same
        assert forced["gold_logprob"] == pytest.approx(plain["gold_logprob"], abs=1e-5)
        reasoning = plain["output_ids"][: len(plain["output_ids"]) - (plain["stop_reason"] == "eos")]
        want = gold_logprob(tiny, _prompt_ids(tiny, problem) + reasoning, problem.answer)
        assert plain["gold_logprob"] == pytest.approx(want, abs=1e-5)  # scored on prompt + reasoning
    table = compare_arms({"plain": res, "origin": origin}, reference="plain").set_index("arm")
    assert table.loc["plain", "gold_logprob_diff"] == 0.0
    assert abs(table.loc["origin", "gold_logprob_diff"]) < 1e-5


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_show_first_change(tiny, capsys) -> None:
    tok = tiny.tokenizer
    base = EvalConfig(max_new_tokens=4)
    plain = evaluate(tiny, PROBLEMS, base, progress=False)
    forced = evaluate(tiny, PROBLEMS, base, intervention=Force(tok.encode(" 7", add_special_tokens=False),
                                                               tok.eos_token_id), progress=False)
    assert show_first_change(plain, forced, labels=("plain", "forced")) == "p0"
    out = capsys.readouterr().out
    assert out.startswith("problem p0 (gold 2)") and "--- plain, extracted" in out and "--- forced, extracted '7'" in out
    assert show_first_change(plain, plain) is None
    assert "no output differs" in capsys.readouterr().out
