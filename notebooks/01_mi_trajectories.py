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
# # 1. MI trajectories and their peaks (paper Fig. 1–2)
#
# **The paper's claim.** While a large reasoning model (LRM) writes its answer, the paper scores
# each step $t$ by a mutual information $m_t = \mathrm{MI}(h_t; h_y)$. Here $h_t$ is the last-layer
# hidden state that predicts token $t$, and $h_y$ is the representation of the gold solution.
# The resulting trajectory is mostly flat, with a few sudden, sharp **MI peaks**. Fig. 1 sketches
# this and Fig. 2 shows one sample for each of six LRMs. The scale depends on the model family:
# Llama-based LRMs peak at about 0.2–0.6, Qwen-based ones sit at about 2–7.
#
# **What this chapter computes.** For every problem of one run:
#
# 1. the greedy generation and its per-step states (`mipeaks.pipeline.collect_run`, a resumable
#    run directory shared by chapters 1–4 and 9);
# 2. the trajectory $m_t$ with the official code's statistic, evaluated exactly
#    (`mipeaks.pipeline.trajectories`, estimator `hsic_paper`, σ = 50; chapter 9 explains what
#    it measures);
# 3. the peaks under both rules: the paper text's Tukey fence $m_t > Q_3 + \tau\,\mathrm{IQR}$
#    (τ = 1.5), and the official notebook's top-$k$ (`mipeaks.peaks.find_peaks`);
# 4. the token generated at each peak.
#
# The box under the parameters names the model, data and settings of the run behind this page and
# lists where they differ from the paper's. To run the paper's settings on a GPU, use a preset,
# e.g. `make reproduce PRESET=r1-llama-8b` (see {doc}`../book/reproduce`). The parameters cell
# takes every field of {class}`mipeaks.pipeline.MIConfig`.

# %%
from mipeaks import book

book.init_notebook()

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from mipeaks import peaks
from mipeaks.peaks import peak_table, trajectory_frame
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

# %% [markdown]
# ## Collect the traces and compute the trajectories
#
# The first MI chapter to run generates the traces; the other chapters with the same collection
# parameters reuse the run directory. The estimator is cheap next to generation.

# %%
lm, run = collect_run(cfg, progress=False)
trajs = trajectories(run, cfg)
book.show_markdown(book.model_box(cfg, lm, n=len(run), settings=settings_text(cfg, run),
                                  paper_settings=book.PAPER_MI_SETTINGS))
print(f"{len(run)} traces in runs/{run.path.name}; steps per trace: "
      f"{min(map(len, trajs.values()))}..{max(map(len, trajs.values()))}")

# %% [markdown]
# ## Trajectories of the first six problems
#
# The six problems are simply the first six of the dataset, not a selection. Filled red markers
# are the paper's IQR peaks, labelled with the token generated there. Open circles are the
# official notebook's top-$k$ steps. The dashed line is each trajectory's fence
# $Q_3 + \tau\,\mathrm{IQR}$.

# %%
examples = list(trajs)[:6]
frame = trajectory_frame(trajs, examples)
found = peak_table(lm, run, trajs, cfg, ids=examples)
stats = peaks.summarize(trajs, rule="iqr", tau=cfg.tau).set_index("id")

grid = sns.relplot(data=frame, x="step", y="mi", col="id", col_wrap=3, kind="line", height=2.6, aspect=1.5,
                   linewidth=1, color="0.35")
for pid, ax in grid.axes_dict.items():
    fence = peaks.iqr_fence(trajs[pid], cfg.tau)
    ax.axhline(fence, ls="--", lw=0.8, color="tab:red", alpha=0.6)
    top = found[(found.id == pid) & (found.rule == "topk")]
    ax.scatter(top.step, top.mi, s=40, facecolors="none", edgecolors="tab:blue", label=f"top-{cfg.top_k}")
    iqr = found[(found.id == pid) & (found.rule == "iqr")]
    ax.scatter(iqr.step, iqr.mi, s=22, color="tab:red", zorder=3, label="IQR peak")
    for _, row in iqr.iterrows():
        ax.annotate(row.token.strip("'"), (row.step, row.mi), textcoords="offset points", xytext=(2, 4),
                    fontsize=7, color="tab:red")
    ax.set_title(f"problem {pid}: {stats.loc[pid, 'n_peaks']} IQR peaks")
grid.set_axis_labels("step t (generated token)", "MI $m_t$ (hsic_paper, σ=50)")
grid.axes.flat[0].legend(loc="lower left", fontsize=7)
grid.figure.suptitle(book.figure_title(f"MI trajectories, layer {cfg.layer}", cfg, lm, n=len(examples)), y=1.02)
plt.show()

# %% [markdown]
# The tokens at the peaks of these six problems. `token` is the decoded token, quoted so that
# spaces and newlines show; step $t$ is the state that *predicts* that token.

# %%
(found.groupby(["id", "rule"], sort=False)
      .agg(steps=("step", list), tokens=("token", " ".join))
      .reset_index())

# %% [markdown]
# ## All trajectories at once
#
# The paper's appendix (Figs. 9–20) plots all 100 trajectories of each LRM. Here each row is one
# problem of this run. Shorter rows ended with the end-of-text token before `max_new_tokens` steps.

# %%
frame_all = trajectory_frame(trajs)
wide = frame_all.pivot(index="id", columns="step", values="mi")
wide = wide.loc[list(trajs)]
fig, ax = plt.subplots(figsize=(9, 4.2))
sns.heatmap(wide, cmap="rocket_r", cbar_kws={"label": "MI $m_t$"}, ax=ax, xticklabels=16)
ax.grid(False)
ax.set(xlabel="step t", ylabel="problem", title=book.figure_title("MI trajectories", cfg, lm, n=len(trajs)))
plt.show()

# %% [markdown]
# ## Paper Fig. 2 beside ours
#
# The paper publishes Fig. 2 only as a plot: one sample per LRM, 512 steps, with MI values whose
# scale depends on the model family. Our row summarises all our trajectories: the range of the
# per-problem medians, and the range of the values at IQR peaks.

# %%
paper_fig2 = pd.DataFrame(peaks.PAPER_FIG2)
all_peaks = peak_table(lm, run, trajs, cfg, rules=("iqr",))
ours_fig2 = pd.DataFrame([{
    "model": book.model_name(cfg, lm),
    "MI scale (as published)": f"values {frame_all.mi.min():.2f}-{frame_all.mi.max():.2f} "
                               f"(per-problem medians {stats['median'].min():.2f}-{stats['median'].max():.2f}); "
                               f"IQR peaks at {all_peaks.mi.min():.2f}-{all_peaks.mi.max():.2f}",
}])
book.paper_vs_ours(paper_fig2, ours_fig2, paper_label=book.label("paper Fig. 2", "six LRMs", 1, "4xA100"),
                   ours_label=book.ours_label(cfg, lm))

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites, from this one dict (3 significant digits).
lengths = [len(m) for m in trajs.values()]
with_peaks = stats.loc[stats["n_peaks"] > 0, "n_peaks"]
key_numbers = {
    "problems": len(trajs),
    "block read / blocks": [int(run.manifest["layer_index"]), lm.n_layers],
    "steps (total)": int(sum(lengths)),
    "steps per trace (min, max)": [min(lengths), max(lengths)],
    f"share of steps marked by top-{cfg.top_k}": sum(min(cfg.top_k, t) for t in lengths) / sum(lengths),
    "IQR peaks (total)": int(stats["n_peaks"].sum()),
    "problems with >= 1 IQR peak": int(len(with_peaks)),
    "problems with no IQR peak": int((stats["n_peaks"] == 0).sum()),
    "IQR peaks of the problems that have any": sorted(with_peaks.astype(int).tolist(), reverse=True),
    "MI, every step (min, max)": [frame_all.mi.min(), frame_all.mi.max()],
    "per-problem median MI (min, max)": [stats["median"].min(), stats["median"].max()],
    "MI at IQR peaks (min, max)": [all_peaks.mi.min(), all_peaks.mi.max()],
    "mean MI over problems": float(stats["mean"].mean()),
    "mean median MI": float(stats["median"].mean()),
    "mean MI at IQR peaks": float(all_peaks.mi.mean()),
}
book.print_numbers(key_numbers, significant=3)

# %% [markdown]
# ## Reading
#
# Written from the key numbers above.

# %%
kn = key_numbers
n_problems, n_peaky = kn["problems"], kn["problems with >= 1 IQR peak"]
held = kn["IQR peaks of the problems that have any"]
top3 = sum(held[:3]) / max(kn["IQR peaks (total)"], 1)
median_lo, median_hi = kn["per-problem median MI (min, max)"]
top_value = kn["MI, every step (min, max)"][1]
scale = ("the Qwen-like scale of Fig. 2 (values of about 2–7)" if median_lo >= 1.5 else
         "a scale below both of Fig. 2's (Llama-like peaks at about 0.2–0.6)" if top_value < 0.1 else
         "the Llama-like scale of Fig. 2 (peaks at about 0.2–0.6)" if top_value < 1.0 else
         "neither of Fig. 2's scales: between the Llama-like and the Qwen-like one")
topk_share = kn[f"share of steps marked by top-{cfg.top_k}"]
book.show_markdown(book.reading(
    f"The values of {book.model_name(cfg, lm)} run from {kn['MI, every step (min, max)'][0]:.3g} to "
    f"{kn['MI, every step (min, max)'][1]:.3g} (per-problem medians {median_lo:.3g}–{median_hi:.3g}), on {scale}.",
    "That scale is set by the magnitude of the hidden-state values relative to σ (chapter 9), so by itself it "
    "says little about the model.",
    f"Under the paper's IQR rule, {n_peaky} of the {n_problems} problems {'has' if n_peaky == 1 else 'have'} "
    f"at least one peak in at most "
    f"{cfg.max_new_tokens} steps ({kn['IQR peaks (total)']} peaks in all)"
    + (f"; the three problems with the most peaks hold {top3:.0%} of them." if n_peaky > 3 and top3 >= 0.5 else "."),
    f"The top-{cfg.top_k} rule marks {topk_share:.0%} of the steps"
    + (", so at this length it is not a sparse rule." if topk_share > 0.1 else "."),
))

# %%
book.save_key_numbers("01_mi_trajectories", key_numbers, cfg, lm)  # for the overview page; shows nothing

# %%
book.provenance_cell(cfg, model=lm);
