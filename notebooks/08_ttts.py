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
# # 8. Thinking-token test-time scaling (paper Fig. 7)
#
# **The paper's claim.** A reasoning model that has finished can be made to keep thinking by
# appending a thinking token ("Wait", "So", "Therefore", ...) and letting it continue. Fig. 7
# plots accuracy against the token budget for R1-Llama-8B on GSM8K, MATH500 and AIME24, for this
# thinking-token test-time scaling (TTTS) and for the original model ("Origin"). On GSM8K, Origin
# plateaus after a budget of about 1024 tokens while TTTS keeps rising; on AIME24, Origin
# saturates at about 3000 tokens, TTTS dips at middle budgets and passes Origin beyond 6144.
#
# **The exact semantics** ({mod}`mipeaks.ttts`). The parameter `recipe` chooses between two
# rules; the box below says which one this run used.
#
# * **`official`** (the official `TTTS_evaluate.batch_TTTS_generation`): a base generation of
#   `base_tokens` tokens (the code: 4096), then the thinking word, then **one** continuation of
#   `budget` tokens (the code's `token_budget`; only it counts as the budget), then
#   `" Final Answer within \boxed{}:"` and at most 16 answer tokens. The official code runs each
#   word of its list as a separate experiment; `words` here is that list.
# * **`budget`** (ours): the budget is the total number of reasoning tokens; the word is appended
#   again each time the model stops, while the budget lasts, and the word's ids count against it.
#
# In both, **only the answer tokens are graded**, as in the official code (with `extraction="ours"`,
# a number that runs into the answer-token limit is not taken when an earlier answer exists: a
# small model repeating "The answer is 12." is cut to "... The answer is 1"). Origin under the same
# budget is plain generation up to the budget followed by the same forced answer, so both methods
# are graded on the same kind of short final answer.
#
# Where we differ from the official code (see {doc}`../book/divergences`):
#
# * it rebuilds the text `f"{q} {a} {word}"` and re-tokenises it (and drops the space after the
#   word); we append token ids and never re-tokenise;
# * how the paper ran its Origin curve is not stated; forcing the same answer suffix is our choice;
# * which thinking word Fig. 7 uses is not stated either.
#
# **What this chapter measures.** Accuracy against the budget for Origin and TTTS with each word,
# on each benchmark, the tokens each method used, how often the word was appended, how often
# that changed the final answer, and a graded score: the probability the model gives the
# **gold** answer after each method's reasoning. The box below names the model, data and
# settings; every sentence about the results is written from them. To run the paper's setting on
# a GPU, use a preset (see {doc}`../book/reproduce`).

# %%
from mipeaks import book

book.init_notebook()

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Markdown, display

from mipeaks.evaluate import TTTSSweepConfig, load_result, ttts_sweep
from mipeaks.lens import TTTS_WORDS
from mipeaks.models import load_model
from mipeaks.ttts import PAPER_FIG7

# %% [markdown]
# ## Parameters
#
# The fields of {class}`mipeaks.evaluate.TTTSSweepConfig`: the run settings, the benchmarks
# `datasets` (one panel each, as in Fig. 7), the sweep axis `budgets` (one list for every
# benchmark, or a mapping benchmark -> list, since Fig. 7's axes differ per benchmark; each
# budget runs Origin and TTTS) and the thinking `words` (one TTTS experiment each). `params`
# holds the {class}`~mipeaks.ttts.TTTSConfig` fields shared by every run: `recipe`,
# `base_tokens` (the first generation's limit; `None` under `budget`: the whole budget, so the
# word is only appended after the model stops) and `answer_tokens`. `max_new_tokens` bounds the
# budgets.

# %% tags=["parameters"]
model = "smollm2-135m-instruct"
datasets = ["arith"]  # the paper: ["gsm8k", "math500", "aime24"]; the CPU run: chapter 6's synthetic problems
n = 40  # the paper: the whole benchmark
prompt_style = "deepseek-math"  # the paper's evaluation prompt
max_new_tokens = 80  # the largest budget allowed
grading = "verify"
extraction = "ours"  # "harness": the Qwen2.5-Math harness's answer extraction (the paper presets)
intervention = "ttts"
params = {"recipe": "budget", "base_tokens": None, "answer_tokens": 16}  # the paper presets: official, 4096, 16
seed = 0
batch_size = 40  # problems per generate call; rows take their words and stop on their own
dtype = "float32"
device = "cpu"
out_dir = None  # None: runs/evals/ at the repository root
budgets = [40, 80]  # the paper's GSM8K axis: 256-2560
words = ["Wait"]  # the official code runs each word of its list

# %%
cfg = book.config_from(TTTSSweepConfig, globals())
ttts = cfg.intervention_config()
lm = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
budget_text = ("; ".join(f"{d}: {list(cfg.budgets_for(d))}" for d in cfg.datasets)
               if isinstance(cfg.budgets, dict) else str(list(cfg.budgets)))
recipe_text = (f"`official` (base of {ttts.base_tokens} tokens, the word once, one continuation of the budget)"
               if ttts.recipe == "official" else
               "`budget` (the budget bounds every reasoning token; the word is appended while it lasts"
               + (f", after a base of {ttts.base_tokens} tokens)" if ttts.base_tokens else ")"))
book.show_markdown(book.model_box(cfg, lm, settings=book.eval_settings(
    cfg, recipe=recipe_text, budgets=budget_text, words=", ".join(f"'{w}'" for w in cfg.words),
    **{"answer tokens": ttts.answer_tokens}), note=(
    f"The figures draw Origin and one TTTS line per word ({', '.join(repr(w) for w in cfg.words)}); the paper's "
    f"TTTS words are {', '.join(TTTS_WORDS)}, and which one Fig. 7 plots is not stated.")))

# %% [markdown]
# ## The sweep
#
# One library call runs Origin and TTTS at every budget ({func}`mipeaks.evaluate.ttts_sweep`).
# `mean_reasoning_tokens`: the tokens counted against the budget (generated tokens plus the
# appended words), averaged over problems; `continuations`: how many times the word was appended in
# all; `answer_changed`: problems whose extracted final answer differs from Origin's at the same
# budget.

# %%
sweep = ttts_sweep(lm, None, cfg, progress=False)
summary = sweep.drop(columns=["path", "triggers", "recycles", "changed_ci_low", "changed_ci_high"])
summary.round(3)

# %% [markdown]
# In words, generated from the table, one paragraph per benchmark ({func}`mipeaks.book.task_note`,
# {func}`mipeaks.book.arm_sentences`); the baseline is Origin at the benchmark's largest budget:

# %%
for dataset, part in sweep.groupby("dataset", sort=False):
    bmax = int(part.budget.max())
    origin = part[(part.method == "origin") & (part.budget == bmax)].iloc[0]
    others = {f"{row.curve} at {row.budget}": int(row.correct) for row in part.itertuples()
              if not (row.method == "origin" and row.budget == bmax)}
    used = part[part.budget == bmax].set_index("curve").mean_reasoning_tokens
    top = part[(part.method == "ttts") & (part.budget == bmax)]
    book.show_markdown(f"**{book.DATASET_NAMES.get(dataset, dataset)}.** " + book.task_note(
        dataset, int(origin.n), int(origin.correct), max_new_tokens=bmax, prompt_style=cfg.prompt_style,
        arm=f"Origin (budget {bmax})", others=others, model=lm)
        + " At that budget the methods used " + ", ".join(f"{v:.1f} ({k})" for k, v in used.items())
        + " reasoning tokens on average. " + " ".join(
            book.arm_sentences(row, label=f"{row['curve']} at budget {bmax}", reference="Origin")
            + f" It appended the word {row['continuations']} times." for row in top.to_dict("records")))

# %% [markdown]
# ## Accuracy and tokens used against the budget
#
# Left: the paper's Fig. 7 axes, accuracy against the total budget, with 95% Wilson intervals.
# Middle: the reasoning tokens each method actually used. Origin stops when the model stops;
# TTTS spends the budget. Right: the gold answer's mean log-probability after each method's
# reasoning ({func}`mipeaks.evaluate.gold_logprob`: the model is given
# `" Final Answer within \boxed{}:"` and the gold answer, whose tokens are scored). This is our
# addition, not the paper's: a graded signal of whether the extra thinking points at the right
# answer, finer than a right-or-wrong count over a limited number of problems.

# %%
curves = list(dict.fromkeys(sweep.curve))
palette = dict(zip(curves, ["tab:blue", "tab:red", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
                            "tab:olive", "tab:cyan", "tab:gray"] * 3))
fig, axes = plt.subplots(len(cfg.datasets), 3, figsize=(15, 4.2 * len(cfg.datasets)), squeeze=False)
for row_axes, dataset in zip(axes, cfg.datasets):
    part = sweep[sweep.dataset == dataset]
    budgets = list(cfg.budgets_for(dataset))
    name = book.DATASET_NAMES.get(dataset, dataset)
    ax = row_axes[0]
    sns.lineplot(data=part, x="budget", y="accuracy", hue="curve", style="curve", markers=True, dashes=False,
                 palette=palette, ax=ax)
    step = (max(budgets) - min(budgets) or max(budgets)) / 80
    for i, (curve, cpart) in enumerate(part.groupby("curve", sort=False)):
        ax.errorbar(cpart.budget + (i - len(curves) / 2) * step, cpart.accuracy,
                    yerr=[cpart.accuracy - cpart.ci_low, cpart.ci_high - cpart.accuracy],
                    fmt="none", ecolor=palette[curve], capsize=3, alpha=0.7)
    ax.set(xlabel="budget (reasoning tokens)", ylabel="accuracy (95% Wilson interval)", ylim=(-0.03, 1.03),
           xticks=budgets, title=f"{name}: accuracy")
    sns.lineplot(data=part, x="budget", y="mean_reasoning_tokens", hue="curve", style="curve", markers=True,
                 dashes=False, palette=palette, ax=row_axes[1])
    row_axes[1].plot(budgets, budgets, ls=":", c="k", lw=1, label="budget")
    row_axes[1].set(xlabel="budget (reasoning tokens)", ylabel="mean reasoning tokens counted", xticks=budgets,
                    title=f"{name}: tokens counted against the budget")
    row_axes[1].legend()
    sns.lineplot(data=part, x="budget", y="mean_gold_logprob", hue="curve", style="curve", markers=True,
                 dashes=False, palette=palette, ax=row_axes[2])
    row_axes[2].set(xlabel="budget (reasoning tokens)", ylabel="gold-answer log-prob (nats/token)", xticks=budgets,
                    title=f"{name}: gold answer after the reasoning")
fig.suptitle(book.figure_title(f"TTTS vs Origin (Fig. 7), recipe {ttts.recipe}", cfg, lm), fontsize=11)
plt.show()

# %% [markdown]
# ## What one TTTS run looks like
#
# The segments of the first problem that TTTS (first benchmark, first word) continued at the
# largest budget: the first generation, each appended word and its continuation, the forced
# suffix and the graded answer.

# %%
d0 = cfg.datasets[0]
top = sweep[(sweep.dataset == d0) & (sweep.budget == max(cfg.budgets_for(d0)))].set_index("curve")
big = load_result(top.path[f"TTTS {cfg.words[0]!r}"]).frame()
origin = load_result(top.path["Origin"]).frame()
continued = [i for i in big.index if big.continuations[i] > 0]
if continued:
    pid = continued[0]
    out, start = big.output_ids[pid], 0
    print(f"problem {pid} (gold {big.gold[pid]}), extracted {big.extracted[pid]!r}, "
          f"Origin's answer {origin.extracted[pid]!r}")
    for kind, length in big.segments[pid]:
        print(f"[{kind}, {length} tokens] {lm.tokenizer.decode(out[start:start + length])!r}")
        start += length
else:
    print("TTTS appended no word at this budget")

# %% [markdown]
# ## Paper Fig. 7 beside ours
#
# The paper publishes Fig. 7 only as plots; the rows give the axis ranges (read from the figure,
# so approximate) and the findings stated in the text.

# %%
paper_fig7 = pd.DataFrame(PAPER_FIG7)
ours_fig7 = []
for dataset, part in sweep.groupby("dataset", sort=False):
    n_run = int(part.n.iloc[0])
    by = part.set_index(["budget", "curve"])
    ours_fig7.append({
        "benchmark": f"{book.DATASET_NAMES.get(dataset, dataset)} (first {n_run})",
        "budgets shown": ", ".join(map(str, cfg.budgets_for(dataset))),
        "accuracy range of the plot": f"{part.accuracy.min():.0%}-{part.accuracy.max():.0%}",
        "finding": "; ".join(
            f"B={b}: " + ", ".join(f"{c} {by.correct[(b, c)]}/{n_run}" for c in curves if (b, c) in by.index)
            for b in cfg.budgets_for(dataset)),
    })
book.paper_vs_ours(paper_fig7, pd.DataFrame(ours_fig7),
                   paper_label=book.label("paper Fig. 7", "R1-Llama-8B", None, "4xA100"),
                   ours_label=book.ours_label(cfg, lm))

# %% [markdown]
# **How to read this run.** With few problems the accuracy curves resolve only large differences
# (the paragraphs after the sweep give each interval). The mechanism holds for any model:
# under `budget`, Origin uses only part of a budget on the problems where the model stops early,
# while TTTS turns the rest of the budget into more text after the word; on a problem where the
# model never stops within the budget, TTTS and Origin are the same run. The example above shows
# what the model writes after the word, and `answer_changed` how often that changed the forced
# final answer. The gold-answer score (right panels, and `gold_logprob_diff` with its interval in
# the sweep table) says, problem by problem, whether the text after the word makes the gold
# answer more or less likely than Origin's reasoning at the same budget.

# %%
verdicts = []
for dataset, part in sweep.groupby("dataset", sort=False):
    name = book.DATASET_NAMES.get(dataset, dataset)
    origin = part[part.method == "origin"].sort_values("budget")
    lo_b, hi_b = origin.iloc[0], origin.iloc[-1]
    verdicts.append(f"On {name} " + book.budget_trend(lo_b, hi_b))
    for row in part[(part.method == "ttts") & (part.budget == hi_b.budget)].itertuples():
        where = ("above" if row.ci_low > hi_b.ci_high else "below" if row.ci_high < hi_b.ci_low else "inside")
        verdicts.append(f"{row.curve} at {row.budget}: {row.correct}/{row.n}, {where} Origin's interval.")
book.show_markdown(book.reading(*verdicts))

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites (3 decimals: differences around 0 stay stable).
book.print_numbers({"problems": cfg.n, "benchmarks": ", ".join(cfg.datasets), "budgets": budget_text,
                    "words": ", ".join(cfg.words), "recipe": ttts.recipe})
for row in sweep.to_dict("records"):
    key = (f"{row['dataset']} " if len(cfg.datasets) > 1 else "") + f"B={row['budget']} {row['curve']}"
    book.print_numbers({
        f"{key}: correct": int(row["correct"]),
        f"{key}: accuracy": row["accuracy"],
        f"{key}: mean reasoning tokens": row["mean_reasoning_tokens"],
        f"{key}: words appended / outputs changed / answers changed":
            f"{row['continuations']} / {row['changed']} / {row['answer_changed']}",
        f"{key}: answer extracted": int(row["answer_extracted"]),
        f"{key}: gold log-prob / change vs Origin": f"{row['mean_gold_logprob']:.3f} / {row['gold_logprob_diff']:+.3f}",
        f"{key}: change vs Origin, 95% interval": [row["gold_logprob_diff_ci_low"], row["gold_logprob_diff_ci_high"]],
        f"{key}: accuracy, 95% interval": [row["ci_low"], row["ci_high"]],
    }, digits=3)

# %%
# The overview page reads this chapter's finding from here (the paper's Fig. 7 claim, decided from the numbers).
last = pd.concat([part[part.budget == part.budget.max()] for _, part in sweep.groupby("dataset", sort=False)])
key_numbers = {f"{row.dataset} {row.curve} accuracy at {row.budget}": row.accuracy for row in last.itertuples()}


def _holds(part: pd.DataFrame) -> bool:
    origin = part[part.method == "origin"].iloc[0]
    return bool((part[part.method == "ttts"].ci_low > origin.ci_high).any())


book.save_key_numbers("08_ttts", key_numbers, cfg, lm, findings={"Fig. 7": {
    "ours": "; ".join(f"{d}, budget {part.budget.iloc[0]}: " + ", ".join(
        f"{row.curve} {row.correct}/{row.n}" for row in part.itertuples()) for d, part in last.groupby("dataset", sort=False)),
    "holds": bool(all(_holds(part) for _, part in last.groupby("dataset", sort=False)))}})

# %%
book.provenance_cell(cfg, model=lm);
