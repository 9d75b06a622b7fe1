"""Hidden-state traces of reasoning, gold representations, and resumable run directories.

A :class:`Trace` holds, for one problem, the generated tokens and the layer-``L`` residual stream
``states[t]`` at the position that *predicts* ``token_ids[t]`` (the paper's code: a hook storing
``hidden[0, -1]`` on every forward call), plus the gold representation ``gold``: the same layer's
last-token state of the gold solution text, by teacher forcing (:mod:`mipeaks.forcing`).

:func:`collect` runs many problems into a run directory::

    run_dir/
      manifest.json            model, dataset, prompt style, layer, parameters, versions, git commit
      records/00000.safetensors  one per problem: prompt_ids, token_ids, states, gold
      records/00000.json         its text, stop reason, layer and gold answer

An interrupted run resumes where it stopped; problems are decoded in fixed batches, so a resumed
run writes byte-identical records.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from jaxtyping import Float, Int
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .data import Problem, encode_prompt
from .forcing import teacher_force
from .generation import Intervention, generate
from .models import LoadedModel
from .provenance import provenance

__all__ = [
    "CollectConfig",
    "Run",
    "Trace",
    "collect",
    "generate_trace",
    "generate_traces",
    "gold_representation",
    "load_run",
]


@dataclass
class Trace:
    """One problem's reasoning trace at one layer.

    Attributes:
        problem_id: the problem's id ("" when not from a dataset).
        prompt_ids: prompt token ids ``(L,)``.
        token_ids: generated ids ``(T,)`` (stop token included when generation stopped on one).
        states: ``(T, d_model)`` float32; ``states[t]`` predicts ``token_ids[t]``.
        text: decoded generation (special tokens skipped).
        stop_reason: ``"eos"`` or ``"length"``.
        layer: block index whose output was captured (``blocks.{layer}.hook_resid_post``).
        gold: ``(d_model,)`` gold representation, or None.
    """

    problem_id: str
    prompt_ids: Int[torch.Tensor, "L"]
    token_ids: Int[torch.Tensor, "T"]
    states: Float[torch.Tensor, "T d"]
    text: str
    stop_reason: str
    layer: int
    gold: Float[torch.Tensor, "d"] | None = None


@torch.inference_mode()
def gold_representation(
    model: LoadedModel, text: str | Int[torch.Tensor, "L"], *, layer: int | str = "last"
) -> Float[torch.Tensor, "d"]:
    """The last-token state of ``text`` after block ``layer``, by teacher forcing (float32, CPU).

    Text is encoded like the paper's code (``tokenizer.encode``: BOS where the tokenizer adds one,
    no chat template). The paper uses the whole gold solution; pass the answer alone for the
    answer-only variant. The pass is :func:`mipeaks.forcing.teacher_force` (O(L) memory).
    """
    ids = torch.tensor(model.tokenizer.encode(text)) if isinstance(text, str) else torch.as_tensor(text)
    if ids.numel() == 0:
        raise ValueError("gold text is empty")
    index = model.resolve_layer(layer)
    forced = teacher_force(model, ids, layers=[index], states_from=int(ids.numel()) - 1)  # O(L) memory
    return forced.states[index][-1]


def generate_traces(
    model: LoadedModel,
    prompts: Sequence[str | Int[torch.Tensor, "L"]],
    *,
    layer: int | str = "last",
    max_new_tokens: int = 512,
    interventions: Sequence[Intervention] = (),
    problem_ids: Sequence[str] | None = None,
    progress: bool = False,
) -> list[Trace]:
    """Decode several prompts as one left-padded batch and return their traces.

    Args:
        model: the model.
        prompts: text (encoded with the tokenizer's defaults) or 1-D id tensors.
        layer: block whose output is captured (int, negative int or ``"last"``).
        max_new_tokens: generation length cap (the paper: 512).
        interventions: extra plug-ins for the generation core.
        problem_ids: ids to attach, one per prompt.
        progress: token progress bar.

    Returns:
        One :class:`Trace` per prompt (``gold`` left as None).
    """
    index = model.resolve_layer(layer)
    outs = generate(model, list(prompts), max_new_tokens=max_new_tokens, capture_layers=[index],
                    interventions=interventions, progress=progress)
    ids = list(problem_ids) if problem_ids is not None else [""] * len(outs)
    return [
        Trace(problem_id=pid, prompt_ids=o.prompt_ids, token_ids=o.token_ids, states=o.states[index],
              text=o.text(model.tokenizer), stop_reason=o.stop_reason, layer=index)
        for pid, o in zip(ids, outs)
    ]


def generate_trace(
    model: LoadedModel,
    prompt: str | Int[torch.Tensor, "L"],
    *,
    layer: int | str = "last",
    max_new_tokens: int = 512,
    interventions: Sequence[Intervention] = (),
    gold: str | None = None,
) -> Trace:
    """Greedy-decode one prompt and capture the layer-``layer`` state at every step.

    Args:
        model: the model.
        prompt: text or a 1-D tensor of token ids.
        layer: block whose output is captured.
        max_new_tokens: generation length cap.
        interventions: extra plug-ins for the generation core.
        gold: optional gold text; its :func:`gold_representation` is attached.

    Returns:
        The :class:`Trace`.
    """
    [trace] = generate_traces(model, [prompt], layer=layer, max_new_tokens=max_new_tokens,
                              interventions=interventions)
    if gold is not None:
        trace.gold = gold_representation(model, gold, layer=trace.layer)
    return trace


@dataclass(frozen=True)
class CollectConfig:
    """Parameters of a trace-collection run (the MI notebooks' ``parameters`` cell).

    Attributes:
        model: model name for :func:`~mipeaks.models.load_model`.
        dataset: dataset name for :func:`~mipeaks.data.load_problems`.
        n: number of problems (the paper: the first 100 of MATH train).
        prompt_style: ``"raw"`` (the paper's MI runs), ``"deepseek-math"`` or ``"chat"``.
        layer: captured block (the paper: the last one).
        max_new_tokens: generation cap (the paper: 512).
        gold: ``"solution"`` (paper: the whole worked solution) or ``"answer"`` (the answer alone).
        batch_size: problems decoded together (left padding); 1 reproduces the paper's code exactly.
        dtype: model dtype (the paper's code ran float32).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        data_path: optional local file for the dataset.
    """

    model: str = "smollm2-135m-instruct"
    dataset: str = "gsm8k"
    n: int = 20
    prompt_style: str = "raw"
    layer: int | str = "last"
    max_new_tokens: int = 512
    gold: str = "solution"
    batch_size: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    data_path: str | None = None

    def __post_init__(self) -> None:
        if self.gold not in ("solution", "answer"):
            raise ValueError(f"gold must be 'solution' or 'answer', got {self.gold!r}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")


class Run:
    """A run directory written by :func:`collect`: its manifest and its traces."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{self.path} is not a mipeaks run (no manifest.json)")
        self.manifest: dict[str, Any] = json.loads(manifest.read_text())

    @property
    def config(self) -> CollectConfig:
        """The :class:`CollectConfig` the run was made with."""
        return CollectConfig(**self.manifest["config"])

    def record_paths(self) -> list[Path]:
        """Record files present, in problem order."""
        return sorted((self.path / "records").glob("*.safetensors"))

    def __len__(self) -> int:
        return len(self.record_paths())

    def traces(self) -> Iterator[Trace]:
        """Load the traces one by one (memory stays bounded for long runs)."""
        for path in self.record_paths():
            yield _read_record(path)


def _write_record(path: Path, trace: Trace, problem: Problem) -> None:
    tensors = {"prompt_ids": trace.prompt_ids.contiguous(), "token_ids": trace.token_ids.contiguous(),
               "states": trace.states.contiguous()}
    if trace.gold is not None:
        tensors["gold"] = trace.gold.contiguous()
    meta = {"problem_id": trace.problem_id, "text": trace.text, "stop_reason": trace.stop_reason,
            "layer": trace.layer, "answer": problem.answer}
    path.with_suffix(".json").write_text(json.dumps(meta, sort_keys=True, ensure_ascii=False))
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))  # no safetensors metadata: its key order is not deterministic
    os.replace(tmp, path)  # a record exists only once both files are complete


def _read_record(path: Path) -> Trace:
    meta = json.loads(path.with_suffix(".json").read_text())
    t = load_file(str(path))
    return Trace(problem_id=meta["problem_id"], prompt_ids=t["prompt_ids"], token_ids=t["token_ids"],
                 states=t["states"], text=meta["text"], stop_reason=meta["stop_reason"],
                 layer=int(meta["layer"]), gold=t.get("gold"))


def load_run(path: str | Path) -> Run:
    """Open a run directory written by :func:`collect`."""
    return Run(path)


def collect(
    model: LoadedModel,
    problems: Sequence[Problem],
    config: CollectConfig,
    out_dir: str | Path,
    *,
    progress: bool = True,
    stop_after: int | None = None,
) -> Run:
    """Trace every problem into ``out_dir``, resuming a partial run with the same config.

    Args:
        model: the loaded model (its name should match ``config.model``).
        problems: the problems, in order.
        config: the run's parameters (recorded in the manifest).
        out_dir: the run directory.
        progress: show a bar with problems done and tokens/s.
        stop_after: stop after this many batches (to test interruption and resume).

    Returns:
        The :class:`Run`.

    Raises:
        ValueError: ``out_dir`` holds a run made with a different config or problem list.
    """
    out = Path(out_dir)
    (out / "records").mkdir(parents=True, exist_ok=True)
    layer = model.resolve_layer(config.layer)
    ids = [p.id for p in problems]
    manifest_path = out / "manifest.json"
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old["config"] != json.loads(json.dumps(dataclasses.asdict(config))) or old["problem_ids"] != ids:
            raise ValueError(f"{out} holds a run with a different config or problem list; use a new directory")
    else:
        manifest = {"config": dataclasses.asdict(config), "layer_index": layer,
                    "hook": model.hook_name(layer), "model": model.describe(), "problem_ids": ids,
                    "estimator_note": "states[t] predicts token t; gold = last-token state of the gold text",
                    **provenance()}
        manifest_path.write_text(json.dumps(manifest, indent=2))

    batches = [list(range(i, min(i + config.batch_size, len(problems))))
               for i in range(0, len(problems), config.batch_size)]
    path_of = lambda i: out / "records" / f"{i:05d}.safetensors"  # noqa: E731
    todo = [b for b in batches if not all(path_of(i).is_file() for i in b)]
    bar = tqdm(total=len(problems), initial=len(problems) - sum(len(b) for b in todo), desc="problems",
               unit="problem", disable=not progress)
    tokens, start = 0, time.perf_counter()
    for done, batch in enumerate(todo):
        if stop_after is not None and done >= stop_after:
            break
        prompts = [encode_prompt(model.tokenizer, problems[i], config.prompt_style) for i in batch]
        traces = generate_traces(model, prompts, layer=layer, max_new_tokens=config.max_new_tokens,
                                 problem_ids=[problems[i].id for i in batch])
        for i, trace in zip(batch, traces):
            gold_text = problems[i].solution if config.gold == "solution" else problems[i].answer
            trace.gold = gold_representation(model, gold_text, layer=layer)
            _write_record(path_of(i), trace, problems[i])
            tokens += len(trace.token_ids)
        bar.update(len(batch))
        bar.set_postfix(tok_s=f"{tokens / (time.perf_counter() - start):.1f}")
    bar.close()
    return Run(out)
