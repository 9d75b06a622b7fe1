"""Thinking-token test-time scaling, TTTS (paper §8, Fig. 7): a token-forcing plug-in of ``generate()``.

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
  ``max_tokens_per_call`` tokens, and counts only the continuation; here (``recipe="budget"``)
  the budget is the total, and continuations repeat while it lasts. ``recipe="official"``
  (:class:`TTTSConfig`) runs its recipe instead: base, word, one continuation of the budget;
* it grades only the 16-token answer output. So do we (``graded_text``); the full text is kept.

Implementation: :class:`TTTSForcing` runs the recipe inside one :func:`~mipeaks.generation.generate`
call (it forces the word and suffix ids, vetoes the stops it drops, ends the row after the answer),
so a left-padded batch decodes with one KV cache and no re-prefill per segment
(:func:`ttts_batch`). :func:`replay_budget` reads a smaller budget's reasoning off a larger
budget's greedy run (budget sweeps share that prefix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Bool, Int

from .generation import Intervention, Step, generate
from .models import LoadedModel

__all__ = ["ANSWER_SUFFIX", "PAPER_FIG7", "TTTSConfig", "TTTSForcing", "TTTSResult", "origin_generate", "replay_budget",
           "ttts_batch", "ttts_generate"]

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


def _check(total_budget: int, answer_tokens: int) -> None:
    if total_budget < 1:
        raise ValueError(f"total_budget must be >= 1, got {total_budget}")
    if answer_tokens < 1:
        raise ValueError(f"answer_tokens must be >= 1, got {answer_tokens}")


RECIPES = ("budget", "official")


def _check_recipe(recipe: str, base_tokens: int | None, total_budget: int, method: str) -> None:
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
    if method == "ttts" and recipe == "official":
        if base_tokens is None or base_tokens < 1:
            raise ValueError(f"recipe 'official' needs base_tokens >= 1 (the official code: 4096), got {base_tokens}")
    elif base_tokens is not None and method == "ttts" and not 1 <= base_tokens <= total_budget:
        raise ValueError(f"base_tokens must be in 1..total_budget ({total_budget}), got {base_tokens}")


class _Row:
    """One row's place in the TTTS/Origin recipe."""

    def __init__(self, base: int):
        self.kind, self.limit, self.cur = "base", base, []  # the free segment being generated
        self.queue: list[int] = []  # ids still to force
        self.qkind, self.qids = "", []  # the forced segment being emitted
        self.segments: list[tuple[str, list[int]]] = []
        self.used = self.continuations = 0
        self.done = False


class TTTSForcing(Intervention):
    """TTTS (or Origin) as a plug-in of :func:`~mipeaks.generation.generate`: one call decodes a batch.

    Each row runs the recipe of :func:`ttts_generate` on its own: where the model would stop
    (the stop is dropped) or a segment's budget is spent, the thinking word's ids are forced (the
    answer suffix's instead for Origin, when no room is left, or after an empty continuation),
    then ``answer_tokens`` free tokens run and the row ends. The KV cache is kept throughout.

    Args:
        word_ids: the thinking word's ids (None: Origin).
        base_tokens: the first segment's limit.
        total_budget: the most reasoning tokens.
        suffix_ids: the answer suffix's ids.
        answer_tokens: the most answer tokens.
        stop_ids: ids the model stops with.
        recipe: ``"budget"`` (ours) or ``"official"`` (one word after the base, one continuation of
            ``total_budget`` tokens; see :class:`TTTSConfig`).
    """

    def __init__(self, word_ids: list[int] | None, base_tokens: int, total_budget: int, suffix_ids: list[int],
                 answer_tokens: int, stop_ids: Sequence[int], recipe: str = "budget"):
        self.word_ids, self.base, self.total = word_ids, base_tokens, total_budget
        self.suffix_ids, self.answer_tokens, self.stop = suffix_ids, answer_tokens, set(stop_ids)
        self.official = recipe == "official" and word_ids is not None
        self.rows: list[_Row] = []

    @property
    def max_new_tokens(self) -> int:
        """The most tokens a row can emit: reasoning, suffix and answer."""
        reasoning = self.base + len(self.word_ids or ()) + self.total if self.official else self.total
        return reasoning + len(self.suffix_ids) + self.answer_tokens

    def start(self, batch_size: int) -> None:
        self.rows = [_Row(self.base) for _ in range(batch_size)]

    def _end_segment(self, row: _Row) -> None:
        """Close a free reasoning segment; queue the word (room left) or the suffix."""
        row.segments.append((row.kind, row.cur))
        row.used += len(row.cur)
        empty_continuation = row.kind == "continue" and not row.cur
        w = self.word_ids
        if self.official:
            room = row.kind == "base"
        else:
            room = w is not None and not empty_continuation and self.total - row.used > len(w)
        if room:
            row.queue, row.qkind = list(w), "word"
            row.used += len(w)
            row.continuations += 1
        else:
            row.queue, row.qkind = list(self.suffix_ids), "suffix"
        row.qids, row.cur = [], []

    def force(self, step: Step) -> Int[torch.Tensor, "B"]:
        """Queued ids; a spent segment's budget queues the word or the suffix first."""
        out = [-1] * len(self.rows)
        for r, active in enumerate(step.active.tolist()):  # one device sync per step, not per row
            row = self.rows[r]
            if row.done or not active:
                continue
            if not row.queue and row.kind in ("base", "continue") and len(row.cur) >= row.limit:
                self._end_segment(row)
            if row.queue:
                out[r] = row.queue[0]
        return torch.tensor(out, dtype=torch.long, device=step.tokens.device)

    def review(self, step: Step, token: Int[torch.Tensor, "B"]) -> Int[torch.Tensor, "B"]:
        """Record each row's token; a stop in the reasoning is replaced by the word or suffix."""
        tokens = token.tolist()
        for r, active in enumerate(step.active.tolist()):
            row = self.rows[r]
            if row.done or not active:
                continue
            t = tokens[r]
            if not row.queue and row.kind in ("base", "continue"):
                if t not in self.stop:
                    row.cur.append(t)
                    continue
                self._end_segment(row)  # veto the stop
                t = tokens[r] = row.queue[0]
            if row.queue:
                row.qids.append(row.queue.pop(0))
                if not row.queue:
                    row.segments.append((row.qkind, row.qids))
                    if row.qkind == "word":
                        row.kind, row.limit = "continue", self.total if self.official else self.total - row.used
                    else:
                        row.kind, row.limit = "answer", self.answer_tokens
                continue
            if t not in self.stop:  # the answer
                row.cur.append(t)
            if t in self.stop or len(row.cur) >= self.answer_tokens:
                row.segments.append(("answer", row.cur))
                row.done = True
        return torch.tensor(tokens, dtype=token.dtype, device=token.device)

    def finished(self, step: Step, token: Int[torch.Tensor, "B"]) -> Bool[torch.Tensor, "B"]:
        """Rows whose answer is complete."""
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool, device=token.device)

    def result(self, r: int, prompt_ids: Int[torch.Tensor, "L"], seconds: float) -> TTTSResult:
        """Row ``r`` as a :class:`TTTSResult`."""
        row = self.rows[r]
        if not row.done:
            raise RuntimeError(f"row {r} ended before its answer")
        counted = ("continue",) if self.official else ("base", "word", "continue")
        reasoning = sum(len(ids) for kind, ids in row.segments if kind in counted)
        return TTTSResult(prompt_ids=prompt_ids, segments=list(row.segments), reasoning_tokens=reasoning,
                          continuations=row.continuations, seconds=seconds)


def ttts_batch(
    model: LoadedModel,
    prompts: Sequence[Int[torch.Tensor, "L"] | Sequence[int]],
    *,
    method: str = "ttts",
    word: str = "Wait",
    base_tokens: int | None = None,
    total_budget: int,
    answer_suffix: str = ANSWER_SUFFIX,
    answer_tokens: int = 16,
    interventions: Sequence[Intervention] = (),
    recipe: str = "budget",
) -> list[TTTSResult]:
    """TTTS or Origin for a batch of prompts in one :func:`~mipeaks.generation.generate` call.

    Rows are left-padded and continue, take their words and stop on their own; each row's result
    is the one :func:`ttts_generate` (or :func:`origin_generate`) gives for it alone.

    Args:
        model: the model.
        prompts: the encoded prompts.
        method: ``"ttts"`` or ``"origin"``.
        word, base_tokens, total_budget, answer_suffix, answer_tokens: see :func:`ttts_generate`.
        interventions: plug-ins applied before the forcing (e.g. a :class:`~mipeaks.suppression.Suppress`).
        recipe: ``"budget"`` or ``"official"`` (TTTS only; see :class:`TTTSConfig`).

    Returns:
        One :class:`TTTSResult` per prompt (``seconds``: the batch's time shared equally).
    """
    if method not in ("ttts", "origin"):
        raise ValueError(f"method must be 'ttts' or 'origin', got {method!r}")
    _check(total_budget, answer_tokens)
    _check_recipe(recipe, base_tokens, total_budget, method)
    base = total_budget if base_tokens is None or method == "origin" else base_tokens
    words = _encode(model, word if word[:1].isspace() else " " + word) if method == "ttts" else None
    rows = [torch.as_tensor(p, dtype=torch.long).flatten() for p in prompts]
    plugin = TTTSForcing(words, base, total_budget, _encode(model, answer_suffix), answer_tokens,
                         model.eos_token_ids(), recipe=recipe)
    gens = generate(model, rows, max_new_tokens=plugin.max_new_tokens, interventions=[*interventions, plugin])
    out = []
    for r, g in enumerate(gens):
        res = plugin.result(r, rows[r], g.seconds / len(gens))
        got = g.token_ids.tolist()
        if got[: len(res.token_ids)] != res.token_ids or len(got) - len(res.token_ids) not in (0, 1):
            raise RuntimeError(f"row {r}: the recorded segments disagree with the decoded ids")
        out.append(res)
    return out


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
        interventions: plug-ins applied at every step (e.g. a :class:`Suppress`).

    Returns:
        A :class:`TTTSResult`.
    """
    return ttts_batch(model, [prompt_ids], word=word, base_tokens=base_tokens, total_budget=total_budget,
                      answer_suffix=answer_suffix, answer_tokens=answer_tokens, interventions=interventions)[0]


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
        interventions: plug-ins applied at every step.

    Returns:
        A :class:`TTTSResult` with a ``"base"``, a ``"suffix"`` and an ``"answer"`` segment.
    """
    return ttts_batch(model, [prompt_ids], method="origin", total_budget=total_budget,
                      answer_suffix=answer_suffix, answer_tokens=answer_tokens, interventions=interventions)[0]


def _limits(segments: Sequence[tuple[str, Sequence[int]]], total: int, base: int, official: bool) -> list[int]:
    """The token limit each free reasoning segment of a run had (base, then each continuation)."""
    limits, used = [], 0
    for kind, ids in segments:
        if kind == "base":
            limits.append(base)
        elif kind == "word":
            limits.append(total if official else total - used - len(ids))
        if kind in ("base", "word", "continue"):
            used += len(ids)
    return limits


def replay_budget(
    source: Sequence[tuple[str, Sequence[int]]],
    *,
    source_budget: int,
    source_base: int | None,
    budget: int,
    base_tokens: int | None,
    word_len: int | None,
    source_recipe: str = "budget",
    recipe: str = "budget",
) -> list[tuple[str, list[int]]] | None:
    """A run's reasoning segments at a smaller ``budget``, read off a greedy run at ``source_budget``.

    Under greedy decoding a run sees the same prefix, so makes the same choices, as the source until
    its own rules force something else. This simulates :func:`ttts_generate`'s rules with the
    source's segments as the model's choices: a segment of the source shorter than its limit ended
    with a stop. The source must use the same word (and Origin has ``word_len=None``); an Origin
    target may replay a TTTS source, whose base segment is Origin's reasoning.

    Args:
        source: the source run's segments ``(kind, ids)`` (its suffix and answer are ignored).
        source_budget: the source's ``total_budget``.
        source_base: the source's ``base_tokens`` (None: its budget; an Origin source: its budget).
        budget: the target budget.
        base_tokens: the target's ``base_tokens`` (None: its budget; ignored for Origin).
        word_len: the number of ids of the target's word (None: the target is Origin).
        source_recipe: the source's :attr:`TTTSConfig.recipe` (an Origin source: ``"budget"``).
        recipe: the target's recipe (a TTTS target reads only a source of the same recipe).

    Returns:
        The target's reasoning segments, or None where the source cannot tell (it was cut before
        the target would stop).
    """
    free = [list(ids) for kind, ids in source if kind in ("base", "continue")]
    words = [kind for kind, _ in source if kind == "word"]
    slen = len(next((ids for kind, ids in source if kind == "word"), ())) or (word_len or 0)
    limits = _limits(source, source_budget, source_base or source_budget, source_recipe == "official")

    cut = [False]  # a source segment was cut short: the target's later inputs differ from the source's

    def take(i: int, n: int) -> list[int] | None:
        if i >= len(free) or cut[0]:
            return None
        ids = free[i]
        if len(ids) >= n:
            cut[0] = len(ids) > n
            return ids[:n]
        return ids if len(ids) < limits[i] else None  # shorter than its limit: it stopped

    official = recipe == "official" and word_len is not None
    if official != (source_recipe == "official") and word_len is not None:
        return None
    base = budget if base_tokens is None or word_len is None else base_tokens
    ids = take(0, base)
    if ids is None:
        return None
    out, used = [("base", ids)], len(ids)
    if word_len is None:
        return out
    if words and slen != word_len:
        return None
    if official:  # one word, one continuation of the budget
        ids = take(1, budget)
        return None if ids is None or not words else out + [("word", list(next(s for k, s in source if k == "word"))),
                                                             ("continue", ids)]
    i = 1
    while budget - used > word_len:
        ids = take(i, budget - used - word_len)
        if ids is None or i > len(words):
            return None
        out += [("word", list(next(s for k, s in source if k == "word"))), ("continue", ids)]
        used += word_len + len(ids)
        i += 1
        if not ids:
            break
    return out


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
        recipe: TTTS's rules. ``"budget"`` (ours): ``total_budget`` bounds every reasoning token and
            words are appended while it lasts. ``"official"`` (``TTTS_evaluate.py``): a base generation
            of ``base_tokens`` (required; the code: 4096), the word appended once (stopped or cut),
            **one** continuation of ``total_budget`` tokens (the code's ``token_budget``; only it is
            counted in ``reasoning_tokens``), then the suffix and the answer. Origin ignores it.
    """

    total_budget: int
    word: str = "Wait"
    base_tokens: int | None = None
    answer_tokens: int = 16
    answer_suffix: str = ANSWER_SUFFIX
    method: str = "ttts"
    recipe: str = "budget"

    def __post_init__(self) -> None:
        if self.method not in ("ttts", "origin"):
            raise ValueError(f"method must be 'ttts' or 'origin', got {self.method!r}")
        _check(self.total_budget, self.answer_tokens)
        if self.method == "ttts" or self.recipe != "official":
            _check_recipe(self.recipe, self.base_tokens, self.total_budget, "ttts")

    def run(self, model: LoadedModel, prompt_ids: Int[torch.Tensor, "L"],
            interventions: Sequence[Intervention] = ()) -> TTTSResult:
        """Run this method on one prompt."""
        return self.run_batch(model, [prompt_ids], interventions)[0]

    def run_batch(self, model: LoadedModel, prompts: Sequence[Int[torch.Tensor, "L"]],
                  interventions: Sequence[Intervention] = ()) -> list[TTTSResult]:
        """Run this method on a batch of prompts in one generation (see :func:`ttts_batch`)."""
        return ttts_batch(model, prompts, method=self.method, word=self.word, base_tokens=self.base_tokens,
                          total_budget=self.total_budget, answer_suffix=self.answer_suffix,
                          answer_tokens=self.answer_tokens, interventions=interventions, recipe=self.recipe)
