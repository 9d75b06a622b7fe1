"""The synthetic arithmetic dataset ``"arith"``: determinism, correct answers, layout, coverage, errors."""

from __future__ import annotations

import re

import pytest

from mipeaks.data import ARITH_STEPS, ARITH_TEMPLATES, Problem, load_problems
from mipeaks.evaluate import EvalConfig, evaluate
from mipeaks.grading import grade

# Sentence patterns of the question, written here independently of the generator: each yields
# (operation, update of the running count).
_START = re.compile(r"^\w+ has (\d+) \w+\.$")
_BOXES = re.compile(r"^\w+ has (\d+) boxes of \w+ with (\d+) \w+ in each box\.$")
_RULES = [
    (re.compile(r"^(?:He|She|Each \w+) (?:buys|finds) (\d+) more \w+\.$"), "add", lambda x, k: x + k),
    (re.compile(r"^(?:He|She|Each \w+) (?:gives away|loses) (\d+) \w+\.$"), "subtract", lambda x, k: x - k),
    (re.compile(r"^Then the number of \w+ (?:he|she|each \w+) has becomes (\d+) times as large\.$"), "multiply",
     lambda x, k: x * k),
    (re.compile(r"^(?:He|She|Each \w+) shares the \w+ equally among (\d+) \w+\.$"), "share", None),
]


def _recompute(question: str) -> tuple[int, list[str]]:
    """The answer and the operations of a question, from its numbers and wording alone."""
    sentences = re.findall(r"[^.?]+[.?]", question)
    sentences = [s.strip() for s in sentences]
    assert sentences[-1].startswith("How many") and sentences[-1].endswith("?"), question
    first = sentences[0]
    if m := _BOXES.match(first):
        x, ops = int(m[1]) * int(m[2]), ["multiply"]
    else:
        m = _START.match(first)
        assert m, f"unrecognised first sentence {first!r}"
        x, ops = int(m[1]), []
    for sentence in sentences[1:-1]:
        for pattern, op, update in _RULES:
            if m := pattern.match(sentence):
                k = int(m[1])
                if op == "share":
                    assert x % k == 0, f"{x} / {k} is not exact in {question!r}"
                    x //= k
                else:
                    x = update(x, k)
                ops.append(op)
                break
        else:
            raise AssertionError(f"unrecognised sentence {sentence!r}")
    return x, ops


def test_answers_equal_a_recomputation_from_the_question() -> None:
    problems = load_problems("arith", 150, steps=[1, 2, 3], templates=ARITH_TEMPLATES)
    problems += load_problems("arith", 60)  # the default set (additions)
    for p in problems:
        answer, ops = _recompute(p.question)
        assert p.answer == str(answer), p
        assert answer >= 1
        assert len(ops) == p.meta["steps"] and ops == p.meta["templates"]
        assert p.answer not in re.findall(r"\d+", p.question), f"answer leaked: {p.question!r}"


def test_gold_solution_is_gsm8k_layout_and_grades_correct() -> None:
    for p in load_problems("arith", 30, steps=[1, 2, 3], templates=ARITH_TEMPLATES) + load_problems("arith", 10):
        assert p.solution.endswith(f"\n#### {p.answer}")
        assert len(p.solution.splitlines()) == p.meta["steps"] + 1  # one line per step, then the answer
        # the last worked line states the answer it computes
        assert p.solution.splitlines()[-2].split(" = ")[-1].split()[0] == p.answer
        assert grade(p.solution, p.answer, mode="verify").correct
        assert grade(p.solution, p.answer, mode="paper").correct
        assert not grade(p.solution, str(int(p.answer) + 1), mode="verify").correct


def test_deterministic_per_seed_and_seeds_differ() -> None:
    a = load_problems("arith", 20, seed=3)
    b = load_problems("arith", 20, seed=3)
    assert [(p.id, p.question, p.solution, p.answer, p.meta) for p in a] == \
        [(p.id, p.question, p.solution, p.answer, p.meta) for p in b]
    c = load_problems("arith", 20, seed=4)
    assert sum(x.question != y.question for x, y in zip(a, c)) >= 15
    assert not {p.id for p in a} & {p.id for p in c}
    assert load_problems("arith", 7, seed=3) == a[:7]  # a prefix, like the first n of a benchmark
    assert load_problems("arith", 5) == load_problems("arith", 5, seed=0)


def test_ids_dataset_and_parameters() -> None:
    ps = load_problems("arith", 6, seed=2, steps=[1, 3], templates=["add", "share"])
    assert all(isinstance(p, Problem) and p.dataset == "arith" for p in ps)
    assert len({p.id for p in ps}) == 6
    assert [p.meta["steps"] for p in ps] == [1, 3, 1, 3, 1, 3]
    assert all(p.meta["seed"] == 2 and p.meta["index"] == i for i, p in enumerate(ps))
    assert all(set(p.meta["templates"]) <= {"add", "share"} for p in ps)
    # other generator parameters give other ids, so a resumed run never mixes two sets
    assert not {p.id for p in ps} & {p.id for p in load_problems("arith", 6, seed=2, steps=[1, 3])}


def test_default_mix_and_every_template_and_step_count_appear() -> None:
    ps = load_problems("arith", 90)
    assert [p.meta["steps"] for p in ps[: len(ARITH_STEPS)]] == list(ARITH_STEPS)
    wide = load_problems("arith", 90, steps=[1, 2, 3], templates=ARITH_TEMPLATES)
    assert {p.meta["steps"] for p in wide} == {1, 2, 3}
    for steps in (1, 2, 3):
        ops = {op for p in load_problems("arith", 60, steps=steps, templates=ARITH_TEMPLATES)
               for op in _recompute(p.question)[1]}
        assert ops == set(ARITH_TEMPLATES), (steps, ops)


def test_default_is_one_step_additions_with_small_numbers() -> None:
    """The chosen default (see arith_problems): one addition, a start of 5-20 plus 2-9, read off the text."""
    ps = load_problems("arith", 120)
    assert ps == load_problems("arith", 120, steps=1, templates=["add"])
    for p in ps:
        m = re.match(r"^\w+ has (\d+) (\w+)\. (?:He|She) (?:buys|finds) (\d+) more \2\. "
                     r"How many \2 does \w+ have now\?$", p.question)
        assert m, p.question
        start, more = int(m[1]), int(m[3])
        assert 5 <= start <= 20 and 2 <= more <= 9, p.question
        assert p.answer == str(start + more)


@pytest.mark.parametrize("template", ARITH_TEMPLATES)
def test_single_template_three_steps(template) -> None:
    for p in load_problems("arith", 10, steps=3, templates=[template]):
        answer, ops = _recompute(p.question)
        assert ops == [template] * 3 and p.answer == str(answer)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=0), "n must be a positive int"),
    (dict(n=None), "pass n"),
    (dict(n=3, steps=0), "steps must be an int in 1..3"),
    (dict(n=3, steps=4), "steps must be an int in 1..3"),
    (dict(n=3, steps=[1, 5]), "got \\[1, 5\\]"),
    (dict(n=3, steps=[]), "steps must be"),
    (dict(n=3, steps="2"), "steps must be"),
    (dict(n=3, templates=["add", "divide"]), "unknown arith template.*'divide'.*choose from"),
    (dict(n=3, templates=[]), "unknown arith template"),
    (dict(n=3, seed="1"), "seed must be an int"),
    (dict(n=3, path="x.jsonl"), "generated, not read"),
])
def test_bad_arguments_give_one_line_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message) as err:
        load_problems("arith", **kwargs)
    assert "\n" not in str(err.value)


def test_generator_arguments_rejected_for_benchmarks() -> None:
    with pytest.raises(ValueError, match="apply only to 'arith'") as err:
        load_problems("gsm8k", 3, steps=2)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_evaluate_loads_arith_by_name(tiny, tmp_path) -> None:
    cfg = EvalConfig(dataset="arith", n=3, max_new_tokens=2, prompt_style="raw", out_dir=str(tmp_path))
    res = evaluate(tiny, None, cfg, progress=False)
    expected = load_problems("arith", 3)
    assert [r["id"] for r in res.records] == [p.id for p in expected]
    assert [r["gold"] for r in res.records] == [p.answer for p in expected]
    assert all(r["dataset"] == "arith" for r in res.records)


def test_task_note_reports_intervals_and_why_synthetic() -> None:
    from mipeaks.book import task_note

    note = task_note("arith", 10, 5, max_new_tokens=48, prompt_style="deepseek-math", arm="Origin",
                     others={"RR": 1, "RR p=1": 6})
    assert "Why a synthetic task" in note and "GSM8K" in note and "1 step each" in note
    assert "additions" in note and "multiply" not in note
    # Wilson 95% interval of 5/10 is 23.66%-76.34% (textbook value)
    assert "5/10 = 50% (95% Wilson interval 24%-76%)" in note
    assert "RR: 1/10 = 10%" in note and "RR: 1/10 = 10% (95% Wilson interval 2%-40%), outside" in note
    assert "RR p=1: 6/10 = 60% (95% Wilson interval 31%-83%), inside" in note
    plain = task_note("gsm8k", 20, 0, max_new_tokens=64, prompt_style="chat")
    assert "synthetic" not in plain and "0/20 = 0% (95% Wilson interval 0%-16%)" in plain
