"""The one evaluation runner: baseline and every intervention, one JSONL record per problem.

``evaluate(model, problems, EvalConfig(intervention=..., params=...))`` decodes every problem
with :func:`mipeaks.generation.generate` (``None``, ``"suppress"``, ``"recycle"``) or with the
TTTS orchestration over it (``"ttts"``, ``"origin"``), grades the output with
:func:`mipeaks.grading.grade` and appends one record per problem to a JSONL file, next to a
``.manifest.json`` (model description, config, library versions). Rerunning the same config
skips the problems already in the file (resume); a different config refuses to share a file.

Greedy decoding is deterministic, so a resumed run gives the records an uninterrupted run
would, with one caveat: with ``batch_size > 1`` the rows batched together (and their padding)
can differ between runs, which can change floating-point rounding and rarely a token.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from .data import Problem, encode_prompt, format_prompt, load_problems
from .generation import Intervention, generate
from .grading import MODES, grade
from .lens import ThinkingToken, load_thinking_tokens
from .models import LoadedModel, load_model
from .recycling import Recycle, RecycleConfig
from .suppression import SuppressConfig, random_control_words, thinking_words
from .ttts import TTTSConfig

__all__ = [
    "INTERVENTIONS",
    "EvalConfig",
    "EvalResult",
    "build_intervention",
    "evaluate",
    "suppression_sweep",
    "ttts_sweep",
    "wilson_interval",
]

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
class EvalConfig:
    """One evaluation run.

    Attributes:
        model: model name (None: whatever model is passed to :func:`evaluate`).
        dataset: ``"gsm8k"``, ``"math500"``, ``"aime24"``, ... (see :func:`~mipeaks.data.load_problems`).
        n: the first ``n`` problems (None: all given).
        prompt_style: ``"deepseek-math"`` (the paper's evaluation), ``"raw"`` or ``"chat"``.
        max_new_tokens: generation length (TTTS/Origin: the default ``total_budget``).
        grading: ``"verify"`` or ``"paper"`` (see :mod:`mipeaks.grading`).
        intervention: None (baseline), ``"suppress"``, ``"recycle"``, ``"ttts"`` or ``"origin"``.
        params: the intervention's parameters (fields of :class:`~mipeaks.suppression.SuppressConfig`,
            :class:`~mipeaks.recycling.RecycleConfig` or :class:`~mipeaks.ttts.TTTSConfig`).
        seed: default seed of the intervention (Recycle's coin) when ``params`` has none.
        batch_size: problems per ``generate`` call (TTTS/Origin always run one at a time).
        out_dir: where records go (None: keep them in memory only).
    """

    model: str | None = None
    dataset: str = "gsm8k"
    n: int | None = None
    prompt_style: str = "deepseek-math"
    max_new_tokens: int = 512
    grading: str = "verify"
    intervention: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    batch_size: int = 1
    out_dir: str | None = "runs"

    def __post_init__(self) -> None:
        if self.intervention is not None and self.intervention not in INTERVENTIONS:
            raise ValueError(f"unknown intervention {self.intervention!r}: use None or one of {sorted(INTERVENTIONS)}")
        if self.grading not in MODES:
            raise ValueError(f"grading must be one of {MODES}, got {self.grading!r}")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if self.intervention is None and self.params:
            raise ValueError("params given without an intervention")
        object.__setattr__(self, "params", json.loads(json.dumps(dict(self.params))))  # JSON-clean copy
        self.intervention_config()  # validate the params now

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
        try:
            return INTERVENTIONS[self.intervention](**params)
        except TypeError as err:
            raise ValueError(f"bad params for {self.intervention!r}: {err}") from None

    def fingerprint(self) -> str:
        """Hash of every field that changes a record (not ``n``, ``batch_size`` or ``out_dir``)."""
        keep = {k: v for k, v in asdict(self).items() if k not in ("n", "batch_size", "out_dir")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class EvalResult:
    """Records of one run (in problem order) and their accuracy.

    Attributes:
        config: the run's config.
        records: one dict per problem.
        path: the JSONL file (None when kept in memory).
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
                    seconds=self.seconds, path=str(self.path) if self.path else None)

    def frame(self) -> pd.DataFrame:
        """The records as a DataFrame."""
        return pd.DataFrame(self.records)


def build_intervention(model: LoadedModel, config: EvalConfig) -> Intervention | None:
    """The ``generate`` plug-in of a suppress/recycle config (None for baseline, TTTS and Origin)."""
    spec = config.intervention_config()
    return spec.build(model) if isinstance(spec, (SuppressConfig, RecycleConfig)) else None


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("mipeaks", "torch", "transformers", "transformer-lens", "math-verify"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _default_path(model: LoadedModel, config: EvalConfig, extra: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.name).strip("_")
    fp = hashlib.sha256((config.fingerprint() + extra).encode()).hexdigest()[:10]
    return Path(config.out_dir) / f"{slug}-{config.dataset}-{config.intervention or 'baseline'}-{fp}.jsonl"


def _load_existing(path: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Records already in ``path`` by id, after checking that they come from the same run."""
    mpath = path.with_suffix(".manifest.json")
    if not path.exists():
        return {}
    if not mpath.exists():
        raise ValueError(f"{path} exists without its manifest {mpath.name}: use another out_path")
    old = json.loads(mpath.read_text())
    if old.get("fingerprint") != manifest["fingerprint"]:
        raise ValueError(f"{path} holds a different run (config {old.get('config')}); use another out_path")
    records: dict[str, dict[str, Any]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # a record cut short by a crash: drop it and redo the problem
                path.write_text("".join(x + "\n" for x in lines[:-1]), encoding="utf-8")
                break
            raise ValueError(f"{path}:{i + 1}: malformed record") from None
        records[str(record["id"])] = record
    return records


def _decode(model: LoadedModel, config: EvalConfig, problems: Sequence[Problem],
            plugins: Sequence[Intervention]) -> list[dict[str, Any]]:
    """Decode and grade one batch: a record per problem (``graded`` is the text graded)."""
    tok = model.tokenizer
    prompts = [encode_prompt(tok, p, config.prompt_style) for p in problems]
    spec = config.intervention_config()
    rows: list[dict[str, Any]] = []
    if isinstance(spec, TTTSConfig):
        for prompt in prompts:
            res = spec.run(model, prompt, interventions=plugins)
            rows.append(dict(output_ids=res.token_ids, output_text=res.text(tok), graded=res.graded_text(tok),
                             tokens=res.generated_tokens, stop_reason="answer", seconds=res.seconds,
                             reasoning_tokens=res.reasoning_tokens, continuations=res.continuations,
                             answer_text=res.graded_text(tok),
                             segments=[[kind, len(ids)] for kind, ids in res.segments]))
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
        graded = grade(row.pop("graded"), problem.answer, mode=config.grading)
        out.append(dict(id=problem.id, dataset=problem.dataset or config.dataset,
                        prompt=format_prompt(problem, config.prompt_style, tok), prompt_tokens=len(prompt),
                        **{k: row.pop(k) for k in ("output_ids", "output_text")},
                        extracted=graded.extracted, gold=graded.gold, correct=graded.correct, **row))
    return out


def evaluate(
    model: LoadedModel | str,
    problems: Sequence[Problem] | None = None,
    config: EvalConfig | None = None,
    *,
    intervention: str | Intervention | Sequence[Intervention] | None = None,
    out_path: str | Path | None = None,
    progress: bool = True,
    **overrides: Any,
) -> EvalResult:
    """Evaluate a model on problems, with or without an intervention, resumably.

    Args:
        model: a loaded model, or a name for :func:`~mipeaks.models.load_model`.
        problems: the problems (None: ``load_problems(config.dataset, config.n)``); only the first
            ``config.n`` are used when ``n`` is set.
        config: the run's :class:`EvalConfig` (default: ``EvalConfig()``).
        intervention: an intervention name (sets ``config.intervention``), or custom plug-in
            object(s) applied on top of the configured intervention (recorded by class name).
        out_path: the JSONL file (default: ``out_dir/<model>-<dataset>-<intervention>-<hash>.jsonl``,
            so an identical config resumes the same file).
        progress: show a progress bar over problems.
        **overrides: :class:`EvalConfig` fields, e.g. ``max_new_tokens=128, params=dict(layer=20)``.

    Returns:
        An :class:`EvalResult` with the records of ``problems`` in order.

    Raises:
        ValueError: bad config, duplicate problem ids, a model that does not match ``config.model``,
            or an ``out_path`` holding another run.
    """
    config = config or EvalConfig()
    custom: list[Intervention] = []
    if isinstance(intervention, str):
        overrides["intervention"] = intervention
    elif isinstance(intervention, Intervention):
        custom = [intervention]
    elif intervention is not None:
        custom = list(intervention)
    config = replace(config, **overrides) if overrides else config
    if isinstance(model, str):
        model = load_model(model)
    if config.model is not None and config.model != model.name:
        raise ValueError(f"config.model is {config.model!r} but the model given is {model.name!r}")
    config = replace(config, model=model.name)
    if problems is None:
        problems = load_problems(config.dataset, config.n)
    problems = list(problems)[: config.n] if config.n is not None else list(problems)
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError("problem ids must be unique")
    custom_names = [f"{type(c).__module__}.{type(c).__name__}" for c in custom]
    manifest = dict(created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    fingerprint=config.fingerprint() + (":" + ",".join(custom_names) if custom else ""),
                    config=asdict(config), custom_plugins=custom_names, model=model.describe(),
                    versions=_versions())
    path = Path(out_path) if out_path is not None else (
        _default_path(model, config, ",".join(custom_names)) if config.out_dir is not None else None)
    done: dict[str, dict[str, Any]] = {}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        done = _load_existing(path, manifest)
        if not path.with_suffix(".manifest.json").exists():
            path.with_suffix(".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    todo = [p for p in problems if p.id not in done]
    plugin = build_intervention(model, config)
    plugins = [*([plugin] if plugin is not None else []), *custom]
    torch.manual_seed(config.seed)
    step = 1 if config.intervention in ("ttts", "origin") else config.batch_size
    bar = tqdm(total=len(problems), initial=len(problems) - len(todo), disable=not progress,
               desc=f"{config.dataset}:{config.intervention or 'baseline'}", unit="problem")
    try:
        for start in range(0, len(todo), step):
            for record in _decode(model, config, todo[start:start + step], plugins):
                done[record["id"]] = record
                if path is not None:
                    with open(path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record) + "\n")
                bar.update(1)
    finally:
        bar.close()
    return EvalResult(config=config, records=[done[i] for i in ids], path=path)


def _thinking_list(thinking_list: str | Path | Sequence[ThinkingToken | str]) -> list[ThinkingToken | str]:
    if isinstance(thinking_list, (str, Path)):
        return list(load_thinking_tokens(thinking_list))
    return list(thinking_list)


def suppression_sweep(
    model: LoadedModel,
    problems: Sequence[Problem],
    ks: Sequence[int],
    thinking_list: str | Path | Sequence[ThinkingToken | str],
    seed: int = 0,
    *,
    config: EvalConfig | None = None,
    case_sensitive: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy against the number of suppressed words, thinking words vs random words (Fig. 5).

    Args:
        model: the model.
        problems: the problems.
        ks: numbers of suppressed words; ``0`` is the unsuppressed baseline (reported for both arms).
        thinking_list: a thinking-token jsonl path, or its records, or ranked words.
        seed: seed of the random arm's words.
        config: base config (``max_new_tokens``, ``prompt_style``, ``grading``, ``out_dir``, ...).
        case_sensitive: mask only same-case variants (default: every case).
        progress: progress bars.

    Returns:
        Columns ``k, arm, accuracy, ci_low, ci_high, n, correct, words, path``; arm is
        ``"thinking"`` or ``"random"``.
    """
    tokens = _thinking_list(thinking_list)
    config = config or EvalConfig()
    kmax = max(ks, default=0)
    thinking = thinking_words(tokens, kmax)
    exclude = [t.word if isinstance(t, ThinkingToken) else str(t) for t in tokens]
    control = random_control_words(model, kmax, seed, exclude=exclude)
    rows, baseline = [], None
    for k in ks:
        for arm, words in (("thinking", thinking[:k]), ("random", control[:k])):
            if k == 0:
                baseline = baseline or evaluate(model, problems, replace(config, intervention=None, params={}),
                                                progress=progress)
                res = baseline
            else:
                params = dict(words=list(words), case_sensitive=case_sensitive)
                res = evaluate(model, problems, replace(config, intervention="suppress", params=params),
                               progress=progress)
            low, high = res.ci
            rows.append(dict(k=k, arm=arm, accuracy=res.accuracy, ci_low=low, ci_high=high, n=res.n,
                             correct=res.correct, words=" ".join(words), path=str(res.path) if res.path else None))
    return pd.DataFrame(rows)


def ttts_sweep(
    model: LoadedModel,
    problems: Sequence[Problem],
    budgets: Sequence[int],
    word: str = "Wait",
    *,
    base_tokens: int | None = None,
    answer_tokens: int = 16,
    config: EvalConfig | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy against the total token budget, Origin vs TTTS (Fig. 7).

    Args:
        model: the model.
        problems: the problems.
        budgets: total reasoning-token budgets.
        word: TTTS's thinking word.
        base_tokens: TTTS's first generation (None: the whole budget).
        answer_tokens: the most answer tokens.
        config: base config (``prompt_style``, ``grading``, ``out_dir``, ...).
        progress: progress bars.

    Returns:
        Columns ``budget, method, accuracy, ci_low, ci_high, n, correct, mean_reasoning_tokens, path``.
    """
    config = config or EvalConfig()
    rows = []
    for budget in budgets:
        for method in ("origin", "ttts"):
            params: dict[str, Any] = dict(total_budget=budget, answer_tokens=answer_tokens)
            if method == "ttts":
                params.update(word=word, base_tokens=base_tokens)
            res = evaluate(model, problems, replace(config, intervention=method, params=params), progress=progress)
            low, high = res.ci
            mean_reasoning = sum(r["reasoning_tokens"] for r in res.records) / max(res.n, 1)
            rows.append(dict(budget=budget, method=method, accuracy=res.accuracy, ci_low=low, ci_high=high,
                             n=res.n, correct=res.correct, mean_reasoning_tokens=mean_reasoning,
                             path=str(res.path) if res.path else None))
    return pd.DataFrame(rows)
