"""Thinking-token suppression (paper §6, Fig. 5): give chosen words probability exactly zero.

The paper masks k thinking tokens during decoding and, as a control, k random non-thinking
tokens. It publishes no code, so three choices here are ours:

* a word is masked over **every** vocabulary id that spells it up to surrounding whitespace and
  case (``"So"``, ``" So"``, ``"so"``, ``" SO"``, ...; :func:`mipeaks.lens.word_variant_ids` with
  ``case_sensitive=False``), so the model cannot route around the mask with a variant;
* "k thinking tokens" means the first k alphabetic words of the ranked list (:func:`thinking_words`);
* the control arm draws ordinary whole words of the vocabulary (:func:`random_control_words`),
  masked the same way, never one of the list's words.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float

from .generation import Intervention, Step
from .lens import ALPHABETIC, ThinkingToken, word_variant_ids
from .models import LoadedModel

__all__ = ["PAPER_FIG5", "Suppress", "SuppressConfig", "random_control_words", "thinking_words", "word_ids"]

#: Paper Fig. 5 as published: a plot only, no numbers in the text. Axis ranges are read from
#: the figure (approximate); the findings are the text's. The model is not stated (probably R1-Llama-8B).
PAPER_FIG5: tuple[dict[str, str], ...] = (
    {"benchmark": "GSM8K", "k shown": "0 to about 10", "accuracy range of the plot": "about 70-85%",
     "finding": "thinking-token suppression lowers accuracy clearly; random tokens: about no effect; "
                "not monotonic in k ('Wait' masked gives 'But wait')"},
    {"benchmark": "MATH500", "k shown": "0 to about 10", "accuracy range of the plot": "about 50-70%",
     "finding": "same"},
    {"benchmark": "AIME24", "k shown": "0 to about 10", "accuracy range of the plot": "about 10-30%",
     "finding": "same"},
)


def word_ids(tokenizer: Any, words: Iterable[str], *, case_sensitive: bool = False) -> list[int]:
    """Every vocabulary id spelling any of ``words`` (whitespace variants, and case unless asked).

    Args:
        tokenizer: a Hugging Face tokenizer or a :class:`~mipeaks.models.LoadedModel`.
        words: the words, e.g. ``["So", "Wait"]``.
        case_sensitive: keep the exact case (the official list's ids do); default: all cases.

    Returns:
        Sorted unique ids.

    Raises:
        ValueError: if a word has no single-token spelling in this vocabulary.
    """
    ids: set[int] = set()
    for word in words:
        found = word_variant_ids(tokenizer, word, case_sensitive=case_sensitive)
        if not found:
            raise ValueError(f"{word!r} is not a single token of this vocabulary in any variant")
        ids.update(found)
    return sorted(ids)


class Suppress(Intervention):
    """Logit processor: the given ids get logit ``-inf``, hence probability exactly 0.

    Args:
        ids: vocabulary ids to ban (e.g. a jsonl's ``token_ids``, or :func:`word_ids`).
    """

    def __init__(self, ids: Iterable[int]):
        self.ids = tuple(sorted({int(i) for i in ids}))
        self._index: torch.Tensor | None = None

    @classmethod
    def from_words(cls, tokenizer: Any, words: Iterable[str], *, case_sensitive: bool = False) -> Suppress:
        """Ban every id variant of ``words`` (see :func:`word_ids`)."""
        return cls(word_ids(tokenizer, words, case_sensitive=case_sensitive))

    def first_use(self, output_ids: Iterable[int]) -> int | None:
        """The first position of an unsuppressed greedy output holding a banned id (None: none).

        Under greedy decoding the suppressed run equals that output up to this position.
        """
        banned = set(self.ids)
        return next((j for j, token in enumerate(output_ids) if token in banned), None)

    def process_logits(self, step: Step, logits: Float[torch.Tensor, "B V"]) -> Float[torch.Tensor, "B V"]:
        """Set the banned columns to ``-inf`` (a new tensor; the input is left alone)."""
        if not self.ids:
            return logits
        if self._index is None or self._index.device != logits.device:
            if max(self.ids) >= logits.shape[-1]:
                raise ValueError(f"banned id {max(self.ids)} is outside the vocabulary ({logits.shape[-1]})")
            if len(self.ids) >= logits.shape[-1]:
                raise ValueError("Suppress would ban the whole vocabulary")
            self._index = torch.tensor(self.ids, dtype=torch.long, device=logits.device)
        return logits.index_fill(-1, self._index, float("-inf"))


def thinking_words(tokens: Sequence[ThinkingToken | str], k: int) -> list[str]:
    """The first ``k`` alphabetic words of a ranked thinking-token list (the paper's filter).

    Args:
        tokens: :class:`~mipeaks.lens.ThinkingToken` records (e.g. from
            :func:`~mipeaks.lens.load_thinking_tokens`) or plain words, most frequent first.
        k: how many words.

    Raises:
        ValueError: if ``k`` is negative or the list has fewer than ``k`` alphabetic words.
    """
    words = [t.word if isinstance(t, ThinkingToken) else str(t) for t in tokens]
    alpha = list(dict.fromkeys(w.strip() for w in words if ALPHABETIC.match(w.strip())))
    if k < 0 or k > len(alpha):
        raise ValueError(f"k must be in 0..{len(alpha)} (alphabetic words in the list), got {k}")
    return alpha[:k]


def random_control_words(tokenizer: Any, k: int, seed: int = 0, *, exclude: Iterable[str] = (),
                         min_length: int = 2) -> list[str]:
    """``k`` random ordinary words of the vocabulary: the control arm of Fig. 5.

    Candidates are ids that decode to a space followed by letters only (whole words, not word
    pieces), at least ``min_length`` letters, not in ``exclude`` (compared case-insensitively),
    deduplicated case-insensitively. The list is shuffled by ``random.Random(seed)`` and the first
    ``k`` taken, so the same tokenizer and seed give the same words, and a smaller ``k`` gives a
    prefix of a larger one (nested arms, like the thinking arm).

    Args:
        tokenizer: a Hugging Face tokenizer or a :class:`~mipeaks.models.LoadedModel`.
        k: how many words.
        seed: the seed.
        exclude: words never drawn (pass the whole thinking list).
        min_length: shortest word accepted.
    """
    tokenizer = getattr(tokenizer, "tokenizer", None) or tokenizer
    banned = {w.strip().lower() for w in exclude}
    texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], clean_up_tokenization_spaces=False)
    seen: dict[str, None] = {}
    for text in texts:
        word = text[1:]
        if text.startswith(" ") and len(word) >= min_length and ALPHABETIC.match(word):
            if word.lower() not in banned:
                seen.setdefault(word.lower(), None)
    pool = sorted(seen)
    if not 0 <= k <= len(pool):
        raise ValueError(f"k must be in 0..{len(pool)} (ordinary words available), got {k}")
    random.Random(seed).shuffle(pool)
    return pool[:k]


@dataclass(frozen=True)
class SuppressConfig:
    """Parameters of a suppression run (what :func:`mipeaks.evaluate.evaluate` records).

    Attributes:
        words: words banned over all their id variants.
        ids: extra explicit ids (e.g. a jsonl's ``token_ids``).
        case_sensitive: only same-case variants of ``words``.
    """

    words: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    case_sensitive: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.words, str):
            raise ValueError("words must be a list of words, not one string")
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))

    def build(self, model: LoadedModel) -> Suppress:
        """The :class:`Suppress` plug-in for ``model``'s vocabulary."""
        ids = word_ids(model.tokenizer, self.words, case_sensitive=self.case_sensitive) if self.words else []
        return Suppress([*ids, *self.ids])
