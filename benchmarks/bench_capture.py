"""Capture throughput: the mipeaks generation core vs plain Hugging Face `generate`, same process.

Greedy decoding of the same prompt for the same number of tokens (stopping disabled), alternating
the contenders `--repeats` times; reports median tokens/s and the ratio to plain HF. Also times the
batched capture (`--batch` prompts in one left-padded batch) against the same prompts one by one.

    python benchmarks/bench_capture.py --tokens 64 --repeats 3 --batch 4 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from mipeaks.collect import generate_traces
from mipeaks.data import encode_prompt, load_problems
from mipeaks.models import EMBEDDED_MODEL, cache_dir, load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    model = load_model(EMBEDDED_MODEL)
    plain = AutoModelForCausalLM.from_pretrained(cache_dir() / "models" / EMBEDDED_MODEL, dtype=torch.float32).eval()
    problems = load_problems("gsm8k", args.batch)
    prompts = [encode_prompt(model.tokenizer, p, "raw") for p in problems]
    n = args.tokens

    def hf_generate() -> float:
        t = time.perf_counter()
        with torch.inference_mode():
            plain.generate(prompts[0][None], max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           pad_token_id=model.tokenizer.eos_token_id)
        return n / (time.perf_counter() - t)

    def core(capture: bool) -> float:
        t = time.perf_counter()
        from mipeaks.generation import generate
        generate(model, prompts[0], max_new_tokens=n, capture_layers=["last"] if capture else [], stop_ids=())
        return n / (time.perf_counter() - t)

    def bridge_generate() -> float:
        t = time.perf_counter()
        model.bridge.generate(prompts[0][None], max_new_tokens=n, do_sample=False, stop_at_eos=False, verbose=False)
        return n / (time.perf_counter() - t)

    contenders = {"HF generate (plain model, sdpa)": hf_generate,
                  "mipeaks core + capture (bridge hooks)": lambda: core(True),
                  "mipeaks core, no capture": lambda: core(False),
                  "TransformerBridge.generate": bridge_generate}
    for fn in contenders.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            rates[name].append(fn())
    base = statistics.median(rates["HF generate (plain model, sdpa)"])
    rows = []
    print(f"\n{n} greedy tokens, {args.repeats} repeats, torch threads={torch.get_num_threads()}\n")
    print("| contender | median tok/s | ratio to HF generate |\n|---|---|---|")
    for name, r in rates.items():
        med = statistics.median(r)
        rows.append({"contender": name, "tok_s": med, "ratio": med / base, "all": r})
        print(f"| {name} | {med:.2f} | {med / base:.3f} |")

    # Batched capture vs one by one, same prompts, same token count.
    def one_by_one() -> float:
        t = time.perf_counter()
        for p in prompts:
            from mipeaks.generation import generate
            generate(model, p, max_new_tokens=n, capture_layers=["last"], stop_ids=())
        return time.perf_counter() - t

    def batched() -> float:
        t = time.perf_counter()
        from mipeaks.generation import generate
        generate(model, prompts, max_new_tokens=n, capture_layers=["last"], stop_ids=())
        return time.perf_counter() - t

    seq = statistics.median(one_by_one() for _ in range(args.repeats))
    bat = statistics.median(batched() for _ in range(args.repeats))
    print(f"\nbatched capture of {args.batch} prompts x {n} tokens: one by one {seq:.2f} s, "
          f"batched {bat:.2f} s, speed-up {seq / bat:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"tokens": n, "rows": rows, "batch": args.batch, "one_by_one_s": seq, "batched_s": bat}, fh, indent=2)


if __name__ == "__main__":
    main()
