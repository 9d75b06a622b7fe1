"""Peak words against their base rate (mipeaks.enrichment, chapter 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mipeaks import lens
from mipeaks.enrichment import group_lift, word_enrichment
from mipeaks.pipeline import thinking_tokens


def test_word_enrichment_counts_agree_with_thinking_tokens(tiny_llama, tiny_run):
    cfg, run, trajs = tiny_run
    words = thinking_tokens(tiny_llama, run, trajs, cfg)
    enrich = word_enrichment(tiny_llama, run, trajs, cfg)
    assert dict(zip(enrich.word, enrich.at_peaks)) == {**{w: 0 for w in enrich.word}, **{t.word: t.freq for t in words}}
    attrs = enrich.attrs
    assert attrs["peak_kept"] == sum(t.freq for t in words) and attrs["peak_tokens"] == 4 * cfg.top_k
    assert attrs["all_tokens"] == sum(len(t.token_ids) for t in run.traces())
    assert enrich.all_steps.sum() == attrs["all_kept"] and all(lens.ALPHABETIC.match(w) for w in enrich.word)
    np.testing.assert_allclose(enrich.lift, enrich.peak_share / enrich.all_share)
    hand = pd.DataFrame({"word": ["So", "so", "the"], "at_peaks": [3, 1, 0], "all_steps": [4, 4, 12]})
    g = group_lift(hand, ["upper", "lower", "lower"])
    assert g.loc["upper", "lift"] == pytest.approx((3 / 4) / (4 / 20))
    assert g.loc["lower", "lift"] == pytest.approx((1 / 4) / (16 / 20))
