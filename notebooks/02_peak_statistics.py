# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Peak sparsity and intervals (paper Table 1)
#
# **The paper's claim.** MI peaks are *sparse* and *non-uniform*. Table 1 counts, per sample, the
# peaks under the IQR rule $m_t > Q_3 + 1.5\,\mathrm{IQR}(m)$, the steps, their ratio, and the
# maximum, minimum and average interval between consecutive peaks. Each entry is a per-sample
# mean over 100 MATH-train problems. The ratios run from 0.5% (R1-Qwen-7B) to 4.8%
# (R1-Llama-8B), and the minimum intervals are much shorter than the maximum ones: peaks come in
# bursts separated by long quiet stretches.
#
# **What this chapter computes.** The same statistics on our trajectories
# (`mipeaks.peaks.summarize` per problem, then `mipeaks.peaks.table1` to average), under both
# peak rules, beside the published `PAPER_TABLE1`. Interval averages only count problems with at
# least two peaks (`n_interval_samples`), as the paper's definitions require.
#
# The box under the parameters names the model, data and settings of the run (the run of
# chapter 1). Two caveats hold for any run: no interval can exceed `max_new_tokens − 1` steps, so
# the interval columns compare with the paper's only at its 512 tokens, while the peak **ratio**
# is comparable at any length; and under the top-$k$ rule `n_peaks` is $k$ by construction.
# For the paper's settings on a GPU: `make reproduce PRESET=r1-llama-8b` (one preset per model;
# see {doc}`../book/reproduce`).

# %%
from mipeaks import book

book.init_notebook()

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from mipeaks import peaks
from mipeaks.peaks import gaussian_fence_rate
from mipeaks.pipeline import MIConfig, collect_run, settings_text, trajectories

# %% tags=["parameters"]
model = "smollm2-135m-instruct"
dataset = "gsm8k"
n = 20
prompt_style = "chat"  # the paper: "raw"; the instruct model stops at once without its template
layer = "last"
max_new_tokens = 128  # the paper: 512
gold = "solution"
batch_size = 20  # the official code: 1; one batch on CPU (left padding can change rounding)
dtype = "float32"
device = "cpu"
data_path = None
sample = "auto"  # "random" (paper text), "first" (the code's first rows); auto: random for math-train only
sample_seed = 0
estimator = "hsic_paper"
sigma = 50.0
peak_rule = "iqr"
tau = 1.5
top_k = 20  # as in the official code; at 128 steps that marks about 1 step in 6
token_mode = "generated"
pool_whitespace = True  # count " So" and "So" together (the jsonl list); False: apart (the notebook's Fig. 4)
run_root = None

# %%
cfg = book.config_from(MIConfig, globals())

# %%
lm, run = collect_run(cfg, progress=False)  # reuses chapter 1's run directory when it exists
trajs = trajectories(run, cfg)
book.show_markdown(book.model_box(cfg, lm, n=len(run), settings=settings_text(cfg, run),
                                  paper_settings=book.PAPER_MI_SETTINGS))

# %% [markdown]
# ## Table 1: ours beside the paper's

# %%
name = book.model_name(cfg, lm)
per_problem = {
    f"{name}, IQR τ={cfg.tau:g}": peaks.summarize(trajs, rule="iqr", tau=cfg.tau),
    f"{name}, top-{cfg.top_k}": peaks.summarize(trajs, rule="topk", k=cfg.top_k),
}
ours = peaks.table1(per_problem)
paper = pd.DataFrame(peaks.PAPER_TABLE1).set_index("model")
table = book.paper_vs_ours(paper, ours, paper_label=book.label("paper Table 1", "LRM", 100, "4xA100"),
                           ours_label=book.ours_label(cfg, lm))
table.style.format(precision=3, na_rep="–").hide(axis="index")

# %% [markdown]
# ## Per-problem peak ratios
#
# Table 1 gives averages only. Each dot below is one of our problems. The grey ticks mark the
# paper's six averages. The dashed line marks what featureless Gaussian noise would give under
# the same rule (0.35% at τ = 1.5, `mipeaks.peaks.gaussian_fence_rate`). The IQR rule's peak
# count depends only on the *distribution* of a trajectory's values, not on their order. A ratio
# above the dashed line therefore means heavier-than-Gaussian upper tails. It says nothing yet
# about *when* the peaks occur.

# %%
iqr_rows = per_problem[f"{name}, IQR τ={cfg.tau:g}"].assign(source="ours (IQR)")
fig, ax = plt.subplots(figsize=(8, 2.8))
sns.stripplot(data=iqr_rows, x="ratio", y="source", size=7, alpha=0.7, jitter=0.15, ax=ax, color="tab:red")
for _, row in paper.iterrows():
    ax.axvline(row.ratio, color="0.5", lw=1)
    ax.text(row.ratio, -0.45, row.name, rotation=90, fontsize=7, va="top", ha="right", color="0.35")
ax.axvline(gaussian_fence_rate(cfg.tau), ls="--", color="tab:blue", lw=1)
ax.set(xlabel="peaks / steps per problem (IQR rule)", ylabel="", ylim=(0.6, -1.6),
       title=book.figure_title("Peak ratio per problem (dots) vs the paper's model averages (grey lines)", cfg, lm,
                               n=len(trajs)))
plt.show()

# %% [markdown]
# ## How sparse, as a function of τ
#
# The paper fixes τ = 1.5. The same averages at other fences show how quickly the peaks thin out.

# %%
by_tau = peaks.table1({f"τ={t:g}": peaks.summarize(trajs, rule="iqr", tau=t) for t in (1.0, 1.5, 2.0, 3.0)})
by_tau.insert(3, "gaussian_ratio", [gaussian_fence_rate(t) for t in (1.0, 1.5, 2.0, 3.0)])
by_tau.style.format(precision=4, na_rep="–")

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites, from this one dict (3 significant digits).
iqr_rows = per_problem[f"{name}, IQR τ={cfg.tau:g}"]
iqr_avg = peaks.average(iqr_rows)
topk_avg = peaks.average(per_problem[f"{name}, top-{cfg.top_k}"])
key_numbers = {
    "problems": int(iqr_avg["n_samples"]),
    "problems with no IQR peak": int((iqr_rows["n_peaks"] == 0).sum()),
    "problems with >= 2 IQR peaks": int(iqr_avg["n_interval_samples"]),
    "IQR peaks of the problems that have any": sorted(iqr_rows.loc[iqr_rows["n_peaks"] > 0, "n_peaks"]
                                                      .astype(int).tolist(), reverse=True),
    "mean steps": float(iqr_avg["n_steps"]),
    "mean IQR peaks per problem": float(iqr_avg["n_peaks"]),
    "mean IQR peak ratio": float(iqr_avg["ratio"]),
    "Gaussian ratio at tau": gaussian_fence_rate(cfg.tau),
    "IQR ratio / Gaussian ratio": float(iqr_avg["ratio"]) / gaussian_fence_rate(cfg.tau),
    "paper's ratios (min, max)": [paper["ratio"].min(), paper["ratio"].max()],
    "IQR intervals (mean max, min, avg)": [float(iqr_avg[c]) for c in ("max_interval", "min_interval", "avg_interval")],
    f"mean top-{cfg.top_k} ratio": float(topk_avg["ratio"]),
    **{f"mean IQR peak ratio, {name}": float(v) for name, v in by_tau["ratio"].items()},
}
book.print_numbers(key_numbers, significant=3)

# %% [markdown]
# ## Reading
#
# Written from the key numbers above.

# %%
kn = key_numbers
ratio, gauss = kn["mean IQR peak ratio"], kn["Gaussian ratio at tau"]
lo, hi = kn["paper's ratios (min, max)"]
where = "below" if ratio < lo else "above" if ratio > hi else "within"
n_none, n_all = kn["problems with no IQR peak"], kn["problems"]
book.show_markdown(book.reading(
    f"On {book.model_name(cfg, lm)} the IQR rule finds {kn['mean IQR peaks per problem']:.2g} peaks per problem "
    f"in {kn['mean steps']:.0f} steps on average: a ratio of {ratio:.2%}, {where} the paper's "
    f"{lo:.1%}–{hi:.1%} range and {ratio / gauss:.2g} times the Gaussian baseline ({gauss:.2%}).",
    f"{n_none} of the {n_all} problems have no peak" + (", so the average comes from a few problems."
                                                       if n_all / 2 < n_none < n_all else "."),
    f"Intervals exist for the {kn['problems with >= 2 IQR peaks']} problems with two or more peaks"
    + (f" and are capped by the {cfg.max_new_tokens}-step traces." if cfg.max_new_tokens < 512 else "."),
    "A ratio above the Gaussian baseline means heavier-than-Gaussian upper tails; the interval columns are "
    "what tests the paper's bursts." if ratio > gauss else
    "A ratio at or below the Gaussian baseline is what featureless noise gives.",
))

# %%
book.save_key_numbers("02_peak_statistics", key_numbers, cfg, lm)  # for the overview page; shows nothing

# %%
book.provenance_cell(cfg, model=lm);
