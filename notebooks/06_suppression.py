# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Suppressing thinking tokens (paper Fig. 5)
#
# **The paper's claim.** If the thinking tokens found at MI peaks matter for reasoning, then a
# model that is not allowed to produce them should reason worse. The paper sets the generation
# probability of $k$ thinking tokens to zero during decoding and, as a control, does the same
# with $k$ random non-thinking tokens. Fig. 5 plots accuracy against the "number of suppressed
# tokens" on GSM8K, MATH500 and AIME24: suppressing thinking tokens lowers accuracy clearly,
# suppressing random tokens has almost no effect. The drop is not monotonic in $k$; the paper's
# example is that masking "Wait" can make the model write "But wait" instead.
#
# **What the paper does not say.** There is no suppression code in the official repository, so
# these choices are ours ({mod}`mipeaks.suppression`):
#
# * a word is masked over **every** vocabulary id that spells it, with or without surrounding
#   whitespace and, by default, in every case (`"So"`, `" So"`, `"so"`, `" SO"`, ...), so the model
#   cannot route around the mask with a variant ({func}`mipeaks.lens.word_variant_ids`);
# * "$k$ thinking tokens" means the first $k$ alphabetic words of the ranked thinking-token list;
# * the control arm draws $k$ ordinary whole words of the vocabulary with a fixed seed, never a
#   word of the list, masked the same way;
# * the model the paper used for Fig. 5 is not stated (most likely R1-Llama-8B).
#
# **Which list.** The thinking words are those of the paper's official list for
# R1-Llama-8B ({data}`mipeaks.lens.PAPER_THINKING_TOKENS_R1_LLAMA_8B`, ranked by peak frequency:
# So, Let, Hmm, I, The, Okay, That, First, Now, Wait, ...). Only the *words* are taken from it:
# the official ids belong to Llama-3's vocabulary, so each word is looked up again in the
# vocabulary of the model that runs here. A list exported by chapter 4 can be passed instead
# (`thinking_list=` takes a jsonl path); the committed run does not, so that its result does not
# depend on which other chapters ran before it.
#
# **What this chapter measures.** Besides accuracy, how many outputs the mask changed at all,
# whether an answer could still be extracted, how many outputs stopped at the token cap, and a
# graded score: how the suppressed reasoning changes the probability the model gives the **gold**
# answer afterwards. The box below names the model, data and settings that produced the numbers;
# every sentence about the results is written from them. To run the paper's setting on a GPU, use
# a preset (see {doc}`../book/reproduce`), which sets the model, the benchmarks, the prompt and
# the generation length.

# %%
from mipeaks import book

book.init_notebook()

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from mipeaks.evaluate import SuppressionSweepConfig, load_result, show_first_change, suppression_sweep
from mipeaks.models import load_model
from mipeaks.suppression import PAPER_FIG5

# %% [markdown]
# ## Parameters
#
# The fields of {class}`mipeaks.evaluate.SuppressionSweepConfig`: the run settings every arm
# shares, the benchmarks `datasets` (one panel each, as in Fig. 5), the sweep axis `ks` (numbers of suppressed words; $k = 0$ is the unsuppressed
# baseline, shared by both arms) and `thinking_list` (`"paper"`, or the path of a list exported by
# chapter 4). `params` holds the {class}`~mipeaks.suppression.SuppressConfig` field common to
# every arm (whether the mask is case-sensitive); the sweep fills in each arm's words. `seed`
# seeds the random control words. Records go to `out_dir` (None: `runs/evals/` at the repository
# root), one JSONL file per arm, so a rerun with the same settings resumes instead of recomputing.

# %% tags=["parameters"]
model = "smollm2-135m-instruct"
datasets = ["arith"]  # the paper: ["gsm8k", "math500", "aime24"]; the CPU run: synthetic word problems
n = 40  # the paper: the whole benchmark
prompt_style = "deepseek-math"  # the paper's evaluation prompt
max_new_tokens = 80  # the paper: thousands
grading = "verify"
extraction = "ours"  # "harness": the Qwen2.5-Math harness's answer extraction (the paper presets)
intervention = "suppress"
params = {"case_sensitive": False}  # mask every case of each word (the official list's ids: same case only)
seed = 0  # seed of the random control words
batch_size = 40  # problems per generate call; one batch on CPU (left padding can change rounding)
dtype = "float32"
device = "cpu"
out_dir = None
ks = [0, 5]  # the paper's x-axis runs to about 10; the CPU run: baseline and k = 5 (three runs of 40 problems)
thinking_list = "paper"  # the official R1-Llama-8B list's words

# %%
cfg = book.config_from(SuppressionSweepConfig, globals())
lm = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
book.show_markdown(book.model_box(cfg, lm, settings=book.eval_settings(
    cfg, ks=list(cfg.ks), thinking_list=f"`{cfg.thinking_list}`", mask=f"`{dict(cfg.params)}`")))

# %% [markdown]
# ## The sweep
#
# One library call runs every arm: for each $k$, the first $k$ thinking words and $k$ random
# words ({func}`mipeaks.evaluate.suppression_sweep`). Besides accuracy, each row says how many
# vocabulary ids the mask bans (`banned_ids`), how many outputs differ from the unsuppressed ones
# at all (`changed`), how many extracted answers differ (`answer_changed`), and how many
# unsuppressed outputs contain a banned id (`baseline_uses_banned`).

# %%
sweep = suppression_sweep(lm, None, cfg, progress=False)
kmax = max(cfg.ks)
first = sweep[sweep.dataset == cfg.datasets[0]]  # the words and masks are the same on every benchmark
first[first.k == kmax][["arm", "words", "banned_ids"]]

# %% [markdown]
# The table above gives the words of each arm at the largest $k$. Under greedy decoding a mask
# changes an output **if and only if** the unsuppressed output uses one of the banned ids: up to
# that step every logit is the same, and afterwards the model must pick something else. So
# `baseline_uses_banned` predicts `changed` exactly, which is a check of the machinery, and it
# explains why random words usually change nothing: the model rarely wants to write them.

# %%
t_ids, r_ids = (int(first[(first.k == kmax) & (first.arm == arm)].banned_ids.iloc[0]) for arm in ("thinking", "random"))
book.show_markdown(book.reading(
    f"At k = {kmax} the thinking mask bans {t_ids} vocabulary ids and the random mask {r_ids}"
    + (f", so the thinking arm is also the {t_ids / max(r_ids, 1):.1f}x larger intervention, a confound "
       "of any comparison of the two arms." if t_ids > 1.5 * r_ids else "."),
    title="The size of each mask"))

# %%
summary = sweep.drop(columns=["words", "path", "triggers", "recycles", "continuations", "changed_ci_low",
                              "changed_ci_high", "gold_logprob_diff_ci_low", "gold_logprob_diff_ci_high"])
summary.round(3)

# %% [markdown]
# ## The task and the accuracies, in words
#
# Generated from the sweep, one paragraph per benchmark ({func}`mipeaks.book.task_note`,
# {func}`mipeaks.book.truncation_sentence`, {func}`mipeaks.book.arm_sentences`): which task ran
# (and why, for the synthetic one), the unsuppressed accuracy, how many of its outputs the token
# cap cut, and each arm at the largest $k$ against it.

# %%
for dataset, part in sweep.groupby("dataset", sort=False):
    base = part[part.k == 0].iloc[0]
    records = load_result(base.path).records
    capped = sum(r["stop_reason"] == "length" for r in records)
    arms = {f"{row.arm} k = {row.k}": int(row.correct) for row in part[part.k > 0].itertuples()}
    top = part[part.k == kmax].assign(ref_ci_low=base.ci_low, ref_ci_high=base.ci_high)
    book.show_markdown(f"**{book.DATASET_NAMES.get(dataset, dataset)}.** " + book.task_note(
        dataset, len(records), int(base.correct), max_new_tokens=cfg.max_new_tokens, prompt_style=cfg.prompt_style,
        arm="unsuppressed (k = 0)", others=arms, model=lm) + " " + book.truncation_sentence(
        capped, len(records), cfg.max_new_tokens, "unsuppressed") + " " + " ".join(
        book.arm_sentences(row, label=f"The {row['arm']} mask at k = {kmax}", reference="k = 0")
        for row in top.to_dict("records")))

# %% [markdown]
# ## Accuracy, changed outputs and the gold answer's probability against $k$
#
# Left: the paper's Fig. 5 axes, accuracy against the number of suppressed words, with 95%
# Wilson intervals. Middle: the share of the outputs that differ from the unsuppressed output
# at all (again with Wilson intervals). Right: how the suppressed reasoning changes the
# probability of the **gold** answer. After each output the model is given
# `" Final Answer within \boxed{}:"` and the gold answer, and we take the mean log-probability of
# the answer's tokens ({func}`mipeaks.evaluate.gold_logprob`); the panel shows its change against
# $k = 0$, problem by problem, with a 95% interval. This is our addition, not the paper's: a
# graded signal of whether the reasoning still points at the right answer, finer than a
# right-or-wrong count over a limited number of problems.

# %%
palette = {"thinking": "tab:red", "random": "tab:blue"}
panels = [("accuracy", "ci_low", "ci_high", "accuracy (95% Wilson interval)", (-0.03, 1.03)),
          ("changed_share", "changed_ci_low", "changed_ci_high", "outputs changed by the mask", (-0.03, 1.03)),
          ("gold_logprob_diff", "gold_logprob_diff_ci_low", "gold_logprob_diff_ci_high",
           "change in gold-answer log-prob (nats/token)", None)]
fig, axes = plt.subplots(len(cfg.datasets), 3, figsize=(15, 4.2 * len(cfg.datasets)), squeeze=False)
for row_axes, dataset in zip(axes, cfg.datasets):
    part = sweep[sweep.dataset == dataset]
    for ax, (y, low, high, label, ylim) in zip(row_axes, panels):
        sns.lineplot(data=part, x="k", y=y, hue="arm", style="arm", markers=True, dashes=False, palette=palette, ax=ax)
        for arm, arm_part in part.groupby("arm"):
            shift = 0.08 if arm == "thinking" else -0.08
            ax.errorbar(arm_part.k + shift, arm_part[y], yerr=[arm_part[y] - arm_part[low], arm_part[high] - arm_part[y]],
                        fmt="none", ecolor=palette[arm], capsize=3, alpha=0.7)
        ax.set(xlabel="number of suppressed words k", ylabel=label, xticks=list(cfg.ks))
        if ylim:
            ax.set_ylim(*ylim)
    name = book.DATASET_NAMES.get(dataset, dataset)
    row_axes[0].set_title(f"{name}: accuracy")
    row_axes[1].set_title(f"{name}: share of outputs that differ from k = 0")
    row_axes[2].axhline(0, color="k", lw=0.8)
    row_axes[2].set_title(f"{name}: gold answer after the reasoning, vs k = 0")
fig.suptitle(book.figure_title(f"Suppression (Fig. 5), greedy, at most {cfg.max_new_tokens} new tokens", cfg, lm),
             fontsize=11)
plt.show()

# %% [markdown]
# ## One output with and without the largest thinking mask
#
# The first problem whose output the largest thinking mask changed: the unsuppressed output,
# then the suppressed one. This shows *how* the model routes around the banned words.

# %%
show_first_change(load_result(first.path[first.k == 0].iloc[0]),
                  load_result(first.path[(first.k == kmax) & (first.arm == "thinking")].iloc[0]),
                  labels=(f"{cfg.datasets[0]}, k = 0", f"thinking k = {kmax}"));

# %% [markdown]
# ## Paper Fig. 5 beside ours
#
# The paper publishes Fig. 5 only as a plot, with no numbers in the text; the rows below give
# its axis ranges (read from the figure, so approximate) and its stated findings. Our row
# summarises the run above.

# %%
paper_fig5 = pd.DataFrame(PAPER_FIG5)
ours_fig5 = []
for dataset, part in sweep.groupby("dataset", sort=False):
    at = part.set_index(["k", "arm"])
    n_run = int(at.n.iloc[0])
    ours_fig5.append({
        "benchmark": f"{book.DATASET_NAMES.get(dataset, dataset)} (first {n_run})",
        "k shown": ", ".join(map(str, cfg.ks)),
        "accuracy range of the plot": f"{part.accuracy.min():.0%}-{part.accuracy.max():.0%}",
        "finding": (f"thinking mask changed {at.changed[(kmax, 'thinking')]}/{n_run} outputs at k={kmax}, random mask "
                    f"{at.changed[(kmax, 'random')]}/{n_run}; accuracy {at.correct[(0, 'thinking')]}/{n_run} at k=0, "
                    f"{at.correct[(kmax, 'thinking')]}/{n_run} (thinking) and {at.correct[(kmax, 'random')]}/{n_run} "
                    f"(random) at k={kmax}"),
    })
book.paper_vs_ours(paper_fig5, pd.DataFrame(ours_fig5),
                   paper_label=book.label("paper Fig. 5", "R1-Llama-8B (probably)", None, "4xA100"),
                   ours_label=book.ours_label(cfg, lm))

# %% [markdown]
# **How to read this run.** The paragraphs after the sweep say, per benchmark, whether an arm's
# accuracy left the unsuppressed baseline's 95% interval, how many outputs each mask rewrote,
# and whether the gold answer's log-probability moved. The mechanism behind the paper's control
# arm holds for any model under greedy decoding: a mask binds only where the unsuppressed output
# uses a banned id (compare `changed` with `baseline_uses_banned`), and the example above shows
# how the model routes around the banned words, much like the paper's "But wait" for a banned
# "Wait". A mask of rare random words that the model never wanted to write cannot change
# anything, so a stronger control would ban random words *of similar frequency* in the model's
# own outputs; the sweep takes any word list, so such a control is one argument away.

# %%
verdicts = []
for dataset, part in sweep.groupby("dataset", sort=False):
    t, r = (part[(part.k == kmax) & (part.arm == arm)].iloc[0] for arm in ("thinking", "random"))
    name = book.DATASET_NAMES.get(dataset, dataset)
    if t.ci_high < r.ci_low:
        verdicts.append(f"On {name} the thinking mask lowers accuracy below the random mask's interval at k = {kmax} "
                        f"({t.correct}/{t.n} against {r.correct}/{r.n}), as in the paper's Fig. 5.")
    else:
        verdicts.append(f"On {name} the two masks' accuracy intervals overlap at k = {kmax} ({t.correct}/{t.n} "
                        f"thinking, {r.correct}/{r.n} random): this run does not show the paper's gap.")
    verdicts.append(f"The thinking mask rewrote {t.changed} of {t.n} outputs, the random mask {r.changed}.")
book.show_markdown(book.reading(*verdicts))

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites (3 decimals: differences around 0 stay stable).
book.print_numbers({"problems": cfg.n, "max new tokens": cfg.max_new_tokens, "benchmarks": ", ".join(cfg.datasets),
                    "thinking words (k max)": first[(first.k == kmax) & (first.arm == "thinking")].words.iloc[0],
                    "random words (k max)": first[(first.k == kmax) & (first.arm == "random")].words.iloc[0]})
for row in sweep.to_dict("records"):
    key = (f"{row['dataset']} " if len(cfg.datasets) > 1 else "") + f"k={row['k']} {row['arm']}"
    if row["k"] == 0 and row["arm"] == "thinking":
        baseline = load_result(row["path"])
        book.print_numbers({f"{key}: outputs stopped by the token cap":
                            sum(r["stop_reason"] == "length" for r in baseline.records)})
    book.print_numbers({
        f"{key}: correct": int(row["correct"]),
        f"{key}: accuracy (95% interval)": [row["accuracy"], row["ci_low"], row["ci_high"]],
        f"{key}: banned ids": int(row["banned_ids"]),
        f"{key}: changed / baseline uses banned / answer extracted":
            f"{row['changed']} / {row['baseline_uses_banned']} / {row['answer_extracted']}",
        f"{key}: changed share (95% interval)": [row["changed_share"], row["changed_ci_low"], row["changed_ci_high"]],
        f"{key}: mean tokens": row["mean_tokens"],
        f"{key}: gold log-prob / change vs k=0": f"{row['mean_gold_logprob']:.3f} / {row['gold_logprob_diff']:+.3f}",
        f"{key}: change vs k=0, 95% interval": [row["gold_logprob_diff_ci_low"], row["gold_logprob_diff_ci_high"]],
    }, digits=3)

# %%
# The overview page reads this chapter's finding from here (the paper's Fig. 5 claim, decided from the numbers).
top = sweep[sweep.k == kmax].set_index(["dataset", "arm"])
book.save_key_numbers("06_suppression", {"k max": kmax, **{
    f"{d} {arm} accuracy": top.accuracy[(d, arm)] for d in cfg.datasets for arm in ("thinking", "random")}},
    cfg, lm, findings={"Fig. 5": {
        "ours": "; ".join(f"{d}, k={kmax}: thinking-word mask {top.correct[(d, 'thinking')]}/{top.n[(d, 'thinking')]} "
                          f"correct, random mask {top.correct[(d, 'random')]}/{top.n[(d, 'random')]} (95% intervals "
                          f"{top.ci_low[(d, 'thinking')]:.0%}-{top.ci_high[(d, 'thinking')]:.0%} and "
                          f"{top.ci_low[(d, 'random')]:.0%}-{top.ci_high[(d, 'random')]:.0%})" for d in cfg.datasets),
        "holds": bool(all(top.ci_high[(d, "thinking")] < top.ci_low[(d, "random")] for d in cfg.datasets))}})

# %%
book.provenance_cell(cfg, model=lm);
