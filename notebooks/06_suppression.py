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
# :::{important}
# **Which model produced these numbers.** The committed outputs come from the **CPU default**:
# the embedded **SmolLM2-135M-Instruct** (float32, CPU), greedy decoding with the paper's
# `deepseek-math` prompt and a few dozen new tokens (the parameters below), on **`arith`**, a
# seeded synthetic set of one-step arithmetic word problems ({func}`mipeaks.data.arith_problems`),
# not on GSM8K. They are not the paper's numbers, which come from a distilled R1 model of 8B
# parameters on the full benchmarks with thousands of tokens per answer.
#
# Why a synthetic task: a 135M model answers almost no GSM8K problem at a length a CPU affords,
# so on GSM8K every arm sits at 0% accuracy and a mask has nothing to lower. The difficulty of
# `arith` was fixed from the unsuppressed baseline alone, before any intervention was run, to
# leave accuracy room to fall and to rise; the note after the sweep states that baseline and
# each arm's accuracy with its 95% Wilson interval. Besides accuracy, the chapter measures how
# many outputs the mask changed at all, whether an answer could still be extracted, how long the
# outputs were, and a graded score: how the suppressed reasoning changes the probability the
# model gives the **gold** answer afterwards.
#
# To run the paper's setting on a GPU, use a preset (see {doc}`../book/reproduce`), which sets
# the model, the dataset, the prompt and the generation length.
# :::

# %%
from mipeaks import book

book.init_notebook()

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from mipeaks.data import load_problems
from mipeaks.evaluate import SuppressionSweepConfig, load_result, show_first_change, suppression_sweep
from mipeaks.models import load_model
from mipeaks.suppression import PAPER_FIG5

# %% [markdown]
# ## Parameters
#
# The fields of {class}`mipeaks.evaluate.SuppressionSweepConfig`: the run settings every arm
# shares, plus the sweep axis `ks` (numbers of suppressed words; $k = 0$ is the unsuppressed
# baseline, shared by both arms) and `thinking_list` (`"paper"`, or the path of a list exported by
# chapter 4). `params` holds the {class}`~mipeaks.suppression.SuppressConfig` field common to
# every arm (whether the mask is case-sensitive); the sweep fills in each arm's words. `seed`
# seeds the random control words. Records go to `out_dir` (None: `runs/evals/` at the repository
# root), one JSONL file per arm, so a rerun with the same settings resumes instead of recomputing.

# %% tags=["parameters"]
model = "smollm2-135m-instruct"
dataset = "arith"  # the paper: GSM8K, MATH500, AIME24; here synthetic one-step word problems (see above)
n = 40  # the paper: the whole benchmark
prompt_style = "deepseek-math"  # the paper's evaluation prompt
max_new_tokens = 48  # the paper: thousands
grading = "verify"
extraction = "ours"  # "harness": the Qwen2.5-Math harness's answer extraction (the paper presets)
intervention = "suppress"
params = {"case_sensitive": False}  # mask every case of each word (the official list's ids: same case only)
seed = 0  # seed of the random control words
batch_size = 10  # problems per generate call; batching only speeds up the CPU run
dtype = "float32"
device = "cpu"
out_dir = None
ks = [0, 5]  # the paper's x-axis runs to about 10; the CPU run: baseline and k = 5 (three runs of 40 problems)
thinking_list = "paper"  # the official R1-Llama-8B list's words

# %%
cfg = book.config_from(SuppressionSweepConfig, globals())
lm = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
problems = load_problems(cfg.dataset, cfg.n)
print(f"{lm.name}: {lm.n_layers} blocks, {lm.dtype}; {len(problems)} {cfg.dataset} problems, "
      f"prompt {cfg.prompt_style!r}, at most {cfg.max_new_tokens} new tokens; k in {cfg.ks}")

# %% [markdown]
# ## The sweep
#
# One library call runs every arm: for each $k$, the first $k$ thinking words and $k$ random
# words ({func}`mipeaks.evaluate.suppression_sweep`). Besides accuracy, each row says how many
# vocabulary ids the mask bans (`banned_ids`), how many outputs differ from the unsuppressed ones
# at all (`changed`), how many extracted answers differ (`answer_changed`), and how many
# unsuppressed outputs contain a banned id (`baseline_uses_banned`).

# %%
sweep = suppression_sweep(lm, problems, cfg, progress=False)
kmax = max(cfg.ks)
sweep[sweep.k == kmax][["arm", "words", "banned_ids"]]

# %% [markdown]
# The table above gives the words of each arm at the largest $k$. Case-insensitive masking of
# "I" and "The" also bans "i", "the" and " the", which are among the commonest tokens of any
# English text: from $k = 5$ on, the thinking arm is also a much *larger* intervention than the
# random arm, a confound the paper's setting shares if it masked all cases.
#
# Under greedy decoding a mask changes an output **if and only if** the unsuppressed output uses
# one of the banned ids: up to that step every logit is the same, and afterwards the model must
# pick something else. So `baseline_uses_banned` predicts `changed` exactly, which is a check of
# the machinery, and it explains why random words usually change nothing: the model never wanted
# to write them.

# %%
summary = sweep.drop(columns=["words", "path", "triggers", "recycles", "continuations", "changed_ci_low",
                              "changed_ci_high", "gold_logprob_diff_ci_low", "gold_logprob_diff_ci_high"])
summary.round(3)

# %% [markdown]
# ## The task and the accuracies, in words
#
# Generated from the sweep ({func}`mipeaks.book.task_note`): which task ran and why, the
# unsuppressed accuracy, and each arm's accuracy with its 95% Wilson interval.

# %%
base = sweep[sweep.k == 0].iloc[0]
arms = {f"{row.arm} k = {row.k}": int(row.correct) for row in sweep[sweep.k > 0].itertuples()}
display(Markdown(book.task_note(cfg.dataset, len(problems), int(base.correct), max_new_tokens=cfg.max_new_tokens,
                                prompt_style=cfg.prompt_style, arm="unsuppressed (k = 0)", others=arms)))

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
# right-or-wrong count over a few dozen problems.

# %%
palette = {"thinking": "tab:red", "random": "tab:blue"}
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, (y, low, high, title, ylim) in zip(axes, [
    ("accuracy", "ci_low", "ci_high", "accuracy (95% Wilson interval)", (-0.03, 1.03)),
    ("changed_share", "changed_ci_low", "changed_ci_high", "outputs changed by the mask", (-0.03, 1.03)),
    ("gold_logprob_diff", "gold_logprob_diff_ci_low", "gold_logprob_diff_ci_high",
     "change in gold-answer log-prob (nats/token)", None),
]):
    sns.lineplot(data=sweep, x="k", y=y, hue="arm", style="arm", markers=True, dashes=False,
                 palette=palette, ax=ax)
    for arm, part in sweep.groupby("arm"):
        shift = 0.08 if arm == "thinking" else -0.08
        ax.errorbar(part.k + shift, part[y], yerr=[part[y] - part[low], part[high] - part[y]], fmt="none",
                    ecolor=palette[arm], capsize=3, alpha=0.7)
    ax.set(xlabel="number of suppressed words k", ylabel=title, xticks=list(cfg.ks))
    if ylim:
        ax.set_ylim(*ylim)
axes[0].set_title(f"{cfg.dataset.upper()}, first {cfg.n} problems")
axes[1].set_title("share of outputs that differ from k = 0")
axes[2].axhline(0, color="k", lw=0.8)
axes[2].set_title("gold answer after the reasoning, vs k = 0")
fig.suptitle(f"Suppression on {lm.name} (NOT the paper's model), greedy, {cfg.max_new_tokens} tokens",
             fontsize=11)
plt.show()

# %% [markdown]
# ## One output with and without the largest thinking mask
#
# The first problem whose output the largest thinking mask changed: the unsuppressed output,
# then the suppressed one. This shows *how* the model routes around the banned words.

# %%
show_first_change(load_result(sweep.path[sweep.k == 0].iloc[0]),
                  load_result(sweep.path[(sweep.k == kmax) & (sweep.arm == "thinking")].iloc[0]),
                  labels=("k = 0", f"thinking k = {kmax}"));

# %% [markdown]
# ## Paper Fig. 5 beside ours
#
# The paper publishes Fig. 5 only as a plot, with no numbers in the text; the rows below give
# its axis ranges (read from the figure, so approximate) and its stated findings. Our row
# summarises the run above.

# %%
paper_fig5 = pd.DataFrame(PAPER_FIG5)
think = sweep[sweep.arm == "thinking"].set_index("k")
rand = sweep[sweep.arm == "random"].set_index("k")
ours_fig5 = pd.DataFrame([{
    "benchmark": f"{cfg.dataset.upper()} (first {cfg.n})",
    "k shown": ", ".join(map(str, cfg.ks)),
    "accuracy range of the plot": f"{sweep.accuracy.min():.0%}-{sweep.accuracy.max():.0%}",
    "finding": (f"thinking mask changed {think.changed.loc[kmax]}/{cfg.n} outputs at k={kmax}, random mask "
                f"{rand.changed.loc[kmax]}/{cfg.n}; accuracy {think.correct.loc[0]}/{cfg.n} at k=0, "
                f"{think.correct.loc[kmax]}/{cfg.n} (thinking) and {rand.correct.loc[kmax]}/{cfg.n} (random) "
                f"at k={kmax}"),
}])
book.paper_vs_ours(paper_fig5, ours_fig5,
                   paper_label=book.label("paper Fig. 5", "R1-Llama-8B (probably)", None, "4xA100"),
                   ours_label=book.ours_label({"n": cfg.n, "device": str(lm.device)}, lm))

# %% [markdown]
# **Reading.** The note after the sweep says whether an arm's accuracy left the unsuppressed
# baseline's 95% interval; with a few dozen problems only large changes can. What the run shows
# in any case is the mechanism behind the paper's control arm. Random vocabulary words are almost
# never what the model wants to write next, so banning them leaves greedy outputs untouched
# (compare `changed` with `baseline_uses_banned` above), while the paper's thinking words (and,
# with case-insensitive masking, "so", "the" and "i") occur in most outputs, so banning them
# rewrites the text from the first occurrence on; the example above shows how the model routes
# around them, much like the paper's "But wait" for a banned "Wait". The paper's contrast
# therefore compares a mask that binds with one that mostly does not. A stronger control would
# ban random words *of similar frequency* in the model's own outputs; the sweep takes any word
# list, so such a control is one argument away.
#
# The gold-answer score (right panel) asks whether the rewritten reasoning supports the right
# answer less, problem by problem, with an interval; an interval that spans zero means no
# measurable change. At this scale the banned words are mostly connectives; whether they carry
# *reasoning* is the paper's question, and it needs a model that reasons.

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites (3 decimals: differences around 0 stay stable).
baseline = load_result(sweep.path[sweep.k == 0].iloc[0])
book.print_numbers({"problems": cfg.n, "max new tokens": cfg.max_new_tokens,
                    "k=0 outputs stopped by the token cap": sum(r["stop_reason"] == "length" for r in baseline.records),
                    "thinking words (k max)": think.words.loc[kmax], "random words (k max)": rand.words.loc[kmax]})
for row in sweep.to_dict("records"):
    key = f"k={row['k']} {row['arm']}"
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
t_max, r_max = think.loc[kmax], rand.loc[kmax]
book.save_key_numbers("06_suppression", {"k max": kmax, "thinking accuracy": t_max.accuracy,
                                         "random accuracy": r_max.accuracy}, cfg, lm, findings={"Fig. 5": {
    "ours": (f"k={kmax}: thinking-word mask {t_max.correct}/{t_max.n} correct, random mask "
             f"{r_max.correct}/{r_max.n} (95% intervals {t_max.ci_low:.0%}-{t_max.ci_high:.0%} and "
             f"{r_max.ci_low:.0%}-{r_max.ci_high:.0%})"),
    "holds": bool(t_max.ci_high < r_max.ci_low)}})

# %%
book.provenance_cell(cfg, model=lm);
