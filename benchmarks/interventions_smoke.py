"""Smoke run: baseline and every intervention on a small GSM8K slice, one library call each.

Runs :func:`mipeaks.evaluate.evaluate` on the embedded SmolLM2-135M-Instruct (CPU) with the
paper's ``deepseek-math`` prompt and prints accuracy with its 95% Wilson interval, tokens and
wall time per arm. A 135M model is expected to score near zero: this checks the machinery,
not the paper's claims.

Usage:
    .venv/bin/python benchmarks/interventions_smoke.py                    # 4 problems, 96 tokens
    .venv/bin/python benchmarks/interventions_smoke.py --n 5 --max-new-tokens 128 --json runs/smoke.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mipeaks.data import load_problems  # noqa: E402
from mipeaks.evaluate import EvalConfig, evaluate  # noqa: E402
from mipeaks.grading import is_equivalent  # noqa: E402
from mipeaks.lens import PAPER_THINKING_TOKENS_R1_LLAMA_8B  # noqa: E402
from mipeaks.models import EMBEDDED_MODEL, load_model  # noqa: E402
from mipeaks.suppression import random_control_words, thinking_words  # noqa: E402


def arms(model, k: int, budget: int, seed: int) -> list[tuple[str, str | None, dict]]:
    """(label, intervention, params) of every arm."""
    ranked = [w for w, _ in PAPER_THINKING_TOKENS_R1_LLAMA_8B]
    think = thinking_words(ranked, k)
    control = random_control_words(model, k, seed, exclude=ranked)
    layer = round(model.n_layers * 23 / 32)  # the paper's relative depth (23 of 32)
    return [
        ("baseline", None, {}),
        (f"suppress thinking k={k}", "suppress", dict(words=think)),
        (f"suppress random k={k}", "suppress", dict(words=control)),
        (f"recycle l*={layer} p=0.5", "recycle", dict(layer=layer, p=0.5, seed=seed)),
        (f"recycle l*={layer} p=1", "recycle", dict(layer=layer, p=1.0, seed=seed)),
        (f"origin budget={budget}", "origin", dict(total_budget=budget)),
        (f"ttts 'Wait' budget={budget}", "ttts", dict(total_budget=budget, word="Wait")),
    ]


def main() -> None:
    """Run every arm and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="first n GSM8K test problems")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="generation length / TTTS total budget")
    ap.add_argument("--k", type=int, default=5, help="suppressed words per arm")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", default=None, help="records directory (default: a fresh temp dir)")
    ap.add_argument("--json", default=None, help="also write the table here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = load_model(EMBEDDED_MODEL)
    problems = load_problems("gsm8k", args.n)
    print(f"model {model.name} ({model.n_layers} blocks, {model.dtype}, {model.device}) "
          f"loaded in {time.perf_counter() - t0:.1f} s; {len(problems)} GSM8K problems")
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="mipeaks-smoke-")
    base = EvalConfig(dataset="gsm8k", n=args.n, prompt_style="deepseek-math", max_new_tokens=args.max_new_tokens,
                      grading="verify", seed=args.seed, batch_size=args.batch_size, out_dir=out_dir)
    rows = []
    for label, name, params in arms(model, args.k, args.max_new_tokens, args.seed):
        t = time.perf_counter()
        res = evaluate(model, problems, base, intervention=name, params=params, progress=False)
        wall = time.perf_counter() - t
        s = res.summary()
        paper = sum(is_equivalent(r["extracted"], r["gold"], mode="paper") for r in res.records)
        extra = ""
        if name == "recycle":
            extra = f"recycles {sum(r['recycles'] for r in res.records)}/{sum(r['triggers'] for r in res.records)} triggers"
        elif name in ("ttts", "origin"):
            extra = (f"reasoning {sum(r['reasoning_tokens'] for r in res.records) / res.n:.0f} tok, "
                     f"continuations {sum(r['continuations'] for r in res.records)}")
        rows.append(dict(arm=label, n=s["n"], correct=s["correct"], accuracy=s["accuracy"], ci_low=s["ci_low"],
                         ci_high=s["ci_high"], correct_paper_mode=paper, mean_tokens=s["mean_tokens"],
                         wall_s=wall, extra=extra, params=params, path=s["path"]))
    print(f"\n{'arm':30} {'acc':>5} {'95% Wilson CI':>15} {'paper':>5} {'tokens':>6} {'wall s':>7}  extra")
    for r in rows:
        print(f"{r['arm']:30} {r['correct']}/{r['n']:<3} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]{'':4} "
              f"{r['correct_paper_mode']:>3}/{r['n']:<1} {r['mean_tokens']:6.1f} {r['wall_s']:7.1f}  {r['extra']}")
    print(f"\nrecords in {out_dir}; total {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dict(model=model.describe(), rows=rows), indent=2) + "\n")


if __name__ == "__main__":
    main()
