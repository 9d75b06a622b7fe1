"""The same generations read at another layer, by teacher forcing (chapter 3's one-model contrast).

The paper's reasoning-vs-base comparison (Fig. 3, Table 2) needs two models, collected with the
same settings (:class:`~mipeaks.pipeline.CompareConfig`). Without the second model, chapter 3
contrasts two layers of one model instead: no new tokens are generated; each trace of a run keeps
its tokens, and its states and gold representation are recomputed at another block
(:func:`layer_traces`; their trajectories: :func:`mipeaks.pipeline.traces_trajectories`). Not the
paper's comparison: it shows how much the statistics move when the representation changes while
the text stays fixed.
"""

from __future__ import annotations

import dataclasses

import torch

from .collect import Run, Trace, gold_representation
from .data import load_problems
from .forcing import teacher_force
from .models import LoadedModel

__all__ = ["layer_traces", "teacher_forced_states"]


@torch.inference_mode()
def teacher_forced_states(model: LoadedModel, trace: Trace, layer: int | str) -> torch.Tensor:
    """States ``(T, d)`` of block ``layer`` for ``trace``'s generation, by teacher forcing.

    The input is the prompt followed by the generated tokens but the last; the state at
    position ``len(prompt) - 1 + t`` predicts generated token ``t``, exactly the position the
    collection captures during decoding (tests/test_collect.py checks that parity within 1e-4).
    The pass is :func:`mipeaks.forcing.teacher_force` (chunks through a KV cache, SDPA): O(L) memory.
    """
    index = model.resolve_layer(layer)
    ids = torch.cat([trace.prompt_ids, trace.token_ids[:-1]])
    # Chunked through the KV cache with SDPA (mipeaks.forcing): memory is O(L), not heads x L x L.
    return teacher_force(model, ids, layers=[index], states_from=len(trace.prompt_ids) - 1).states[index]


def _resolve_layer(model: LoadedModel, layer: int | str) -> int:
    if isinstance(layer, str) and layer.strip().lower() == "middle":
        return model.n_layers // 2
    return model.resolve_layer(layer)


def layer_traces(model: LoadedModel, run: Run, layer: int | str) -> list[Trace]:
    """The run's generations re-read at block ``layer`` (states and gold), by teacher forcing.

    No new tokens are generated: each trace keeps its tokens, and its states and gold
    representation are recomputed at ``layer`` (``"middle"`` = ``n_layers // 2`` is accepted
    besides the forms of :meth:`~mipeaks.models.LoadedModel.resolve_layer`). The gold text is the
    run's (``solution`` or ``answer``, from its manifest).

    Returns:
        One :class:`~mipeaks.collect.Trace` per record, in order, with ``layer`` set.
    """
    index = _resolve_layer(model, layer)
    cc = run.config
    problems = {p.id: p for p in cc.problems()}
    out = []
    for trace in run.traces():
        problem = problems[trace.problem_id]
        gold_text = problem.solution if cc.gold == "solution" else problem.answer
        out.append(dataclasses.replace(trace, states=teacher_forced_states(model, trace, index), layer=index,
                                       gold=gold_representation(model, gold_text, layer=index)))
    return out
