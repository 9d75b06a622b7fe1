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
# # 4. Thinking tokens (paper Fig. 4, 8)
#
# **The paper's claim.** The tokens at MI peaks are dominated by "thinking" words such as *So*,
# *Let*, *Hmm*, *Wait* and *Therefore*, the connectives of reflection and transition. Fig. 4
# ranks the 15 most frequent alphabetic peak words of R1-Llama-8B, R1-Qwen-14B and QwQ-32B
# (Fig. 8: the other LRMs). The official repository publishes the R1-Llama-8B list as a jsonl
# file, which the interventions of chapters 6–8 read.
#
# The paper and its code read the token at a peak in two ways:
#
# * **`lens`** (paper text): decode the peak state with the logit lens, i.e. final norm then
#   unembedding, and take the argmax;
# * **`generated`** (official code): the token the model actually generated at that step.
#
# At the last layer under greedy decoding the two are the same token, because the lens of the
# last block *is* the model's next-token prediction. They differ only when `layer` is not the last
# one, or when decoding samples.
#
# **What this chapter computes.** The peak tokens of every problem, pooled, filtered to
# alphabetic words and ranked (`mipeaks.pipeline.thinking_tokens`, in both views). It exports
# the list in the official jsonl layout (`mipeaks.lens.save_thinking_tokens`, into the run
# directory) and sets it beside the paper's list. It also checks what the paper does not: whether
# the peak words are *over-represented* at peaks compared with how often the model writes them
# anyway (`mipeaks.enrichment.word_enrichment`).
#
# The box under the parameters names the model, data, settings and peak rule of the run (the run of
# chapters 1–3). The official code's token counts use its **top-$k$** rule with $k = 20$; at a
# few hundred steps or fewer that marks a large share of the steps, a generous notion of "peak".
# The count of alphabetic peak words under the paper's IQR rule is printed below too.
#
# For the paper's models and settings: `make reproduce PRESET=r1-llama-8b` (see
# {doc}`../book/reproduce`).

# %%
from mipeaks import book

book.init_notebook()

import dataclasses

import matplotlib.pyplot as plt
from IPython.display import display
import pandas as pd
import seaborn as sns

from mipeaks import lens
from mipeaks.enrichment import group_lift, word_enrichment
from mipeaks.pipeline import MIConfig, collect_run, settings_text, thinking_tokens, thinking_tokens_path, trajectories

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
peak_rule = "topk"  # the rule of the official token counts; IQR gives too few peaks at 128 steps
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
                                  paper_settings={**book.PAPER_MI_SETTINGS, "peak_rule": "topk",
                                                  "pool_whitespace": False}))

# %% [markdown]
# ## Ranked peak words, both views

# %%
views = {mode: thinking_tokens(lm, run, trajs, dataclasses.replace(cfg, token_mode=mode))
         for mode in ("generated", "lens")}
words = views[cfg.token_mode]
ranked = pd.concat([pd.DataFrame([{"word": t.word, "freq": t.freq} for t in ws]).assign(view=mode)
                    for mode, ws in views.items()], ignore_index=True)
same = [(t.word, t.freq) for t in views["generated"]] == [(t.word, t.freq) for t in views["lens"]]
print(f"generated and lens views give the same list: {same}")

top15 = ranked.groupby("view", sort=False).head(15)
grid = sns.catplot(data=top15, x="freq", y="word", col="view", kind="bar", height=4.2, aspect=0.9,
                   sharey=False, color="tab:blue")
grid.set_titles("token_mode = {col_name}")
grid.set_axis_labels("peaks (pooled over problems)", "")
grid.figure.suptitle(book.figure_title(f"Top-15 peak words ({cfg.peak_rule} peaks)", cfg, lm, n=len(trajs)), y=1.03)
plt.show()

# %% [markdown]
# ## The exported list
#
# The list is written in the official layout, one `{"word", "freq", "token_ids"}` object per line,
# into the run directory. `token_ids` lists every single-token spelling of the word in this
# model's vocabulary (`"So"`, `" So"`, …), so an intervention can mask all of them. Reading it
# back gives the same list.

# %%
path = lens.save_thinking_tokens(words, thinking_tokens_path(run, cfg))
print(f"runs/{run.path.name}/{path.name}")
print("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:8]), end="")
print(f"round trip identical: {lens.load_thinking_tokens(path) == words}")

# %% [markdown]
# ## Beside the paper's list
#
# The paper's column is R1-Llama-8B's official **jsonl list** (the counts of the repository's
# `DeepSeek-R1-Distill-Llama-8B.jsonl`), filtered to alphabetic words exactly as the plotting code
# does. Those counts are not Fig. 4's bars: Fig. 4 shows the same 15 words in a slightly different
# order. Ours is the ranking above, each count with its exact 95% Poisson interval
# (`mipeaks.book.count_interval`): a count of a few cannot rank words reliably. A ✓ marks a word
# that the other list also contains.

# %%
paper_words = [(w, f) for w, f in lens.PAPER_THINKING_TOKENS_R1_LLAMA_8B if lens.ALPHABETIC.match(w)][:15]
ours_words = [(t.word, t.freq) for t in words[:15]]
ours_set, paper_set = {w for w, _ in ours_words}, {w for w, _ in paper_words}
def with_interval(w, f, other):
    lo, hi = book.count_interval(f)
    return f"{w} ({f}; 95% {lo:.1f}–{hi:.1f}){' ✓' if w in other else ''}"


side = pd.DataFrame({
    "rank": range(1, 16),
    book.label("official jsonl list (not Fig. 4)", "R1-Llama-8B", 100, "4xA100"):
        [f"{w} ({f}){' ✓' if w in ours_set else ''}" for w, f in paper_words],
    book.ours_label(cfg, lm):
        [with_interval(w, f, paper_set) for w, f in ours_words] + [""] * (15 - len(ours_words)),
}).set_index("rank")
side

# %% [markdown]
# ## Are peak words special, or just frequent?
#
# A word can top the ranking because it sits at peaks, or because the model writes it often.
# `mipeaks.enrichment.word_enrichment` counts every generated word too. `peak_share` is a word's
# share of the alphabetic peak tokens, `all_share` its share of all alphabetic generated tokens,
# and `lift` is their ratio. A lift above 1 means the word is found at peaks more often than its
# base rate. In the figure, points above the diagonal are over-represented at peaks.

# %%
enrich = word_enrichment(lm, run, trajs, cfg)
totals = enrich.attrs
print(f"peak tokens: {totals['peak_tokens']}, of which alphabetic {totals['peak_kept']} "
      f"({totals['peak_kept'] / totals['peak_tokens']:.0%}); all generated tokens: {totals['all_tokens']}, "
      f"of which alphabetic {totals['all_kept']} ({totals['all_kept'] / totals['all_tokens']:.0%})")

fig, ax = plt.subplots(figsize=(7, 5))
sns.scatterplot(data=enrich, x="all_share", y="peak_share", size="at_peaks", sizes=(10, 200), alpha=0.6, ax=ax,
                legend=False)
lim = max(enrich.all_share.max(), enrich.peak_share.max()) * 1.1
ax.plot([0, lim], [0, lim], ls="--", color="0.5", lw=1)
shown = enrich[(enrich.at_peaks >= 5) | (enrich.all_steps >= 40)]
for _, row in shown.iterrows():
    ax.annotate(row.word, (row.all_share, row.peak_share), textcoords="offset points", xytext=(3, 3), fontsize=8)
ax.set(xlim=(0, lim), ylim=(0, lim), xlabel="share of all generated words", ylabel="share of peak words",
       title=book.figure_title(f"Peak words vs base rate ({cfg.peak_rule} peaks)", cfg, lm, n=len(trajs)))
plt.show()

# %% [markdown]
# The 15 most frequent peak words with their lifts, and the same pooled by case (whether a word
# starts with a capital letter; its position in the sentence is not measured).

# %%
display(enrich.head(15).style.format({"peak_share": "{:.3f}", "all_share": "{:.3f}", "lift": "{:.2f}"})
        .hide(axis="index"))
by_case = group_lift(enrich, enrich.word.str[0].str.isupper().map({True: "capitalised", False: "lower-case"}))
by_case.style.format({"peak_share": "{:.3f}", "all_share": "{:.3f}", "lift": "{:.2f}"})

# %% [markdown]
# ## Key numbers (checked in CI)

# %%
# NBVAL_CHECK_OUTPUT
# Every number the chapter's prose cites, from this one dict (3 significant digits).
from mipeaks.peaks import find_peaks

iqr_words = thinking_tokens(lm, run, trajs, dataclasses.replace(cfg, peak_rule="iqr"))
iqr_counts = [len(find_peaks(m, rule="iqr", tau=cfg.tau)) for m in trajs.values()]
lift = enrich.set_index("word")["lift"]
key_numbers = {
    "problems": len(trajs),
    "problems with no IQR peak": sum(c == 0 for c in iqr_counts),
    f"share of steps marked by top-{cfg.top_k}": totals["peak_tokens"] / totals["all_tokens"],
    "alphabetic peak words (pooled)": sum(t.freq for t in words),
    "distinct peak words": len(words),
    "alphabetic peak words under the IQR rule": sum(t.freq for t in iqr_words),
    "paper top-15 words in our top-15": len(ours_set & paper_set),
    "peaks at the paper's reflective words (Hmm, Wait, Okay)": sum(t.freq for t in words
                                                                  if t.word in ("Hmm", "Wait", "Okay")),
    "views agree (generated == lens)": same,
    "peak tokens (all)": totals["peak_tokens"],
    "alphabetic peak tokens": totals["peak_kept"],
    "alphabetic share of peak tokens": totals["peak_kept"] / totals["peak_tokens"],
    "generated tokens (all)": totals["all_tokens"],
    "alphabetic share of all generated tokens": totals["all_kept"] / totals["all_tokens"],
    **{f"lift, {g}": row.lift for g, row in by_case.iterrows()},
    **{f"lift, {w!r}": lift.get(w, float("nan")) for w in ("the", "is", "miles", "hours")},
    **{f"top word {i + 1}: {t.word} (peaks, lift)": [t.freq, lift.get(t.word, float("nan"))]
       for i, t in enumerate(words[:15])},
}
book.print_numbers(key_numbers, significant=3)

# %% [markdown]
# ## Reading
#
# Written from the key numbers above.

# %%
kn = key_numbers
peak_alpha, all_alpha = kn["alphabetic share of peak tokens"], kn["alphabetic share of all generated tokens"]
top = [k.split(": ", 1)[1].split(" (")[0] for k in kn if k.startswith("top word ")]
cap, low = kn.get("lift, capitalised", float("nan")), kn.get("lift, lower-case", float("nan"))
reflective = kn["peaks at the paper's reflective words (Hmm, Wait, Okay)"]
book.show_markdown(book.reading(
    f"{peak_alpha:.0%} of the peak tokens of {book.model_name(cfg, lm)} are alphabetic words, against "
    f"{all_alpha:.0%} of all generated tokens"
    + ("; the rest are digits, operators, punctuation and line breaks." if peak_alpha < 0.5 else "."),
    f"The most frequent peak words are {', '.join(top[:8]) or 'none'}; of the official list's top 15, "
    f"{kn['paper top-15 words in our top-15']} are among ours.",
    (f"The paper's reflective words (Hmm, Wait, Okay) are at {reflective} peaks." if reflective else
     "The paper's reflective words (Hmm, Wait, Okay) are at no peak."),
    f"Capitalised words have a lift of {cap:.2g} at peaks, lower-case words {low:.2g}"
    + (": capitalisation, not only frequency, goes with the peaks." if cap > 1 > low else "."),
    f"Under the paper's IQR rule only {kn['alphabetic peak words under the IQR rule']} peak tokens are alphabetic "
    f"words ({kn['problems with no IQR peak']} of {kn['problems']} problems have no IQR peak), too few to rank."
    if kn["alphabetic peak words under the IQR rule"] < 30 else None,
    "Ranking raw frequencies, as the paper does, mixes \"frequent\" with \"at peaks\"; the lifts separate the two.",
))

# %%
book.save_key_numbers("04_thinking_tokens", key_numbers, cfg, lm)  # for the overview page; shows nothing

# %%
book.provenance_cell(cfg, model=lm);
