"""Tests for mipeaks.evaluate: records, resume, grading, every intervention, sweeps, Wilson intervals."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mipeaks.data import Problem
from mipeaks.evaluate import EvalConfig, evaluate, suppression_sweep, ttts_sweep, wilson_interval
from mipeaks.generation import Intervention
from mipeaks.lens import PAPER_THINKING_TOKENS_R1_LLAMA_8B, ThinkingToken
from mipeaks.suppression import word_ids

PROBLEMS = [Problem(id=f"p{i}", question=f"Tom has {i} apples and buys 2 more. How many now?",
                    solution="", answer=str(i + 2), dataset="toy") for i in range(3)]
FIELDS = {"id", "prompt", "output_ids", "output_text", "extracted", "gold", "correct", "tokens", "seconds"}


class Force(Intervention):
    """Forces a fixed continuation, then the stop token."""

    def __init__(self, ids: list[int], stop: int):
        self.ids, self.stop = ids, stop

    def process_logits(self, step, logits):
        out = torch.full_like(logits, float("-inf"))
        out[:, self.ids[step.index] if step.index < len(self.ids) else self.stop] = 0.0
        return out


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
    with pytest.raises(ValueError, match="unknown intervention"):
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
def test_sweeps(tiny) -> None:
    thinking = [ThinkingToken(w, f) for w, f in PAPER_THINKING_TOKENS_R1_LLAMA_8B]
    cfg = EvalConfig(max_new_tokens=3, out_dir=None)
    df = suppression_sweep(tiny, PROBLEMS[:2], [0, 2], thinking, seed=1, config=cfg, progress=False)
    assert list(df[["k", "arm"]].itertuples(index=False, name=None)) == [
        (0, "thinking"), (0, "random"), (2, "thinking"), (2, "random")]
    assert df.loc[2, "words"] == "So Let" and len(df.loc[3, "words"].split()) == 2
    assert df.loc[0, "accuracy"] == df.loc[1, "accuracy"] and (df["n"] == 2).all()
    assert set(word_ids(tiny.tokenizer, df.loc[3, "words"].split()))  # maskable control words
    assert {"ci_low", "ci_high"} <= set(df.columns) and (df["ci_low"] <= df["ci_high"]).all()
    df = ttts_sweep(tiny, PROBLEMS[:2], [2, 4], "Wait", answer_tokens=2, config=cfg, progress=False)
    assert list(df[["budget", "method"]].itertuples(index=False, name=None)) == [
        (2, "origin"), (2, "ttts"), (4, "origin"), (4, "ttts")]
    assert (df["mean_reasoning_tokens"] <= df["budget"]).all()


@pytest.mark.slow
def test_embedded_model_on_gsm8k_from_one_call(embedded, tmp_path) -> None:
    cfg = EvalConfig(dataset="gsm8k", n=2, max_new_tokens=12, intervention="recycle",
                     params=dict(layer=20, p=1.0), out_dir=str(tmp_path))
    res = evaluate(embedded, config=cfg, progress=False)
    assert res.n == 2 and res.path.exists() and res.records[0]["gold"] == "18"
    assert sum(r["recycles"] for r in res.records) >= 0 and all(r["tokens"] <= 12 for r in res.records)
    assert res.summary()["intervention"] == "recycle"
