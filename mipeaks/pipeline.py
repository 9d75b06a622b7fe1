"""The paper's MI pipeline, one call per step: collect → trajectories → peaks → thinking tokens.

    cfg = MIConfig(n=20, max_new_tokens=128)
    model, run = collect_run(cfg)                    # resumable run directory under runs/
    mi = trajectories(run, cfg)                      # {problem id: (T,) MI trajectory}
    stats = peaks.summarize(mi, rule=cfg.peak_rule, tau=cfg.tau, k=cfg.top_k)   # Table 1/2 per problem
    words = thinking_tokens(model, run, mi, cfg)     # ranked peak words (jsonl-exportable)

:class:`MIConfig`'s fields are exactly the MI notebooks' parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import lens, mi, peaks
from .collect import CollectConfig, Run, collect
from .data import load_problems
from .models import LoadedModel, load_model

__all__ = ["MIConfig", "collect_run", "run_dir", "thinking_tokens", "trajectories"]


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
        run_root: folder holding run directories.
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
    tau: float = 1.5
    top_k: int = 20
    token_mode: str = "generated"
    run_root: str = "runs"

    def __post_init__(self) -> None:
        if self.estimator not in mi.ESTIMATORS:
            raise ValueError(f"estimator must be one of {mi.ESTIMATORS}, got {self.estimator!r}")
        if self.peak_rule not in peaks.PEAK_RULES:
            raise ValueError(f"peak_rule must be one of {peaks.PEAK_RULES}, got {self.peak_rule!r}")
        if self.token_mode not in lens.PEAK_TOKEN_MODES:
            raise ValueError(f"token_mode must be one of {lens.PEAK_TOKEN_MODES}, got {self.token_mode!r}")
        self.collect_config()  # validates the collection fields

    def collect_config(self) -> CollectConfig:
        """The collection part of this config."""
        names = {f.name for f in dataclasses.fields(CollectConfig)}
        return CollectConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})

    def estimator_kwargs(self) -> dict:
        """Keyword arguments for :func:`mipeaks.mi.trajectory`."""
        if self.estimator == "hsic_text":
            return {} if self.sigma is None else {"sigma": self.sigma}
        return {"sigma": mi.SIGMA_PAPER if self.sigma is None else self.sigma}


def run_dir(config: MIConfig | CollectConfig, root: str | Path | None = None) -> Path:
    """Deterministic run directory for a collection config: ``<root>/<model>-<dataset>-<hash>``.

    Configs that collect the same traces share one directory (and so one resumable run).
    """
    cc = config.collect_config() if isinstance(config, MIConfig) else config
    root = Path(root if root is not None else getattr(config, "run_root", "runs"))
    blob = json.dumps(dataclasses.asdict(cc), sort_keys=True)
    slug = cc.model.rstrip("/").split("/")[-1].lower()
    return root / f"{slug}-{cc.dataset}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def collect_run(config: MIConfig, model: LoadedModel | None = None, *, progress: bool = True) -> tuple[LoadedModel, Run]:
    """Load the model and problems of ``config`` and collect (or resume) its run directory.

    Returns:
        ``(model, run)``.
    """
    cc = config.collect_config()
    if model is None:
        model = load_model(cc.model, device=cc.device, dtype=cc.dtype)
    problems = load_problems(cc.dataset, cc.n, path=cc.data_path)
    return model, collect(model, problems, cc, run_dir(config), progress=progress)


def trajectories(run: Run, config: MIConfig | None = None, *, progress: bool = False) -> dict[str, np.ndarray]:
    """MI trajectory ``m_t = MI(h_t; h_y)`` of every trace in ``run``, keyed by problem id."""
    config = config or MIConfig()
    kw = config.estimator_kwargs()
    return {t.problem_id: mi.trajectory(t.states, t.gold, estimator=config.estimator, progress=progress, **kw)
            for t in run.traces()}


def thinking_tokens(model: LoadedModel, run: Run, trajs: dict[str, np.ndarray], config: MIConfig | None = None,
                    *, top: int | None = None) -> list[lens.ThinkingToken]:
    """Rank the alphabetic words found at MI peaks over all traces (the paper's Fig. 4 counts)."""
    config = config or MIConfig()
    pooled = []
    for trace in run.traces():
        found = peaks.find_peaks(trajs[trace.problem_id], rule=config.peak_rule, tau=config.tau, k=config.top_k)
        pooled.append(lens.peak_tokens(model, (trace.token_ids, {trace.layer: trace.states}), found,
                                       mode=config.token_mode, layer=trace.layer))
    return lens.count_thinking_tokens(model, pooled, top=top)


def main(argv: list[str] | None = None) -> None:
    """``python -m mipeaks.pipeline --n 20 ...``: run the whole MI pipeline and print its tables."""
    import argparse
    import time

    parser = argparse.ArgumentParser(description="Collect traces, MI trajectories, peaks and thinking tokens.")
    for f in dataclasses.fields(MIConfig):
        parser.add_argument(f"--{f.name.replace('_', '-')}", default=f.default,
                            type=(lambda v: None if v == "None" else v) if f.default is None else type(f.default))
    parser.add_argument("--export", default=None, help="write the thinking-token jsonl here")
    args = vars(parser.parse_args(argv))
    export = args.pop("export")
    cfg = MIConfig(**args)
    start = time.perf_counter()
    model, run = collect_run(cfg)
    collected = time.perf_counter() - start
    trajs = trajectories(run, cfg)
    stats = peaks.summarize(trajs, rule=cfg.peak_rule, tau=cfg.tau, k=cfg.top_k)
    words = thinking_tokens(model, run, trajs, cfg)
    print(f"run: {run.path}  ({len(run)} problems, collection {collected:.1f} s, "
          f"total {time.perf_counter() - start:.1f} s)")
    print(peaks.table1(stats).to_string(float_format="%.4g"))
    print(peaks.table2(stats).to_string(float_format="%.4g"))
    print("thinking tokens:", ", ".join(f"{w.word}({w.freq})" for w in words[:15]))
    if export:
        lens.save_thinking_tokens(words, export)


if __name__ == "__main__":
    main()
