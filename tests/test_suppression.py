"""Tests for mipeaks.suppression: the -inf logit mask, word variants, thinking and control words."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny

from mipeaks.generation import generate
from mipeaks.lens import PAPER_THINKING_TOKENS_R1_LLAMA_8B, ThinkingToken, load_thinking_tokens, save_thinking_tokens
from mipeaks.suppression import Suppress, SuppressConfig, random_control_words, thinking_words, word_ids

PAPER_LIST = [ThinkingToken(w, f) for w, f in PAPER_THINKING_TOKENS_R1_LLAMA_8B]


@pytest.fixture(scope="module")
def llama(tokenizer_dir):
    return build_tiny("llama", tokenizer_dir)


def test_process_logits_sets_exact_zero_probability() -> None:
    logits = torch.randn(2, 10)
    before = logits.clone()
    out = Suppress([3, 7, 3]).process_logits(None, logits)  # type: ignore[arg-type]
    assert torch.equal(logits, before)  # the input is not edited in place
    probs = out.softmax(-1)
    assert (probs[:, [3, 7]] == 0).all()
    keep = [i for i in range(10) if i not in (3, 7)]
    assert torch.equal(out[:, keep], before[:, keep])


def test_bad_ids_raise() -> None:
    with pytest.raises(ValueError, match="outside the vocabulary"):
        Suppress([10]).process_logits(None, torch.zeros(1, 10))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="whole vocabulary"):
        Suppress(range(4)).process_logits(None, torch.zeros(1, 4))  # type: ignore[arg-type]


def test_word_ids_cover_every_variant(llama) -> None:
    tok = llama.tokenizer
    ids = word_ids(tok, ["So"])
    texts = {tok.decode([i]) for i in ids}
    assert {"So", " So", "so", " so"} <= texts
    assert all(t.strip().lower() == "so" for t in texts)
    same_case = {tok.decode([i]) for i in word_ids(tok, ["So"], case_sensitive=True)}
    assert {"So", " So"} <= same_case and not {"so", " so"} & same_case
    with pytest.raises(ValueError, match="not a single token"):
        word_ids(tok, ["Xqzvbnmw"])


def test_banned_ids_never_appear(llama) -> None:
    prompt = "Question: what is two plus two? Answer:"
    (plain,) = generate(llama, prompt, max_new_tokens=8, stop_ids=())
    banned = word_ids(llama.tokenizer, ["So", "Wait"]) + plain.token_ids.tolist()
    (masked,) = generate(llama, prompt, max_new_tokens=8, stop_ids=(), interventions=[Suppress(banned)])
    assert not set(masked.token_ids.tolist()) & set(banned)
    assert masked.token_ids[0] != plain.token_ids[0]


def test_config_builds_words_and_ids(llama) -> None:
    plug = SuppressConfig(words=["Wait"], ids=[5]).build(llama)
    assert 5 in plug.ids and set(word_ids(llama.tokenizer, ["Wait"])) <= set(plug.ids)
    with pytest.raises(ValueError, match="list of words"):
        SuppressConfig(words="Wait")  # type: ignore[arg-type]


def test_thinking_words_top_k_alphabetic(tmp_path) -> None:
    assert thinking_words(PAPER_LIST, 4) == ["So", "Let", "Hmm", "I"]  # skips " " and "\n\n"
    assert thinking_words(PAPER_LIST, 0) == []
    path = save_thinking_tokens(PAPER_LIST, tmp_path / "list.jsonl")
    assert thinking_words(load_thinking_tokens(path), 10)[-1] == "Wait"
    assert thinking_words(["Hmm", "\\", "Okay"], 2) == ["Hmm", "Okay"]
    with pytest.raises(ValueError, match="k must be"):
        thinking_words(PAPER_LIST, 99)


def test_random_control_words_reproducible(llama) -> None:
    tok = llama.tokenizer
    exclude = [t.word for t in PAPER_LIST]
    a = random_control_words(tok, 8, seed=3, exclude=exclude)
    assert a == random_control_words(llama, 8, seed=3, exclude=exclude)  # same seed, same words
    assert a[:3] == random_control_words(tok, 3, seed=3, exclude=exclude)  # nested arms
    assert a != random_control_words(tok, 8, seed=4, exclude=exclude)
    assert len(set(a)) == 8 and all(w.isalpha() and w.isascii() for w in a)
    assert not {w.lower() for w in a} & {w.strip().lower() for w in exclude}
    assert all(word_ids(tok, [w]) for w in a)  # every control word can be masked
