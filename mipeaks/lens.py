"""Thinking tokens: the tokens at MI peaks (paper_notes.md §4).

Paper vs official code:

* Paper: the token at a peak is read through a *logit lens* on the last-layer state,
  ``p_t = softmax(W_out h_t + b)``, ``z_t = argmax p_t`` (:func:`logit_lens`, :func:`lens_tokens`).
  For a decoder-only LM, ``W_out`` applied to a block output means the final norm followed by
  the unembedding, i.e. exactly what the model does to predict its next token.
* Official code: the token actually generated at the peak step. Under greedy decoding the two
  agree at the last layer (``tests/test_lens.py`` checks this); they differ at earlier layers or
  when sampling. :func:`peak_tokens` offers both (``mode="lens"`` / ``mode="generated"``).

Aggregation (:func:`count_thinking_tokens`) pools the peak tokens of all problems, keeps the
words whose ``.strip()`` matches ``^[a-zA-Z]+$`` and ranks them by frequency. Each resulting
:class:`ThinkingToken` carries every single-token vocabulary id that spells the word
(:func:`word_variant_ids`), so an intervention can mask all of them at once.

Files use the official jsonl layout, one object per line:
``{"word": "So", "freq": 394, "token_ids": [2100, 4516, 78012]}``.
"""

from __future__ import annotations

import json
import re
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int

__all__ = [
    "ALPHABETIC",
    "PAPER_FIG4_WORDS",
    "PAPER_THINKING_TOKENS_R1_LLAMA_8B",
    "PEAK_TOKEN_MODES",
    "TTTS_WORDS",
    "ThinkingToken",
    "count_thinking_tokens",
    "decode_each",
    "lens_tokens",
    "load_thinking_tokens",
    "logit_lens",
    "peak_tokens",
    "save_thinking_tokens",
    "word_key",
    "word_variant_ids",
]

#: The paper's filter on stripped peak words (official code): letters only.
ALPHABETIC = re.compile(r"^[a-zA-Z]+$")

# ---------------------------------------------------------------------------
# Published lists (the paper's, NOT ours). Source: paper_notes.md §4.
# ---------------------------------------------------------------------------

#: Official thinking-token list of DeepSeek-R1-Distill-Llama-8B (the official repository's
#: ``src/applications/data/DeepSeek-R1-Distill-Llama-8B.jsonl``) as (word, freq), unfiltered:
#: it still holds the non-alphabetic entries that the plotting code drops.
PAPER_THINKING_TOKENS_R1_LLAMA_8B: tuple[tuple[str, int], ...] = (
    ("So", 394), ("Let", 218), ("Hmm", 127), (" ", 118), ("\n\n", 114), ("I", 112),
    ("The", 89), ("Okay", 88), ("That", 81), ("First", 79), ("Now", 74), ("\\", 70),
    ("Wait", 68), ("But", 64), ("-", 47), ("Then", 45), ("Since", 45), ("\\(", 44),
    ("Therefore", 35), ("=", 32), ("1", 32), ("Maybe", 29), ("x", 28), ("\n", 27),
    ("If", 25), ("To", 24), ("**", 24), ("2", 20), ("(", 20), ("5", 17),
)

#: Words of the paper's Fig. 4 (R1-Llama-8B, top-15 alphabetic thinking tokens), in bar order.
PAPER_FIG4_WORDS: tuple[str, ...] = (
    "So", "Let", "Hmm", "I", "That", "Okay", "The", "Now", "First", "But", "Wait", "Since",
    "Then", "Therefore", "Maybe",
)

#: The thinking tokens used by thinking-token test-time scaling (TTTS), as printed in the paper.
TTTS_WORDS: tuple[str, ...] = (
    "So", "Let", "Hmm", "I", "Okay", "First", "Wait", "But", "Now", "Then", "Since",
    "Therefore", "If", "Maybe", "To",
)


# ---------------------------------------------------------------------------
# ThinkingToken and its jsonl file
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ThinkingToken:
    """One thinking token: a word, how often it sat at an MI peak, and its vocabulary ids.

    Attributes:
        word: the stripped decoded text (``"So"``), or the raw text for whitespace words.
        freq: number of peaks, pooled over problems, whose token spelled ``word``.
        token_ids: every single-token vocabulary id that spells ``word`` (see
            :func:`word_variant_ids`), sorted ascending.
    """

    word: str
    freq: int
    token_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.word, str):
            raise TypeError(f"word must be a str, got {type(self.word).__name__}")
        if isinstance(self.freq, bool) or not isinstance(self.freq, int) or self.freq < 0:
            raise ValueError(f"freq must be a non-negative int, got {self.freq!r}")
        ids = tuple(self.token_ids)
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids):
            raise ValueError(f"token_ids must be non-negative ints, got {list(ids)!r}")
        object.__setattr__(self, "token_ids", ids)

    def to_json(self) -> dict[str, Any]:
        """The jsonl record ``{"word", "freq", "token_ids"}``."""
        return {"word": self.word, "freq": self.freq, "token_ids": list(self.token_ids)}


def save_thinking_tokens(tokens: Iterable[ThinkingToken], path: str | Path) -> Path:
    """Write thinking tokens in the official jsonl layout (one JSON object per line).

    Args:
        tokens: the tokens, written in the given order.
        path: destination file; parent folders are created.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(t.to_json(), ensure_ascii=False) for t in tokens]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def load_thinking_tokens(path: str | Path) -> list[ThinkingToken]:
    """Read a thinking-token jsonl file (official layout); blank lines are skipped.

    Args:
        path: a file with one ``{"word": str, "freq": int, "token_ids": [int, ...]}`` per line.

    Returns:
        The tokens in file order.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: on a malformed line; the message names ``file:line`` and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"thinking-token file not found: {path}")
    out: list[ThinkingToken] = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: not valid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            missing = [k for k in ("word", "freq", "token_ids") if k not in record]
            if missing:
                raise ValueError(f"{where}: missing field(s) {missing}")
            word, freq, ids = record["word"], record["freq"], record["token_ids"]
            if not isinstance(word, str):
                raise ValueError(f"{where}: 'word' must be a string, got {word!r}")
            if isinstance(freq, bool) or not isinstance(freq, int) or freq < 0:
                raise ValueError(f"{where}: 'freq' must be a non-negative integer, got {freq!r}")
            if not isinstance(ids, list) or any(
                isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ids
            ):
                raise ValueError(f"{where}: 'token_ids' must be a list of non-negative integers")
            out.append(ThinkingToken(word, freq, tuple(ids)))
    return out


# ---------------------------------------------------------------------------
# Words and their vocabulary ids
# ---------------------------------------------------------------------------


def word_key(text: str) -> str:
    """The word a decoded token counts as.

    ``text.strip()`` when that is non-empty (``" So"`` -> ``"So"``); for whitespace-only text,
    the text with spaces (only) stripped, so newline runs keep their identity
    (``" \\n\\n"`` -> ``"\\n\\n"``); and pure-space text as is (``" "`` -> ``" "``). This matches
    the separate ``" "``, ``"\\n\\n"`` and ``"\\n"`` entries of the official list.

    Args:
        text: a decoded token.

    Returns:
        The grouping key.
    """
    return text.strip() or text.strip(" ") or text


def decode_each(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Each of ``ids`` decoded on its own (no clean-up of tokenization spaces), in order."""
    return tokenizer.batch_decode([[int(i)] for i in ids], clean_up_tokenization_spaces=False)


class _VocabIndex:
    """``word_key(decode(id)) -> ids`` for a whole vocabulary, built once per tokenizer."""

    def __init__(self, tokenizer: Any):
        size = len(tokenizer)
        texts = decode_each(tokenizer, range(size))
        self.exact: dict[str, list[int]] = {}
        self.folded: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            key = word_key(text)
            self.exact.setdefault(key, []).append(i)
            self.folded.setdefault(key.lower(), []).append(i)
        self.size = size


_INDEX: "weakref.WeakKeyDictionary[Any, _VocabIndex]" = weakref.WeakKeyDictionary()
_INDEX_FALLBACK: dict[tuple[str, str, int], _VocabIndex] = {}


def _vocab_index(tokenizer: Any) -> _VocabIndex:
    try:
        index = _INDEX.get(tokenizer)
    except TypeError:  # not weak-referenceable or unhashable: key on identity-ish fields
        key = (type(tokenizer).__name__, str(getattr(tokenizer, "name_or_path", "")), len(tokenizer))
        if key not in _INDEX_FALLBACK:
            _INDEX_FALLBACK[key] = _VocabIndex(tokenizer)
        return _INDEX_FALLBACK[key]
    if index is None or index.size != len(tokenizer):  # rebuilt if tokens were added
        index = _VocabIndex(tokenizer)
        _INDEX[tokenizer] = index
    return index


def _tokenizer_of(model_or_tokenizer: Any) -> Any:
    return getattr(model_or_tokenizer, "tokenizer", None) or model_or_tokenizer


def word_variant_ids(tokenizer: Any, word: str, *, case_sensitive: bool = True) -> list[int]:
    """Every single-token vocabulary id that spells ``word`` up to surrounding whitespace.

    An id matches when ``word_key(decode(id)) == word_key(word)`` (see :func:`word_key`), so
    ``"So"`` collects ``"So"``, ``" So"``, ``"\\tSo"``, ... With ``case_sensitive=False`` the
    comparison is case-folded and also collects ``"so"``, ``" so"``, ``"SO"``, ...

    Why case-sensitive by default: the official R1-Llama-8B list gives ``"Let"`` only two ids
    (``"Let"``, ``" Let"``) although Llama-3's vocabulary has ``"let"`` and ``" let"``, so the
    official ids are same-case whitespace variants. (Its ``"So"`` has three ids; the third is
    presumably another prefix variant. Its ``" "`` entry has no ids, whereas here ``" "``
    collects the pure-space token ``" "``.)

    A word that the tokenizer only spells with several tokens has no single id and gives ``[]``
    (or only its rare single-token spellings); mask such words by sequence, not by id.
    The decoded-vocabulary index is built once per tokenizer (about a second for 150k ids).

    Args:
        tokenizer: a Hugging Face tokenizer (or a :class:`~mipeaks.models.LoadedModel`).
        word: the word, e.g. ``"So"``.
        case_sensitive: match the case exactly (default, as the official list does).

    Returns:
        Sorted unique ids, possibly empty.
    """
    if not isinstance(word, str) or word == "":
        raise ValueError(f"word must be a non-empty string, got {word!r}")
    index = _vocab_index(_tokenizer_of(tokenizer))
    key = word_key(word)
    ids = index.exact.get(key, []) if case_sensitive else index.folded.get(key.lower(), [])
    return sorted(set(ids))


# ---------------------------------------------------------------------------
# Logit lens
# ---------------------------------------------------------------------------


def _unwrap(module: Any) -> Any:
    """The wrapped HF module of a TransformerLens bridge component (hooks bypassed), else itself."""
    inner = getattr(module, "original_component", None)
    return module if inner is None else inner


def _lens_modules(model: Any) -> tuple[Any, Any]:
    """``(final_norm, unembedding)`` of a :class:`~mipeaks.models.LoadedModel`.

    The bridge exposes both as ``ln_final`` / ``unembed`` for every architecture it supports
    (Llama, Qwen2, Qwen3, ...); their wrapped HF modules are used so that the lens fires no hooks
    and computes exactly what the model computes. Without them, the HF model's
    ``base_model.norm`` and ``get_output_embeddings()`` are used.
    """
    bridge = getattr(model, "bridge", None)
    norm = getattr(bridge, "ln_final", None)
    head = getattr(bridge, "unembed", None)
    hf = getattr(model, "hf_model", None)
    if norm is None and hf is not None:
        norm = getattr(getattr(hf, "base_model", None), "norm", None)
    if head is None and hf is not None:
        head = hf.get_output_embeddings()
    if norm is None or head is None:
        raise ValueError(
            f"cannot find the final norm and unembedding of {getattr(model, 'name', type(model).__name__)}: "
            f"expected bridge.ln_final/bridge.unembed or hf_model.base_model.norm/get_output_embeddings()"
        )
    return _unwrap(norm), _unwrap(head)


def _select_states(
    model: Any, states: Any, layer: int | str | None
) -> Float[torch.Tensor, "T d"]:
    """A ``(T, d)`` tensor from a tensor, a ``{layer: states}`` dict or a Generation."""
    states = getattr(states, "states", states)  # a Generation
    if isinstance(states, dict):
        if not states:
            raise ValueError("no states captured: generate with capture_layers=[...] first")
        index = model.resolve_layer("last" if layer is None else layer)
        if index not in states:
            raise ValueError(
                f"layer {layer!r} (block {index}) was not captured; captured blocks: {sorted(states)}"
            )
        states = states[index]
    states = torch.as_tensor(states)
    if states.ndim == 1:
        states = states[None]
    if states.ndim != 2:
        raise ValueError(f"states must have shape (T, d_model), got {tuple(states.shape)}")
    d_model = getattr(model, "d_model", None)
    if d_model is not None and states.shape[-1] != d_model:
        raise ValueError(f"states have width {states.shape[-1]}, the model's d_model is {d_model}")
    return states


def _lens_chunks(
    model: Any, states: Any, layer: int | str | None, chunk_size: int
) -> Iterable[Float[torch.Tensor, "C V"]]:
    """Yield lens logits ``(C, V)`` in float32, on the model's device, ``chunk_size`` rows at a time."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    h = _select_states(model, states, layer)
    norm, head = _lens_modules(model)
    weight = head.weight
    device = weight.device if weight.device.type != "meta" else model.device
    with torch.inference_mode():
        for start in range(0, h.shape[0], chunk_size):
            # States are stored as float32 copies; casting back to the model dtype is exact.
            chunk = h[start : start + chunk_size].to(device=device, dtype=weight.dtype)
            yield head(norm(chunk)).float()


def logit_lens(
    model: Any,
    states: Float[torch.Tensor, "T d"] | dict[int, torch.Tensor] | Any,
    *,
    layer: int | str | None = None,
    chunk_size: int = 256,
) -> Float[torch.Tensor, "T V"]:
    """Decode residual-stream states to vocabulary logits: ``W_out · norm(h_t) + b``.

    This is the paper's ``p_t = softmax(W_out h_t + b)`` (logits, before the softmax): the
    model's final norm then its unembedding, applied to block outputs
    (``blocks.{L}.hook_resid_post``, which precede the final norm). At the last block it
    reproduces the model's own next-token logits. Rows are processed ``chunk_size`` at a time, so
    device memory stays at ``chunk_size x V`` even for ``V`` = 152k.

    Args:
        model: a :class:`~mipeaks.models.LoadedModel`.
        states: ``(T, d_model)`` (or ``(d_model,)``) states, a ``{layer: (T, d)}`` dict, or a
            :class:`~mipeaks.generation.Generation` (its ``.states``).
        layer: which layer of a dict/Generation to decode (int, negative int or ``"last"``;
            default ``"last"``). Ignored for a tensor.
        chunk_size: rows per forward pass.

    Returns:
        float32 logits ``(T, V)`` on the CPU.

    Raises:
        ValueError: on a missing layer, a wrong shape, or a model without norm/unembedding.
    """
    return torch.cat([c.cpu() for c in _lens_chunks(model, states, layer, chunk_size)], dim=0)


def lens_tokens(
    model: Any,
    states: Float[torch.Tensor, "T d"] | dict[int, torch.Tensor] | Any,
    *,
    layer: int | str | None = None,
    chunk_size: int = 256,
) -> Int[torch.Tensor, "T"]:
    """Top-1 logit-lens token of each state, ``argmax_v (W_out · norm(h_t) + b)_v``.

    Same arguments as :func:`logit_lens`; only the argmax of each chunk is kept.

    Returns:
        int64 ids ``(T,)`` on the CPU.
    """
    return torch.cat([c.argmax(-1).cpu() for c in _lens_chunks(model, states, layer, chunk_size)])


# ---------------------------------------------------------------------------
# Peak tokens
# ---------------------------------------------------------------------------

PEAK_TOKEN_MODES: tuple[str, ...] = ("generated", "lens")


def peak_tokens(
    model: Any,
    trace: Any,
    peaks: Sequence[int] | Int[torch.Tensor, "P"] | Any,
    *,
    mode: str = "generated",
    layer: int | str = "last",
) -> list[int]:
    """The token at each MI peak of one generation.

    Step ``t`` of an MI trajectory belongs to the state ``states[t]``, which predicts
    ``token_ids[t]`` (see :class:`~mipeaks.generation.Generation`). Then:

    * ``mode="generated"`` (official code): ``token_ids[t]``, the token produced at the step.
      The official code's token list is one shorter than its state list and it pads the last
      index with the placeholder id 2; here both have length ``T``, so no placeholder occurs.
    * ``mode="lens"`` (paper): ``argmax`` of the logit lens of ``states[layer][t]``
      (:func:`lens_tokens`). At the last layer under greedy decoding this equals the generated
      token; at other layers it is what that layer "would say".

    Args:
        model: a :class:`~mipeaks.models.LoadedModel` (only needed for ``mode="lens"``; may be
            ``None`` for ``"generated"``).
        trace: a :class:`~mipeaks.generation.Generation` or a ``(token_ids, states)`` pair, with
            ``states`` a ``(T, d)`` tensor, a ``{layer: (T, d)}`` dict, or ``None`` for
            ``mode="generated"``.
        peaks: peak positions in ``[0, T)`` (e.g. from :func:`mipeaks.peaks.find_peaks`).
        mode: ``"generated"`` or ``"lens"``.
        layer: layer decoded by ``mode="lens"`` when ``states`` is a dict (default ``"last"``).

    Returns:
        One token id per peak, in the order of ``peaks``.

    Raises:
        ValueError: on an unknown mode, an out-of-range peak, or missing states for ``"lens"``.
    """
    if mode not in PEAK_TOKEN_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid options are {list(PEAK_TOKEN_MODES)}")
    if hasattr(trace, "token_ids"):
        token_ids, states = trace.token_ids, getattr(trace, "states", None)
    else:
        try:
            token_ids, states = trace
        except (TypeError, ValueError):
            raise ValueError("trace must be a Generation or a (token_ids, states) pair") from None
    token_ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    arr = np.asarray(peaks.cpu() if isinstance(peaks, torch.Tensor) else peaks)
    if arr.size and (arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"peaks must be a 1-D sequence of integer indices, got {arr.dtype} {arr.shape}")
    index = torch.as_tensor(arr.astype(np.int64).reshape(-1))
    n = int(token_ids.numel())
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
        raise ValueError(f"peak indices must lie in [0, {n}), got {index.min()}..{index.max()}")
    if mode == "generated":
        return token_ids[index].tolist()
    if model is None:
        raise ValueError("mode='lens' needs the model (for its final norm and unembedding)")
    if states is None or (isinstance(states, dict) and not states):
        raise ValueError("mode='lens' needs the captured states: generate with capture_layers=[...]")
    h = _select_states(model, states, layer)
    if h.shape[0] != n:
        raise ValueError(f"states have {h.shape[0]} steps but token_ids has {n}")
    if not index.numel():
        return []
    return lens_tokens(model, h[index]).tolist()


# ---------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------


def count_thinking_tokens(
    model_or_tokenizer: Any,
    token_id_lists: Iterable[Sequence[int] | Int[torch.Tensor, "P"]],
    *,
    alphabetic: bool = True,
    top: int | None = None,
    case_sensitive: bool = True,
    pool_whitespace: bool = True,
) -> list[ThinkingToken]:
    """Pool peak tokens over problems into a ranked thinking-token list (official aggregation).

    Each id is decoded on its own and counted under its word. With ``pool_whitespace=True`` the
    word is :func:`word_key` (the stripped text), so ``"So"`` and ``" So"`` count together, as in
    the official jsonl list (its ``So`` entry holds every variant's id). With
    ``pool_whitespace=False`` the raw decoded text is the word, so ``" So"`` and ``"So"`` are
    separate entries, as in the official plotting notebook's bar chart (Fig. 4). With
    ``alphabetic=True`` only words whose stripped text matches ``^[a-zA-Z]+$`` are kept, the
    paper's filter, which drops ``" "``, ``"\\n\\n"``, ``"\\("``, ``"1"``, ... Words are
    ranked by frequency, ties by word.

    Args:
        model_or_tokenizer: a :class:`~mipeaks.models.LoadedModel` or a tokenizer.
        token_id_lists: the peak tokens of each problem (e.g. from :func:`peak_tokens`).
        alphabetic: keep only alphabetic words.
        top: keep the ``top`` most frequent words (``None``: all). The paper's Fig. 4 shows 15.
        case_sensitive: passed to :func:`word_variant_ids` for each word's ``token_ids``
            (counting itself is always case-sensitive, like the official code).
        pool_whitespace: count whitespace variants of a word together (the jsonl list) or apart
            (the notebook's figure).

    Returns:
        :class:`ThinkingToken` s, most frequent first; pooled, each lists every vocabulary id of
        its word (:func:`word_variant_ids`), so interventions can mask all of them; unpooled,
        each lists the ids that decode to exactly its text.
    """
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 0):
        raise ValueError(f"top must be a non-negative int or None, got {top!r}")
    tokenizer = _tokenizer_of(model_or_tokenizer)
    ids: Counter[int] = Counter()
    for problem in token_id_lists:
        ids.update(int(i) for i in torch.as_tensor(problem, dtype=torch.long).flatten().tolist())
    unique = sorted(ids)
    texts = decode_each(tokenizer, unique)
    words: Counter[str] = Counter()
    raw_ids: dict[str, set[int]] = {}
    for i, text in zip(unique, texts):
        word = word_key(text)
        if alphabetic and not ALPHABETIC.match(word):
            continue
        if not pool_whitespace:
            word = text
            raw_ids.setdefault(word, set()).add(i)
        words[word] += ids[i]
    ranked = sorted(words.items(), key=lambda item: (-item[1], item[0]))
    if top is not None:
        ranked = ranked[:top]
    if not pool_whitespace:
        return [ThinkingToken(word, freq, tuple(sorted(raw_ids[word]))) for word, freq in ranked]
    return [
        ThinkingToken(word, freq, tuple(word_variant_ids(tokenizer, word, case_sensitive=case_sensitive)))
        for word, freq in ranked
    ]
