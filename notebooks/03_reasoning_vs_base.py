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
# # 3. Reasoning vs non-reasoning models (paper Fig. 3, Tables 2–3)
#
# **The paper's claim.** Reasoning training leaves a mark on the MI trajectory. Each LRM is paired
# with the non-reasoning model it was distilled from, or its closest relative (e.g. R1-Llama-8B
# with Llama-3.1-8B). Compared with its base model, the LRM has a higher mean MI, and its peaks
# stand out more. Fig. 3 shows three samples per pair. Table 2 reports, as per-sample means, the
# trajectory's **Mean**, its population **Std**, and the **AOM** (average outlier magnitude),
# $\frac{1}{|O|}\sum_{i\in O} |m_i - \mathrm{median}(m)|\,/\,\mathrm{IQR}(m)$ over the IQR peaks
# $O$. Table 3 (NeurIPS camera-ready only) repeats the AOM on GPQA and MedQA.
#
# **What this chapter computes.** The Table-2 statistics (`mipeaks.peaks.table2`) of our run,
# beside `PAPER_TABLE2` and `PAPER_TABLE3`. When the `base_model` parameter is set (the GPU
# presets set the paper's pairs), the base model is collected with identical settings: same
# problems, prompt, layer and token budget, and its own gold representation. The chapter then
# draws Fig. 3 and Table 2 for the pair.
#
# :::{important}
# **Which model produced these numbers.** The committed outputs come from the CPU default: the
# embedded **SmolLM2-135M-Instruct** (float32, CPU) alone, on the first 20 GSM8K test problems,
# with the chat prompt, greedy decoding, at most 128 new tokens and σ = 50 (the same run as
# chapters 1–2). It is the only model available offline, so **there is no reasoning/base pair
# here** (`base_model = None`).
#
# Instead, the chapter shows a contrast that *is* available: the same generations read at the
# **middle layer** (block 15 of 30, by teacher forcing) against the last layer. This is **not**
# the paper's comparison. The paper always uses the last layer and compares two models. The
# contrast only shows how much these statistics move when the representation changes while the
# text stays fixed.
#
# The paper's pairs: `make reproduce PRESET=r1-llama-8b` runs this chapter with
# `model = deepseek-ai/DeepSeek-R1-Distill-Llama-8B` and `base_model = meta-llama/Llama-3.1-8B`
# (see {doc}`../book/reproduce`). GPQA and MedQA (Table 3) are not among the datasets that
# `mipeaks.data` loads, so Table 3 is shown as published only.
# :::

# %%
from mipeaks import book

book.init_notebook()

import gc

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from mipeaks import peaks
from mipeaks.pipeline import (
    CompareConfig,
    collect_run,
    layer_traces,
    settings_text,
    traces_trajectories,
    trajectories,
    trajectory_frame,
)

# %% tags=["parameters"]
model = "smollm2-135m-instruct"  # with base_model set, the reasoning model of the pair
dataset = "gsm8k"
n = 20
prompt_style = "chat"  # the paper: "raw"; the instruct model stops at once without its template
layer = "last"
max_new_tokens = 128  # the paper: 512
gold = "solution"
batch_size = 4  # the official code: 1; batching only speeds up the CPU run
dtype = "float32"
device = "cpu"
data_path = None
estimator = "hsic_paper"
sigma = 50.0
peak_rule = "iqr"
tau = 1.5
top_k = 20  # as in the official code; at 128 steps that marks about 1 step in 6
token_mode = "generated"
pool_whitespace = True  # count " So" and "So" together (the jsonl list); False: apart (the notebook's Fig. 4)
run_root = None
base_model = None  # the non-reasoning model of the pair, e.g. meta-llama/Llama-3.1-8B
contrast_layer = "middle"  # a second layer of the same generations, not a paper comparison; None skips it

# %%
cfg = book.config_from(CompareConfig, globals())

# %% [markdown]
# ## The model's own trajectories
#
# The configured model first, at the configured layer. Then, unless `contrast_layer` is None, the
# same generations are re-read at the contrast layer (`mipeaks.pipeline.layer_traces`). That needs
# one forward pass per problem and no new generation. The gold representation is recomputed at
# that layer too.

# %%
lm, run = collect_run(cfg, progress=False)
print(settings_text(cfg, run))
short = cfg.model.rstrip("/").split("/")[-1]
variants = {f"{short}, layer {run.manifest['layer_index']}": trajectories(run, cfg)}
if cfg.contrast_layer is not None:
    contrast = layer_traces(lm, run, cfg.contrast_layer)
    variants[f"{short}, layer {contrast[0].layer} (contrast)"] = traces_trajectories(contrast, cfg)

# %% [markdown]
# ## The reasoning/base pair (only when `base_model` is set)

# %%
if cfg.base_model is not None:
    del lm  # free the reasoning model before loading the base model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    lm, base_run = collect_run(cfg.base_config(), progress=False)
    print(settings_text(cfg.base_config(), base_run))
    base_short = cfg.base_model.rstrip("/").split("/")[-1]
    variants[f"{base_short} (base), layer {base_run.manifest['layer_index']}"] = trajectories(base_run, cfg)
else:
    print("base_model is None: no reasoning/base pair on the CPU default (see the note above).")

# %% [markdown]
# ## Trajectories side by side (Fig. 3 layout)
#
# Three problems (the first three of the dataset), one panel per variant. The y axes are shared,
# so a difference in level is a difference in MI.

# %%
frames = [trajectory_frame(t, list(t)[:3]).assign(variant=name) for name, t in variants.items()]
frame = pd.concat(frames, ignore_index=True)
grid = sns.relplot(data=frame, x="step", y="mi", hue="variant", col="id", kind="line", height=3, aspect=1.2,
                   linewidth=1, facet_kws={"legend_out": False})
grid.set_axis_labels("step t", "MI $m_t$ (hsic_paper, σ=50)")
grid.set_titles("problem {col_name}")
sns.move_legend(grid, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(variants), title=None, frameon=False)
grid.figure.suptitle(f"{short}: NOT the paper's reasoning/base pairs" if cfg.base_model is None
                     else f"{short} vs {cfg.base_model}", y=1.03)
plt.show()

# %% [markdown]
# ## Table 2: ours beside the paper's
#
# Per-sample means over problems. AOM is averaged over the problems that have at least one IQR
# peak (`n_aom_samples`): it is undefined without a peak.

# %%
per_problem = {name: peaks.summarize(t, rule="iqr", tau=cfg.tau) for name, t in variants.items()}
ours2 = peaks.table2(per_problem)
paper2 = pd.DataFrame(peaks.PAPER_TABLE2)
paper2["model"] = [peaks.PAPER_TABLE2_PAIRS[p][0 if v == "origin" else 1] + f" ({v})"
                   for p, v in zip(paper2.pair, paper2.variant)]
paper2 = paper2.set_index("model")[["mean", "std", "aom"]]
table = book.paper_vs_ours(paper2, ours2, paper_label=book.label("paper Table 2", "LRM/base", 100, "4xA100"),
                           ours_label=book.ours_label(cfg, None))
table.style.format(precision=4, na_rep="–").hide(axis="index")

# %% [markdown]
# ## Table 3 (published only)
#
# AOM on GPQA and MedQA, from the NeurIPS camera-ready. Neither dataset is available offline, so
# there is no row of ours.

# %%
pd.DataFrame(peaks.PAPER_TABLE3).assign(source=book.label("paper Table 3", "LRM/base", None, "4xA100"))

# %% [markdown]
# **Reading.** In the paper, every LRM has a higher Mean and a higher AOM than its base model.
# Mean MI also differs about tenfold between model families (Llama ≈ 0.1, Qwen ≈ 1–4), so only
# comparisons within a pair mean anything.
#
# On the 135M model, changing only the layer moves Mean, Std and AOM by as much as the paper's
# reasoning-vs-base gaps, or more. The middle layer's trajectory is a flat baseline with isolated
# spikes, which is closer in shape to the paper's figures than the last layer's noisy curve. It
# has a higher mean, half the spread, and IQR outliers in almost every problem. The text and the
# gold solution are the same in both variants; only the representation differs. So the
# "peakiness" these statistics measure depends on where the representation is read, and models
# should be compared at matched layers, each with its own gold representation, as the paper's
# pairs are.

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites, from this one dict (3 significant digits).
key_numbers = {"blocks": lm.n_layers}
for name, row in ours2.iterrows():
    key_numbers.update({f"{name}: {col}": row[col] for col in ("mean", "std", "aom")})
    key_numbers[f"{name}: problems with a peak / problems"] = [int(row["n_aom_samples"]), int(row["n_samples"])]
first, *others = list(ours2.index)
for other in others:  # how far the other variants move each statistic, as a ratio to the first
    key_numbers.update({f"{col}, {other} / first": ours2.loc[other, col] / ours2.loc[first, col]
                        for col in ("mean", "std", "aom")})
book.print_numbers(key_numbers, significant=3)

# %%
book.provenance_cell(cfg, model=lm);  # with base_model set, the model row names the base model
