"""A separate process for tests/test_store.py: hold a writer lock, or collect and evaluate (plain or under torchrun).

    python tests/store_worker.py lock PATH
    python tests/store_worker.py run OUT [--problems 4] [--tokens 8] [--batch 2] [--what collect,eval] [--model M]
    torchrun --standalone --nproc_per_node 2 tests/store_worker.py run OUT ...

``run`` writes ``OUT/run`` (a collection run) and ``OUT/evals.jsonl`` (baseline records) with
``--model`` (a name or local directory; default: the embedded model) and the first ``--problems``
GSM8K problems.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["lock", "run"])
    parser.add_argument("path")
    parser.add_argument("--problems", type=int, default=4)  # names torchrun's parser cannot mistake for its own
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--what", default="collect,eval")
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    from pathlib import Path

    if args.mode == "lock":
        from mipeaks.store import writer_lock

        with writer_lock(args.path):
            print("locked", flush=True)
            sys.stdin.readline()
        return

    import torch

    from mipeaks.collect import CollectConfig, collect
    from mipeaks.data import load_problems
    from mipeaks.evaluate import EvalConfig, evaluate
    from mipeaks.models import EMBEDDED_MODEL, load_model

    torch.set_num_threads(1)
    out = Path(args.path)
    model = load_model(args.model or EMBEDDED_MODEL)
    problems = load_problems("gsm8k", args.problems)
    if "collect" in args.what:
        collect(model, problems, CollectConfig(model=model.name, n=args.problems, max_new_tokens=args.tokens,
                                               batch_size=args.batch), out / "run", progress=False)
    if "eval" in args.what:
        evaluate(model, problems, EvalConfig(model=model.name, n=args.problems, max_new_tokens=args.tokens,
                                             batch_size=args.batch), out_path=out / "evals.jsonl",
                 progress=False)
    print("done", flush=True)


if __name__ == "__main__":
    main()
