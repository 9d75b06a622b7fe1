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
# The box under the parameters names the run's model and settings, and says which comparison this
# run could make. Without a `base_model` (no pair available), the chapter shows a contrast that
# needs only one model: the same generations read at a second layer (`contrast_layer`, by teacher
# forcing) against the configured one. That is **not** the paper's comparison, which always uses
# the last layer and compares two models; it only shows how much these statistics move when the
# representation changes while the text stays fixed.
#
# The paper's pairs: `make reproduce PRESET=r1-llama-8b` runs this chapter with
# `model = deepseek-ai/DeepSeek-R1-Distill-Llama-8B` and `base_model = meta-llama/Llama-3.1-8B`
# (see {doc}`../book/reproduce`). GPQA and MedQA (Table 3) are not among the datasets that
# `mipeaks.data` loads, so Table 3 is shown as published only.

# %%
from mipeaks import book

book.init_notebook()

import gc

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
import torch

from mipeaks import peaks
from mipeaks.layers import layer_traces
from mipeaks.peaks import trajectory_frame
from mipeaks.pipeline import CompareConfig, collect_run, settings_text, traces_trajectories, trajectories

# %% tags=["parameters"]
model = "smollm2-135m-instruct"  # with base_model set, the reasoning model of the pair
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
base_model = None  # the non-reasoning model of the pair, e.g. meta-llama/Llama-3.1-8B
contrast_layer = "middle"  # a second layer of the same generations, not a paper comparison; None skips it

# %%
cfg = book.config_from(CompareConfig, globals())

# %% [markdown]
# ## The model's own trajectories
#
# The configured model first, at the configured layer. Then, unless `contrast_layer` is None, the
# same generations are re-read at the contrast layer (`mipeaks.layers.layer_traces`). That needs
# one forward pass per problem and no new generation. The gold representation is recomputed at
# that layer too.

# %%
lm, run = collect_run(cfg, progress=False)
if cfg.base_model is not None:
    note = f"The pair: {book.model_name(cfg, lm)} (reasoning) and {cfg.base_model} (base), same settings."
elif cfg.contrast_layer is not None:
    note = (f"No reasoning/base pair in this run (`base_model = None`). Shown instead: the same generations "
            f"read at the {cfg.contrast_layer} layer against the {cfg.layer} layer, not the paper's comparison.")
else:
    note = "No reasoning/base pair and no contrast layer in this run: Table 2 has one row of ours."
book.show_markdown(book.model_box(cfg, lm, n=len(run), settings=settings_text(cfg, run), note=note,
                                  paper_settings=book.PAPER_MI_SETTINGS))
short = book.model_name(cfg, lm)
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
    print("base_model is None: no reasoning/base pair in this run (see the box above).")

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
grid.figure.suptitle(book.figure_title("layer contrast, not a reasoning/base pair" if cfg.base_model is None
                                      else f"reasoning vs base ({cfg.base_model})", cfg, lm), y=1.03)
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
if cfg.base_model is not None:  # the pair, for the overview page: (reasoning, base)
    base_row = ours2.loc[[i for i in ours2.index if "(base)" in i][0]]
    key_numbers.update({f"pair: {col} (reasoning, base)": [ours2.loc[first, col], base_row[col]]
                        for col in ("mean", "std", "aom")})
pairs2 = pd.DataFrame(peaks.PAPER_TABLE2).pivot(index="pair", columns="variant")
for col in ("mean", "std", "aom"):  # the paper's reasoning / origin ratio of each pair
    gap = pairs2[(col, "reasoning")] / pairs2[(col, "origin")]
    key_numbers[f"paper: {col}, reasoning / base (min, max)"] = [gap.min(), gap.max()]
llama = pairs2.loc[["Llama-8B", "70B"], "mean"].to_numpy()
qwen = pairs2.drop(index=["Llama-8B", "70B"]).loc[:, "mean"].to_numpy()
key_numbers["paper: mean MI, Qwen / Llama family (min, max)"] = [qwen.min() / llama.max(), qwen.max() / llama.min()]
book.print_numbers(key_numbers, significant=3)

# %% [markdown]
# ## Reading
#
# Written from the key numbers above. In the paper, every LRM has a higher Mean, Std and AOM
# than its base model.

# %%
kn = key_numbers
fam_lo, fam_hi = kn["paper: mean MI, Qwen / Llama family (min, max)"]
sentences = [f"Mean MI differs between the paper's model families by {fam_lo:.0f}× to {fam_hi:.0f}× "
             "(Qwen over Llama), so only comparisons within a pair mean anything."]
labels = {"mean": "Mean", "std": "Std", "aom": "AOM"}
for other in others:
    moves, is_base = [], "(base)" in other  # a pair: ratio reasoning / base, as the paper's
    for col in ("mean", "std", "aom"):
        r = 1 / kn[f"{col}, {other} / first"] if is_base else kn[f"{col}, {other} / first"]
        lo, hi = kn[f"paper: {col}, reasoning / base (min, max)"]
        where = ("the opposite direction to the paper's gaps" if r < 1 else
                 "larger than any of the paper's gaps" if r > hi else
                 "smaller than any of the paper's gaps" if r < lo else "within the paper's range")
        moves.append(f"{labels[col]} ×{r:.2f}, {where} (×{lo:.2f} to ×{hi:.2f})")
    start, end = (other, first) if is_base else (first, other)
    sentences.append(f"From {start} to {end}: " + "; ".join(moves) + ".")
if cfg.base_model is None and others:
    sentences.append("Only the layer differs between these rows: the text and the gold solution are the same. "
                     "So the \"peakiness\" these statistics measure depends on where the representation is read, "
                     "and models should be compared at matched layers, each with its own gold representation, as "
                     "the paper's pairs are.")
elif cfg.base_model is not None:
    same = all(kn[f"pair: {c} (reasoning, base)"][0] > kn[f"pair: {c} (reasoning, base)"][1]
               for c in ("mean", "aom"))
    sentences.append("As in the paper, the reasoning model has the higher Mean and AOM." if same else
                     "Unlike the paper, the reasoning model does not have both the higher Mean and the higher AOM.")
book.show_markdown(book.reading(*sentences))

# %%
book.save_key_numbers("03_reasoning_vs_base", key_numbers, cfg)  # for the overview page; shows nothing

# %%
book.provenance_cell(cfg, model=lm);  # with base_model set, the model row names the base model
