"""Data loaders against the shared benchmark copies, prompt styles and error paths."""

from __future__ import annotations

import gzip
import json

import pytest

from mipeaks.data import (DATASETS, encode_prompt, format_prompt, last_boxed, load_problems)


def _rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def test_gsm8k_embedded_matches_shared_copy(shared_data):
    ours = load_problems("gsm8k")
    ref = _rows(shared_data / "gsm8k_test.jsonl")
    assert len(ours) == len(ref) == 1319
    for p, r in zip(ours, ref):
        assert p.question == r["question"].strip()
        assert p.answer == r["answer"].split("####")[-1].strip().replace(",", "")
        assert p.solution.endswith(p.answer) or "####" in p.solution
    assert ours[0].answer == "18"


def test_math500_embedded_matches_shared_copy(shared_data):
    ours = load_problems("math500")
    ref = _rows(shared_data / "math500.jsonl")
    assert len(ours) == 500
    assert sum(p.question == r["problem"].strip() for p, r in zip(ours, ref)) == 500
    # gold = last \boxed{} of the solution, which the shared copy's `answer` field records
    assert sum(p.answer == r["answer"].strip() for p, r in zip(ours, ref)) >= 495
    assert all(isinstance(p.meta.get("level"), int) for p in ours)


def test_math500_from_file_keeps_subject_and_level(shared_data):
    ps = load_problems("math500", 5, path=shared_data / "math500.jsonl")
    assert ps[0].meta == {"subject": "Precalculus", "level": 2}
    assert ps[0].answer == r"\left( 3, \frac{\pi}{2} \right)"


def test_aime24_from_file(shared_data):
    ps = load_problems("aime24", path=shared_data / "aime24.jsonl")
    assert len(ps) == 30
    assert all(p.answer.isdigit() and p.solution for p in ps)
    assert ps[0].id == "60" and "url" in ps[0].meta


def test_n_first_and_too_many():
    assert [p.id for p in load_problems("gsm8k", 3)] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="only 1319"):
        load_problems("gsm8k", 5000)
    with pytest.raises(ValueError, match="positive int"):
        load_problems("gsm8k", 0)


def test_unknown_dataset_suggests():
    with pytest.raises(ValueError, match="did you mean 'math500'"):
        load_problems("math-500")
    with pytest.raises(ValueError, match="choose from"):
        load_problems("imagenet")


def test_no_embedded_copy_for_aime():
    with pytest.raises(ValueError, match="no embedded offline copy"):
        load_problems("aime24", source="embedded")


def test_malformed_line_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "2\\n#### 2"}\n{not json}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        load_problems("gsm8k", path=bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text('{"question": "1+1?", "answer": "2\\n#### 2"}\n\n{"question": "x", "answer": "no marker"}\n')
    with pytest.raises(ValueError, match=r"missing\.jsonl:3: .*####"):
        load_problems("gsm8k", path=missing)


def test_csv_and_gzip_layouts(tmp_path):
    csv_path = tmp_path / "math_train.csv"
    csv_path.write_text('problem,solution\n"What is $1+1$?","It is $\\boxed{2}$."\n')
    [p] = load_problems("math-train", path=csv_path)
    assert (p.question, p.answer) == ("What is $1+1$?", "2")
    gz = tmp_path / "x.jsonl.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(json.dumps({"doc": {"question": "q", "answer": "a\n#### 1,000"}}) + "\n")
    assert load_problems("gsm8k", path=gz)[0].answer == "1000"


def test_last_boxed_is_brace_balanced():
    assert last_boxed(r"\boxed{1} then \boxed{\frac{a}{b}}") == r"\frac{a}{b}"
    assert last_boxed(r"\fbox{x^{2}}") == "x^{2}"
    assert last_boxed("no box") is None


def test_prompt_styles(embedded):
    q = "What is 2+3?"
    assert format_prompt(q, "raw") == q
    assert format_prompt(q, "deepseek-math") == (
        "User: What is 2+3?\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:")
    chat = format_prompt(q, "chat", embedded.tokenizer)
    assert q in chat and chat != q and chat.rstrip().endswith("assistant")
    ids = encode_prompt(embedded.tokenizer, q, "chat")
    assert embedded.tokenizer.decode(ids) == chat
    with pytest.raises(ValueError, match="unknown prompt style"):
        format_prompt(q, "cot")
    with pytest.raises(ValueError, match="chat template"):
        format_prompt(q, "chat")


def test_dataset_registry_names_hub_sources():
    assert DATASETS["gsm8k"].hub[0] == "openai/gsm8k"
    assert DATASETS["math500"].hub[0] == "HuggingFaceH4/MATH-500"
    assert set(DATASETS) == {"gsm8k", "math500", "aime24", "math-train", "arith"}
    assert DATASETS["arith"].hub is None  # generated, never downloaded
