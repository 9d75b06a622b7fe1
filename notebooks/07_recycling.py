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
# # 7. Representation Recycling (paper Fig. 6)
#
# **The paper's claim.** If the states at thinking tokens carry the information that matters,
# letting the model "think longer" at exactly those steps should help. Representation Recycling
# (RR) does this inside one forward pass: when the model is about to emit a thinking token, block
# $\ell^*$ is run a second time on its own output,
# $h'_{\ell^*} = \mathrm{TF}_{\ell^*}(\mathrm{TF}_{\ell^*}(h))$, and the rest of the network
# continues from $h'$. Fig. 6 shows bars for R1-Llama-8B and R1-Qwen-7B on GSM8K, MATH500 and
# AIME24: RR beats the original model ("Origin") everywhere. The only number in the text is the
# headline: **+20% relative on AIME24 for R1-Llama-8B**. With the figure's y-axis at 30–50% and 30
# problems, that is most likely 33.3% → 40.0%, i.e. 10 → 12 problems (our reading, not stated).
#
# **The exact semantics** ({mod}`mipeaks.recycling`, following the official
# `RR_model.RecursiveThinkingModel.generate`). At every greedy step:
#
# 1. the regular pass runs and saves block $\ell^*$'s output at the last position;
# 2. if the greedy candidate is one of the trigger ids **and a seeded coin with probability $p$
#    comes up**, the step is recomputed with block $\ell^*$'s input at the last position replaced
#    by that saved output;
# 3. the emitted token is the argmax of the recomputed pass, which may differ from the candidate.
#
# Where paper and code differ, and where we differ from the code:
#
# * **The coin.** The paper's text recycles at every thinking token; the official code does so
#   only when `random.random() < 0.5`. `p = 0.5` reproduces the code (the default here) and `p = 1`
#   follows the text; this chapter runs both.
# * **The coin's stream.** The code seeds one global stream per run, so a problem's coins depend
#   on every problem before it. Here each problem has its own coin, seeded by `seed` and its prompt,
#   so a result depends only on the problem (resumable, order- and batch-independent).
# * **The KV cache.** The code re-runs the step on the same cache object, so a recycled position
#   keeps two KV entries (both passes'). Here the first pass's entry is dropped and each position
#   keeps exactly one, the recycled pass's.
# * **Triggers.** The official run uses the first 10 alphabetic words of the R1-Llama-8B list
#   ({data}`mipeaks.recycling.PAPER_RR_WORDS`: So, Let, Hmm, I, The, Okay, That, First, Now, Wait)
#   with their same-case whitespace variants, and $\ell^* = 23$ (0-based) of 32 blocks. The words
#   are looked up again in the vocabulary of the model that runs here.
# * **Origin** is plain greedy decoding with the same prompt and length; the paper does not say
#   how its Origin bars were run.
#
# **What this chapter measures.** Origin, RR with the code's coin and RR at every trigger on each
# benchmark, and what RR did: how often a trigger came up, how often the block was actually run
# twice, how many outputs changed, and a graded score: how RR's reasoning changes the probability
# the model gives the **gold** answer. The box below names the model, data, $\ell^*$ and settings
# that produced the numbers; every sentence about the results is written from them. To run the
# paper's setting on a GPU, use a preset (see {doc}`../book/reproduce`).

# %%
from mipeaks import book

book.init_notebook()

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from mipeaks.evaluate import RR_ARMS, RecyclingSweepConfig, load_result, recycling_sweep, show_first_change
from mipeaks.models import load_model
from mipeaks.recycling import PAPER_FIG6, PAPER_RR_WORDS, layer_text
from mipeaks.suppression import word_ids

# %% [markdown]
# ## Parameters
#
# The fields of {class}`mipeaks.evaluate.RecyclingSweepConfig`: the run settings, the benchmarks
# `datasets` (one panel each, as in Fig. 6), and `params`, the
# {class}`~mipeaks.recycling.RecycleConfig` of the RR run: $\ell^*$ (`layer`, 0-based), the trigger
# words and the recycling probability `p`; `seed` seeds the coins. The Origin run is the same config
# without the intervention; a third run sets `p = 1` (the paper's text). With the same `n`,
# prompt, length and seed as chapter 6, the Origin run is chapter 6's unsuppressed baseline and
# is read back from its records instead of being recomputed.

# %% tags=["parameters"]
model = "smollm2-135m-instruct"
datasets = ["arith"]  # the paper: ["gsm8k", "math500", "aime24"]; the CPU run: chapter 6's synthetic problems
n = 40  # the paper: the whole benchmark
prompt_style = "deepseek-math"  # the official run's prompt
max_new_tokens = 80  # the official RR run: 16000
grading = "verify"
extraction = "ours"  # "harness": the Qwen2.5-Math harness's answer extraction (the paper presets)
intervention = "recycle"
params = {  # the code: layer 23 of 32, p = 0.5, the first 10 alphabetic words of its list
    "layer": 22,
    "words": ["So", "Let", "Hmm", "I", "The", "Okay", "That", "First", "Now", "Wait"],
    "p": 0.5,
}
seed = 0  # seed of RR's coins
batch_size = 40  # problems per generate call; one batch on CPU (left padding can change rounding)
dtype = "float32"  # the official RR code: float32
device = "cpu"
out_dir = None  # None: runs/evals/ at the repository root

# %%
cfg = book.config_from(RecyclingSweepConfig, globals())
lm = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
rr = cfg.intervention_config()
triggers = word_ids(lm, rr.words, case_sensitive=True)
official_words = tuple(rr.words) == PAPER_RR_WORDS
book.show_markdown(book.model_box(cfg, lm, settings=book.eval_settings(
    cfg, **{"RR": f"{layer_text(rr.layer, lm.n_layers)}; coin p = {rr.p:g} (and p = 1); seed {rr.seed}",
            "triggers": f"{len(rr.words)} words ({'the official run' if official_words else 'not the official'}'s "
                        f"list) = {len(triggers)} ids of this vocabulary"})))

# %% [markdown]
# ## Origin, RR with the code's coin, RR at every trigger
#
# One library call runs the three arms on every benchmark ({func}`mipeaks.evaluate.recycling_sweep`).

# %%
summary = recycling_sweep(lm, None, cfg, progress=False)
code_arm, text_arm = (arm.format(p=rr.p) for arm in RR_ARMS[1:])

# %% [markdown]
# ## Results
#
# `triggers`: steps whose greedy candidate was a trigger id; `recycles`: steps actually recomputed
# (all triggers at `p = 1`, about half at `p = 0.5`); `changed`: outputs that differ from Origin's
# anywhere. Unlike a suppression mask, a recycle need not change the token: the recomputed pass
# often agrees with the regular one.

# %%
summary.drop(columns=["path", "continuations", "changed_ci_low", "changed_ci_high", "gold_logprob_diff_ci_low",
                      "gold_logprob_diff_ci_high"]).round(3)

# %% [markdown]
# In words, generated from the table, one paragraph per benchmark ({func}`mipeaks.book.task_note`,
# {func}`mipeaks.book.truncation_sentence`, {func}`mipeaks.book.arm_sentences`):

# %%
for dataset, part in summary.groupby("dataset", sort=False):
    origin = part[part.arm == "Origin"].iloc[0]
    records = load_result(origin.path).records
    capped = sum(r["stop_reason"] == "length" for r in records)
    others = part[part.arm != "Origin"].assign(ref_ci_low=origin.ci_low, ref_ci_high=origin.ci_high)
    counts = "; ".join(f"{row.arm}: {row.triggers} trigger steps, {row.recycles} recycled" for row in others.itertuples())
    book.show_markdown(f"**{book.DATASET_NAMES.get(dataset, dataset)}.** " + book.task_note(
        dataset, len(records), int(origin.correct), max_new_tokens=cfg.max_new_tokens, prompt_style=cfg.prompt_style,
        arm="Origin", others={row.arm: int(row.correct) for row in others.itertuples()}, model=lm)
        + " " + book.truncation_sentence(capped, len(records), cfg.max_new_tokens, "Origin") + f" {counts}. "
        + " ".join(book.arm_sentences(row, label=row["arm"], reference="Origin") for row in others.to_dict("records")))

# %% [markdown]
# ## Paper Fig. 6's bars, on our run
#
# Left: accuracy per arm with 95% Wilson intervals (the paper's Fig. 6 shows only the bars).
# Middle: the recycling counts behind them, summed over the problems. Right: the change in the
# gold answer's mean log-probability after each arm's reasoning, against Origin, problem by
# problem, with a 95% interval ({func}`mipeaks.evaluate.gold_logprob`: after the output the model
# is given `" Final Answer within \boxed{}:"` and the gold answer). This is our addition, not the
# paper's: a graded signal of whether the reasoning points at the right answer, finer than a
# right-or-wrong count over a limited number of problems.

# %%
fig, axes = plt.subplots(len(cfg.datasets), 3, figsize=(15, 4.2 * len(cfg.datasets)), squeeze=False)
for row_axes, dataset in zip(axes, cfg.datasets):
    part = summary[summary.dataset == dataset].reset_index(drop=True)
    name = book.DATASET_NAMES.get(dataset, dataset)
    ax = row_axes[0]
    sns.barplot(data=part, x="arm", y="accuracy", hue="arm", palette="colorblind", legend=False, ax=ax)
    ax.errorbar(range(len(part)), part.accuracy, yerr=[part.accuracy - part.ci_low, part.ci_high - part.accuracy],
                fmt="none", ecolor="k", capsize=4)
    ax.set(ylim=(0, 1), xlabel="", ylabel="accuracy (95% Wilson interval)", title=f"{name}: accuracy")
    counts = part.melt(id_vars="arm", value_vars=["triggers", "recycles", "changed"], var_name="count",
                       value_name="value")
    sns.barplot(data=counts, x="arm", y="value", hue="count", palette="muted", ax=row_axes[1])
    row_axes[1].set(xlabel="", ylabel="count (steps or outputs)", title=f"{name}: what RR did (summed over problems)")
    sns.barplot(data=part, x="arm", y="gold_logprob_diff", hue="arm", palette="colorblind", legend=False,
                ax=row_axes[2])
    row_axes[2].errorbar(range(len(part)), part.gold_logprob_diff,
                         yerr=[part.gold_logprob_diff - part.gold_logprob_diff_ci_low,
                               part.gold_logprob_diff_ci_high - part.gold_logprob_diff],
                         fmt="none", ecolor="k", capsize=4)
    row_axes[2].axhline(0, color="k", lw=0.8)
    row_axes[2].set(xlabel="", ylabel="change in gold-answer log-prob (nats/token)", title=f"{name}: gold answer, vs Origin")
    for ax in row_axes:
        ax.tick_params(axis="x", labelsize=9)
fig.suptitle(book.figure_title(f"Representation Recycling (Fig. 6), l* = {rr.layer}, at most {cfg.max_new_tokens} "
                               "new tokens", cfg, lm), fontsize=11)
plt.show()

# %% [markdown]
# ## One output with and without recycling
#
# The first problem (of the first benchmark) whose output RR at `p = 1` changed: Origin's output, then RR's.

# %%
first = summary[summary.dataset == cfg.datasets[0]].set_index("arm")
show_first_change(load_result(first.path["Origin"]), load_result(first.path[text_arm]), labels=("Origin", "RR p=1"));

# %% [markdown]
# ## Paper Fig. 6 beside ours
#
# The paper's rows are {data}`mipeaks.recycling.PAPER_FIG6`, with the settings of the official
# `run_RR.sh` ({data}`mipeaks.recycling.PAPER_RR`). Only the AIME24 headline has a number in the
# text; the accuracies in that row are our reading of the figure.

# %%
paper_fig6 = pd.DataFrame(PAPER_FIG6)


def relative(a: float, b: float) -> str:
    return f"{(b - a) / a:+.0%}" if a > 0 else "undefined (Origin at 0)"


ours_fig6 = []
for dataset, part in summary.groupby("dataset", sort=False):
    o = part.set_index("arm")
    n_run = int(o.n["Origin"])
    ours_fig6.append({
        "benchmark": f"{book.DATASET_NAMES.get(dataset, dataset)} (first {n_run})", "l*": f"{rr.layer} of {lm.n_layers}",
        "p": rr.p, "max tokens": cfg.max_new_tokens,
        "Origin": f"{o.accuracy['Origin']:.1%} ({o.correct['Origin']}/{n_run})",
        "RR": f"{o.accuracy[code_arm]:.1%} ({o.correct[code_arm]}/{n_run})",
        "relative change": relative(o.accuracy["Origin"], o.accuracy[code_arm]),
    })
book.paper_vs_ours(paper_fig6, pd.DataFrame(ours_fig6),
                   paper_label=book.label("paper Fig. 6", "R1-Llama-8B", None, "4xA100"),
                   ours_label=book.ours_label(cfg, lm))

# %% [markdown]
# **How to read this run.** Only large changes leave Origin's interval: even the paper's
# headline is two problems out of 30, well inside the binomial noise of one run (the Wilson
# interval of 10/30 is about 19–51%). The triggers are **case-sensitive** (the official list's
# ids: "So" and " So", not "so"), so only the capitalised words count; at `p = 0.5` the coin skips
# about half of them (compare `triggers` with `recycles`). A recycle can change the output even
# when it emits the same token, because the recycled pass's KV entry is the one that later steps
# attend to; and it can leave the output unchanged, when the second pass through block $\ell^*$
# moves the state too little to matter. The gold-answer score is computed on the text alone (a
# plain teacher-forced pass, no recycling), so RR moves it only through the outputs it changes.

# %%
verdicts = []
for dataset, part in summary.groupby("dataset", sort=False):
    o = part.set_index("arm")
    name = book.DATASET_NAMES.get(dataset, dataset)
    better = [arm for arm in (code_arm, text_arm) if o.ci_low[arm] > o.ci_high["Origin"]]
    worse = [arm for arm in (code_arm, text_arm) if o.ci_high[arm] < o.ci_low["Origin"]]
    if better:
        verdicts.append(f"On {name} {' and '.join(better)} beat Origin beyond its interval, as the paper's Fig. 6 shows.")
    elif worse:
        verdicts.append(f"On {name} {' and '.join(worse)} fall below Origin's interval: the opposite of Fig. 6.")
    else:
        verdicts.append(f"On {name} no RR arm leaves Origin's interval ({o.correct['Origin']}/{o.n['Origin']} for "
                        f"Origin, {o.correct[code_arm]} and {o.correct[text_arm]} for RR): this run cannot "
                        "confirm or refute Fig. 6's gain.")
    verdicts.append(f"RR at p = 1 recycled {o.recycles[text_arm]} steps and changed {o.changed[text_arm]} of "
                    f"{o.n[text_arm]} outputs.")
book.show_markdown(book.reading(*verdicts))

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites (3 decimals: differences around 0 stay stable).
from mipeaks.evaluate import wilson_interval

book.print_numbers({"problems": cfg.n, "max new tokens": cfg.max_new_tokens, "benchmarks": ", ".join(cfg.datasets),
                    "l* / blocks": [rr.layer, lm.n_layers], "p": rr.p,
                    "trigger words / ids": [len(rr.words), len(triggers)],
                    "trigger words are the official run's": official_words,
                    "Wilson interval of the paper's 10/30": list(wilson_interval(10, 30))})
for row in summary.to_dict("records"):
    key = (f"{row['dataset']} " if len(cfg.datasets) > 1 else "") + row["arm"]
    if row["arm"] == "Origin":
        book.print_numbers({f"{key}: outputs stopped by the token cap":
                            sum(r["stop_reason"] == "length" for r in load_result(row["path"]).records)})
    book.print_numbers({
        f"{key}: correct": int(row["correct"]),
        f"{key}: accuracy (95% interval)": [row["accuracy"], row["ci_low"], row["ci_high"]],
        f"{key}: triggers / recycles / changed": f"{row['triggers']} / {row['recycles']} / {row['changed']}",
        f"{key}: answer extracted": int(row["answer_extracted"]),
        f"{key}: mean tokens": row["mean_tokens"],
        f"{key}: gold log-prob / change vs Origin": f"{row['mean_gold_logprob']:.3f} / {row['gold_logprob_diff']:+.3f}",
        f"{key}: change vs Origin, 95% interval": [row["gold_logprob_diff_ci_low"], row["gold_logprob_diff_ci_high"]],
    }, digits=3)

# %%
# The overview page reads this chapter's finding from here (the paper's Fig. 6 claim, decided from the numbers).
by = summary.set_index(["dataset", "arm"])
book.save_key_numbers("07_recycling", {f"{d} {arm} accuracy": by.accuracy[(d, arm)] for d, arm in by.index},
                      cfg, lm, findings={"Fig. 6": {
    "ours": "; ".join(f"{d}: " + ", ".join(f"{arm} {by.correct[(d, arm)]}/{by.n[(d, arm)]}" for arm in
                                           summary[summary.dataset == d].arm) for d in cfg.datasets),
    "holds": bool(all(max(by.ci_low[(d, code_arm)], by.ci_low[(d, text_arm)]) > by.ci_high[(d, "Origin")]
                      for d in cfg.datasets))}})

# %%
book.provenance_cell(cfg, model=lm);
