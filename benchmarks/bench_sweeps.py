"""Forward calls of the sweeps that share the greedy prefix (issue 9 point 3), on the embedded model.

Counts calls of the Hugging Face model's forward (a pre-hook on ``model.hf_model``): every decoding
step, prefill and teacher-forced pass (the records' gold-answer score) is one call, whatever the
batch size. Wall time on a shared CPU says nothing, so none is reported.

* TTTS: a 4-budget sweep (Origin and TTTS at each budget) against the largest budget alone (both
  methods), and against decoding every budget from scratch (what the sweep cost before).
* Suppression: per arm of a Fig. 5 sweep, the calls an arm costs when read off the baseline,
  the problems it had to decode, against the baseline's own cost (an arm from scratch).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_sweeps.py                   # GSM8K, n=8, budgets 32..128
    .venv/bin/python benchmarks/bench_sweeps.py --n 4 --budgets 16 32 48 64 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mipeaks.data import load_problems
from mipeaks.evaluate import SuppressionSweepConfig, TTTSSweepConfig, evaluate, ttts_sweep
from mipeaks.models import EMBEDDED_MODEL, count_forward_calls, load_model
from mipeaks.suppression import random_control_words, thinking_words


def ttts_counts(model, problems, budgets, answer_tokens, batch_size, out: Path) -> dict:
    """Forward calls: the sweep, the largest budget alone, every budget from scratch."""
    cfg = TTTSSweepConfig(max_new_tokens=max(budgets), budgets=tuple(budgets), batch_size=batch_size,
                          params={"answer_tokens": answer_tokens}, out_dir=str(out / "sweep"))
    with count_forward_calls(model) as sweep:
        ttts_sweep(model, problems, cfg, progress=False)

    def alone(budget, where):
        n = 0
        for method in ("origin", "ttts"):
            c = cfg.eval_config(intervention=method, out_dir=str(out / where),
                                params={"answer_tokens": answer_tokens, "total_budget": budget})
            with count_forward_calls(model) as calls:
                evaluate(model, problems, c, progress=False)
            n += calls[0]
        return n

    top = alone(max(budgets), "top")
    scratch = sum(alone(b, f"scratch-{b}") for b in budgets)
    return dict(sweep=sweep[0], largest_alone=top, from_scratch=scratch,
                sweep_over_largest=sweep[0] / top, scratch_over_largest=scratch / top)


def suppression_counts(model, problems, ks, max_new_tokens, batch_size, out: Path) -> list[dict]:
    """Forward calls of each arm read off the baseline, and of the baseline itself."""
    cfg = SuppressionSweepConfig(max_new_tokens=max_new_tokens, ks=tuple(ks), batch_size=batch_size,
                                 out_dir=str(out / "supp"))
    tokens = cfg.thinking_tokens()
    exclude = [str(getattr(t, "word", t)) for t in tokens]
    arms = {"thinking": thinking_words(tokens, max(ks)),
            "random": random_control_words(model, max(ks), cfg.seed, exclude=exclude)}
    with count_forward_calls(model) as calls:
        base = evaluate(model, problems, cfg.eval_config(intervention=None, params={}), progress=False)
    rows = [dict(arm="baseline (= an arm from scratch)", k=0, calls=calls[0], decoded=len(problems))]
    for k in ks:
        for arm, words in arms.items():
            if k == 0:
                continue
            with count_forward_calls(model) as calls:
                res = evaluate(model, problems, cfg.eval_config(params={"words": words[:k]}), reuse=base,
                               progress=False)
            decoded = sum(r["reused_prefix"]["tokens"] < len(r["output_ids"]) for r in res.records)
            rows.append(dict(arm=arm, k=k, words=" ".join(words[:k]), calls=calls[0], decoded=decoded))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="gsm8k")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--budgets", type=int, nargs="+", default=[32, 64, 96, 128])
    parser.add_argument("--answer-tokens", type=int, default=16)
    parser.add_argument("--ks", type=int, nargs="+", default=[0, 2, 5, 10])
    parser.add_argument("--max-new-tokens", type=int, default=64, help="suppression sweep generation length")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    model = load_model(EMBEDDED_MODEL)
    problems = load_problems(args.dataset, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        ttts = ttts_counts(model, problems, args.budgets, args.answer_tokens, args.batch_size, Path(tmp))
        supp = suppression_counts(model, problems, args.ks, args.max_new_tokens, args.batch_size, Path(tmp))
    print(f"TTTS sweep, {args.dataset} n={args.n}, budgets {args.budgets}, answer {args.answer_tokens} tokens, "
          f"batch {args.batch_size} (forward calls)")
    print(f"  sweep (reads budgets off the largest)   {ttts['sweep']:6d}  = {ttts['sweep_over_largest']:.2f}x")
    print(f"  largest budget alone (Origin + TTTS)    {ttts['largest_alone']:6d}  = 1.00x")
    print(f"  every budget from scratch (before)      {ttts['from_scratch']:6d}  = {ttts['scratch_over_largest']:.2f}x")
    print(f"\nSuppression sweep, max_new_tokens {args.max_new_tokens} (forward calls per arm read off the baseline)")
    print(f"  {'arm':34s} {'k':>3s} {'calls':>6s} {'decoded':>8s}  words")
    for row in supp:
        print(f"  {row['arm']:34s} {row['k']:3d} {row['calls']:6d} {row['decoded']:5d}/{args.n}  "
              f"{row.get('words', '')}")
    if args.json:
        args.json.write_text(json.dumps(dict(args={k: str(v) for k, v in vars(args).items()}, ttts=ttts,
                                             suppression=supp), indent=2) + "\n")


if __name__ == "__main__":
    main()
