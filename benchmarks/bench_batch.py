"""Batch size of the CPU chapters: one baseline arm of chapters 6-8 at two batch sizes, same process.

Runs :func:`mipeaks.evaluate.evaluate` (greedy, ``deepseek-math`` prompt, the records' gold-answer
score included) on the embedded model over the same ``--n`` problems, once per batch size, each
into a fresh records directory, alternating ``--repeats`` times. Reports the median wall time per
batch size and its ratio to the first, and whether the records are equal (tokens, grades and gold
log-probabilities; timing fields excluded). On a 2-core CPU decoding is bound by streaming the
weights (about 0.5 GB per step in float32), so a batch of 40 costs far less than four of 10. Run it
on a quiet machine: the numbers are wall times.

    .venv/bin/python benchmarks/bench_batch.py                              # arith, n=40, 80 tokens, 10 vs 40
    .venv/bin/python benchmarks/bench_batch.py --n 8 --tokens 24 --batches 4 8 --json runs/bench_batch.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from mipeaks.data import load_problems
from mipeaks.evaluate import EvalConfig, evaluate
from mipeaks.models import EMBEDDED_MODEL, load_model
from mipeaks.provenance import versions

TIMING = ("seconds", "reused_prefix")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="arith")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--tokens", type=int, default=80)
    ap.add_argument("--batches", type=int, nargs="+", default=[10, 40])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CI runs two workers of one thread)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(EMBEDDED_MODEL)
    problems = load_problems(args.dataset, args.n)
    times: dict[int, list[float]] = {b: [] for b in args.batches}
    records: dict[int, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for b in args.batches:
                cfg = EvalConfig(dataset=args.dataset, n=args.n, prompt_style="deepseek-math",
                                 max_new_tokens=args.tokens, batch_size=b, out_dir=str(Path(tmp) / f"b{b}-r{rep}"))
                t = time.perf_counter()
                res = evaluate(model, problems, cfg, progress=False)
                times[b].append(time.perf_counter() - t)
                records[b] = [{k: v for k, v in r.items() if k not in TIMING} for r in res.records]
    first = args.batches[0]
    rows = []
    print(f"{args.dataset}, n={args.n}, {args.tokens} tokens, {args.threads} thread(s), {args.repeats} repeat(s)")
    print(f"{'batch size':>10}  {'median s':>9}  {'vs ' + str(first):>7}  {'correct':>7}  records equal to batch {first}")
    for b in args.batches:
        med = statistics.median(times[b])
        same = records[b] == records[first]
        correct = sum(r["correct"] for r in records[b])
        rows.append(dict(batch_size=b, median_s=med, all_s=times[b], ratio=med / statistics.median(times[first]),
                         correct=correct, records_equal=same))
        print(f"{b:>10}  {med:9.1f}  {rows[-1]['ratio']:7.2f}  {correct:>4}/{args.n}  {same}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dict(args=vars(args), rows=rows, versions=versions(),
                                                   cpu_count=os.cpu_count()), indent=2))


if __name__ == "__main__":
    main()
