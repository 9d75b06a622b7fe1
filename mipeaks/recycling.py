"""Representation Recycling (paper §7, Fig. 6): run block ℓ* twice when a thinking token comes up.

Per decoding step (a plug-in of :func:`mipeaks.generation.generate`):

1. The regular pass runs; a hook on ``blocks.{ℓ*}.hook_resid_post`` saves the block's output at
   the last position.
2. If the greedy candidate is a trigger id and a seeded coin with probability ``p`` says so,
   the core recomputes the step with a hook on ``blocks.{ℓ*}.hook_resid_pre`` that replaces the
   block's input at the last position by the saved output: ``h' = TF_ℓ*(TF_ℓ*(h))``. Every
   later block continues from ``h'``.
3. The emitted token is the argmax of the recomputed pass (it may differ from the candidate).

Differences from the official ``RR_model.RecursiveThinkingModel.generate``:

* ``p=0.5`` reproduces its ``random.random() < 0.5``; ``p=1`` follows the paper's text.
* Its coin is one global stream seeded once per run, so a problem's coins depend on every
  problem before it. Here each row has its own coin, seeded by ``seed`` and the row's prompt
  ids: a problem's result depends only on itself (resumable, order- and batch-independent),
  and different problems still get different coins.
* It re-runs the step with the same past. Under the transformers version it pins (4.46.1) every
  call rebuilds a fresh cache from the returned legacy tuple, so each recycled position keeps
  **one** KV entry, the recycled pass's; the core crops the cache before recomputing and keeps
  the same single entry.
* It stops only when the *regular* pass's candidate is EOS; the core stops on the *emitted*
  token (the recycled pass's argmax), so the two differ when recycling turns EOS into another
  token or another token into EOS.

Only TransformerLens hook names are used, so any architecture :func:`~mipeaks.models.load_model`
supports works.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Bool, Int

from .generation import Hook, Intervention, Step
from .models import LoadedModel
from .suppression import word_ids

__all__ = ["PAPER_FIG6", "PAPER_RR", "PAPER_RR_WORDS", "Recycle", "RecycleConfig", "layer_text", "paper_layer"]

#: The official run's trigger set: the first 10 alphabetic words of the R1-Llama-8B jsonl.
PAPER_RR_WORDS: tuple[str, ...] = ("So", "Let", "Hmm", "I", "The", "Okay", "That", "First", "Now", "Wait")

#: Paper/official settings per model (``run_RR.sh``; ℓ* is 0-based). R1-Qwen-7B's ℓ* is not published.
PAPER_RR: dict[str, dict[str, Any]] = {
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": dict(
        layer=23, words=PAPER_RR_WORDS, p=0.5, seed=0, max_new_tokens=16000, dataset="aime24",
    ),
}


#: Paper Fig. 6 (R1-Llama-8B; bars only). The +20% AIME24 headline is stated; the accuracies

def paper_layer(n_layers: int) -> int:
    """ℓ* at the official run's relative depth: ``round(23 / 31 * (n_layers - 1))`` (23 of 32 blocks, 0-based).

    Raises:
        ValueError: ``n_layers < 1``.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    return round(23 / 31 * (n_layers - 1))


def layer_text(layer: int, n_layers: int) -> str:
    """How a run's ℓ* relates to the official one, e.g. ``"ℓ* = 22 (block 23 of 30): the official run's
    relative depth (23 of 32)"``; negative indices count from the end."""
    index = layer % n_layers if -n_layers <= layer < n_layers else layer
    text = f"ℓ* = {index} (block {index + 1} of {n_layers})"
    if n_layers == 32 and index == 23:
        return text + ": the official run's layer"
    if index == paper_layer(n_layers):
        return text + ": the official run's relative depth (23 of 32 blocks)"
    return text + f": not the official run's relative depth (that would be {paper_layer(n_layers)})"

#: behind it are inferred (y-axis 30-50%, n=30: most likely 10 -> 12 problems).
PAPER_FIG6: tuple[dict[str, str], ...] = (
    {"benchmark": "AIME24", "l*": "23 of 32", "p": "0.5 (code) / 1 (text)", "max tokens": "16000",
     "Origin": "33.3% (10/30, inferred)", "RR": "40.0% (12/30, inferred)", "relative change": "+20% (stated)"},
    {"benchmark": "GSM8K, MATH500", "l*": "23 of 32", "p": "0.5 (code) / 1 (text)", "max tokens": "16000",
     "Origin": "bars only", "RR": "bars only", "relative change": "RR > Origin (stated)"},
)


class Recycle(Intervention):
    """Representation Recycling as a plug-in of :func:`~mipeaks.generation.generate`.

    Args:
        layer: ℓ*, the block run twice (0-based).
        trigger_ids: ids whose appearance as the greedy candidate triggers a recycle.
        p: probability of recycling on a trigger (0.5: official code; 1: the paper's text).
        seed: seed of the coins (each row's coin also depends on its prompt).

    Attributes:
        triggers: per row of the last generation, how many steps had a trigger candidate.
        recycles: per row, how many steps were recomputed.
    """

    def __init__(self, layer: int, trigger_ids: Iterable[int], p: float = 0.5, seed: int = 0):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.layer, self.p, self.seed = int(layer), float(p), int(seed)
        self.trigger_ids = tuple(sorted({int(i) for i in trigger_ids}))
        self._saved: torch.Tensor | None = None
        self._triggers: torch.Tensor | None = None
        self._resume: tuple[list[list[int]], list[int]] | None = None
        self.triggers: list[int] = []
        self.recycles: list[int] = []

    def start(self, batch_size: int) -> None:
        """Reset counters (the coins are seeded at the first step, from the prompts)."""
        self.triggers, self.recycles = [0] * batch_size, [0] * batch_size
        self._coins: list[random.Random] = []
        self._saved = None
        if self._resume is not None:
            if len(self._resume[0]) != batch_size:
                raise ValueError(f"resume() was given {len(self._resume[0])} rows, the batch has {batch_size}")
            self.triggers = list(self._resume[1])

    def coin(self, model: LoadedModel, prompt_ids: list[int]) -> random.Random:
        """The coin of a row whose prompt is ``prompt_ids``: seeded by ``(seed, ids)``, left padding stripped."""
        pads = {model.tokenizer.pad_token_id, *model.eos_token_ids()}
        start = next((i for i, t in enumerate(prompt_ids) if t not in pads), len(prompt_ids))
        return random.Random(hashlib.sha256(f"{self.seed}:{prompt_ids[start:]}".encode()).digest())

    def resume(self, prompts: list[list[int]] | None, draws: list[int] | None = None) -> None:
        """Make the next generation continue runs begun elsewhere (None: start afresh, the default).

        Row ``r`` then keys its coin by ``prompts[r]`` (the original prompt, not the prompt given to
        ``generate``, which holds a prefix of the output) and skips the ``draws[r]`` coins the prefix
        already drew; they count as triggers that did not recycle.
        """
        self._resume = None if prompts is None else ([list(p) for p in prompts], list(draws or [0] * len(prompts)))

    def _seed_coins(self, step: Step) -> None:
        """One coin per row, seeded by ``(seed, prompt ids)`` (see :meth:`coin`, :meth:`resume`)."""
        rows = step.tokens.tolist() if self._resume is None else self._resume[0]
        for r, row in enumerate(rows):
            self._coins.append(self.coin(step.model, row))
            for _ in range(0 if self._resume is None else self._resume[1][r]):
                self._coins[-1].random()

    def first_recycle(self, model: LoadedModel, prompt_ids: list[int], output_ids: list[int]) -> tuple[int | None, int]:
        """Where a run would first recycle, read off the unrecycled greedy output of the same prompt.

        Until its first recycle a run's greedy candidates are that output's tokens; its coin is
        drawn on each trigger among them, as in a stand-alone run.

        Returns:
            ``(j, draws)``: the first recycled step and the coins drawn before it, or
            ``(None, triggers)`` when no step of the output recycles.
        """
        coin, draws = self.coin(model, list(prompt_ids)), 0
        triggers = set(self.trigger_ids)
        for j, token in enumerate(output_ids):
            if token in triggers:
                if coin.random() < self.p:
                    return j, draws
                draws += 1
        return None, draws

    def hooks(self, model: LoadedModel) -> list[Hook]:
        """Save the last-position output of block ℓ* on every pass."""

        def extract(resid: torch.Tensor, *, hook: Any) -> torch.Tensor:
            self._saved = resid[:, -1].detach().clone()
            return resid

        return [(f"blocks.{model.resolve_layer(self.layer)}.hook_resid_post", extract)]

    def redo(self, step: Step, candidate: Int[torch.Tensor, "B"]) -> Bool[torch.Tensor, "B"] | None:
        """Rows whose candidate is a trigger and whose coin comes up (the coin is drawn only then)."""
        if not self.trigger_ids:
            return None
        if not self._coins:
            self._seed_coins(step)
        if self._triggers is None or self._triggers.device != candidate.device:
            self._triggers = torch.tensor(self.trigger_ids, dtype=torch.long, device=candidate.device)
        hit = step.active & torch.isin(candidate, self._triggers)
        rows = torch.zeros_like(hit)
        for r in hit.nonzero().flatten().tolist():
            self.triggers[r] += 1
            if self._coins[r].random() < self.p:
                rows[r] = True
                self.recycles[r] += 1
        return rows

    def redo_hooks(self, step: Step, rows: Bool[torch.Tensor, "B"]) -> list[Hook]:
        """Feed block ℓ*'s saved output back as its input at the last position of ``rows``."""
        saved = self._saved
        if saved is None:
            raise RuntimeError("Recycle.redo_hooks called before the regular pass saved a state")

        def inject(resid: torch.Tensor, *, hook: Any) -> torch.Tensor:
            resid = resid.clone()
            resid[rows, -1] = saved[rows].to(resid.dtype)
            return resid

        return [(f"blocks.{step.model.resolve_layer(self.layer)}.hook_resid_pre", inject)]

    @property
    def stats(self) -> dict[str, list[int]]:
        """``{"triggers": [...], "recycles": [...]}`` per row of the last generation."""
        return {"triggers": list(self.triggers), "recycles": list(self.recycles)}


@dataclass(frozen=True)
class RecycleConfig:
    """Parameters of a Representation Recycling run.

    Attributes:
        layer: ℓ* (0-based; negative counts from the end).
        words: trigger words, every same-case whitespace variant (the official jsonl's ids).
        ids: extra explicit trigger ids.
        p: recycling probability per trigger (0.5: official code, 1: paper's text).
        seed: coin seed.
    """

    layer: int
    words: tuple[str, ...] = PAPER_RR_WORDS
    ids: tuple[int, ...] = ()
    p: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.words, str):
            raise ValueError("words must be a list of words, not one string")
        object.__setattr__(self, "words", tuple(self.words))
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))

    def build(self, model: LoadedModel) -> Recycle:
        """The :class:`Recycle` plug-in for ``model`` (checks the layer)."""
        layer = model.resolve_layer(self.layer)
        ids = word_ids(model.tokenizer, self.words, case_sensitive=True) if self.words else []
        return Recycle(layer, [*ids, *self.ids], p=self.p, seed=self.seed)
