"""Teacher forcing: one sequence through the model in chunks, with O(L) memory.

Every teacher-forced pass of the package (the gold-answer score
:func:`mipeaks.evaluate.gold_logprob`, the gold representation
:func:`mipeaks.collect.gold_representation`, re-read states
:func:`mipeaks.layers.teacher_forced_states` / :func:`~mipeaks.layers.layer_traces`) is
:func:`teacher_force`. It feeds the sequence ``chunk_size`` tokens at a time through a KV cache,
inside :meth:`~mipeaks.models.LoadedModel.unbridged` (only the blocks whose states are read stay
bridged; attention runs as SDPA). No ``heads x L x L`` score tensor exists: the largest
activation is ``chunk_size x L`` (the attention mask) or ``chunk_size x d_ff``, so memory grows
linearly with ``L``. States are read at the TransformerLens hook ``blocks.{L}.hook_resid_post``,
exactly as during decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from jaxtyping import Float, Int

from .models import LoadedModel

__all__ = ["DEFAULT_CHUNK", "Forced", "teacher_force"]

#: Tokens per forward pass of :func:`teacher_force`.
DEFAULT_CHUNK = 512


@dataclass
class Forced:
    """What one teacher-forced pass returns.

    Attributes:
        states: ``{layer: (L - states_from, d_model)}`` float32 CPU states of
            ``blocks.{layer}.hook_resid_post`` at positions ``states_from..L-1``.
        logits: ``(K, V)`` float32 next-token logits of the last ``K = last_logits`` positions
            (on the model's device; empty when ``last_logits=0``).
        forward_calls: number of model forward passes made (one per chunk).
    """

    states: dict[int, Float[torch.Tensor, "S d"]] = field(default_factory=dict)
    logits: Float[torch.Tensor, "K V"] | None = None
    forward_calls: int = 0


def _chunks(length: int, chunk_size: int, last: int) -> list[tuple[int, int]]:
    """``[start, end)`` spans of ``chunk_size`` tokens; the last span holds the last ``last`` positions."""
    cut_limit = length - max(last, 1)
    cuts = list(range(0, max(cut_limit, 0) + 1, chunk_size)) if cut_limit > 0 else [0]
    return [(a, b) for a, b in zip(cuts, [*cuts[1:], length])]


@torch.inference_mode()
def teacher_force(
    model: LoadedModel,
    ids: Sequence[int] | Int[torch.Tensor, "L"],
    *,
    layers: Sequence[int | str] = (),
    states_from: int = 0,
    last_logits: int = 0,
    chunk_size: int = DEFAULT_CHUNK,
) -> Forced:
    """Run ``ids`` through the model, ``chunk_size`` tokens at a time through a KV cache.

    Args:
        model: the model.
        ids: the token ids ``(L,)``, used as given (no special tokens added).
        layers: blocks whose output (``blocks.{L}.hook_resid_post``) is returned.
        states_from: first position whose states are kept (earlier ones are dropped at once).
        last_logits: number of final positions whose next-token logits are returned.
        chunk_size: tokens per forward pass (memory is linear in ``L`` for a fixed chunk).

    Returns:
        A :class:`Forced`.

    Raises:
        ValueError: on an empty sequence, ``chunk_size < 1``, or ``states_from`` /
            ``last_logits`` outside ``[0, L]``; the message names the value.
    """
    from transformers import DynamicCache

    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    length = int(ids.numel())
    if length == 0:
        raise ValueError("teacher_force needs at least one token, got an empty sequence")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1, got {chunk_size!r}")
    if not 0 <= states_from < length:
        raise ValueError(f"states_from must lie in [0, {length}) for a {length}-token sequence, got {states_from}")
    if not 0 <= last_logits <= length:
        raise ValueError(f"last_logits must lie in [0, {length}] for a {length}-token sequence, got {last_logits}")
    indices = sorted({model.resolve_layer(layer) for layer in layers})
    kept: dict[int, list[torch.Tensor]] = {i: [] for i in indices}
    where = {"start": 0}

    def make(layer: int) -> Any:
        def hook(resid: torch.Tensor, *, hook: Any) -> torch.Tensor:
            skip = max(0, states_from - where["start"])
            kept[layer].append(resid[0, skip:].detach().float().cpu())
            return resid

        return hook

    hooks = [(model.hook_name(i), make(i)) for i in indices]
    device = model.device
    cache = DynamicCache()
    spans = _chunks(length, chunk_size, last_logits)
    logits = None
    with model.bridge.hooks(fwd_hooks=hooks), model.unbridged():
        for n, (start, end) in enumerate(spans):
            where["start"] = start
            final = n == len(spans) - 1
            out = model.hf_model(
                input_ids=ids[None, start:end].to(device),
                position_ids=torch.arange(start, end, device=device)[None],
                past_key_values=cache, use_cache=True,
                logits_to_keep=max(last_logits, 1) if final else 1,
            )
            if final and last_logits:
                logits = out.logits[0, -last_logits:].float()
            del out
    return Forced(
        states={i: torch.cat(kept[i])[: length - states_from] for i in indices},
        logits=logits, forward_calls=len(spans),
    )
