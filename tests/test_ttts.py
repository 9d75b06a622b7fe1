"""Tests for mipeaks.ttts: budgets, the forced answer, continuation from ids, the Origin baseline."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny

from mipeaks.generation import generate
from mipeaks.ttts import ANSWER_SUFFIX, TTTSConfig, origin_generate, ttts_batch, ttts_generate

PROMPT = "Question: Tom has 3 apples and buys 4 more. How many apples does he have?\nAnswer:"


@pytest.fixture(scope="module")
def model(tokenizer_dir):
    """A tiny Llama that stops often: a token it likes to produce is made a stop token."""
    m = build_tiny("llama", tokenizer_dir, seed=1)
    (g,) = generate(m, PROMPT, max_new_tokens=6, stop_ids=())
    m.hf_model.generation_config.eos_token_id = [m.tokenizer.eos_token_id, int(g.token_ids[3])]
    return m


@pytest.fixture()
def prompt_ids(model) -> torch.Tensor:
    return torch.tensor(model.tokenizer.encode(PROMPT))


def _reasoning(res) -> int:
    return sum(len(ids) for kind, ids in res.segments if kind in ("base", "word", "continue"))


@pytest.mark.parametrize("budget,base", [(1, None), (6, 2), (14, 3), (20, None)])
def test_budget_never_exceeded_and_answer_forced(model, prompt_ids, budget, base) -> None:
    res = ttts_generate(model, prompt_ids, word="Wait", base_tokens=base, total_budget=budget, answer_tokens=4)
    assert res.reasoning_tokens == _reasoning(res) <= budget
    kinds = [k for k, _ in res.segments]
    assert kinds[0] == "base" and kinds[-2:] == ["suffix", "answer"]
    assert res.segments[-2][1] == model.tokenizer.encode(ANSWER_SUFFIX, add_special_tokens=False)
    assert 1 <= len(res.answer_ids) <= 4
    assert "Final Answer within \\boxed{}:" in res.text(model.tokenizer)
    assert res.graded_text(model.tokenizer) == model.tokenizer.decode(res.answer_ids, skip_special_tokens=True)
    stops = set(model.eos_token_ids())
    assert not stops & set(i for k, ids in res.segments if k != "answer" for i in ids)  # stop tokens dropped


def test_thinking_word_appended_when_the_model_stops(model, prompt_ids) -> None:
    res = ttts_generate(model, prompt_ids, word="Wait", total_budget=24, answer_tokens=2)
    word = model.tokenizer.encode(" Wait", add_special_tokens=False)
    assert res.continuations >= 1
    assert [ids for k, ids in res.segments if k == "word"] == [word] * res.continuations
    plain = origin_generate(model, prompt_ids, total_budget=24, answer_tokens=2)
    assert plain.reasoning_tokens < res.reasoning_tokens <= 24  # the model stops early without TTTS


def reference_ttts(model, prompt: list[int], *, word: str | None, base: int | None, budget: int,
                   answer_tokens: int, recipe: str = "budget") -> list[tuple[str, list[int]]]:
    """The recipe as one ``generate`` call per segment, each from the prompt ids plus every segment so far."""
    stop = set(model.eos_token_ids())

    def run(seq, n):
        ids = generate(model, torch.tensor(seq), max_new_tokens=n)[0].token_ids.tolist()
        return ids[:-1] if ids and ids[-1] in stop else ids

    enc = lambda text: model.tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
    ids = run(prompt, budget if base is None or word is None else base)
    segments, seq, used = [("base", ids)], prompt + ids, len(ids)
    if recipe == "official":  # one word, one continuation of the budget
        w = enc(" " + word)
        ids = run(seq + w, budget)
        segments += [("word", w), ("continue", ids)]
        seq, word = seq + w + ids, None
    while word is not None and budget - used > len(enc(" " + word)):
        w = enc(" " + word)
        ids = run(seq + w, budget - used - len(w))
        segments += [("word", w), ("continue", ids)]
        seq, used = seq + w + ids, used + len(w) + len(ids)
        if not ids:
            break
    suffix = enc(ANSWER_SUFFIX)
    return segments + [("suffix", suffix), ("answer", run(seq + suffix, answer_tokens))]


@pytest.mark.parametrize("method,base,budget",
                         [("ttts", 3, 16), ("ttts", None, 24), ("ttts", None, 4), ("origin", None, 9)])
def test_one_generation_equals_per_segment_reference(model, prompt_ids, method, base, budget) -> None:
    res = ttts_batch(model, [prompt_ids], method=method, base_tokens=base, total_budget=budget, answer_tokens=3)[0]
    ref = reference_ttts(model, prompt_ids.tolist(), word="Wait" if method == "ttts" else None, base=base,
                         budget=budget, answer_tokens=3)
    assert res.segments == ref
    if method == "ttts":  # the word path, and at budget 4 the no-room rule, are exercised
        assert res.continuations == (budget > 4)


@pytest.mark.parametrize("base,budget", [(2, 5), (6, 3)])
def test_official_recipe_equals_its_reference(model, prompt_ids, base, budget) -> None:
    res = TTTSConfig(total_budget=budget, base_tokens=base, answer_tokens=2, recipe="official").run(model, prompt_ids)
    ref = reference_ttts(model, prompt_ids.tolist(), word="Wait", base=base, budget=budget, answer_tokens=2,
                         recipe="official")
    assert res.segments == ref and res.continuations == 1
    assert res.reasoning_tokens == len(ref[2][1]) <= budget  # only the continuation counts
    with pytest.raises(ValueError, match="base_tokens"):
        TTTSConfig(total_budget=budget, recipe="official")
    with pytest.raises(ValueError, match="recipe"):
        TTTSConfig(total_budget=budget, recipe="paper")


@pytest.mark.heavy
def test_batch_equals_one_at_a_time_on_the_embedded_model(embedded) -> None:
    m = embedded
    prompts = [torch.tensor(m.tokenizer.encode(q)) for q in (
        "Question: What is 2 + 3?\nAnswer:", PROMPT, "Say hi.", "Question: Name a colour.\nAnswer: Red.")]
    for method, base, budget in (("ttts", 2, 10), ("origin", None, 6), ("ttts", None, 12)):
        kw = dict(method=method, base_tokens=base, total_budget=budget, answer_tokens=3)
        batch = ttts_batch(m, prompts, **kw)
        alone = [ttts_batch(m, [p], **kw)[0] for p in prompts]
        assert [r.segments for r in batch] == [r.segments for r in alone]
        assert [r.reasoning_tokens for r in batch] == [r.reasoning_tokens for r in alone]
    ref = reference_ttts(m, prompts[2].tolist(), word="Wait", base=2, budget=10, answer_tokens=3)
    assert ttts_batch(m, [prompts[2]], base_tokens=2, total_budget=10, answer_tokens=3)[0].segments == ref


def test_origin_same_budget_and_forced_answer(model, prompt_ids) -> None:
    res = origin_generate(model, prompt_ids, total_budget=5, answer_tokens=3)
    assert [k for k, _ in res.segments] == ["base", "suffix", "answer"]
    assert res.reasoning_tokens <= 5 and res.continuations == 0
    same = TTTSConfig(total_budget=5, answer_tokens=3, method="origin").run(model, prompt_ids)
    assert same.token_ids == res.token_ids


@pytest.mark.parametrize("tiny", ["qwen2"], indirect=True)
def test_never_stopping_model_ttts_equals_origin(tiny) -> None:
    m = tiny  # random weights: EOS never comes up in a few tokens
    ids = torch.tensor(m.tokenizer.encode(PROMPT))
    a = ttts_generate(m, ids, total_budget=6, answer_tokens=2)
    b = origin_generate(m, ids, total_budget=6, answer_tokens=2)
    assert a.token_ids == b.token_ids and a.continuations == 0


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="base_tokens"):
        TTTSConfig(total_budget=4, base_tokens=5)
    with pytest.raises(ValueError, match="total_budget"):
        TTTSConfig(total_budget=0)
    with pytest.raises(ValueError, match="method"):
        TTTSConfig(total_budget=4, method="wait")
