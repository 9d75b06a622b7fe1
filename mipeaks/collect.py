"""Hidden-state traces of reasoning, gold representations, and resumable run directories.

A :class:`Trace` holds, for one problem, the generated tokens and the layer-``L`` residual stream
``states[t]`` at the position that *predicts* ``token_ids[t]`` (the paper's code: a hook storing
``hidden[0, -1]`` on every forward call), plus the gold representation ``gold``: the same layer's
last-token state of the gold solution text, by teacher forcing (:mod:`mipeaks.forcing`).

:func:`collect` runs many problems into a run directory::

    run_dir/
      manifest.json            model, dataset, prompt style, layer, parameters, versions, git commit(s)
      records/00000.safetensors  one per problem: prompt_ids, token_ids, states, gold
      records/00000.json         its text, stop reason, layer, gold answer and key (written last)

An interrupted run resumes where it stopped; problems are decoded in fixed batches, so a resumed
run writes byte-identical records. A record is reused only when its key (problem content, prompt
ids, settings, model weights, code: see :mod:`mipeaks.store`) matches and its files are whole;
anything else is recomputed with one warning line. One process writes a run directory at a time.
Under ``torchrun`` each rank decodes every ``world``-th batch (the same batches as one process, so
the records are byte-identical) and rank 0 finishes the manifest.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from jaxtyping import Float, Int
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors
from tqdm.auto import tqdm

from . import validation
from .data import Problem, encode_prompt
from .forcing import teacher_force
from .generation import Intervention, generate
from .models import LoadedModel
from .provenance import provenance
from .store import (COLLECT_CODE, atomic_write, barrier, code_fingerprint, digest, model_fingerprint, note_read,
                    problem_hash, rank_world, shard, warn, writer_lock)

__all__ = [
    "CollectConfig",
    "Run",
    "Trace",
    "collect",
    "generate_trace",
    "generate_traces",
    "gold_representation",
    "load_config_problems",
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
        n: number of problems (the paper: 100 of MATH train; chosen by ``sample``).
        prompt_style: ``"raw"`` (the paper's MI runs), ``"deepseek-math"`` or ``"chat"``.
        layer: captured block (the paper: the last one).
        max_new_tokens: generation cap (the paper: 512).
        gold: ``"solution"`` (paper: the whole worked solution) or ``"answer"`` (the answer alone).
        batch_size: problems decoded together (left padding); 1 reproduces the paper's code exactly.
        dtype: model dtype (the paper's code ran float32).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        data_path: optional local file for the dataset.
        sample: which ``n`` problems (:func:`~mipeaks.data.load_problems`): ``"random"`` (a seeded
            random sample: the paper's text for MATH train), ``"first"`` (the first ``n`` rows: the
            official code, also of a ``data_path`` file) or ``"auto"`` (``"random"`` for
            ``math-train``, ``"first"`` for the benchmarks).
        sample_seed: seed of a random sample (for ``"arith"``: the generator's seed); must stay 0
            when the problems are the first ``n``.
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
    sample: str = "auto"
    sample_seed: int = 0

    def __post_init__(self) -> None:
        check_collection_fields(self)

    def problems(self) -> list[Problem]:
        """This config's problems: ``load_problems(dataset, n, path=data_path, sample=..., seed=...)``."""
        return load_config_problems(self)


def load_config_problems(config: Any) -> list[Problem]:
    """The problems of a config with the :class:`CollectConfig` data fields (``dataset``, ``n``,
    ``data_path``, ``sample``, ``sample_seed``), as :func:`~mipeaks.data.load_problems` gives them."""
    from .data import load_problems, resolve_sample

    rule = resolve_sample(config.dataset, config.sample)
    seed = config.sample_seed if rule == "random" or config.dataset == "arith" else None
    return load_problems(config.dataset, config.n, path=config.data_path, sample=config.sample, seed=seed)


def check_collection_fields(config: Any) -> None:
    """Validate the :class:`CollectConfig` fields of ``config`` (also an ``MIConfig``), normalising ``layer``.

    Raises:
        TypeError: a field of the wrong type.
        ValueError: a field out of range or not among the accepted values (the message lists them).
    """
    from .data import DATASETS, PROMPT_STYLES, SAMPLES, resolve_sample
    from .models import DTYPES

    validation.check_types(config)
    validation.check_choice(config, "dataset", DATASETS)
    validation.check_choice(config, "sample", SAMPLES)
    validation.check_min(config, "sample_seed", 0)
    try:
        rule = resolve_sample(config.dataset, config.sample)
    except ValueError as err:
        raise ValueError(f"{type(config).__name__}.sample: {err}") from None
    if rule == "first" and config.dataset != "arith" and config.sample_seed != 0:
        raise ValueError(f"{type(config).__name__}.sample_seed={config.sample_seed!r} has no effect: the "
                         f"{config.dataset!r} problems are the first n (set sample='random' to sample them)")
    validation.check_choice(config, "prompt_style", PROMPT_STYLES)
    validation.check_choice(config, "gold", ("solution", "answer"))
    validation.check_choice(config, "dtype", DTYPES)
    validation.check_device(config)
    for name in ("n", "max_new_tokens", "batch_size"):
        validation.check_min(config, name, 1)
    validation.normalise_layer(config, "layer")


class Run:
    """A run directory written by :func:`collect`: its manifest and its traces."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{self.path} is not a mipeaks run (no manifest.json)")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{manifest} is damaged ({err}); rerun collect() to repair it") from None
        note_read(self.path, self.manifest.get("git_commit"))

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
        """Load the traces one by one (memory stays bounded for long runs).

        Raises:
            ValueError: a record is damaged (the message names its file).
        """
        for path in self.record_paths():
            yield _read_record(path)


#: Version of the record layout; part of every record's key.
RECORD_FORMAT = 2
_META_KEYS = ("problem_id", "text", "stop_reason", "layer", "answer", "key", "bytes")


def _write_record(path: Path, trace: Trace, problem: Problem, stamp: dict[str, Any]) -> None:
    """Write a record: the ``.json`` (written last, holding the key) marks it complete."""
    tensors = {"prompt_ids": trace.prompt_ids.contiguous(), "token_ids": trace.token_ids.contiguous(),
               "states": trace.states.contiguous()}
    if trace.gold is not None:
        tensors["gold"] = trace.gold.contiguous()
    data = save_tensors(tensors)  # no safetensors metadata: its key order is not deterministic
    meta = {"problem_id": trace.problem_id, "text": trace.text, "stop_reason": trace.stop_reason,
            "layer": trace.layer, "answer": problem.answer, "bytes": len(data), **stamp}
    path.with_suffix(".json").unlink(missing_ok=True)  # a record without its .json is not done
    atomic_write(path, data)
    atomic_write(path.with_suffix(".json"), json.dumps(meta, sort_keys=True, ensure_ascii=False))


def _check_record(path: Path, stamp: dict[str, Any], d_model: int, gold: bool) -> str | None:
    """Why the record at ``path`` cannot be reused (``"missing"``, ``"damaged: ..."``, ``"stale: ..."``), or None."""
    meta_path = path.with_suffix(".json")
    if not meta_path.exists():
        return "missing"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return f"damaged: {meta_path.name} is not valid JSON"
    if not isinstance(meta, dict) or any(k not in meta for k in _META_KEYS):
        return ("stale: made before records were keyed by content and code"
                if isinstance(meta, dict) and "key" not in meta else f"damaged: {meta_path.name} lacks fields")
    if meta["key"] != stamp["key"]:
        if meta.get("code") != stamp["code"]:
            return "stale: made by other code (a result-affecting module or library changed)"
        if meta.get("weights") != stamp["weights"]:
            return "stale: made by a model with other weights or tokenizer"
        if meta.get("problem") != stamp["problem"]:
            return "stale: the problem's question, solution or answer changed"
        return "stale: made from another prompt or settings"
    if not path.exists() or path.stat().st_size != meta["bytes"]:
        return f"damaged: {path.name} is missing or has the wrong size"
    try:
        with safe_open(str(path), "pt") as fh:
            shapes = {k: list(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as err:  # safetensors raises its own error type for every kind of damage
        return f"damaged: {path.name} does not load ({err})"
    ok = (len(shapes.get("token_ids", [])) == 1 and len(shapes.get("prompt_ids", [])) == 1
          and shapes.get("states") == [shapes["token_ids"][0], d_model]
          and (shapes.get("gold") == [d_model] if gold else "gold" not in shapes))
    return None if ok else f"damaged: {path.name} has unexpected tensors {shapes}"


def _read_record(path: Path) -> Trace:
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
        t = load_file(str(path))
        return Trace(problem_id=meta["problem_id"], prompt_ids=t["prompt_ids"], token_ids=t["token_ids"],
                     states=t["states"], text=meta["text"], stop_reason=meta["stop_reason"],
                     layer=int(meta["layer"]), gold=t.get("gold"))
    except Exception as err:
        raise ValueError(f"{path}: damaged record ({type(err).__name__}: {err}); rerun collect() to "
                         "recompute it") from None


def load_run(path: str | Path) -> Run:
    """Open a run directory written by :func:`collect`."""
    return Run(path)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest, or None when missing or damaged (damage is reported)."""
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(manifest, dict) and "config" in manifest:
            return manifest
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    warn(path, "damaged manifest: rewriting it")
    return None


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

    Records whose problem text, prompt, model weights or result-affecting code changed, and damaged
    records, are recomputed (one warning line each kind). Under a data-parallel launcher
    (``WORLD_SIZE`` > 1) this rank decodes its share of the batches (:func:`~mipeaks.store.shard`).

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
        ValueError: ``out_dir`` holds a run made with a different config.
        WriterLockedError: another process is writing ``out_dir``.
    """
    problems = validation.check_problems(problems)  # before anything is written
    out = Path(out_dir)
    (out / "records").mkdir(parents=True, exist_ok=True)
    rank, world = rank_world()
    layer = model.resolve_layer(config.layer)
    problems = list(problems)
    ids = [p.id for p in problems]
    settings = json.loads(json.dumps(dataclasses.asdict(config)))
    manifest_path = out / "manifest.json"
    code, weights = code_fingerprint(COLLECT_CODE), model_fingerprint(model)
    prompts = [encode_prompt(model.tokenizer, p, config.prompt_style) for p in problems]
    common = [RECORD_FORMAT, settings, layer, weights, code]
    stamps = []
    for problem, prompt in zip(problems, prompts):
        content = problem_hash(problem)
        stamps.append(dict(key=digest([common, content, prompt.tolist()]), code=code, weights=weights,
                           problem=content))
    manifest = {"config": settings, "layer_index": layer, "hook": model.hook_name(layer),
                "model": model.describe(), "weights_fingerprint": weights, "code_fingerprint": code,
                "problem_ids": ids,
                "estimator_note": "states[t] predicts token t; gold = last-token state of the gold text",
                **provenance()}

    def write_manifest(wrote: bool) -> None:
        if wrote and manifest["git_commit"] not in commits:
            commits.append(manifest["git_commit"])
        if old is None or wrote or any(old.get(k) != manifest[k] for k in
                                       ("weights_fingerprint", "code_fingerprint", "problem_ids")):
            atomic_write(manifest_path, json.dumps({**manifest, "git_commits": commits}, indent=2))

    batches = [list(range(i, min(i + config.batch_size, len(problems))))
               for i in range(0, len(problems), config.batch_size)]
    path_of = lambda i: out / "records" / f"{i:05d}.safetensors"  # noqa: E731
    lock = out / (".writer.lock" if world == 1 else f".writer-rank{rank}-of-{world}.lock")
    wrote = False
    with writer_lock(lock):
        old = _read_manifest(manifest_path)  # under the lock: a writer this one waited for may have made it
        if old is not None and old["config"] != settings:
            raise ValueError(f"{out} holds a run with a different config ({old['config']}); use a new directory")
        same_code = old is not None and (old.get("code_fingerprint"), old.get("weights_fingerprint")) == (code, weights)
        commits = list(old.get("git_commits", [old.get("git_commit")])) if same_code else []
        if rank == 0:
            write_manifest(False)
            for extra in out.glob("records/*.safetensors"):  # records past the end of a shorter list
                if int(extra.stem) >= len(problems):
                    extra.with_suffix(".json").unlink(missing_ok=True)
                    extra.unlink()
        mine = shard(batches, rank, world)
        reasons: dict[str, list[str]] = {}
        todo = []
        for batch in mine:
            why = [(i, _check_record(path_of(i), stamps[i], model.d_model, True)) for i in batch]
            for i, reason in why:
                if reason is not None and reason != "missing":
                    reasons.setdefault(reason, []).append(path_of(i).stem)
            if any(reason is not None for _, reason in why):
                todo.append(batch)
        for reason, names in reasons.items():
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            warn(out / "records", f"record(s) {shown}: {reason}; recomputing")
        done_count = sum(len(b) for b in mine) - sum(len(b) for b in todo)
        bar = tqdm(total=sum(len(b) for b in mine), initial=done_count, desc="problems", unit="problem",
                   disable=not progress)
        tokens, start = 0, time.perf_counter()
        try:
            for done, batch in enumerate(todo):
                if stop_after is not None and done >= stop_after:
                    break
                traces = generate_traces(model, [prompts[i] for i in batch], layer=layer,
                                         max_new_tokens=config.max_new_tokens,
                                         problem_ids=[problems[i].id for i in batch])
                for i, trace in zip(batch, traces):
                    gold_text = problems[i].solution if config.gold == "solution" else problems[i].answer
                    trace.gold = gold_representation(model, gold_text, layer=layer)
                    _write_record(path_of(i), trace, problems[i], stamps[i])
                    tokens += len(trace.token_ids)
                    wrote = True
                bar.update(len(batch))
                bar.set_postfix(tok_s=f"{tokens / (time.perf_counter() - start):.1f}")
        finally:
            bar.close()
        if world == 1 and wrote:
            write_manifest(True)
    if world > 1:  # rank 0 finishes the manifest once every rank's records are written
        barrier()
        if rank == 0:
            with writer_lock(lock):
                write_manifest(True)
        barrier()
    return Run(out)
