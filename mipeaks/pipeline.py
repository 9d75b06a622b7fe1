"""The paper's MI pipeline, one call per step: collect → trajectories → peaks → thinking tokens.

    cfg = MIConfig(n=20, max_new_tokens=128)
    model, run = collect_run(cfg)                    # resumable run directory under runs/
    mi = trajectories(run, cfg)                      # {problem id: (T,) MI trajectory}
    stats = peaks.summarize(mi, rule=cfg.peak_rule, tau=cfg.tau, k=cfg.top_k)   # Table 1/2 per problem
    words = thinking_tokens(model, run, mi, cfg)     # ranked peak words (jsonl-exportable)

:class:`MIConfig`'s fields are exactly the MI notebooks' parameters; :class:`CompareConfig` adds
the second model of the reasoning-vs-base chapter. :func:`settings_text` names a run's settings in
one line, and ``python -m mipeaks.pipeline`` is ``mipeaks mi``.

Each chapter's analyses of these trajectories live in the module of what it studies:
:mod:`mipeaks.peaks` (tables of trajectories and peaks, chapters 1-2), :mod:`mipeaks.layers` (the
same generations at another layer, chapter 3), :mod:`mipeaks.enrichment` (peak words against their
base rate, chapter 4) and :mod:`mipeaks.diagnostics` (what the single-pair HSIC measures, chapter 9).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import lens, mi, peaks, validation
from .collect import CollectConfig, Run, Trace, check_collection_fields, collect
from .data import load_problems
from .models import LoadedModel, load_model
from .provenance import runs_root

__all__ = [
    "CompareConfig",
    "MIConfig",
    "collect_run",
    "run_dir",
    "runs_root",
    "settings_text",
    "thinking_tokens",
    "thinking_tokens_path",
    "trajectories",
    "traces_trajectories",
]


@dataclass(frozen=True)
class MIConfig:
    """Parameters of an MI-trajectory experiment (collection, estimator, peak rule, token view).

    Collection fields are those of :class:`~mipeaks.collect.CollectConfig` (see there); the
    defaults are the CPU defaults of the book (the embedded model, its chat template, 128 tokens),
    not the paper's settings, which the presets in ``notebooks/params/`` hold. The rest:

    Attributes:
        estimator: ``"hsic_paper"`` (the official code's statistic, fast exact evaluation),
            ``"hsic_paper_dense"`` (the original dense float32 method) or ``"hsic_text"`` (the paper
            text's plain HSIC).
        sigma: Gaussian-kernel bandwidth (the code: 50). ``hsic_text`` takes the max over
            :data:`mipeaks.mi.SIGMA_GRID` when ``sigma`` is None.
        peak_rule: ``"iqr"`` (paper text: m_t > Q3 + tau·IQR) or ``"topk"`` (the code's notebook).
        tau: Tukey multiplier for ``"iqr"``.
        top_k: number of peaks for ``"topk"`` (the code: 20).
        token_mode: ``"generated"`` (the code: the token produced at the peak step) or ``"lens"``
            (paper text: final norm + unembedding of the peak state).
        pool_whitespace: count a word's whitespace variants together (``" So"`` and ``"So"``: the
            official jsonl list, default) or apart (the official notebook's Fig. 4 bars).
        run_root: folder holding run directories; None: :func:`runs_root` (``$MIPEAKS_RUNS`` or
            ``runs/`` at the repository root, wherever the notebook runs from).
    """

    model: str = "smollm2-135m-instruct"
    dataset: str = "gsm8k"
    n: int = 20
    prompt_style: str = "chat"  # the paper: "raw"; the embedded instruct model stops at once without its template
    layer: int | str = "last"
    max_new_tokens: int = 128
    gold: str = "solution"
    batch_size: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    data_path: str | None = None
    estimator: str = "hsic_paper"
    sigma: float | None = 50.0
    peak_rule: str = "iqr"
    tau: float = peaks.DEFAULT_TAU  # 1.5
    top_k: int = peaks.DEFAULT_TOPK  # 20
    token_mode: str = "generated"
    pool_whitespace: bool = True
    run_root: str | None = None

    def __post_init__(self) -> None:
        check_collection_fields(self)  # types of every field, then the collection fields
        validation.check_choice(self, "estimator", mi.ESTIMATORS)
        validation.check_choice(self, "peak_rule", peaks.PEAK_RULES)
        validation.check_choice(self, "token_mode", lens.PEAK_TOKEN_MODES)
        if self.sigma is not None and not self.sigma > 0:
            raise ValueError(f"{type(self).__name__}.sigma must be > 0 or None, got {self.sigma!r}")
        validation.check_min(self, "tau", 0.0)
        validation.check_min(self, "top_k", 1)

    def collect_config(self) -> CollectConfig:
        """The collection part of this config."""
        names = {f.name for f in dataclasses.fields(CollectConfig)}
        return CollectConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})

    def estimator_kwargs(self) -> dict:
        """Keyword arguments for :func:`mipeaks.mi.trajectory`."""
        if self.estimator == "hsic_text":
            return {} if self.sigma is None else {"sigma": self.sigma}
        return {"sigma": mi.SIGMA_PAPER if self.sigma is None else self.sigma}


@dataclass(frozen=True)
class CompareConfig(MIConfig):
    """:class:`MIConfig` plus a second model: the reasoning-vs-base chapter's parameters.

    ``model`` is the reasoning model (collected exactly as :class:`MIConfig` would, so it shares
    the other MI chapters' run directory); ``base_model`` is its non-reasoning counterpart,
    collected with the same settings (the paper's Fig. 3 / Table 2 pairs). ``base_model=None`` (the
    CPU default: only the embedded model is available offline) skips the pair.

    Attributes:
        base_model: the non-reasoning model of the pair, or None.
        contrast_layer: a second layer (int, negative int, ``"last"`` or ``"middle"`` =
            ``n_layers // 2``) whose trajectories are computed from the same generations by teacher
            forcing (:func:`~mipeaks.layers.layer_traces`), a contrast that needs no second model.
            Not the paper's comparison. None skips it.
    """

    base_model: str | None = None
    contrast_layer: int | str | None = "middle"

    def __post_init__(self) -> None:
        super().__post_init__()
        validation.normalise_layer(self, "contrast_layer", ("last", "middle"), optional=True)

    def base_config(self) -> MIConfig:
        """The :class:`MIConfig` of the base model (every other field unchanged)."""
        if self.base_model is None:
            raise ValueError("base_model is None: there is no pair to compare")
        return self.mi_config(model=self.base_model)

    def mi_config(self, **changes: Any) -> MIConfig:
        """This config as a plain :class:`MIConfig` (optionally with ``changes``)."""
        names = {f.name for f in dataclasses.fields(MIConfig)}
        return MIConfig(**{**{k: v for k, v in dataclasses.asdict(self).items() if k in names}, **changes})


def run_dir(config: MIConfig | CollectConfig, root: str | Path | None = None) -> Path:
    """Deterministic run directory for a collection config: ``<root>/<model>-<dataset>-<hash>``.

    Configs that collect the same traces share one directory (and so one resumable run). The
    root is ``root``, else ``config.run_root``, else :func:`runs_root`.
    """
    cc = config.collect_config() if isinstance(config, MIConfig) else config
    root = runs_root(root if root is not None else getattr(config, "run_root", None))
    blob = json.dumps(dataclasses.asdict(cc), sort_keys=True)
    slug = cc.model.rstrip("/").split("/")[-1].lower()
    return root / f"{slug}-{cc.dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def collect_run(config: MIConfig, model: LoadedModel | None = None, *, progress: bool = True) -> tuple[LoadedModel, Run]:
    """Load the model and problems of ``config`` and collect (or resume) its run directory.

    Returns:
        ``(model, run)``.
    """
    cc = config.collect_config()
    problems = validation.check_problems(load_problems(cc.dataset, cc.n, path=cc.data_path))  # before the model
    if model is None:
        model = load_model(cc.model, device=cc.device, dtype=cc.dtype)
    return model, collect(model, problems, cc, run_dir(config), progress=progress)


def trajectories(run: Run, config: MIConfig | None = None, *, progress: bool = False,
                 scale: float = 1.0) -> dict[str, np.ndarray]:
    """MI trajectory ``m_t = MI(h_t; h_y)`` of every trace in ``run``, keyed by problem id.

    ``scale`` multiplies both ``h_t`` and ``h_y`` first (a sensitivity check: with a Gaussian
    kernel of fixed width, scaling the values by ``c`` equals dividing ``sigma`` by ``c``).
    """
    return traces_trajectories(list(run.traces()), config, progress=progress, scale=scale)


def traces_trajectories(traces: Sequence[Trace], config: MIConfig | None = None, *, progress: bool = False,
                        scale: float = 1.0) -> dict[str, np.ndarray]:
    """:func:`trajectories` for a list of traces (e.g. from :func:`mipeaks.layers.layer_traces`)."""
    config = config or MIConfig()
    kw = config.estimator_kwargs()
    if scale == 1.0:
        return {t.problem_id: mi.trajectory(t.states, t.gold, estimator=config.estimator, progress=progress, **kw)
                for t in traces}
    return {t.problem_id: mi.trajectory(t.states.double() * scale, t.gold.double() * scale,
                                        estimator=config.estimator, progress=progress, **kw) for t in traces}


def thinking_tokens(model: LoadedModel, run: Run, trajs: dict[str, np.ndarray], config: MIConfig | None = None,
                    *, top: int | None = None) -> list[lens.ThinkingToken]:
    """Rank the alphabetic words found at MI peaks over all traces (the paper's Fig. 4 counts)."""
    config = config or MIConfig()
    pooled = []
    for trace in run.traces():
        found = peaks.find_peaks(trajs[trace.problem_id], rule=config.peak_rule, tau=config.tau, k=config.top_k)
        pooled.append(lens.peak_tokens(model, (trace.token_ids, {trace.layer: trace.states}), found,
                                       mode=config.token_mode, layer=trace.layer))
    return lens.count_thinking_tokens(model, pooled, top=top, pool_whitespace=config.pool_whitespace)


def thinking_tokens_path(run: Run, config: MIConfig | None = None) -> Path:
    """Where a run's thinking-token list for ``config`` is exported (inside the run directory).

    The name carries every setting that changes the list:
    ``thinking_tokens-<estimator>-s<sigma>-<rule>[-tau|-k]-<token_mode>.jsonl``.
    """
    config = config or MIConfig()
    rule = f"iqr{config.tau:g}" if config.peak_rule == "iqr" else f"top{config.top_k}"
    sigma = "grid" if config.sigma is None else f"{config.sigma:g}"
    return run.path / f"thinking_tokens-{config.estimator}-s{sigma}-{rule}-{config.token_mode}.jsonl"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mipeaks.pipeline ...``: an alias of ``mipeaks mi ...`` (see :mod:`mipeaks.cli`)."""
    import sys

    from .cli import main as cli_main

    return cli_main(["mi", *(sys.argv[1:] if argv is None else argv)])


def settings_text(config: MIConfig, run: Run | None = None) -> str:
    """One line naming what produced a chapter's numbers: model, data, layer, estimator, sigma, peak rule.

    With ``run``, the layer is given as the block index (and block count) recorded in its manifest.
    """
    layer = f"layer {config.layer}"
    if run is not None:
        info = run.manifest.get("model", {})
        layer += f" (block {run.manifest.get('layer_index')} of {info.get('n_layers', '?')}, before the final norm)"
    sigma = "grid max" if config.sigma is None else f"{config.sigma:g}"
    rule = (f"IQR rule m_t > Q3 + {config.tau:g}·IQR" if config.peak_rule == "iqr"
            else f"top-{config.top_k} rule")
    return (f"model {config.model} ({config.dtype}, {config.device}); data {config.dataset}, first n={config.n}, "
            f"prompt {config.prompt_style}, greedy, <= {config.max_new_tokens} new tokens; {layer}; "
            f"gold: last-token state of the {config.gold}; estimator {config.estimator}, sigma={sigma}; "
            f"peaks: {rule}; peak tokens: {config.token_mode}")


if __name__ == "__main__":
    raise SystemExit(main())
