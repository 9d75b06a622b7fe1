"""The paper's MI pipeline, one call per step: collect → trajectories → peaks → thinking tokens.

    cfg = MIConfig(n=20, max_new_tokens=128)
    model, run = collect_run(cfg)                    # resumable run directory under runs/
    mi = trajectories(run, cfg)                      # {problem id: (T,) MI trajectory}
    stats = peaks.summarize(mi, rule=cfg.peak_rule, tau=cfg.tau, k=cfg.top_k)   # Table 1/2 per problem
    words = thinking_tokens(model, run, mi, cfg)     # ranked peak words (jsonl-exportable)

:class:`MIConfig`'s fields are exactly the MI notebooks' parameters; :class:`CompareConfig` adds
the second model of the reasoning-vs-base chapter. The remaining functions are the book's analyses
(each chapter calls them; no algorithm lives in a notebook):

* :func:`trajectory_frame`, :func:`peak_table`: long tables of trajectories and of the peaks
  with their tokens (chapter 01);
* :func:`layer_traces`: the same generations re-read at another layer by teacher forcing
  (chapter 03's offline contrast);
* :func:`word_enrichment`, :func:`thinking_tokens_path`: are peak words over-represented relative
  to all generated words, and where the jsonl export goes (chapter 04);
* :func:`compare_trajectories`, :func:`gold_swap`, :func:`own_gold_rank`, :func:`float32_error`,
  :func:`correlates`, :func:`coordinate_dominance`: what the single-pair HSIC measures (chapter 09).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import lens, mi, peaks, validation
from .collect import CollectConfig, Run, Trace, check_collection_fields, collect, gold_representation
from .data import describe_sample
from .forcing import teacher_force
from .models import LoadedModel, load_model
from .provenance import runs_root

__all__ = [
    "CompareConfig",
    "MIConfig",
    "collect_run",
    "compare_trajectories",
    "coordinate_dominance",
    "correlates",
    "float32_error",
    "gaussian_fence_rate",
    "gold_swap",
    "group_lift",
    "layer_traces",
    "own_gold_rank",
    "peak_table",
    "run_dir",
    "runs_root",
    "settings_text",
    "teacher_forced_states",
    "thinking_tokens",
    "thinking_tokens_path",
    "trajectories",
    "trajectory_frame",
    "traces_trajectories",
    "word_enrichment",
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
    sample: str = "auto"
    sample_seed: int = 0
    estimator: str = "hsic_paper"
    sigma: float | None = 50.0
    peak_rule: str = "iqr"
    tau: float = 1.5
    top_k: int = 20
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
            forcing (:func:`layer_traces`), a contrast that needs no second model. Not the paper's
            comparison. None skips it.
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
    problems = validation.check_problems(cc.problems())  # before the model
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
    return (f"model {config.model} ({config.dtype}, {config.device}); data {config.dataset}, {describe_sample(config.dataset, config.n, config.sample, config.sample_seed)}, "
            f"prompt {config.prompt_style}, greedy, <= {config.max_new_tokens} new tokens; {layer}; "
            f"gold: last-token state of the {config.gold}; estimator {config.estimator}, sigma={sigma}; "
            f"peaks: {rule}; peak tokens: {config.token_mode}")


def gaussian_fence_rate(tau: float = peaks.DEFAULT_TAU) -> float:
    """Share of i.i.d. Gaussian values above the IQR fence ``Q3 + tau·IQR`` (in population).

    The IQR rule's peak count depends only on the distribution of a trajectory's values, not on
    their order, so this is the peak ratio that featureless Gaussian noise would give: about
    0.0035 for ``tau = 1.5`` (the fence sits at 2.698 standard deviations).
    """
    from scipy.stats import norm

    q3 = float(norm.ppf(0.75))
    return float(norm.sf(q3 + tau * 2.0 * q3))


# ---------------------------------------------------------------------------
# Tables of trajectories and peaks (chapter 01)
# ---------------------------------------------------------------------------


def trajectory_frame(trajs: Mapping[str, np.ndarray], ids: Sequence[str] | None = None) -> pd.DataFrame:
    """Trajectories as a long table with columns ``id``, ``step``, ``rel_step`` (t / T) and ``mi``.

    Args:
        trajs: ``{problem id: (T,) trajectory}`` (e.g. from :func:`trajectories`).
        ids: the problems to keep, in this order (default: all).
    """
    keys = list(trajs) if ids is None else list(ids)
    frames = [pd.DataFrame({"id": str(k), "step": np.arange(len(trajs[k])),
                            "rel_step": np.arange(len(trajs[k])) / max(len(trajs[k]), 1),
                            "mi": np.asarray(trajs[k], dtype=np.float64)}) for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["id", "step", "rel_step", "mi"])


def _decode(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    return tokenizer.batch_decode([[int(i)] for i in ids], clean_up_tokenization_spaces=False)


def peak_table(model: LoadedModel, run: Run, trajs: Mapping[str, np.ndarray], config: MIConfig | None = None,
               *, ids: Sequence[str] | None = None, rules: Sequence[str] = ("iqr", "topk")) -> pd.DataFrame:
    """Every peak of the chosen problems under each rule, with the token generated there.

    Step ``t`` is the state ``h_t`` that predicts generated token ``t``, so the token shown is the
    one the model emitted from the peak state (``token_mode="generated"``; under greedy decoding
    it is also the last-layer logit-lens token).

    Args:
        model: the loaded model (for its tokenizer).
        run: the run the trajectories came from.
        trajs: ``{problem id: trajectory}``.
        config: peak-rule parameters (``tau``, ``top_k``); default :class:`MIConfig`.
        ids: problems to list (default: all).
        rules: peak rules to apply.

    Returns:
        Columns ``id``, ``rule``, ``step``, ``mi``, ``token`` (decoded, repr-quoted so whitespace
        shows) and ``word`` (:func:`mipeaks.lens.word_key`), one row per (problem, rule, peak).
    """
    config = config or MIConfig()
    keep = set(trajs if ids is None else ids)
    rows = []
    for trace in run.traces():
        pid = trace.problem_id
        if pid not in keep:
            continue
        m = trajs[pid]
        for rule in rules:
            found = peaks.find_peaks(m, rule=rule, tau=config.tau, k=config.top_k)
            texts = _decode(model.tokenizer, trace.token_ids[found].tolist())
            rows += [{"id": pid, "rule": rule, "step": int(t), "mi": float(m[t]), "token": repr(text),
                      "word": lens.word_key(text)} for t, text in zip(found, texts)]
    return pd.DataFrame(rows, columns=["id", "rule", "step", "mi", "token", "word"])


# ---------------------------------------------------------------------------
# Another layer of the same generations (chapter 03's offline contrast)
# ---------------------------------------------------------------------------


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


def traces_trajectories(traces: Sequence[Trace], config: MIConfig | None = None, *, progress: bool = False,
                        scale: float = 1.0) -> dict[str, np.ndarray]:
    """:func:`trajectories` for a list of traces (e.g. from :func:`layer_traces`)."""
    config = config or MIConfig()
    kw = config.estimator_kwargs()
    if scale == 1.0:
        return {t.problem_id: mi.trajectory(t.states, t.gold, estimator=config.estimator, progress=progress, **kw)
                for t in traces}
    return {t.problem_id: mi.trajectory(t.states.double() * scale, t.gold.double() * scale,
                                        estimator=config.estimator, progress=progress, **kw) for t in traces}


# ---------------------------------------------------------------------------
# Thinking tokens against their base rate (chapter 04)
# ---------------------------------------------------------------------------


def thinking_tokens_path(run: Run, config: MIConfig | None = None) -> Path:
    """Where a run's thinking-token list for ``config`` is exported (inside the run directory).

    The name carries every setting that changes the list:
    ``thinking_tokens-<estimator>-s<sigma>-<rule>[-tau|-k]-<token_mode>.jsonl``.
    """
    config = config or MIConfig()
    rule = f"iqr{config.tau:g}" if config.peak_rule == "iqr" else f"top{config.top_k}"
    sigma = "grid" if config.sigma is None else f"{config.sigma:g}"
    return run.path / f"thinking_tokens-{config.estimator}-s{sigma}-{rule}-{config.token_mode}.jsonl"


def word_enrichment(model: LoadedModel, run: Run, trajs: Mapping[str, np.ndarray],
                    config: MIConfig | None = None, *, alphabetic: bool = True) -> pd.DataFrame:
    """How over-represented each word is at MI peaks, relative to all generated steps.

    The paper ranks peak words by raw frequency, which also ranks words that are merely common.
    Here every step's token (in ``config.token_mode``) is counted too: ``peak_share`` is a
    word's share of the (filtered) peak tokens, ``all_share`` its share of all (filtered) steps'
    tokens and ``lift = peak_share / all_share`` (> 1: the word is found at peaks more often than
    its base rate). Words are keyed like :func:`mipeaks.lens.count_thinking_tokens`.

    Returns:
        Columns ``word``, ``at_peaks``, ``all_steps``, ``peak_share``, ``all_share``, ``lift``;
        one row per word generated anywhere (``at_peaks`` may be 0), sorted by ``at_peaks``
        (descending), then ``all_steps`` (descending), then ``word``. ``df.attrs`` holds the
        totals before filtering: ``peak_tokens``, ``all_tokens``, and after: ``peak_kept``,
        ``all_kept``.
    """
    config = config or MIConfig()
    at_peaks: Counter[str] = Counter()
    everywhere: Counter[str] = Counter()
    n_peak = n_all = 0
    for trace in run.traces():
        found = peaks.find_peaks(trajs[trace.problem_id], rule=config.peak_rule, tau=config.tau, k=config.top_k)
        pair = (trace.token_ids, {trace.layer: trace.states})
        every = lens.peak_tokens(model, pair, np.arange(len(trace.token_ids)), mode=config.token_mode,
                                 layer=trace.layer)
        words = [lens.word_key(t) for t in _decode(model.tokenizer, every)]
        keep = [(not alphabetic) or bool(lens.ALPHABETIC.match(w)) for w in words]
        everywhere.update(w for w, k in zip(words, keep) if k)
        at_peaks.update(words[i] for i in found if keep[i])
        n_peak, n_all = n_peak + len(found), n_all + len(words)
    kept_peak, kept_all = sum(at_peaks.values()), sum(everywhere.values())
    rows = [{"word": w, "at_peaks": at_peaks[w], "all_steps": c,
             "peak_share": at_peaks[w] / kept_peak if kept_peak else float("nan"),
             "all_share": c / kept_all} for w, c in everywhere.items()]
    df = pd.DataFrame(rows, columns=["word", "at_peaks", "all_steps", "peak_share", "all_share"])
    df["lift"] = df["peak_share"] / df["all_share"]
    df = df.sort_values(["at_peaks", "all_steps", "word"], ascending=[False, False, True], ignore_index=True)
    df.attrs.update(peak_tokens=n_peak, all_tokens=n_all, peak_kept=kept_peak, all_kept=kept_all)
    return df


def group_lift(enrichment: pd.DataFrame, groups: pd.Series | Sequence[Any]) -> pd.DataFrame:
    """:func:`word_enrichment` pooled over groups of words (e.g. capitalised vs lower-case).

    Args:
        enrichment: the output of :func:`word_enrichment` (all words).
        groups: one group label per row.

    Returns:
        One row per group: ``at_peaks``, ``all_steps``, ``peak_share``, ``all_share``, ``lift``.
    """
    g = enrichment.groupby(np.asarray(groups))[["at_peaks", "all_steps"]].sum()
    g["peak_share"] = g["at_peaks"] / g["at_peaks"].sum()
    g["all_share"] = g["all_steps"] / g["all_steps"].sum()
    g["lift"] = g["peak_share"] / g["all_share"]
    g.index.name = "group"
    return g


# ---------------------------------------------------------------------------
# What the single-pair HSIC measures (chapter 09)
# ---------------------------------------------------------------------------


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _nanmean(values: Sequence[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr[np.isfinite(arr)].mean()) if np.isfinite(arr).any() else float("nan")


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    return float("nan") if not (sa | sb) else len(sa & sb) / len(sa | sb)


def compare_trajectories(variants: Mapping[str, Mapping[str, np.ndarray]], reference: str, *,
                         rule: str = "iqr", tau: float = peaks.DEFAULT_TAU, k: int | None = None) -> pd.DataFrame:
    """How much each variant of the trajectories agrees with a reference variant.

    Args:
        variants: ``{variant label: {problem id: trajectory}}``, all over the same problems.
        reference: the label to compare against.
        rule, tau, k: peak rule for the peak-set comparison.

    Returns:
        One row per variant (index ``variant``): ``mean_mi`` (mean over problems of the
        trajectory mean), ``spearman`` (mean over problems of the Spearman rank correlation with
        the reference trajectory), ``max_rel_diff`` (largest ``|m - m_ref| / max|m_ref|`` over
        problems), ``n_peaks`` (mean per problem) and ``peak_jaccard`` (mean over problems with
        a peak in either of |P ∩ P_ref| / |P ∪ P_ref|).
    """
    if reference not in variants:
        raise ValueError(f"reference {reference!r} is not among the variants {list(variants)}")
    ref = variants[reference]
    rows = {}
    for name, trajs in variants.items():
        rho, rel, npk, jac, means = [], [], [], [], []
        for pid, m_ref in ref.items():
            m = np.asarray(trajs[pid], dtype=np.float64)
            m_ref = np.asarray(m_ref, dtype=np.float64)
            if m.shape != m_ref.shape:
                raise ValueError(f"variant {name!r}, problem {pid!r}: length {m.size} != {m_ref.size}")
            means.append(m.mean())
            rho.append(_spearman(m, m_ref))
            rel.append(np.max(np.abs(m - m_ref)) / max(np.max(np.abs(m_ref)), 1e-300))
            p, p_ref = (peaks.find_peaks(x, rule=rule, tau=tau, k=k) for x in (m, m_ref))
            npk.append(p.size)
            jac.append(_jaccard(p, p_ref))
        rows[name] = {"mean_mi": float(np.mean(means)), "spearman": _nanmean(rho),
                      "max_rel_diff": float(np.max(rel)), "n_peaks": float(np.mean(npk)),
                      "peak_jaccard": _nanmean(jac)}
    out = pd.DataFrame(rows).T
    out.index.name = "variant"
    return out


def float32_error(run: Run, config: MIConfig | None = None, *, n_problems: int = 4, n_steps: int = 5) -> pd.DataFrame:
    """The original float32 dense evaluation against exact float64, on real steps of a run.

    For ``n_steps`` evenly spaced steps of the first ``n_problems`` traces, computes the official
    statistic three ways: :func:`mipeaks.mi.hsic_paper_dense` in float32 (the original code's
    arithmetic) and in float64 (the exact reference), and the fast :func:`mipeaks.mi.hsic_paper`.

    Returns:
        Columns ``id``, ``step``, ``float64_dense``, ``float32_dense``, ``fast``, ``rel_err_float32``
        and ``rel_err_fast`` (relative to ``float64_dense``).
    """
    config = config or MIConfig()
    sigma = mi.SIGMA_PAPER if config.sigma is None else config.sigma
    rows = []
    for i, trace in enumerate(run.traces()):
        if i >= n_problems:
            break
        T = len(trace.token_ids)
        for t in np.unique(np.linspace(0, T - 1, n_steps).round().astype(int)):
            x, y = trace.states[t], trace.gold
            ref = mi.hsic_paper_dense(x, y, sigma, dtype=torch.float64)
            f32 = mi.hsic_paper_dense(x, y, sigma, dtype=torch.float32)
            fast = mi.hsic_paper(x, y, sigma)
            rows.append({"id": trace.problem_id, "step": int(t), "float64_dense": ref, "float32_dense": f32,
                         "fast": fast, "rel_err_float32": abs(f32 - ref) / abs(ref),
                         "rel_err_fast": abs(fast - ref) / abs(ref)})
    return pd.DataFrame(rows)


def correlates(run: Run, trajs: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Spearman correlation, within each trajectory, of ``m_t`` with simple properties of ``h_t``.

    Properties: ``norm`` = ``||h_t||``; ``position`` = ``t``; ``cosine`` = cosine similarity of
    ``h_t`` and ``h_y``; ``coord_pearson`` = Pearson correlation of the ``d`` coordinate pairs
    ``(h_t[i], h_y[i])`` (the linear counterpart of the statistic, which also treats the
    coordinates as samples); ``max_abs`` = ``max_i |h_t[i]|``.

    Returns:
        One row per problem: ``id``, ``n_steps`` and one column per property.
    """
    rows = []
    for trace in run.traces():
        m = np.asarray(trajs[trace.problem_id], dtype=np.float64)
        s = trace.states.double().numpy()
        g = trace.gold.double().numpy()
        norm = np.linalg.norm(s, axis=1)
        sc, gc = s - s.mean(axis=1, keepdims=True), g - g.mean()
        props = {"norm": norm, "position": np.arange(len(m), dtype=np.float64),
                 "cosine": s @ g / (norm * np.linalg.norm(g)),
                 "coord_pearson": sc @ gc / (np.linalg.norm(sc, axis=1) * np.linalg.norm(gc)),
                 "max_abs": np.abs(s).max(axis=1)}
        rows.append({"id": trace.problem_id, "n_steps": len(m), **{k: _spearman(m, v) for k, v in props.items()}})
    return pd.DataFrame(rows)


def coordinate_dominance(run: Run, config: MIConfig | None = None, *,
                         thresholds: Sequence[float] = (10.0, 25.0, 50.0, 100.0)) -> pd.DataFrame:
    """How much of the statistic the large coordinates carry.

    For each threshold ``c``, every coordinate with ``|v_i| < c`` is set to 0 in both ``h_t`` and
    ``h_y`` (they then sit in one kernel cluster) and the trajectory is recomputed with the
    config's estimator. If the trajectory barely changes, the statistic is determined by the few
    coordinates whose values are large compared with the kernel width.

    Returns:
        One row per threshold: ``threshold``, ``kept_fraction`` (mean fraction of state coordinates
        kept), then the :func:`compare_trajectories` columns against the untouched trajectories.
    """
    config = config or MIConfig()
    kw = config.estimator_kwargs()
    traces = list(run.traces())
    base = {t.problem_id: mi.trajectory(t.states, t.gold, estimator=config.estimator, **kw) for t in traces}
    variants: dict[str, dict[str, np.ndarray]] = {"all": base}
    kept: dict[str, float] = {"all": 1.0}
    for c in thresholds:
        label = f"|v| >= {c:g}"
        variants[label] = {}
        fracs = []
        for t in traces:
            s, g = t.states.double(), t.gold.double()
            mask_s = s.abs() >= c
            fracs.append(float(mask_s.double().mean()))
            variants[label][t.problem_id] = mi.trajectory(s * mask_s, g * (g.abs() >= c),
                                                          estimator=config.estimator, **kw)
        kept[label] = float(np.mean(fracs))
    out = compare_trajectories(variants, "all", rule=config.peak_rule, tau=config.tau, k=config.top_k)
    out.insert(0, "kept_fraction", pd.Series(kept))
    out.insert(0, "threshold", [0.0, *map(float, thresholds)])
    return out


def gold_swap(run: Run, config: MIConfig | None = None) -> pd.DataFrame:
    """Mean MI of every trace's states against every problem's gold representation.

    If the single-pair statistic carried information about *which* solution the states are
    working towards, each trace would score highest against its own gold (the diagonal).

    Returns:
        A square DataFrame: row ``i`` = the states of problem ``i``, column ``j`` = the gold of
        problem ``j``, value = mean over steps of ``MI(h_t^(i); h_y^(j))``. Index ``states``,
        columns ``gold``, both the problem ids in run order.
    """
    config = config or MIConfig()
    kw = config.estimator_kwargs()
    traces = list(run.traces())
    ids = [t.problem_id for t in traces]
    values = np.array([[mi.trajectory(t.states, g.gold, estimator=config.estimator, **kw).mean() for g in traces]
                       for t in traces])
    return pd.DataFrame(values, index=pd.Index(ids, name="states"), columns=pd.Index(ids, name="gold"))


def own_gold_rank(swap: pd.DataFrame) -> pd.DataFrame:
    """Where each trace's own gold ranks among all golds in a :func:`gold_swap` matrix.

    Returns:
        One row per problem: ``own`` (the diagonal), ``others_mean`` (mean of the rest of the
        row), ``rank`` (1 = the own gold scores highest; ties count against it) and ``n_golds``.
        Under "no problem-specific information" the rank is uniform on ``1..n``, with mean
        ``(n + 1) / 2``.
    """
    values = swap.to_numpy(dtype=np.float64)
    n = values.shape[0]
    if values.shape != (n, n):
        raise ValueError(f"expected a square matrix, got {values.shape}")
    own = np.diag(values)
    others = (values.sum(axis=1) - own) / max(n - 1, 1)
    rank = (values >= own[:, None]).sum(axis=1)  # includes the own gold itself
    return pd.DataFrame({"own": own, "others_mean": others, "rank": rank, "n_golds": n}, index=swap.index)


if __name__ == "__main__":
    raise SystemExit(main())
