"""Benchmark: fast low-rank ``hsic_paper`` vs the original dense float32 method.

Both run side by side in one process on the same synthetic trajectory. The
script reports the time per step, the speed-up, and the accuracy of each
method against a dense float64 evaluation of the same formula.

Usage:
    .venv/bin/python benchmarks/bench_mi.py                      # d=4096, T=512, 3 dense steps
    .venv/bin/python benchmarks/bench_mi.py --d 1024 --T 64 --dense-steps 2 \
        --json runs/bench_mi.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float

from mipeaks import mi

MASSIVE_VALUES = np.array([-900.0, 600.0, 350.0, -250.0, 150.0, 100.0])


def synthetic_trajectory(
    d: int, T: int, seed: int
) -> tuple[Float[np.ndarray, "T d"], Float[np.ndarray, "d"], dict]:
    """Residual-stream-like states and gold vector.

    The states follow ``h_t = 0.3 * gold + N(0, s_t^2)``, with ``s_t ~ U(2, 10)``
    drawn per step. Six fixed "massive activation" coordinates, shared by every
    step, hold :data:`MASSIVE_VALUES` times ``(1 + 0.05 * N(0, 1))``. The gold
    vector is ``N(0, 4^2)`` with ``0.8 * MASSIVE_VALUES`` at the same coordinates.

    Args:
        d: Hidden size.
        T: Number of steps.
        seed: RNG seed.

    Returns:
        ``(states, gold, description)``.
    """
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(d, MASSIVE_VALUES.size, replace=False))
    gold = rng.normal(0.0, 4.0, d)
    gold[idx] = 0.8 * MASSIVE_VALUES
    scales = rng.uniform(2.0, 10.0, T)
    states = 0.3 * gold + rng.normal(0.0, 1.0, (T, d)) * scales[:, None]
    states[:, idx] = MASSIVE_VALUES * (1.0 + 0.05 * rng.normal(0.0, 1.0, (T, idx.size)))
    desc = {
        "states": "0.3*gold + N(0, s_t^2), s_t ~ U(2,10) per step",
        "gold": "N(0, 4^2)",
        "massive_coords": idx.tolist(),
        "massive_values_states": f"{MASSIVE_VALUES.tolist()} * (1 + 0.05 N(0,1))",
        "massive_values_gold": (0.8 * MASSIVE_VALUES).tolist(),
    }
    return states, gold, desc


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.abs(b)))


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark and prints a markdown table.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The results dictionary (also written with ``--json``).
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=4096, help="hidden size (default 4096, Llama-8B)")
    ap.add_argument("--T", type=int, default=512, help="steps in the trajectory (default 512)")
    ap.add_argument("--dense-steps", type=int, default=3, help="steps timed with the dense methods")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    states, gold, desc = synthetic_trajectory(args.d, args.T, args.seed)
    n_dense = max(1, min(args.dense_steps, args.T))
    steps = np.unique(np.linspace(0, args.T - 1, n_dense).round().astype(int))
    print(
        f"d={args.d} T={args.T} dense steps={steps.tolist()} seed={args.seed}; "
        f"torch threads={torch.get_num_threads()}"
    )
    print("synthetic data:", json.dumps(desc))

    # fast: the whole trajectory (including the gold-side factorisation)
    mi.trajectory(states[:2], gold)  # warm-up (imports, BLAS init)
    for dt in (torch.float32, torch.float64):
        mi.hsic_paper_dense(states[0, :256], gold[:256], dtype=dt)
    t0 = time.perf_counter()
    fast = mi.trajectory(states, gold)
    t_fast = (time.perf_counter() - t0) / args.T

    # original method: float32, both R matrices built densely each step
    dense32, t32 = [], []
    for t in steps:
        t0 = time.perf_counter()
        dense32.append(mi.hsic_paper_dense(states[t], gold, dtype=torch.float32))
        t32.append(time.perf_counter() - t0)
    t_dense32 = float(np.mean(t32))

    # dense float32 with the gold R_y cached (a fairer dense baseline)
    est32 = mi.PaperHSICDense(gold, dtype=torch.float32)
    t32c = []
    for t in steps:
        t0 = time.perf_counter()
        est32(states[t])
        t32c.append(time.perf_counter() - t0)
    t_dense32c = float(np.mean(t32c))

    # exact reference: dense float64 (gold cached; same formula)
    est64 = mi.PaperHSICDense(gold, dtype=torch.float64)
    dense64, t64 = [], []
    for t in steps:
        t0 = time.perf_counter()
        dense64.append(est64(states[t]))
        t64.append(time.perf_counter() - t0)
    dense64_a = np.array(dense64)

    err_fast = _rel(fast[steps], dense64_a)
    err_32 = _rel(np.array(dense32), dense64_a)
    ranks = [mi.gaussian_factor(s, mi.SIGMA_PAPER)[0].shape[1] for s in states]
    gold_rank = mi.PaperHSIC(gold).gold_rank

    rows = [
        ("original dense float32 (R_x and R_y per step)", len(steps), t_dense32, err_32),
        ("dense float32, gold R_y cached", len(steps), t_dense32c, err_32),
        ("dense float64 reference, gold R_y cached", len(steps), float(np.mean(t64)), 0.0),
        ("fast low-rank `trajectory` (float64)", args.T, t_fast, err_fast),
    ]
    print()
    print("| method | steps | ms / step | speed-up vs original | max rel. err vs float64 dense |")
    print("|---|---|---|---|---|")
    for name, n, t, e in rows:
        print(f"| {name} | {n} | {t * 1e3:.3f} | {t_dense32 / t:,.0f}x | {e:.2e} |")
    print()
    print(
        f"speed-up fast vs original: {t_dense32 / t_fast:,.0f}x; "
        f"vs dense float32 with cached gold: {t_dense32c / t_fast:,.0f}x"
    )
    print(f"max rel. error fast vs float64 dense: {err_fast:.2e} (target <= 1e-6)")
    print(f"max rel. error original float32 vs float64 dense: {err_32:.2e}")
    print(f"kernel ranks at tol={mi.DEFAULT_TOL:g}: gold {gold_rank}, states min/median/max "
          f"{min(ranks)}/{int(np.median(ranks))}/{max(ranks)}")
    print("values at dense steps (fast, float32, float64):")
    for t, a, b, c in zip(steps, fast[steps], dense32, dense64):
        print(f"  t={t}: {a:.9f} {b:.9f} {c:.9f}")

    res = {
        "d": args.d,
        "T": args.T,
        "seed": args.seed,
        "dense_steps": steps.tolist(),
        "data": desc,
        "ms_per_step": {
            "original_dense_float32": t_dense32 * 1e3,
            "dense_float32_cached_gold": t_dense32c * 1e3,
            "dense_float64_cached_gold": float(np.mean(t64)) * 1e3,
            "fast": t_fast * 1e3,
        },
        "speedup_vs_original": t_dense32 / t_fast,
        "speedup_vs_cached_dense_float32": t_dense32c / t_fast,
        "max_rel_err_fast_vs_float64": err_fast,
        "max_rel_err_float32_vs_float64": err_32,
        "values": {"fast": fast[steps].tolist(), "float32": dense32, "float64": dense64},
        "ranks": {
            "gold": gold_rank,
            "min": min(ranks),
            "median": float(np.median(ranks)),
            "max": max(ranks),
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
        print(f"wrote {args.json}")
    return res


if __name__ == "__main__":
    main()
