"""The one generation core: greedy decoding with a KV cache through TransformerLens hook points.

Every experiment in the package is this loop with different plug-ins:

* state capture (:mod:`mipeaks.collect`) adds hooks on ``blocks.{L}.hook_resid_post``;
* token suppression (:mod:`mipeaks.suppression`) is a logit processor;
* Representation Recycling (:mod:`mipeaks.recycling`) asks for a step to be recomputed with an
  extra hook (the KV cache is rolled back first, so each position keeps exactly one entry);
* thinking-token test-time scaling (:mod:`mipeaks.ttts`) forces the thinking word and answer suffix ids.

An :class:`Intervention` may implement any of :meth:`~Intervention.hooks`,
:meth:`~Intervention.process_logits`, :meth:`~Intervention.redo` and
:meth:`~Intervention.redo_hooks`, and force tokens or end rows with :meth:`~Intervention.force`,
:meth:`~Intervention.review` and :meth:`~Intervention.finished`. The loop calls the Hugging Face
model directly (the bridge has replaced its decoder layers in place, so TransformerLens hooks
fire) with explicit positions and masks, and computes logits for the last position only. It runs
inside :meth:`~mipeaks.models.LoadedModel.unbridged`: components with no hooked point are swapped
back for their Hugging Face modules and attention runs as SDPA, so a step costs what a plain
Hugging Face step costs plus the hooks actually requested.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from jaxtyping import Bool, Float, Int
from tqdm.auto import tqdm

from .models import LoadedModel

__all__ = ["Generation", "Intervention", "Step", "StateCapture", "generate", "left_pad"]

Hook = tuple[str, Callable[..., Any]]


@dataclass
class Step:
    """What an intervention sees at one decoding step.

    Attributes:
        index: 0 for the first generated token.
        tokens: every token so far, prompt included, left-padded: ``(B, L)``.
        active: rows still generating: ``(B,)``.
        model: the model being decoded.
    """

    index: int
    tokens: Int[torch.Tensor, "B L"]
    active: Bool[torch.Tensor, "B"]
    model: LoadedModel


class Intervention:
    """Base class for plug-ins of :func:`generate`; every method is optional (a no-op here)."""

    def hooks(self, model: LoadedModel) -> list[Hook]:
        """Forward hooks ``(hook_name, fn(tensor, *, hook))`` installed for the whole generation."""
        return []

    def start(self, batch_size: int) -> None:
        """Called once before the first step (reset per-generation state here)."""

    def process_logits(self, step: Step, logits: Float[torch.Tensor, "B V"]) -> Float[torch.Tensor, "B V"]:
        """Edit next-token logits before the greedy choice."""
        return logits

    def redo(self, step: Step, candidate: Int[torch.Tensor, "B"]) -> Bool[torch.Tensor, "B"] | None:
        """Rows whose step must be recomputed with :meth:`redo_hooks` (None or all-False: none)."""
        return None

    def redo_hooks(self, step: Step, rows: Bool[torch.Tensor, "B"]) -> list[Hook]:
        """Extra hooks for the recomputed pass of ``rows``."""
        return []

    # Token forcing (used by TTTS/Origin, :mod:`mipeaks.ttts`): all three are no-ops here.

    def force(self, step: Step) -> Int[torch.Tensor, "B"] | None:
        """Ids emitted at this step whatever the model says (``-1``: the model chooses); None: none.

        Forced rows are inactive for :meth:`process_logits` and :meth:`redo` at this step.
        """
        return None

    def review(self, step: Step, token: Int[torch.Tensor, "B"]) -> Int[torch.Tensor, "B"]:
        """The step's tokens after the choice, before the stop check: may replace some (veto a stop)."""
        return token

    def finished(self, step: Step, token: Int[torch.Tensor, "B"]) -> Bool[torch.Tensor, "B"] | None:
        """Rows that end after this step's token (stop reason ``"ended"``); None: none."""
        return None


class StateCapture(Intervention):
    """Record the last-position residual stream after the given blocks at every step.

    ``states[L][t]`` is the state that predicts generated token ``t`` (for ``t = 0`` the last
    prompt position), as in the paper's code. When a step is recomputed, the recomputed pass wins.
    """

    def __init__(self, layers: Sequence[int]):
        self.layers = tuple(layers)
        self._current: dict[int, torch.Tensor] = {}
        self.steps: dict[int, list[torch.Tensor]] = {}

    def hooks(self, model: LoadedModel) -> list[Hook]:
        def make(layer: int) -> Callable[..., Any]:
            def hook(resid: torch.Tensor, *, hook: Any) -> torch.Tensor:
                self._current[layer] = resid[:, -1].detach().float()
                return resid

            return hook

        return [(model.hook_name(layer), make(layer)) for layer in self.layers]

    def start(self, batch_size: int) -> None:
        self._current, self.steps = {}, {layer: [] for layer in self.layers}

    def commit(self) -> None:
        """Keep the states of the step just finished."""
        for layer in self.layers:
            self.steps[layer].append(self._current[layer])

    def stacked(self, layer: int) -> Float[torch.Tensor, "B T d"]:
        """All captured steps of ``layer`` as one CPU tensor."""
        return torch.stack(self.steps[layer], dim=1).cpu()


@dataclass
class Generation:
    """One decoded sequence.

    Attributes:
        prompt_ids: the prompt's token ids ``(L,)``.
        token_ids: generated ids ``(T,)``, the stop token included when there was one.
        stop_reason: ``"eos"`` (a stop token), ``"length"`` (``max_new_tokens``), ``"ended"`` (a plug-in's
            :meth:`~Intervention.finished`).
        states: ``{layer: (T, d_model)}`` float32 states captured at each step.
        seconds: wall time of the batch this row was decoded in.
    """

    prompt_ids: Int[torch.Tensor, "L"]
    token_ids: Int[torch.Tensor, "T"]
    stop_reason: str
    states: dict[int, Float[torch.Tensor, "T d"]] = field(default_factory=dict)
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def text(self, tokenizer: Any, skip_special_tokens: bool = True) -> str:
        """Decoded generated text."""
        return tokenizer.decode(self.token_ids.tolist(), skip_special_tokens=skip_special_tokens)


def left_pad(prompts: Sequence[Int[torch.Tensor, "L"]], pad_id: int) -> tuple[Int[torch.Tensor, "B L"], Int[torch.Tensor, "B L"]]:
    """Left-pad 1-D id tensors into ``(ids, attention_mask)``."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        if len(prompt):
            ids[row, width - len(prompt):] = prompt
            mask[row, width - len(prompt):] = 1
    return ids, mask


def _as_prompts(model: LoadedModel, prompts: Any) -> list[torch.Tensor]:
    if isinstance(prompts, (str, torch.Tensor)):
        prompts = [prompts]
    out = []
    for p in prompts:
        if isinstance(p, str):
            p = torch.tensor(model.tokenizer.encode(p), dtype=torch.long)
        p = torch.as_tensor(p, dtype=torch.long).flatten().cpu()
        if p.numel() == 0:
            raise ValueError("empty prompt: give at least one token")
        out.append(p)
    if not out:
        raise ValueError("no prompts given")
    return out


def _forced(plugins: Sequence[Intervention], step: Step) -> torch.Tensor | None:
    """Ids the plug-ins force at this step (-1: free), or None when none forces anything."""
    out = None
    for plugin in plugins:
        ids = plugin.force(step)
        if ids is not None:
            ids = ids.to(step.tokens.device)
            out = ids if out is None else torch.where(ids >= 0, ids, out)
    if out is None or not bool(((out >= 0) & step.active).any()):
        return None
    return torch.where(step.active, out, torch.full_like(out, -1))


def _ended(plugins: Sequence[Intervention], step: Step, token: torch.Tensor) -> torch.Tensor | None:
    """Rows some plug-in ends after this step's token (None: no plug-in ends any)."""
    ended = None
    for plugin in plugins:
        rows = plugin.finished(step, token)
        if rows is not None:
            rows = rows.to(step.active.device)
            ended = rows if ended is None else ended | rows
    return ended


@torch.inference_mode()
def generate(
    model: LoadedModel,
    prompts: str | Int[torch.Tensor, "L"] | Sequence[str | Int[torch.Tensor, "L"]],
    *,
    max_new_tokens: int,
    capture_layers: Sequence[int | str] = (),
    interventions: Sequence[Intervention] = (),
    stop_ids: Sequence[int] | None = None,
    progress: bool = False,
) -> list[Generation]:
    """Greedy decoding with a KV cache, hooks, logit processors and step recomputation.

    Args:
        model: a :class:`~mipeaks.models.LoadedModel`.
        prompts: one prompt or a batch; text is encoded with the tokenizer's defaults (BOS where it
            adds one), tensors are used as given. A batch is left-padded and every row stops on its own.
        max_new_tokens: the most tokens generated per row.
        capture_layers: blocks whose output (``blocks.{L}.hook_resid_post``) is recorded each step.
        interventions: plug-ins, applied in order (their logit edits compose).
        stop_ids: ids that end a row; defaults to the model's EOS ids. ``()`` disables stopping.
        progress: show a token progress bar.

    Returns:
        One :class:`Generation` per prompt, in order.
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    rows = _as_prompts(model, prompts)
    stop = torch.tensor(model.eos_token_ids() if stop_ids is None else list(stop_ids), dtype=torch.long)
    pad_id = model.tokenizer.pad_token_id
    pad_id = int(pad_id if pad_id is not None else (stop[0] if len(stop) else 0))
    capture = StateCapture([model.resolve_layer(layer) for layer in capture_layers])
    plugins: list[Intervention] = [capture, *interventions]
    device = model.device

    tokens, mask = left_pad(rows, pad_id)
    tokens, mask = tokens.to(device), mask.to(device)
    batch = tokens.shape[0]
    active = torch.ones(batch, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, dtype=torch.long, device=device)
    stop_on = stop.to(device)
    ended_rows = torch.zeros(batch, dtype=torch.bool, device=device)  # rows a plug-in ended
    generated: list[torch.Tensor] = []
    for plugin in plugins:
        plugin.start(batch)

    from transformers import DynamicCache

    cache = DynamicCache()
    hooks = [h for plugin in plugins for h in plugin.hooks(model)]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    step_input, step_positions = tokens, positions
    t0 = time.perf_counter()
    bar = tqdm(total=max_new_tokens * batch, desc="tokens", unit="tok", disable=not progress, leave=False)

    def forward(extra: list[Hook]) -> torch.Tensor:
        # Entering bridge.hooks() costs milliseconds (it rebuilds alias maps): only for real hooks.
        # A redo pass re-enters unbridged() so that the components its extra hooks need fire too.
        with (model.bridge.hooks(fwd_hooks=extra) if extra else contextlib.nullcontext(),
              model.unbridged() if extra else contextlib.nullcontext()):
            out = model.hf_model(
                input_ids=step_input, attention_mask=mask, position_ids=step_positions,
                past_key_values=cache, use_cache=True, logits_to_keep=1,
            )
        return out.logits[:, -1].float()

    def choose(step: Step, logits: torch.Tensor) -> torch.Tensor:
        for plugin in interventions:
            logits = plugin.process_logits(step, logits)
        return logits.argmax(-1)

    try:
        # Only the components owning a hooked point stay bridged; attention runs as SDPA.
        with model.bridge.hooks(fwd_hooks=hooks), model.unbridged():
            for index in range(max_new_tokens):
                step = Step(index=index, tokens=tokens, active=active.clone(), model=model)
                forced = _forced(interventions, step)
                free = step if forced is None else Step(index, tokens, active & (forced < 0), model)
                past = cache.get_seq_length()
                candidate = choose(free, forward([]))
                for plugin in interventions:
                    redo = plugin.redo(free, candidate)
                    if redo is not None and bool((redo & free.active).any()):
                        # One KV entry per position: drop the first pass's. (transformers 5 crops
                        # by a negative count; a positive argument raises, and crop(0) is a no-op.)
                        cache.crop(past - cache.get_seq_length())
                        candidate = choose(free, forward(plugin.redo_hooks(free, redo & free.active)))
                if forced is not None:
                    candidate = torch.where(forced >= 0, forced, candidate)
                for plugin in interventions:
                    candidate = plugin.review(step, candidate)
                capture.commit()
                token = torch.where(active, candidate, torch.full_like(candidate, pad_id))
                generated.append(token)
                lengths += active.long()  # no host sync here: one per step (below), as in HF generate
                if progress:
                    bar.update(int(active.sum()))
                hit = active & torch.isin(token, stop_on)
                ended = _ended(interventions, step, token)
                if ended is not None:
                    ended = ended & active & ~hit
                    ended_rows |= ended
                    active = active & ~ended
                active = active & ~hit
                if not bool(active.any()):
                    break
                tokens = torch.cat([tokens, token[:, None]], dim=1)
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                step_input = token[:, None]
                step_positions = step_positions[:, -1:] + 1
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    out_tokens = torch.stack(generated, dim=1).cpu()
    lengths = lengths.cpu()
    reasons = ["length" if still else "ended" if by_plugin else "eos"
               for still, by_plugin in zip(active.tolist(), ended_rows.tolist())]
    stacked = {layer: capture.stacked(layer) for layer in capture.layers}
    return [
        Generation(
            prompt_ids=rows[r],
            token_ids=out_tokens[r, : lengths[r]].clone(),
            stop_reason=reasons[r],
            states={layer: s[r, : lengths[r]].clone() for layer, s in stacked.items()},
            seconds=seconds,
        )
        for r in range(batch)
    ]
