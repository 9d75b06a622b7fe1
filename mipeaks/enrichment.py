"""Thinking tokens against their base rate (chapter 4).

The paper ranks the words found at MI peaks by raw frequency (:func:`mipeaks.pipeline.thinking_tokens`),
which also ranks words that are merely common. :func:`word_enrichment` counts every generated
word too, so a word's share at peaks can be set against its share of all steps
(``lift = peak_share / all_share``); :func:`group_lift` pools that over groups of words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import lens, peaks
from .collect import Run
from .models import LoadedModel
from .pipeline import MIConfig

__all__ = ["group_lift", "word_enrichment"]


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
        words = [lens.word_key(t) for t in lens.decode_each(model.tokenizer, every)]
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
