"""The one evaluation runner: baseline and every intervention, one JSONL record per problem.

``evaluate(model, problems, EvalConfig(intervention=..., params=...))`` decodes every problem
with :func:`mipeaks.generation.generate` (``None``, ``"suppress"``, ``"recycle"``) or with the
TTTS orchestration over it (``"ttts"``, ``"origin"``), grades the output with
:func:`mipeaks.grading.grade` and appends one record per problem to a JSONL file, next to a
``.manifest.json`` (model description, config, library versions, git commits). Rerunning the
same config skips the problems already in the file (resume); a different config refuses to share
a file. A record is reused only when its ``fingerprint`` key matches (the problem's content, the
prompt ids, the settings, the model weights and the result-affecting code: see
:mod:`mipeaks.store`) and its line is whole; others are recomputed with one warning line. One
process writes a records file at a time; under ``torchrun`` rank ``r`` > 0 writes
``<name>.rank<r>.jsonl`` and rank 0 merges them into the file.

Greedy decoding is deterministic, so a resumed run gives the records an uninterrupted run
would, with one caveat: with ``batch_size > 1`` the rows batched together (and their padding)
can differ between runs, which can change floating-point rounding and rarely a token.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch
from jaxtyping import Int
from tqdm.auto import tqdm

from . import validation
from .data import DATASETS, PROMPT_STYLES, Problem, encode_prompt, format_prompt, load_problems
from .forcing import teacher_force
from .generation import Intervention, generate
from .grading import EXTRACTIONS, MODES, grade
from .lens import PAPER_THINKING_TOKENS_R1_LLAMA_8B, ThinkingToken, load_thinking_tokens
from .models import DTYPES, LoadedModel, load_model
from .provenance import git_commit, runs_root, versions
from .recycling import Recycle, RecycleConfig
from .store import (EVAL_CODE, append_jsonl, atomic_write, barrier, code_fingerprint, digest, model_fingerprint,
                    note_read, problem_hash, rank_world, read_jsonl, rewrite_jsonl, shard, warn, writer_lock)
from .suppression import SuppressConfig, random_control_words, thinking_words, word_ids
from .ttts import ANSWER_SUFFIX, TTTSConfig, TTTSResult, replay_budget

__all__ = [
    "COUNTERS",
    "INTERVENTIONS",
    "EvalConfig",
    "EvalResult",
    "EvalSettings",
    "RR_ARMS",
    "RecyclingSweepConfig",
    "SuppressionSweepConfig",
    "TTTSSweepConfig",
    "benchmark_problems",
    "build_intervention",
    "compare_arms",
    "evaluate",
    "gold_logprob",
    "load_result",
    "recycling_sweep",
    "show_first_change",
    "suppression_sweep",
    "ttts_sweep",
    "wilson_interval",
]

#: Version of the record layout; part of every fingerprint, so files of an older layout are not resumed.
RECORD_FORMAT = 2

#: Intervention names understood by :func:`evaluate`, with the config class their params fill.
INTERVENTIONS: dict[str, type] = {
    "suppress": SuppressConfig, "recycle": RecycleConfig, "ttts": TTTSConfig, "origin": TTTSConfig,
}


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n`` (95% for ``z=1.96``).

    Returns:
        ``(low, high)``; ``(nan, nan)`` when ``n == 0``.

    Raises:
        ValueError: unless ``0 <= k <= n``.
    """
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class EvalSettings:
    """The settings every evaluation shares, without the data set (:class:`EvalConfig` adds one,
    the sweep configs a list of them).

    Attributes:
        model: model name (None: whatever model is passed to :func:`evaluate`).
        n: the first ``n`` problems (None: all given).
        prompt_style: ``"deepseek-math"`` (the paper's evaluation), ``"raw"`` or ``"chat"``.
        max_new_tokens: generation length (TTTS/Origin: the default ``total_budget``).
        grading: ``"verify"`` or ``"paper"`` (see :mod:`mipeaks.grading`).
        extraction: how the answer is found in the output: ``"ours"`` (the last box first, see
            :mod:`mipeaks.grading`; in an output a token limit cut off, a number running into the cut
            is not taken when an earlier answer exists) or ``"harness"`` (the Qwen2.5-Math harness's
            order exactly; the paper presets).
        intervention: None (baseline), ``"suppress"``, ``"recycle"``, ``"ttts"`` or ``"origin"``.
        params: the intervention's parameters (fields of :class:`~mipeaks.suppression.SuppressConfig`,
            :class:`~mipeaks.recycling.RecycleConfig` or :class:`~mipeaks.ttts.TTTSConfig`).
        seed: default seed of the intervention (Recycle's coin) when ``params`` has none.
        batch_size: problems per ``generate`` call (TTTS/Origin too: one call decodes a batch).
        dtype: model dtype when :func:`evaluate` loads the model by name; a loaded model must
            have it (``"float32"``, ``"bfloat16"``, ``"float16"``).
        device: where :func:`evaluate` loads the model by name (``"cpu"``, ``"cuda"``, ``"auto"``).
        out_dir: folder of the JSONL records (None: ``<runs root>/evals``, the runs root being
            ``$MIPEAKS_RUNS`` or ``runs/`` at the repository root, whatever the working directory).
    """

    model: str | None = None
    n: int | None = None
    prompt_style: str = "deepseek-math"
    max_new_tokens: int = 512
    grading: str = "verify"
    extraction: str = "ours"
    intervention: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    out_dir: str | None = None

    #: Whether the config itself fills the suppressed words (a sweep); else ``suppress`` needs words or ids.
    _fills_words: ClassVar[bool] = False

    def __post_init__(self) -> None:
        validation.check_types(self)
        validation.check_choice(self, "intervention", INTERVENTIONS, optional=True)
        validation.check_choice(self, "prompt_style", PROMPT_STYLES)
        validation.check_choice(self, "grading", MODES)
        validation.check_choice(self, "extraction", EXTRACTIONS)
        validation.check_choice(self, "dtype", DTYPES)
        validation.check_device(self)
        validation.check_min(self, "n", 1, optional=True)
        validation.check_min(self, "max_new_tokens", 1)
        validation.check_min(self, "batch_size", 1)
        name = type(self).__name__
        if self.intervention is None and self.params:
            raise ValueError(f"{name}.params given without an intervention: {dict(self.params)!r}")
        object.__setattr__(self, "params", json.loads(json.dumps(dict(self.params))))  # JSON-clean copy
        spec = self.intervention_config()  # validate the params now, before a model loads
        if isinstance(spec, RecycleConfig) and not 0.0 <= spec.p <= 1.0:
            raise ValueError(f"RecycleConfig.p must be in [0, 1], got {spec.p!r}")
        if isinstance(spec, SuppressConfig) and not (spec.words or spec.ids) and not self._fills_words:
            raise ValueError(f"{name}.params of intervention 'suppress' must name words or ids to suppress, "
                             f"got {dict(self.params)!r}")

    def intervention_config(self) -> SuppressConfig | RecycleConfig | TTTSConfig | None:
        """The intervention's config dataclass built from ``params`` (None for the baseline)."""
        if self.intervention is None:
            return None
        params = dict(self.params)
        if self.intervention == "recycle":
            params.setdefault("seed", self.seed)
        if self.intervention in ("ttts", "origin"):
            params.setdefault("total_budget", self.max_new_tokens)
            params["method"] = self.intervention
        cls = INTERVENTIONS[self.intervention]
        params = validation.check_kwargs(cls, params)  # e.g. RecycleConfig.layer must be int
        try:
            return cls(**params)
        except TypeError as err:
            raise ValueError(f"bad params for {self.intervention!r}: {err}") from None

    def eval_config(self, **changes: Any) -> EvalConfig:
        """This config as a plain :class:`EvalConfig` (a sweep config loses its sweep fields).

        A sweep config has no ``dataset``: pass ``dataset=`` unless it sweeps exactly one benchmark.

        Raises:
            ValueError: no ``dataset`` given and the config sweeps several benchmarks.
        """
        own = {f.name: getattr(self, f.name) for f in fields(EvalConfig) if hasattr(self, f.name)}
        if "dataset" not in own and "dataset" not in changes:
            datasets = tuple(getattr(self, "datasets", ()))
            if len(datasets) != 1:
                raise ValueError(f"{type(self).__name__} sweeps the benchmarks {list(datasets)}: pass dataset=")
            own["dataset"] = datasets[0]
        return EvalConfig(**{**own, **changes})

    def records_dir(self) -> Path:
        """The folder the records go to (``out_dir``, or ``<runs root>/evals``)."""
        return Path(self.out_dir) if self.out_dir is not None else runs_root() / "evals"


@dataclass(frozen=True)
class EvalConfig(EvalSettings):
    """One evaluation run: :class:`EvalSettings` on one data set.

    Attributes:
        dataset: ``"gsm8k"``, ``"math500"``, ``"aime24"``, ... (see :func:`~mipeaks.data.load_problems`).
    """

    dataset: str = "gsm8k"

    def __post_init__(self) -> None:
        super().__post_init__()
        validation.check_choice(self, "dataset", DATASETS)

    def fingerprint(self) -> str:
        """Hash of every field that changes a record (not ``n``, ``batch_size``, ``device``, ``out_dir``)."""
        keep = {f.name: getattr(self, f.name) for f in fields(EvalConfig)
                if f.name not in ("n", "batch_size", "device", "out_dir")}
        keep["record_format"] = RECORD_FORMAT
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def _check_datasets(config: Any) -> None:
    """Check a sweep's ``datasets``: non-empty, known, no repeats."""
    name = f"{type(config).__name__}.datasets"
    if not config.datasets:
        raise ValueError(f"{name} must name at least one benchmark, got {config.datasets!r}")
    for d in config.datasets:
        if d not in DATASETS:
            close = validation.close_matches(d, DATASETS)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise ValueError(f"{name} must hold names of {sorted(DATASETS)}, got {d!r}{hint}")
    if len(set(config.datasets)) != len(config.datasets):
        raise ValueError(f"{name} names a benchmark twice: {list(config.datasets)}")


def benchmark_problems(config: Any, problems: Sequence[Problem] | Mapping[str, Sequence[Problem]] | None = None,
                       ) -> dict[str, Sequence[Problem]]:
    """The problems of each benchmark of a sweep config (``config.datasets``).

    Args:
        config: a sweep config.
        problems: None (each benchmark's first ``config.n`` problems, :func:`~mipeaks.data.load_problems`),
            a mapping benchmark -> problems, or one list (only when the sweep has one benchmark).

    Raises:
        ValueError: a list given for several benchmarks, or a mapping that lacks one.
    """
    datasets = tuple(config.datasets)
    if problems is None:
        return {d: load_problems(d, config.n) for d in datasets}
    if isinstance(problems, Mapping):
        missing = [d for d in datasets if d not in problems]
        if missing:
            raise ValueError(f"no problems given for the benchmarks {missing}")
        return {d: problems[d] for d in datasets}
    if len(datasets) != 1:
        raise ValueError(f"one problem list given for the benchmarks {list(datasets)}: pass a mapping")
    return {datasets[0]: problems}


@dataclass
class EvalResult:
    """Records of one run (in problem order) and their accuracy.

    Attributes:
        config: the run's config.
        records: one dict per problem.
        path: the JSONL file.
    """

    config: EvalConfig
    records: list[dict[str, Any]]
    path: Path | None = None

    @property
    def n(self) -> int:
        """Number of problems."""
        return len(self.records)

    @property
    def correct(self) -> int:
        """Number graded correct."""
        return sum(bool(r["correct"]) for r in self.records)

    @property
    def accuracy(self) -> float:
        """Fraction correct (nan for no problems)."""
        return self.correct / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        """95% Wilson interval of the accuracy."""
        return wilson_interval(self.correct, self.n)

    @property
    def seconds(self) -> float:
        """Decoding time summed over problems."""
        return float(sum(r["seconds"] for r in self.records))

    def summary(self) -> dict[str, Any]:
        """One row: intervention, n, correct, accuracy, ci_low, ci_high, tokens, seconds, path."""
        low, high = self.ci
        return dict(intervention=self.config.intervention or "baseline", n=self.n, correct=self.correct,
                    accuracy=self.accuracy, ci_low=low, ci_high=high,
                    mean_tokens=sum(r["tokens"] for r in self.records) / max(self.n, 1),
                    seconds=self.seconds, path=str(self.path))

    def frame(self) -> pd.DataFrame:
        """The records as a DataFrame indexed by problem id."""
        return pd.DataFrame(self.records).set_index("id", drop=False)


def build_intervention(model: LoadedModel, config: EvalConfig) -> Intervention | None:
    """The ``generate`` plug-in of a suppress/recycle config (None for baseline, TTTS and Origin)."""
    spec = config.intervention_config()
    return spec.build(model) if isinstance(spec, (SuppressConfig, RecycleConfig)) else None


def _default_path(model: LoadedModel, config: EvalConfig, extra: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.name).strip("_")
    fp = hashlib.sha256((config.fingerprint() + extra).encode()).hexdigest()[:10]
    return config.records_dir() / f"{slug}-{config.dataset}-{config.intervention or 'baseline'}-{fp}.jsonl"


#: Fields every evaluation record must have to be reused.
_RECORD_KEYS = ("id", "output_ids", "extracted", "correct", "tokens", "seconds")


def _key(record: Mapping[str, Any]) -> str | None:
    """A record's key (None for records written before records were keyed)."""
    fp = record.get("fingerprint")
    return fp.get("key") if isinstance(fp, dict) else None


def _shard_path(path: Path, rank: int) -> Path:
    """The records file of data-parallel rank ``rank`` > 0 (rank 0 writes ``path`` itself)."""
    return path.with_name(f"{path.stem}.rank{rank}.jsonl")


def _lock_path(path: Path) -> Path:
    """The writer lock of a records file (hidden, beside it)."""
    return path.with_name(f".{path.name}.lock")


def _read_manifest(path: Path, manifest: dict[str, Any], *, writer: bool) -> bool:
    """Check that the records at ``path`` come from the same settings (a damaged manifest is rewritten).

    Returns:
        Whether a warning about stale records was already given (other code or weights).
    """
    mpath = path.with_suffix(".manifest.json")
    if not mpath.exists():
        if path.exists() and path.stat().st_size:
            raise ValueError(f"{path} exists without its manifest {mpath.name}: use another out_path")
        return False
    try:
        old = json.loads(mpath.read_text(encoding="utf-8"))
        old_fp = old["fingerprint"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        warn(mpath, "damaged manifest: rewriting it (records are checked one by one)")
        if writer:
            atomic_write(mpath, json.dumps(manifest, indent=2) + "\n")
        return False
    if old_fp != manifest["fingerprint"]:
        raise ValueError(f"{path} holds a different run (config {old.get('config')}); use another out_path")
    same = all(old.get(k) == manifest[k] for k in ("code_fingerprint", "weights_fingerprint"))
    manifest["git_commits"] = list(old.get("git_commits", [])) if same else []
    if old.get("code_fingerprint") != manifest["code_fingerprint"]:
        warn(path, "records made by other code (a result-affecting module or library changed): recomputing them")
    elif not same:
        warn(path, "records made by a model with other weights or tokenizer: recomputing them")
    return not same


def _read_records(path: Path, *, repair: bool) -> list[dict[str, Any]]:
    """Valid records of one JSONL file; damaged lines are reported (and dropped from the file when ``repair``)."""
    try:
        records, problems = read_jsonl(path, _RECORD_KEYS)
    except FileNotFoundError:  # a shard merged away meanwhile
        return []
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        warn(path, f"damaged records ({shown}): recomputing them")
        if repair:
            rewrite_jsonl(path, records)
    return records


def _absorb_shards(path: Path) -> None:
    """Append the rank shard files' records to ``path`` (skipping ones it has) and delete the shards."""
    shards = sorted(path.parent.glob(f"{path.stem}.rank*.jsonl"))
    if not shards:
        return
    records = _read_records(path, repair=False)
    seen = {(str(r["id"]), _key(r)) for r in records}
    for shard_file in shards:
        with writer_lock(_lock_path(shard_file)):
            for r in _read_records(shard_file, repair=False):
                if (str(r["id"]), _key(r)) not in seen:
                    seen.add((str(r["id"]), _key(r)))
                    records.append(r)
            rewrite_jsonl(path, records)
            shard_file.unlink()


def _load_existing(path: Path, manifest: dict[str, Any], keys: Mapping[str, str], *, rank: int = 0,
                   world: int = 1) -> dict[str, dict[str, Any]]:
    """Reusable records by id: whole, valid and made from the same settings, code, model, problem and prompt.

    Reads ``path`` and any rank shard files beside it. The writer of ``path`` (rank 0) drops damaged
    lines from it and, outside a data-parallel launch, merges leftover shards into it. Stale records
    (another key) are left in the file and recomputed; readers keep the last record of an id.

    Raises:
        ValueError: ``path`` holds a run with other settings, or has no manifest.
    """
    warned = _read_manifest(path, manifest, writer=rank == 0)
    if rank == 0 and world == 1:
        _absorb_shards(path)
    records = _read_records(path, repair=rank == 0)
    for shard_file in sorted(path.parent.glob(f"{path.stem}.rank*.jsonl")):
        records += _read_records(shard_file, repair=shard_file == _shard_path(path, rank))
    done: dict[str, dict[str, Any]] = {}
    stale: list[str] = []
    for record in records:
        rid = str(record["id"])
        if rid in keys and _key(record) == keys[rid]:
            done[rid] = record
        elif rid in keys:
            stale.append(rid)
    stale = [i for i in dict.fromkeys(stale) if i not in done]
    if stale and not warned:
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        warn(path, f"problem(s) {shown}: record made from another question, answer, prompt or model: recomputing")
    return done


@torch.inference_mode()
def gold_logprob(model: LoadedModel, context_ids: Sequence[int] | Int[torch.Tensor, "L"], answer: str,
                 *, suffix: str = ANSWER_SUFFIX) -> float:
    """Mean log-probability per token of the gold answer after a context (teacher-forced, no plug-ins).

    The scored sequence is ``context_ids + ids(suffix + " \\boxed{") + ids(answer + "}")``; each part
    is encoded on its own (no special tokens), as TTTS appends ids, and only the last part is scored.
    :func:`evaluate` calls it with the prompt and the model's reasoning, so the value says how much
    that reasoning supports the right answer, a graded signal where accuracy is 0 everywhere.

    Returns:
        The mean over the answer's tokens of ``log p(token | everything before it)`` (nats; <= 0).
    """
    tok = model.tokenizer
    head = [int(i) for i in torch.as_tensor(context_ids).flatten().tolist()]
    head += tok.encode(suffix + " \\boxed{", add_special_tokens=False)
    target = tok.encode(f"{answer}}}", add_special_tokens=False)
    # Chunked through the KV cache with SDPA (mipeaks.forcing): memory is O(L), not heads x L x L.
    logits = teacher_force(model, head + target, last_logits=len(target) + 1).logits[:-1]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(target, device=logits.device)[:, None])
    return float(logp.mean())


def _reasoning_ids(row: dict[str, Any]) -> list[int]:
    """A record's output up to the answer: TTTS/Origin reasoning segments, else the output less a final stop."""
    if "segments" in row:
        n = sum(length for kind, length in row["segments"] if kind in ("base", "word", "continue"))
        return row["output_ids"][:n]
    return row["output_ids"][:-1] if row["stop_reason"] == "eos" else row["output_ids"]


def _ttts_row(res: TTTSResult, tok: Any) -> dict[str, Any]:
    """The record fields of a TTTS/Origin result (``graded`` is the text graded)."""
    return dict(output_ids=res.token_ids, output_text=res.text(tok), graded=res.graded_text(tok),
                tokens=res.generated_tokens, stop_reason="answer", seconds=res.seconds,
                reasoning_tokens=res.reasoning_tokens, continuations=res.continuations,
                answer_text=res.graded_text(tok), segments=[[kind, len(ids)] for kind, ids in res.segments])


class _RowLimit(Intervention):
    """Ends row ``r`` once it has emitted ``limits[r]`` tokens (rows resumed at different depths)."""

    def __init__(self, limits: Sequence[int]):
        self.limits = torch.tensor(list(limits))

    def finished(self, step: Any, token: Int[torch.Tensor, "B"]) -> torch.Tensor:
        return (self.limits <= step.index + 1).to(token.device)


def _continue(model: LoadedModel, contexts: Sequence[list[int]], limits: Sequence[int],
              plugins: Sequence[Intervention]) -> list[tuple[list[int], str, float]]:
    """Greedy continuations of ``contexts`` by at most ``limits[r]`` tokens each, in one batch.

    Returns:
        ``(ids, stop_reason, seconds)`` per row (``"length"`` where the row's own limit ended it).
    """
    gens = generate(model, [torch.tensor(c) for c in contexts], max_new_tokens=max(limits),
                    interventions=[*plugins, _RowLimit(limits)])
    return [(g.token_ids.tolist(), "length" if g.stop_reason == "ended" else g.stop_reason, g.seconds / len(gens))
            for g in gens]


def _segments(record: dict[str, Any]) -> list[tuple[str, list[int]]]:
    """A TTTS/Origin record's segments with their ids."""
    out, pos = [], 0
    for kind, length in record["segments"]:
        out.append((kind, record["output_ids"][pos:pos + length]))
        pos += length
    return out


def _reuse_ttts(model: LoadedModel, spec: TTTSConfig, source: EvalResult, problems: Sequence[Problem],
                prompts: Sequence[torch.Tensor], plugins: Sequence[Intervention]) -> list[dict[str, Any]]:
    """TTTS/Origin records read off a larger budget's records; only the forced answers are decoded."""
    tok, src_spec = model.tokenizer, source.config.intervention_config()
    assert isinstance(src_spec, TTTSConfig)
    word_len = len(tok.encode(spec.word if spec.word[:1].isspace() else " " + spec.word, add_special_tokens=False))
    suffix = tok.encode(spec.answer_suffix, add_special_tokens=False)
    same_answer = (src_spec.answer_suffix, src_spec.answer_tokens) == (spec.answer_suffix, spec.answer_tokens)
    by_id = {r["id"]: r for r in source.records}
    rows: list[dict[str, Any] | None] = [None] * len(problems)
    answers, fresh = [], []
    for i, problem in enumerate(problems):
        src = by_id[problem.id]
        segs = _segments(src)
        derived = replay_budget(segs, source_budget=src_spec.total_budget,
                                source_base=src_spec.base_tokens if src_spec.method == "ttts" else None,
                                budget=spec.total_budget, base_tokens=spec.base_tokens,
                                word_len=word_len if spec.method == "ttts" else None,
                                source_recipe=src_spec.recipe if src_spec.method == "ttts" else "budget",
                                recipe=spec.recipe)
        reasoning = [s for s in segs if s[0] in ("base", "word", "continue")]
        if derived is None:
            fresh.append(i)
        elif derived == reasoning and same_answer:
            res = TTTSResult(prompt_ids=prompts[i], segments=segs, reasoning_tokens=src["reasoning_tokens"],
                             continuations=src["continuations"])
            rows[i] = dict(_ttts_row(res, tok), gold_logprob=src["gold_logprob"],
                           reused_prefix=_reused(source, len(res.token_ids)))
        else:
            answers.append((i, derived))
    if answers:
        contexts = [prompts[i].tolist() + [t for _, ids in d for t in ids] + suffix for i, d in answers]
        outs = _continue(model, contexts, [spec.answer_tokens] * len(answers), plugins)
        stop = set(model.eos_token_ids())
        for (i, derived), (ids, reason, seconds) in zip(answers, outs):
            ids = ids[:-1] if reason == "eos" else ids
            counted = ("continue",) if spec.method == "ttts" and spec.recipe == "official" else ("base", "word", "continue")
            n = sum(len(x) for k, x in derived if k in counted)  # as TTTSForcing.result counts them
            res = TTTSResult(prompt_ids=prompts[i], segments=[*derived, ("suffix", suffix), ("answer", ids)],
                             reasoning_tokens=n, continuations=sum(k == "word" for k, _ in derived), seconds=seconds)
            assert not stop & set(ids)
            rows[i] = dict(_ttts_row(res, tok), reused_prefix=_reused(source, n))
    if fresh:
        for i, res in zip(fresh, spec.run_batch(model, [prompts[i] for i in fresh], plugins)):
            rows[i] = dict(_ttts_row(res, tok), reused_prefix=_reused(source, 0))
    return rows  # type: ignore[return-value]


def _reused(source: EvalResult, tokens: int) -> dict[str, Any]:
    """The ``reused_prefix`` field: which record file's output, and how many of its tokens."""
    name = source.path.name if source.path is not None else (source.config.intervention or "baseline")
    return {"from": name, "tokens": int(tokens)}


def _reuse_greedy(model: LoadedModel, config: EvalConfig, source: EvalResult, problems: Sequence[Problem],
                  prompts: Sequence[torch.Tensor], plugins: Sequence[Intervention]) -> list[dict[str, Any]]:
    """Suppression/RR records that start from the baseline's: decoding begins at the first divergent step."""
    by_id = {r["id"]: r for r in source.records}
    tok, plugin = model.tokenizer, plugins[0]
    rows: list[dict[str, Any] | None] = [None] * len(problems)
    todo: list[tuple[int, int, int]] = []  # (row, first divergent step, coins drawn before it)
    for i, problem in enumerate(problems):
        src = by_id[problem.id]
        out = src["output_ids"]
        if isinstance(plugin, Recycle):
            j, draws = plugin.first_recycle(model, prompts[i].tolist(), out)
        else:
            j, draws = plugin.first_use(out), 0
        if j is None:
            rows[i] = dict(output_ids=list(out), output_text=src["output_text"], graded=src["output_text"],
                           tokens=len(out), stop_reason=src["stop_reason"], seconds=0.0,
                           gold_logprob=src["gold_logprob"], reused_prefix=_reused(source, len(out)))
            if isinstance(plugin, Recycle):
                rows[i].update(triggers=draws, recycles=0)  # type: ignore[union-attr]
        else:
            todo.append((i, j, draws))
    if todo:
        contexts = [prompts[i].tolist() + by_id[problems[i].id]["output_ids"][:j] for i, j, _ in todo]
        if isinstance(plugin, Recycle):
            plugin.resume([prompts[i].tolist() for i, _, _ in todo], [d for _, _, d in todo])
        try:
            outs = _continue(model, contexts, [config.max_new_tokens - j for _, j, _ in todo], plugins)
        finally:
            if isinstance(plugin, Recycle):
                plugin.resume(None)
        for r, ((i, j, _), (ids, reason, seconds)) in enumerate(zip(todo, outs)):
            ids = by_id[problems[i].id]["output_ids"][:j] + ids
            text = tok.decode(ids, skip_special_tokens=True)
            rows[i] = dict(output_ids=ids, output_text=text, graded=text, tokens=len(ids), stop_reason=reason,
                           seconds=seconds, reused_prefix=_reused(source, j))
            if isinstance(plugin, Recycle):
                rows[i].update(triggers=plugin.triggers[r], recycles=plugin.recycles[r])  # type: ignore[union-attr]
    return rows  # type: ignore[return-value]


def _cut(row: dict[str, Any], spec: Any) -> bool:
    """Whether a record's graded text was ended by a token limit (its last number may be cut short)."""
    if isinstance(spec, TTTSConfig):
        kind, length = row["segments"][-1]
        return kind == "answer" and length >= spec.answer_tokens
    return row["stop_reason"] == "length"


def _decode(model: LoadedModel, config: EvalConfig, problems: Sequence[Problem],
            plugins: Sequence[Intervention], reuse: EvalResult | None = None) -> list[dict[str, Any]]:
    """Decode and grade one batch: a record per problem (``graded`` is the text graded).

    With ``reuse`` (a run the records can be read off, see :func:`evaluate`) only what differs from
    it is decoded, and each record says so in ``reused_prefix``.
    """
    tok = model.tokenizer
    prompts = [encode_prompt(tok, p, config.prompt_style) for p in problems]
    spec = config.intervention_config()
    rows: list[dict[str, Any]] = []
    if reuse is not None and isinstance(spec, TTTSConfig):
        rows = _reuse_ttts(model, spec, reuse, problems, prompts, plugins)
    elif reuse is not None:
        rows = _reuse_greedy(model, config, reuse, problems, prompts, plugins)
    elif isinstance(spec, TTTSConfig):
        rows = [_ttts_row(res, tok) for res in spec.run_batch(model, prompts, plugins)]
    else:
        gens = generate(model, prompts, max_new_tokens=config.max_new_tokens, interventions=plugins)
        recycle = next((p for p in plugins if isinstance(p, Recycle)), None)
        for r, g in enumerate(gens):
            text = g.text(tok)
            row = dict(output_ids=g.token_ids.tolist(), output_text=text, graded=text, tokens=len(g.token_ids),
                       stop_reason=g.stop_reason, seconds=g.seconds / len(gens))
            if recycle is not None:
                row.update(triggers=recycle.triggers[r], recycles=recycle.recycles[r])
            rows.append(row)
    out = []
    for problem, prompt, row in zip(problems, prompts, rows):
        if "gold_logprob" not in row:
            row["gold_logprob"] = gold_logprob(model, prompt.tolist() + _reasoning_ids(row), problem.answer)
        graded = grade(row.pop("graded"), problem.answer, mode=config.grading, extraction=config.extraction,
                       truncated=_cut(row, spec))
        out.append(dict(id=problem.id, dataset=problem.dataset or config.dataset,
                        prompt=format_prompt(problem, config.prompt_style, tok), prompt_tokens=len(prompt),
                        **{k: row.pop(k) for k in ("output_ids", "output_text")},
                        extracted=graded.extracted, gold=graded.gold, correct=graded.correct, **row))
    return out


def _check_reuse(config: EvalConfig, reuse: EvalResult, custom: Sequence[Intervention],
                 problems: Sequence[Problem]) -> None:
    """Refuse a ``reuse`` run whose records a run of ``config`` cannot be read off."""
    if custom:
        raise ValueError("reuse cannot be combined with custom plug-ins (their effect on the prefix is unknown)")
    src = reuse.config
    for name in ("model", "dataset", "prompt_style", "dtype"):
        if getattr(src, name) != getattr(config, name):
            raise ValueError(f"reuse: {name} is {getattr(src, name)!r} there but {getattr(config, name)!r} here")
    ttts = config.intervention in ("ttts", "origin")
    if ttts:
        if src.intervention not in ("ttts", "origin"):
            raise ValueError(f"a {config.intervention} run reuses a 'ttts' or 'origin' run, not {src.intervention!r}")
        mine, theirs = config.intervention_config(), src.intervention_config()
        if mine.total_budget > theirs.total_budget:
            raise ValueError(f"reuse: budget {mine.total_budget} exceeds the reused run's {theirs.total_budget}")
        if mine.method == theirs.method == "ttts" and (mine.word, mine.recipe) != (theirs.word, theirs.recipe):
            raise ValueError(f"reuse: word and recipe {theirs.word!r}, {theirs.recipe!r} there but "
                             f"{mine.word!r}, {mine.recipe!r} here")
        if mine.method == "ttts" and mine.base_tokens != theirs.base_tokens and mine.recipe == "official":
            raise ValueError(f"reuse: base_tokens {theirs.base_tokens} there but {mine.base_tokens} here")
    elif config.intervention in ("suppress", "recycle"):
        if src.intervention is not None or src.max_new_tokens != config.max_new_tokens:
            raise ValueError("a suppress/recycle run reuses the baseline run of the same max_new_tokens "
                             f"(got intervention {src.intervention!r}, max_new_tokens {src.max_new_tokens})")
    else:
        raise ValueError("reuse needs an intervention ('suppress', 'recycle', 'ttts', 'origin'), "
                         f"got {config.intervention!r}")
    missing = {p.id for p in problems} - {r["id"] for r in reuse.records}
    if missing:
        raise ValueError(f"reuse lacks the problems {sorted(missing)[:5]}")


def evaluate(
    model: LoadedModel | str,
    problems: Sequence[Problem] | None = None,
    config: EvalConfig | None = None,
    *,
    intervention: str | Intervention | Sequence[Intervention] | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
    reuse: EvalResult | None = None,
    **overrides: Any,
) -> EvalResult:
    """Evaluate a model on problems, with or without an intervention, resumably.

    Args:
        model: a loaded model, or a name for :func:`~mipeaks.models.load_model`.
        problems: the problems (None: ``load_problems(config.dataset, config.n)``); only the first
            ``config.n`` are used when ``n`` is set.
        config: the run's :class:`EvalConfig` (default: ``EvalConfig()``); a sweep config is
            reduced to its :meth:`~EvalConfig.eval_config`.
        intervention: an intervention name (sets ``config.intervention``), or custom plug-in
            object(s) applied on top of the configured intervention (recorded by class name).
        out_path: the JSONL file (default: ``<records dir>/<model>-<dataset>-<intervention>-<hash>.jsonl``,
            so an identical config resumes the same file; see :meth:`EvalConfig.records_dir`).
        progress: show a progress bar over problems.
        reuse: a run whose greedy outputs this one's share a prefix with: the baseline for
            ``"suppress"``/``"recycle"`` (decoding starts at the first banned id or first recycle;
            an output that never reaches one is copied), a TTTS/Origin run of a budget at least as
            large for ``"ttts"``/``"origin"`` (only the forced answer is decoded). Records are those
            of a stand-alone run plus ``reused_prefix = {"from": file, "tokens": j}``.
        **overrides: :class:`EvalConfig` fields, e.g. ``max_new_tokens=128, params=dict(layer=20)``.

    Returns:
        An :class:`EvalResult` with the records of ``problems`` in order.

    Raises:
        ValueError: bad config, duplicate problem ids, a model that does not match ``config.model``
            or ``config.dtype``, or an ``out_path`` holding another run.
        WriterLockedError: another process is writing the records file.
    """
    config = (config or EvalConfig()).eval_config()
    custom: list[Intervention] = []
    if isinstance(intervention, str):
        overrides["intervention"] = intervention
    elif isinstance(intervention, Intervention):
        custom = [intervention]
    elif intervention is not None:
        custom = list(intervention)
    config = replace(config, **overrides) if overrides else config
    if problems is None:  # problems first: a bad problem list fails before a model loads
        problems = load_problems(config.dataset, config.n)
    problems = validation.check_problems(problems, config.n)
    if isinstance(model, str):
        model = load_model(model, device=config.device, dtype=config.dtype)
    if config.model is not None and config.model != model.name:
        raise ValueError(f"config.model is {config.model!r} but the model given is {model.name!r}")
    model_dtype = str(model.dtype).removeprefix("torch.")
    if model_dtype != config.dtype:
        raise ValueError(f"config.dtype is {config.dtype!r} but the model given is {model_dtype}")
    config = replace(config, model=model.name)
    ids = [p.id for p in problems]
    custom_names = [f"{type(c).__module__}.{type(c).__name__}" for c in custom]
    fingerprint = config.fingerprint() + (":" + ",".join(custom_names) if custom else "")
    code, weights = code_fingerprint(EVAL_CODE), model_fingerprint(model)
    stamps = {}
    for p in problems:
        prompt = encode_prompt(model.tokenizer, p, config.prompt_style).tolist()
        content = problem_hash(p)
        stamps[p.id] = dict(key=digest([fingerprint, code, weights, content, prompt]), code=code, weights=weights,
                            problem=content)
    manifest = dict(created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    fingerprint=fingerprint, code_fingerprint=code, weights_fingerprint=weights,
                    config=asdict(config), custom_plugins=custom_names, model=model.describe(),
                    versions=versions(), git_commit=git_commit())
    path = Path(out_path) if out_path is not None else _default_path(model, config, ",".join(custom_names))
    path.parent.mkdir(parents=True, exist_ok=True)
    rank, world = rank_world()
    own = path if rank == 0 else _shard_path(path, rank)
    with writer_lock(_lock_path(own)):
        done = _load_existing(path, manifest, {i: s["key"] for i, s in stamps.items()}, rank=rank, world=world)
        commits = manifest.setdefault("git_commits", [])
        if rank == 0:
            atomic_write(path.with_suffix(".manifest.json"), json.dumps(manifest, indent=2) + "\n")
        step = config.batch_size
        mine = [p for batch in shard([problems[i:i + step] for i in range(0, len(problems), step)], rank, world)
                for p in batch]
        todo = [p for p in mine if p.id not in done]
        plugin = build_intervention(model, config)
        plugins = [*([plugin] if plugin is not None else []), *custom]
        if reuse is not None:
            _check_reuse(config, reuse, custom, todo)
        torch.manual_seed(config.seed)
        bar = tqdm(total=len(mine), initial=len(mine) - len(todo), disable=not progress,
                   desc=f"{config.dataset}:{config.intervention or 'baseline'}", unit="problem")
        try:
            for start in range(0, len(todo), step):
                for record in _decode(model, config, todo[start:start + step], plugins, reuse):
                    record["fingerprint"] = stamps[record["id"]]
                    done[record["id"]] = record
                    append_jsonl(own, record)
                    bar.update(1)
        finally:
            bar.close()
        if todo and world == 1 and manifest["git_commit"] not in commits:
            commits.append(manifest["git_commit"])
            atomic_write(path.with_suffix(".manifest.json"), json.dumps(manifest, indent=2) + "\n")
    if world > 1:  # rank 0 merges every rank's records into ``path`` and finishes the manifest
        barrier()
        if rank == 0:
            with writer_lock(_lock_path(path)):
                _absorb_shards(path)
                if manifest["git_commit"] not in commits:
                    commits.append(manifest["git_commit"])
                atomic_write(path.with_suffix(".manifest.json"), json.dumps(manifest, indent=2) + "\n")
        barrier()
        keys = {i: s["key"] for i, s in stamps.items()}
        done = {str(r["id"]): r for r in read_jsonl(path, _RECORD_KEYS)[0]
                if keys.get(str(r["id"])) == _key(r)}
    note_read(path, ",".join(commits) or manifest["git_commit"])
    return EvalResult(config=config, records=[done[i] for i in ids], path=path)


def load_result(path: str | Path) -> EvalResult:
    """Read back a run's JSONL records and its manifest (the config) as an :class:`EvalResult`.

    Records keep the file's order; a problem written twice (recomputed after a change of problem
    text, model or code) keeps its last record. Damaged lines are skipped with one warning line.

    Raises:
        FileNotFoundError: the JSONL file or its ``.manifest.json`` is missing.
        ValueError: the manifest is damaged.
    """
    path = Path(path)
    mpath = path.with_suffix(".manifest.json")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        config = EvalConfig(**manifest["config"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{mpath} is damaged ({type(err).__name__}: {err}); rerun evaluate() to repair it") from None
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    rows, problems = read_jsonl(path, ("id",))
    if problems:
        warn(path, f"damaged records skipped ({'; '.join(problems[:3])}); rerun evaluate() to recompute them")
    records: dict[str, dict[str, Any]] = {}
    for record in rows:
        records[str(record["id"])] = record
    note_read(path, ",".join(manifest.get("git_commits", [])) or manifest.get("git_commit"))
    return EvalResult(config=config, records=list(records.values()), path=path)


def show_first_change(reference: EvalResult, other: EvalResult, labels: tuple[str, str] = ("reference", "other"),
                      ) -> str | None:
    """Print the first problem whose output differs between two runs: gold, then both outputs.

    Returns:
        The problem's id, or None (after saying so) when every output is the same.
    """
    theirs = {r["id"]: r for r in other.records}
    for mine in reference.records:
        changed = theirs.get(mine["id"])
        if changed is not None and changed["output_ids"] != mine["output_ids"]:
            print(f"problem {mine['id']} (gold {mine['gold']})")
            for label, rec in zip(labels, (mine, changed)):
                extra = f"; {rec['recycles']} recycles" if "recycles" in rec else ""
                print(f"--- {label}, extracted {rec['extracted']!r}{extra}:\n{rec['output_text']}")
            return str(mine["id"])
    print(f"no output differs between {labels[0]} and {labels[1]}")
    return None


#: Per-problem counters that :func:`compare_arms` sums when an arm's records have them.
COUNTERS = ("triggers", "recycles", "continuations")


def _mean_ci(values: Sequence[float], z: float = 1.96) -> tuple[float, float, float]:
    """Mean and normal-approximation 95% interval (``z`` standard errors); nan bounds for fewer than 2 values."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan"), float("nan")
    half = z * math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
    return mean, mean - half, mean + half


def _arm_row(res: EvalResult, ref: EvalResult) -> dict[str, Any]:
    """Accuracy of ``res`` and how it differs from the reference run ``ref`` (same problems)."""
    mine = {r["id"]: r for r in res.records}
    theirs = {r["id"]: r for r in ref.records}
    if set(mine) != set(theirs):
        raise ValueError("compared runs must cover the same problems")
    changed = sum(mine[i]["output_ids"] != theirs[i]["output_ids"] for i in mine)
    answer_changed = sum(mine[i]["extracted"] != theirs[i]["extracted"] for i in mine)
    low, high = res.ci
    changed_low, changed_high = wilson_interval(changed, res.n)
    row = dict(n=res.n, correct=res.correct, accuracy=res.accuracy, ci_low=low, ci_high=high,
               answer_extracted=sum(r["extracted"] is not None for r in res.records),
               mean_tokens=sum(r["tokens"] for r in res.records) / max(res.n, 1),
               changed=changed, changed_share=changed / max(res.n, 1), changed_ci_low=changed_low,
               changed_ci_high=changed_high, answer_changed=answer_changed)
    gold = [mine[i]["gold_logprob"] for i in mine]
    diff = [mine[i]["gold_logprob"] - theirs[i]["gold_logprob"] for i in mine]
    row["mean_gold_logprob"] = sum(gold) / max(len(gold), 1)
    row["gold_logprob_diff"], row["gold_logprob_diff_ci_low"], row["gold_logprob_diff_ci_high"] = _mean_ci(diff)
    for name in COUNTERS:
        row[name] = sum(int(r.get(name, 0)) for r in res.records)
    if all("reasoning_tokens" in r for r in res.records):
        row["mean_reasoning_tokens"] = sum(r["reasoning_tokens"] for r in res.records) / max(res.n, 1)
    row["path"] = str(res.path)
    return row


def compare_arms(results: Mapping[str, EvalResult], reference: str) -> pd.DataFrame:
    """One row per arm: accuracy with its Wilson interval, and how each arm differs from ``reference``.

    Columns: ``arm, n, correct, accuracy, ci_low, ci_high, answer_extracted`` (problems with an
    extracted answer), ``mean_tokens``, ``changed`` (outputs whose token ids differ from the
    reference's anywhere) with ``changed_share`` and its Wilson interval, ``answer_changed``
    (extracted answers that differ; no answer counts as a value), ``mean_gold_logprob`` (see
    :func:`gold_logprob`) and ``gold_logprob_diff`` with its 95% interval (the mean paired change
    against the reference, problem by problem), the summed :data:`COUNTERS`
    (``triggers``, ``recycles``: RR; ``continuations``: TTTS words appended), ``mean_reasoning_tokens``
    when the records have it (TTTS/Origin), and ``path``.

    Raises:
        KeyError: ``reference`` is not one of ``results``.
        ValueError: the runs do not cover the same problems.
    """
    ref = results[reference]
    return pd.DataFrame([{"arm": name, **_arm_row(res, ref)} for name, res in results.items()])


@dataclass(frozen=True)
class SuppressionSweepConfig(EvalSettings):
    """Fig. 5's sweep: :class:`EvalSettings`, the benchmarks, the numbers of suppressed words and their list.

    ``params`` holds the :class:`~mipeaks.suppression.SuppressConfig` fields shared by every arm
    (``case_sensitive``); the sweep fills in each arm's words. ``seed`` seeds the random arm's words.

    Attributes:
        datasets: the benchmarks, one panel each (the paper: ``gsm8k``, ``math500``, ``aime24``).
        ks: numbers of suppressed words; ``0`` is the unsuppressed baseline, shared by both arms.
        thinking_list: ``"paper"`` (the words of the official R1-Llama-8B list,
            :data:`~mipeaks.lens.PAPER_THINKING_TOKENS_R1_LLAMA_8B`) or the path of a
            thinking-token jsonl (chapter 4's export); only alphabetic words are used.
    """

    intervention: str | None = "suppress"
    datasets: tuple[str, ...] = ("gsm8k",)
    ks: tuple[int, ...] = (0, 2, 5, 10)
    thinking_list: str = "paper"

    _fills_words: ClassVar[bool] = True

    def __post_init__(self) -> None:
        validation.check_types(self)
        _check_datasets(self)
        if self.intervention != "suppress":
            raise ValueError(f"SuppressionSweepConfig.intervention must be 'suppress', got {self.intervention!r}")
        if not self.ks or any(int(k) != k or k < 0 for k in self.ks):
            raise ValueError(f"SuppressionSweepConfig.ks must be non-empty, of integers >= 0, got {self.ks!r}")
        if "words" in self.params or "ids" in self.params:
            raise ValueError("SuppressionSweepConfig.params may only hold 'case_sensitive' (the sweep sets each arm's "
                             f"words), got {dict(self.params)!r}")
        if self.thinking_list != "paper" and not Path(self.thinking_list).expanduser().is_file():
            raise ValueError("SuppressionSweepConfig.thinking_list must be 'paper' or an existing thinking-token "
                             f"jsonl, got {self.thinking_list!r}")
        object.__setattr__(self, "ks", tuple(int(k) for k in self.ks))
        super().__post_init__()

    def thinking_tokens(self) -> list[ThinkingToken | str]:
        """The ranked thinking words (or records) that :attr:`thinking_list` names."""
        if self.thinking_list == "paper":
            return [word for word, _ in PAPER_THINKING_TOKENS_R1_LLAMA_8B]
        return list(load_thinking_tokens(self.thinking_list))


@dataclass(frozen=True)
class RecyclingSweepConfig(EvalSettings):
    """Fig. 6's runs: :class:`EvalSettings` with ``intervention="recycle"`` on each benchmark.

    ``params`` holds the :class:`~mipeaks.recycling.RecycleConfig` of the RR arm (``layer``,
    ``words``, ``p``); each benchmark also runs Origin (no intervention) and RR at ``p = 1``
    (the paper's text: recycle at every trigger). See :func:`recycling_sweep`.

    Attributes:
        datasets: the benchmarks, one panel each (the paper: ``gsm8k``, ``math500``, ``aime24``).
    """

    intervention: str | None = "recycle"
    datasets: tuple[str, ...] = ("gsm8k",)

    def __post_init__(self) -> None:
        validation.check_types(self)
        _check_datasets(self)
        if self.intervention != "recycle":
            raise ValueError(f"RecyclingSweepConfig.intervention must be 'recycle', got {self.intervention!r}")
        super().__post_init__()


def _check_budgets(config: Any) -> None:
    """Check and normalise ``budgets``: one tuple for every benchmark, or one per benchmark."""
    name = "TTTSSweepConfig.budgets"
    per = config.budgets if isinstance(config.budgets, Mapping) else {d: config.budgets for d in config.datasets}
    extra = sorted(set(per) - set(config.datasets))
    missing = [d for d in config.datasets if d not in per]
    if extra or missing:
        raise ValueError(f"{name} must give budgets for exactly the datasets {list(config.datasets)}; "
                         f"missing {missing}, extra {extra}")
    out = {}
    for d, budgets in per.items():
        if isinstance(budgets, (str, bytes)) or not isinstance(budgets, Sequence) or not budgets or any(
                isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in budgets):
            raise ValueError(f"{name} must be non-empty, of integers >= 1, got {budgets!r}" +
                             (f" for {d!r}" if isinstance(config.budgets, Mapping) else ""))
        if max(budgets) > config.max_new_tokens:
            raise ValueError(f"{name} must be <= max_new_tokens={config.max_new_tokens}, got {tuple(budgets)}")
        out[d] = tuple(int(b) for b in budgets)
    value = out if isinstance(config.budgets, Mapping) else out[config.datasets[0]]
    object.__setattr__(config, "budgets", value)


@dataclass(frozen=True)
class TTTSSweepConfig(EvalSettings):
    """Fig. 7's sweep: :class:`EvalSettings`, the benchmarks, the total reasoning budgets and the words.

    ``params`` holds the :class:`~mipeaks.ttts.TTTSConfig` fields shared by every budget and word
    (``recipe``, ``base_tokens``, ``answer_tokens``); ``max_new_tokens`` bounds the budgets.

    Attributes:
        datasets: the benchmarks, one panel each (the paper: ``gsm8k``, ``math500``, ``aime24``).
        budgets: token budgets (``recipe="budget"``: the total reasoning budget; ``"official"``: the
            one continuation's length); each runs Origin and TTTS. One tuple for every benchmark,
            or a mapping benchmark -> tuple (Fig. 7's axes differ per benchmark).
        words: the thinking words, one TTTS experiment each (the official code runs each word of
            its list separately); Origin does not depend on the word and runs once.
    """

    max_new_tokens: int = 2048
    intervention: str | None = "ttts"
    datasets: tuple[str, ...] = ("gsm8k",)
    budgets: tuple[int, ...] | Mapping[str, tuple[int, ...]] = (256, 512, 1024, 2048)
    words: tuple[str, ...] = ("Wait",)

    def __post_init__(self) -> None:
        validation.check_types(self)
        _check_datasets(self)
        if self.intervention != "ttts":
            raise ValueError(f"TTTSSweepConfig.intervention must be 'ttts', got {self.intervention!r}")
        _check_budgets(self)
        if not self.words or any(not w.strip() for w in self.words) or len(set(self.words)) != len(self.words):
            raise ValueError(f"TTTSSweepConfig.words must be non-empty, distinct, non-blank words, got {self.words!r}")
        if {"total_budget", "method", "word"} & set(self.params):
            raise ValueError("TTTSSweepConfig.params may not hold 'total_budget', 'method' or 'word' (the sweep sets "
                             f"them; words go in `words`), got {dict(self.params)!r}")
        super().__post_init__()

    def budgets_for(self, dataset: str) -> tuple[int, ...]:
        """The budgets of one benchmark."""
        return tuple(self.budgets[dataset]) if isinstance(self.budgets, Mapping) else tuple(self.budgets)


def suppression_sweep(
    model: LoadedModel,
    problems: Sequence[Problem] | Mapping[str, Sequence[Problem]] | None = None,
    config: SuppressionSweepConfig | None = None,
    *,
    progress: bool = True,
    **overrides: Any,
) -> pd.DataFrame:
    """Accuracy against the number of suppressed words, thinking words vs random words (Fig. 5).

    Args:
        model: the model.
        problems: see :func:`benchmark_problems` (None: each benchmark's first ``config.n``).
        config: the sweep (default: ``SuppressionSweepConfig()``).
        progress: progress bars.
        **overrides: :class:`SuppressionSweepConfig` fields.

    Returns:
        One row per ``(dataset, k, arm)``, arm ``"thinking"`` or ``"random"``: ``dataset, k, arm, words,
        banned_ids`` (vocabulary ids the mask bans), ``baseline_uses_banned`` (unsuppressed outputs
        containing one of them: under greedy decoding exactly the outputs the mask can change), then
        the columns of :func:`compare_arms` against the benchmark's unsuppressed run.
    """
    config = config or SuppressionSweepConfig()
    config = replace(config, **overrides) if overrides else config
    by_set = benchmark_problems(config, problems)
    tokens = config.thinking_tokens()
    case_sensitive = bool(config.params.get("case_sensitive", False))
    kmax = max(config.ks)
    thinking = thinking_words(tokens, kmax)
    exclude = [t.word if isinstance(t, ThinkingToken) else str(t) for t in tokens]
    control = random_control_words(model, kmax, config.seed, exclude=exclude)
    rows = []
    for dataset, probs in by_set.items():
        base_cfg = config.eval_config(intervention=None, params={}, dataset=dataset)
        baseline = evaluate(model, probs, base_cfg, progress=progress)
        for k in config.ks:
            for arm, words in (("thinking", thinking[:k]), ("random", control[:k])):
                if k == 0:
                    res = baseline
                else:
                    params = {**config.params, "words": list(words)}
                    res = evaluate(model, probs, config.eval_config(params=params, dataset=dataset),
                                   progress=progress, reuse=baseline)
                banned = set(word_ids(model, words, case_sensitive=case_sensitive)) if words else set()
                uses = sum(bool(banned & set(r["output_ids"])) for r in baseline.records)
                rows.append(dict(dataset=dataset, k=k, arm=arm, words=" ".join(words), banned_ids=len(banned),
                                 baseline_uses_banned=uses, **_arm_row(res, baseline)))
    return pd.DataFrame(rows)


#: The arms of :func:`recycling_sweep`, by the label its table uses (``{p}``: the config's coin).
RR_ARMS = ("Origin", "RR p={p:g} (code)", "RR p=1 (paper text)")


def recycling_sweep(
    model: LoadedModel,
    problems: Sequence[Problem] | Mapping[str, Sequence[Problem]] | None = None,
    config: RecyclingSweepConfig | None = None,
    *,
    progress: bool = True,
    **overrides: Any,
) -> pd.DataFrame:
    """Fig. 6's bars on each benchmark: Origin, RR with the config's coin ``p``, RR at ``p = 1``.

    Origin is the config without the intervention, so with the same settings it is the same run
    (the same records file) as :func:`suppression_sweep`'s unsuppressed baseline.

    Args:
        model: the model.
        problems: see :func:`benchmark_problems` (None: each benchmark's first ``config.n``).
        config: the runs (default: ``RecyclingSweepConfig()``).
        progress: progress bars.
        **overrides: :class:`RecyclingSweepConfig` fields.

    Returns:
        One row per ``(dataset, arm)`` (arms :data:`RR_ARMS`): ``dataset, arm``, then the columns of
        :func:`compare_arms` against the benchmark's Origin run.
    """
    config = config or RecyclingSweepConfig()
    config = replace(config, **overrides) if overrides else config
    by_set = benchmark_problems(config, problems)
    p = float(config.intervention_config().p)  # type: ignore[union-attr]
    names = [a.format(p=p) for a in RR_ARMS]
    frames = []
    for dataset, probs in by_set.items():
        origin = evaluate(model, probs, config.eval_config(intervention=None, params={}, dataset=dataset),
                          progress=progress)
        results = {names[0]: origin}
        for name, params in ((names[1], config.params), (names[2], {**config.params, "p": 1.0})):
            if name not in results:
                results[name] = evaluate(model, probs, config.eval_config(params=params, dataset=dataset),
                                         progress=progress)
        frames.append(compare_arms(results, reference=names[0]).assign(dataset=dataset))
    out = pd.concat(frames, ignore_index=True)
    return out[["dataset", *[c for c in out.columns if c != "dataset"]]]


def ttts_sweep(
    model: LoadedModel,
    problems: Sequence[Problem] | Mapping[str, Sequence[Problem]] | None = None,
    config: TTTSSweepConfig | None = None,
    *,
    progress: bool = True,
    **overrides: Any,
) -> pd.DataFrame:
    """Accuracy against the token budget, Origin vs TTTS with each word, on each benchmark (Fig. 7).

    Args:
        model: the model.
        problems: see :func:`benchmark_problems` (None: each benchmark's first ``config.n``).
        config: the sweep (default: ``TTTSSweepConfig()``).
        progress: progress bars.
        **overrides: :class:`TTTSSweepConfig` fields.

    Returns:
        One row per ``(dataset, budget, curve)``: ``dataset, budget, method`` (``"origin"`` or
        ``"ttts"``), ``word`` (None for Origin), ``curve`` (``"Origin"`` or ``"TTTS 'Wait'"``), then the
        columns of :func:`compare_arms` against Origin at the same budget (``continuations``:
        thinking words appended; ``mean_reasoning_tokens``: tokens counted against the budget).
    """
    config = config or TTTSSweepConfig()
    config = replace(config, **overrides) if overrides else config
    by_set = benchmark_problems(config, problems)
    shared = {k: v for k, v in config.params.items() if k in ("answer_tokens", "answer_suffix")}  # Origin takes these

    def cfg(dataset: str, method: str, budget: int, word: str | None) -> EvalConfig:
        params = {**(shared if method == "origin" else {**config.params, "word": word}), "total_budget": budget}
        return config.eval_config(intervention=method, params=params, dataset=dataset)

    rows = []
    for dataset, probs in by_set.items():
        budgets = config.budgets_for(dataset)
        top = max(budgets)
        # Greedy runs share their prefix: each word's largest budget is decoded once, every other budget
        # (and Origin, whose reasoning is TTTS's base segment when base_tokens is None) is read off it.
        runs = {("ttts", w, top): evaluate(model, probs, cfg(dataset, "ttts", top, w), progress=progress)
                for w in config.words}
        first = runs["ttts", config.words[0], top]
        if config.params.get("base_tokens") is not None:
            runs["origin", None, top] = evaluate(model, probs, cfg(dataset, "origin", top, None), progress=progress)
        origin_source = runs.get(("origin", None, top), first)
        for budget in budgets:
            if ("origin", None, budget) not in runs:
                runs["origin", None, budget] = evaluate(model, probs, cfg(dataset, "origin", budget, None),
                                                        progress=progress, reuse=origin_source)
            origin = runs["origin", None, budget]
            rows.append(dict(dataset=dataset, budget=budget, method="origin", word=None, curve="Origin",
                             **_arm_row(origin, origin)))
            for w in config.words:
                if ("ttts", w, budget) not in runs:
                    runs["ttts", w, budget] = evaluate(model, probs, cfg(dataset, "ttts", budget, w),
                                                       progress=progress, reuse=runs["ttts", w, top])
                rows.append(dict(dataset=dataset, budget=budget, method="ttts", word=w, curve=f"TTTS {w!r}",
                                 **_arm_row(runs["ttts", w, budget], origin)))
    return pd.DataFrame(rows)
