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
# # 5. The error bounds (Theorems 1–2)
#
# The paper links the information that the hidden states carry about the answer to the
# probability that the answer is wrong. Let $y$ be the gold answer, with $|Y|$ possible values,
# let $h_1, \dots, h_T$ be the hidden states, let $p_e = \Pr(\hat y \neq y)$, and call
# $I = \sum_{j=1}^{T} I(y; h_j \mid h_{<j}) = I(y; h_{1:T})$ the **cumulative MI** (chain rule).
#
# * **Theorem 1** (Fano's inequality, then data processing), for any predictor $\hat y = f(h_{1:T})$:
#   $$p_e \ \ge\ \frac{H(y) - I - H_b(p_e)}{\log(|Y| - 1)}.$$
# * **Theorem 2** (Hellman–Raviv), for the Bayes (MAP) predictor:
#   $$p_e \ \le\ \tfrac12\,\bigl[H(y) - I\bigr] = \tfrac12\, H(y \mid h_{1:T}).$$
#
# Both say the same thing from two sides: the more of $H(y)$ the states have accumulated,
# the lower the error can be. The paper uses them to motivate why MI peaks should matter.
#
# :::{important}
# **No model is run in this chapter.** Every number below is one of the two theorems evaluated at
# *illustrative* values (the parameters cell), or on small random probability tables; nothing is
# measured on a language model. The paper states the theorems but publishes no numbers for them,
# so there is no "paper vs ours" table here. The last section explains why the MI trajectories of
# the other chapters **cannot** be plugged into these formulas.
# :::
#
# Everything is computed by {mod}`mipeaks.theory`; this notebook only chooses the inputs and draws.

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import seaborn as sns

from mipeaks import book
from mipeaks.peaks import PAPER_TABLE1, PAPER_TABLE2, PAPER_TABLE2_PAIRS
from mipeaks.theory import (
    BoundsConfig,
    bayes_error,
    bounds_curve,
    entropy,
    fano_lower_bound,
    fano_lower_bound_explicit,
    random_table_check,
    upper_bound,
)

book.init_notebook();

# %% [markdown]
# ## Parameters
#
# The fields of {class}`mipeaks.theory.BoundsConfig`. `h_y_bits = None` means uniformly
# distributed answers, $H(y) = \log_2 |Y|$. All entropies in this chapter are in **bits**.

# %% tags=["parameters"]
n_classes = 10  # |Y|, number of possible answers
h_y_bits = None  # H(y) in bits; None: uniform answers, log2 |Y|
max_cum_mi_bits = None  # right end of the cumulative-MI axis; None: H(y)
points = 201  # points on the curve
n_tables = 2000  # random joint tables p(y, h) for the numerical check
seed = 0  # seed of those tables

# %%
config = book.config_from(BoundsConfig, globals())
H = config.entropy_bits
grid = config.cum_mi_grid()
curve = bounds_curve(h_y=H, cum_mi_array=grid, n_classes=config.n_classes, base=2)
curve.iloc[:: max(1, len(curve) // 10)].round(4)

# %% [markdown]
# ## Both bounds along the cumulative MI
#
# With $I = 0$ the states know nothing and the lower bound is the error of guessing
# ($1 - 1/|Y|$ for uniform answers). Theorem 2's bound is above 1 (vacuous) until
# $H(y) - I < 2$ bits. At $I = H(y)$ both bounds reach 0. Any achievable error of the Bayes
# predictor lies in the shaded band.

# %%
long = curve.melt(id_vars=["cum_mi"], value_vars=["lower", "upper"], var_name="bound", value_name="p_e")
long["bound"] = long["bound"].map({"lower": "Theorem 1 (Fano, lower)", "upper": "Theorem 2 (upper)"})

fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
sns.lineplot(data=long, x="cum_mi", y="p_e", hue="bound", ax=ax, linewidth=2)
ax.fill_between(curve["cum_mi"], curve["lower"], curve["upper"], alpha=0.15, color="grey",
                label="possible Bayes error")
ax.axhline(1 - 1 / config.n_classes, ls=":", c="k", lw=1)
ax.text(0, 1 - 1 / config.n_classes + 0.02, "guessing error $1 - 1/|Y|$", fontsize=9)
ax.set(xlabel="cumulative MI $I$ (bits)", ylabel="error probability $p_e$", ylim=(-0.02, 1.05),
       title=f"|Y| = {config.n_classes}, H(y) = {H:.2f} bits")
ax.legend(loc="upper right", fontsize=9)

# Right: the lower bound for several answer-set sizes, against the fraction of H(y) captured.
sizes = sorted({2, config.n_classes, 10 * config.n_classes})
frac = np.linspace(0, 1, config.points)
rows = []
for k in sizes:
    h_k = np.log2(k)
    c = bounds_curve(h_y=h_k, cum_mi_array=frac * h_k, n_classes=k, base=2)
    rows.append(pd.DataFrame({"fraction of H(y) captured": frac, "p_e": c["lower"], "|Y|": str(k)}))
by_size = pd.concat(rows, ignore_index=True)
sns.lineplot(data=by_size, x="fraction of H(y) captured", y="p_e", hue="|Y|", ax=axes[1], linewidth=2)
axes[1].set(ylabel="Theorem 1 lower bound on $p_e$", ylim=(-0.02, 1.05),
            title="Fano bound, uniform answers")
fig.suptitle("Theorems 1–2 evaluated on illustrative values (not measured)", fontsize=11)
plt.show()

# %% [markdown]
# ## Checking both bounds on random joint distributions
#
# To see that the two curves really bracket the error, draw random joint tables $p(y, h)$ with
# $|Y|$ answers and 8 observation values (Dirichlet draws of varied concentration), compute for
# each the exact conditional entropy $H(y \mid h)$, the exact Bayes error
# $1 - \sum_h \max_y p(y, h)$, and the two bounds at $I = I(y; h)$
# ({func}`mipeaks.theory.random_table_check`). Theorem 1 holds for *any* predictor, so in
# particular for the Bayes one.

# %%
tables = random_table_check(config.n_classes, config.n_tables, seed=config.seed)  # n_obs=8

envelope = bounds_curve(h_y=np.log2(config.n_classes),
                        cum_mi_array=np.log2(config.n_classes) - np.linspace(0, np.log2(config.n_classes), 200),
                        n_classes=config.n_classes, base=2)
fig, ax = plt.subplots(figsize=(7, 4.2))
sns.scatterplot(data=tables, x="H(y|h)", y="Bayes error", s=8, alpha=0.4, ax=ax, color="C2",
                label=f"{config.n_tables} random tables")
ax.plot(envelope["cond_entropy"], envelope["lower"], c="C0", lw=2, label="Theorem 1 (lower)")
ax.plot(envelope["cond_entropy"], envelope["upper"], c="C1", lw=2, label="Theorem 2 (upper)")
ax.set(xlabel="$H(y \\mid h) = H(y) - I$ (bits)", ylabel="error probability", ylim=(-0.02, 1.05),
       title=f"Exact Bayes errors lie between the bounds (|Y| = {config.n_classes})")
ax.legend(fontsize=9)
plt.show()

# %% [markdown]
# ## Units matter for Theorem 2
#
# Fano's bound holds in any logarithm base, as long as every term uses the same one. The
# Hellman–Raviv bound does **not**: it needs bits. A fair coin has Bayes error $1/2$ and
# $H = 1$ bit, so $\tfrac12 H = 1/2$ holds with equality; in nats, $\tfrac12 \ln 2 = 0.347$
# would claim an error below the true $0.5$. {func}`mipeaks.theory.upper_bound` takes the base
# of its inputs and converts to bits. The next cell also checks that the solved Fano bound is
# where the paper's implicit form (with $p_e$ on both sides) becomes tight.

# %%
coin = np.array([0.5, 0.5])
half = config.entropy_bits / 2
p_mid = fano_lower_bound(H, half, config.n_classes, base=2)
rhs_mid = (fano_lower_bound_explicit(H, half, config.n_classes, p_mid, base=2)
           if config.n_classes > 2 else float("nan"))

# %% [markdown]
# ## Why the measured "MI" cannot be plugged in
#
# The trajectories of chapters 1–4 are **not** in bits. They come from an HSIC-based dependence
# score between the coordinates of two vectors (see chapter 9): the official estimator is a
# normalised HSIC whose scale depends on the model (about 0.2–0.6 at Llama peaks, 2–7 for Qwen
# models), with no unit of information. There are two more gaps:
#
# * the theorems need the *conditional* terms $I(y; h_j \mid h_{<j})$, while a trajectory holds one
#   unconditional score per step; summing unconditional scores over-counts whatever successive
#   states share;
# * $I$ can never exceed $H(y) \le \log_2 |Y|$, yet the per-step means the paper publishes,
#   multiplied by the number of steps, are far larger. Taken at face value as bits, they would
#   make both bounds exactly 0 for any plausible answer set, which says nothing.
#
# So the theorems are a qualitative motivation ("more information about the answer, lower
# error"), and the book does not turn them into numerical predictions for a model.

# %%
t1 = pd.DataFrame(PAPER_TABLE1).set_index("model")
t2 = pd.DataFrame(PAPER_TABLE2)
t2 = t2[t2["variant"] == "reasoning"].copy()
t2["model"] = t2["pair"].map(lambda pair: PAPER_TABLE2_PAIRS[pair][1])
t2 = t2[t2["model"].isin(t1.index)].set_index("model")
naive = pd.DataFrame({
    "mean MI per step (paper, Table 2)": t2["mean"],
    "steps (paper, Table 1)": t1.loc[t2.index, "n_steps"],
})
naive["mean x steps (as if bits)"] = naive.iloc[:, 0] * naive.iloc[:, 1]
naive["H(y) if |Y| = 10**6 (bits)"] = np.log2(1e6)
naive.insert(0, "source", book.label("paper", "published means", 100, "4xA100"))
naive.round(3)

# %% [markdown]
# ## Key numbers
#
# Checked in CI by nbval: a change in {mod}`mipeaks.theory` that moves any of these fails the build.

# %%
# NBVAL_CHECK_OUTPUT
key_numbers = {
    "|Y|": config.n_classes,
    "H(y) bits": H,
    "lower bound at I=0": fano_lower_bound(H, 0.0, config.n_classes, base=2),
    "upper bound at I=0": upper_bound(H, 0.0, base=2),
    "lower bound at I=H/2": p_mid,
    "upper bound at I=H/2": upper_bound(H, half, base=2),
    "paper's implicit RHS at p_e=lower(H/2)": rhs_mid,
    "I where Thm 2 stops being vacuous (bits)": max(H - 2.0, 0.0),
    "bounds at I=H (lower, upper)": [fano_lower_bound(H, H, config.n_classes, base=2), upper_bound(H, H, base=2)],
    "random tables": len(tables),
    "tables violating Thm 1": int((~tables["lower ok"]).sum()),
    "tables violating Thm 2": int((~tables["upper ok"]).sum()),
    "smallest slack Bayes - lower": (tables["Bayes error"] - tables["lower"]).min(),
    "smallest slack upper - Bayes": (tables["upper"] - tables["Bayes error"]).min(),
    "fair coin: Bayes error": bayes_error(coin),
    "fair coin: Thm 2 from nats input": upper_bound(np.log(2), 0.0, base="e"),
    "fair coin: 1/2 H in nats (wrong)": 0.5 * entropy(coin),
    "R1-Llama-8B mean x steps": naive.loc["R1-Llama-8B", "mean x steps (as if bits)"],
}
book.print_numbers(key_numbers)

# %%
book.save_key_numbers("05_error_bounds", key_numbers, config)  # for the overview page; shows nothing

# %% [markdown]
# ## Provenance

# %%
book.provenance_cell(config, dataset="none: illustrative values and random tables");
