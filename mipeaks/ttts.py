"""Thinking-token test-time scaling, TTTS (paper §8, Fig. 7): orchestration over ``generate()``.

:func:`ttts_generate`:

1. generate normally, up to ``base_tokens``;
2. while the total budget remains: drop the stop token, append a thinking word's ids (``" Wait"``)
   and continue **from token ids** (the text is never re-tokenised). As in the official code the
   word is appended whether the model stopped or was cut at ``base_tokens``;
3. append the answer suffix ``" Final Answer within \\boxed{}:"`` and generate at most
   ``answer_tokens`` tokens, so every run ends with an answer.

Budget: ``total_budget`` bounds the *reasoning* tokens, i.e. every token between the prompt and
the answer suffix: generated tokens plus the appended thinking-word ids (a dropped stop token no
longer counts). The suffix and the answer tokens lie outside it, identically for both methods.

:func:`origin_generate` is the baseline under the same budget: plain generation up to
``total_budget``, then the same forced answer. Forcing the answer for Origin too is our choice
(the paper does not say how its Origin curve was run): both methods are then graded on the same
kind of short final answer, so the comparison isolates what the extra thinking bought.

Differences from the official ``TTTS_evaluate.batch_TTTS_generation`` (vLLM):

* it rebuilds the text ``f"{q} {a} {word}"`` and re-tokenises it; here ids are appended (the word
  and the suffix are encoded on their own, without special tokens, with a leading space as in its
  join);
* it runs exactly one continuation of ``token_budget`` tokens after a base of
  ``max_tokens_per_call`` tokens, and counts only the continuation; here the budget is the total,
  and continuations repeat while it lasts;
* it grades only the 16-token answer output. So do we (``graded_text``); the full text is kept.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Int

from .generation import Intervention, generate
from .models import LoadedModel

__all__ = ["ANSWER_SUFFIX", "PAPER_FIG7", "TTTSConfig", "TTTSResult", "origin_generate", "ttts_generate"]

ANSWER_SUFFIX = " Final Answer within \\boxed{}:"

#: Paper Fig. 7 (R1-Llama-8B; plots only). Axis ranges are read from the figure (approximate);
#: the findings are the text's. The thinking word used is not stated.
PAPER_FIG7: tuple[dict[str, str], ...] = (
    {"benchmark": "GSM8K", "budgets shown": "256-2560", "accuracy range of the plot": "about 78-86%",
     "finding": "Origin plateaus after 1024; TTTS keeps rising"},
    {"benchmark": "MATH500", "budgets shown": "512-5120", "accuracy range of the plot": "about 60-75%",
     "finding": "plot only"},
    {"benchmark": "AIME24", "budgets shown": "about 3072-12288", "accuracy range of the plot": "about 25-35%",
     "finding": "Origin saturates at about 3000; TTTS dips at middle budgets, passes Origin beyond 6144"},
)


@dataclass
class TTTSResult:
    """One TTTS (or Origin) run.

    Attributes:
        prompt_ids: the prompt ``(L,)``.
        segments: ``(kind, ids)`` in order; kind is ``"base"``, ``"word"``, ``"continue"``,
            ``"suffix"`` or ``"answer"``. Stop tokens that were dropped are not included.
        reasoning_tokens: tokens counted against the budget (base + words + continuations).
        continuations: how many times the thinking word was appended.
        seconds: wall time.
    """

    prompt_ids: Int[torch.Tensor, "L"]
    segments: list[tuple[str, list[int]]] = field(default_factory=list)
    reasoning_tokens: int = 0
    continuations: int = 0
    seconds: float = 0.0

    @property
    def token_ids(self) -> list[int]:
        """Everything after the prompt, forced ids included."""
        return [i for _, ids in self.segments for i in ids]

    @property
    def answer_ids(self) -> list[int]:
        """The final answer tokens."""
        return [i for kind, ids in self.segments if kind == "answer" for i in ids]

    @property
    def generated_tokens(self) -> int:
        """Tokens the model produced (forced word and suffix ids excluded)."""
        return sum(len(ids) for kind, ids in self.segments if kind in ("base", "continue", "answer"))

    def text(self, tokenizer: Any) -> str:
        """The whole continuation as text."""
        return tokenizer.decode(self.token_ids, skip_special_tokens=True)

    def graded_text(self, tokenizer: Any) -> str:
        """The answer output alone: what is graded (as in the official code)."""
        return tokenizer.decode(self.answer_ids, skip_special_tokens=True)


def _encode(model: LoadedModel, text: str) -> list[int]:
    ids = model.tokenizer.encode(text, add_special_tokens=False)
    if not ids:
        raise ValueError(f"{text!r} encodes to no tokens")
    return list(ids)


def _run(model: LoadedModel, seq: list[int], n: int, interventions: Sequence[Intervention],
         stop: set[int]) -> list[int]:
    """Greedy continuation of ``seq`` by at most ``n`` tokens, a final stop token dropped."""
    out = generate(model, torch.tensor(seq), max_new_tokens=n, interventions=interventions)[0]
    ids = out.token_ids.tolist()
    return ids[:-1] if ids and ids[-1] in stop else ids


def _finish(model: LoadedModel, result: TTTSResult, seq: list[int], answer_suffix: str, answer_tokens: int,
            interventions: Sequence[Intervention], stop: set[int], t0: float) -> TTTSResult:
    suffix = _encode(model, answer_suffix)
    result.segments.append(("suffix", suffix))
    result.segments.append(("answer", _run(model, seq + suffix, answer_tokens, interventions, stop)))
    result.seconds = time.perf_counter() - t0
    return result


def _check(total_budget: int, answer_tokens: int) -> None:
    if total_budget < 1:
        raise ValueError(f"total_budget must be >= 1, got {total_budget}")
    if answer_tokens < 1:
        raise ValueError(f"answer_tokens must be >= 1, got {answer_tokens}")


def ttts_generate(
    model: LoadedModel,
    prompt_ids: Int[torch.Tensor, "L"] | Sequence[int],
    *,
    word: str = "Wait",
    base_tokens: int | None = None,
    total_budget: int,
    answer_suffix: str = ANSWER_SUFFIX,
    answer_tokens: int = 16,
    interventions: Sequence[Intervention] = (),
) -> TTTSResult:
    """Thinking-token test-time scaling for one prompt.

    Args:
        model: the model.
        prompt_ids: the encoded prompt.
        word: the thinking word; a leading space is added unless it starts with whitespace.
        base_tokens: tokens of the first, normal generation (None: the whole budget, so thinking
            words are only appended when the model stops early).
        total_budget: the most reasoning tokens (generated + appended word ids).
        answer_suffix: text forced before the answer.
        answer_tokens: the most answer tokens.
        interventions: plug-ins passed to every ``generate`` call (e.g. a :class:`Suppress`).

    Returns:
        A :class:`TTTSResult`.
    """
    _check(total_budget, answer_tokens)
    base = total_budget if base_tokens is None else base_tokens
    if not 1 <= base <= total_budget:
        raise ValueError(f"base_tokens must be in 1..total_budget ({total_budget}), got {base_tokens}")
    word_ids = _encode(model, word if word[:1].isspace() else " " + word)
    stop = set(model.eos_token_ids())
    t0 = time.perf_counter()
    seq = [int(i) for i in torch.as_tensor(prompt_ids).flatten().tolist()]
    result = TTTSResult(prompt_ids=torch.tensor(seq))
    ids = _run(model, seq, base, interventions, stop)
    result.segments.append(("base", ids))
    seq, used = seq + ids, len(ids)
    while total_budget - used > len(word_ids):  # room for the word and at least one token
        left = total_budget - used - len(word_ids)
        ids = _run(model, seq + word_ids, left, interventions, stop)
        result.segments += [("word", word_ids), ("continue", ids)]
        result.continuations += 1
        seq, used = seq + word_ids + ids, used + len(word_ids) + len(ids)
        if not ids:  # the model stops at once: more words would change nothing
            break
    result.reasoning_tokens = used
    return _finish(model, result, seq, answer_suffix, answer_tokens, interventions, stop, t0)


def origin_generate(
    model: LoadedModel,
    prompt_ids: Int[torch.Tensor, "L"] | Sequence[int],
    *,
    total_budget: int,
    answer_suffix: str = ANSWER_SUFFIX,
    answer_tokens: int = 16,
    interventions: Sequence[Intervention] = (),
) -> TTTSResult:
    """The Origin baseline under the same budget: plain generation, then the same forced answer.

    Args:
        model: the model.
        prompt_ids: the encoded prompt.
        total_budget: the most reasoning tokens.
        answer_suffix: text forced before the answer.
        answer_tokens: the most answer tokens.
        interventions: plug-ins passed to every ``generate`` call.

    Returns:
        A :class:`TTTSResult` with a ``"base"``, a ``"suffix"`` and an ``"answer"`` segment.
    """
    _check(total_budget, answer_tokens)
    stop = set(model.eos_token_ids())
    t0 = time.perf_counter()
    seq = [int(i) for i in torch.as_tensor(prompt_ids).flatten().tolist()]
    result = TTTSResult(prompt_ids=torch.tensor(seq))
    ids = _run(model, seq, total_budget, interventions, stop)
    result.segments.append(("base", ids))
    result.reasoning_tokens = len(ids)
    return _finish(model, result, seq + ids, answer_suffix, answer_tokens, interventions, stop, t0)


@dataclass(frozen=True)
class TTTSConfig:
    """Parameters of a TTTS or Origin run.

    Attributes:
        total_budget: the most reasoning tokens per problem.
        word: the thinking word appended by TTTS.
        base_tokens: TTTS's first generation (None: the whole budget).
        answer_tokens: the most answer tokens (the official code: 16).
        answer_suffix: forced before the answer.
        method: ``"ttts"`` or ``"origin"``.
    """

    total_budget: int
    word: str = "Wait"
    base_tokens: int | None = None
    answer_tokens: int = 16
    answer_suffix: str = ANSWER_SUFFIX
    method: str = "ttts"

    def __post_init__(self) -> None:
        if self.method not in ("ttts", "origin"):
            raise ValueError(f"method must be 'ttts' or 'origin', got {self.method!r}")
        _check(self.total_budget, self.answer_tokens)
        if self.base_tokens is not None and not 1 <= self.base_tokens <= self.total_budget:
            raise ValueError(f"base_tokens must be in 1..total_budget ({self.total_budget}), got {self.base_tokens}")

    def run(self, model: LoadedModel, prompt_ids: Int[torch.Tensor, "L"],
            interventions: Sequence[Intervention] = ()) -> TTTSResult:
        """Run this method on one prompt."""
        common = dict(total_budget=self.total_budget, answer_suffix=self.answer_suffix,
                      answer_tokens=self.answer_tokens, interventions=interventions)
        if self.method == "origin":
            return origin_generate(model, prompt_ids, **common)
        return ttts_generate(model, prompt_ids, word=self.word, base_tokens=self.base_tokens, **common)
