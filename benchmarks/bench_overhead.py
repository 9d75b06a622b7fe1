"""Per-token framework overhead and teacher-forced memory: a thin-deep PROXY, not a real model.

Part 1, per-token overhead (a proxy for a launch-bound GPU decode at batch 1): random Llama
models with hidden size 64 and 32 or 80 layers, whose compute is negligible, so that time per
token is the framework's Python cost. Side by side in one process, alternating, ``--repeats``
times, stopping disabled:

* ``HF generate``: plain ``transformers`` ``generate`` on an un-bridged copy of the same weights (SDPA);
* ``core``: :func:`mipeaks.generation.generate` without capture;
* ``core + capture``: the same, capturing ``blocks.{last}.hook_resid_post`` every step;
* ``core, bridged (before)``: the core with every bridge component kept (the pre-unbridged loop);

plus the embedded SmolLM2-135M (capture vs HF generate), a real model on this CPU.

Part 2, peak memory of one teacher-forced pass (each size in a fresh subprocess; peak RSS minus
the RSS after loading): a random 4-layer, 32-head thin Llama at L = 512, 2048, 4096, 8192, with
the bridged eager full pass (before) and :func:`mipeaks.forcing.teacher_force` (after).

    python benchmarks/bench_overhead.py --tokens 48 --repeats 3
    python benchmarks/bench_overhead.py --skip-overhead --lengths 512 2048 4096 8192
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

PROXY = "thin-deep PROXY (random Llama, hidden 64; time = per-token framework overhead)"


def thin_llama(n_layers: int, *, heads: int = 4, hidden: int = 64, seed: int = 0, max_pos: int = 16384):
    """A random thin Llama wrapped in a bridge, and an untouched HF copy of the same weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from mipeaks.models import EMBEDDED_MODEL, cache_dir, wrap_model

    tok_dir = cache_dir() / "models" / EMBEDDED_MODEL
    tok = AutoTokenizer.from_pretrained(tok_dir)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=n_layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=max_pos, tie_word_embeddings=False,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").float().eval()
    plain = copy.deepcopy(hf)
    return wrap_model(hf, tok, name=f"thin-{n_layers}", source="random init"), plain


def _bridged(model):
    """A context that keeps every bridge component (the loop as it was before ``unbridged``)."""
    from contextlib import contextmanager

    @contextmanager
    def everything(**_):
        yield model

    return everything


def time_contenders(model, plain, prompt: torch.Tensor, tokens: int, repeats: int) -> dict[str, float]:
    """Median ms/token of each contender, alternating them ``repeats`` times after a warm-up."""
    from mipeaks.generation import generate

    pad = model.tokenizer.eos_token_id

    def hf() -> None:
        with torch.inference_mode():
            plain.generate(prompt[None], attention_mask=torch.ones_like(prompt)[None], max_new_tokens=tokens,
                           min_new_tokens=tokens, do_sample=False, pad_token_id=pad)

    def core(capture: bool) -> None:
        generate(model, prompt, max_new_tokens=tokens, capture_layers=["last"] if capture else [], stop_ids=())

    def bridged() -> None:
        original = type(model).unbridged
        type(model).unbridged = lambda self, **kw: _bridged(self)()
        try:
            core(True)
        finally:
            type(model).unbridged = original

    contenders = {"HF generate (plain copy, sdpa)": hf, "core, no capture": lambda: core(False),
                  "core + capture": lambda: core(True), "core + capture, all bridged (before)": bridged}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for fn in contenders.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in contenders.items():
            t = time.perf_counter()
            fn()
            times[name].append(1000 * (time.perf_counter() - t) / tokens)
    return {k: statistics.median(v) for k, v in times.items()}


def overhead(args) -> dict:
    """Part 1: the thin-deep proxy at each depth, then SmolLM2-135M."""
    results = {}
    for n_layers in args.layers:
        model, plain = thin_llama(n_layers)
        prompt = torch.tensor(model.tokenizer.encode("Natalia sold clips to 48 of her friends in April."))
        results[f"proxy, {n_layers} layers"] = time_contenders(model, plain, prompt, args.tokens, args.repeats)
    if not args.skip_embedded:
        from transformers import AutoModelForCausalLM

        from mipeaks.models import EMBEDDED_MODEL, cache_dir, load_model

        model = load_model(EMBEDDED_MODEL)
        plain = AutoModelForCausalLM.from_pretrained(cache_dir() / "models" / EMBEDDED_MODEL,
                                                     dtype=torch.float32).eval()
        prompt = torch.tensor(model.tokenizer.encode("Natalia sold clips to 48 of her friends in April."))
        results["SmolLM2-135M (real model)"] = time_contenders(model, plain, prompt, args.embedded_tokens,
                                                               args.repeats)
    return results


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(length: int, mode: str) -> None:
    """One teacher-forced pass of ``length`` tokens; prints the peak-RSS growth (MB) as JSON.

    The peak is the kernel's high-water mark ``VmHWM``, reset just before the pass (Linux
    ``/proc/self/clear_refs``), minus ``VmRSS`` at that moment.
    """
    torch.set_num_threads(1)
    model, plain = thin_llama(4, heads=32)
    del plain
    ids = torch.randint(0, len(model.tokenizer), (length,))
    from mipeaks.forcing import teacher_force

    teacher_force(model, ids[:16], layers=["last"], last_logits=1)  # warm-up
    if mode == "before":  # the bridged eager full pass, as gold_logprob / teacher_forced_states were
        model.hf_model.config._attn_implementation = "eager"
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    base = _status_mb("VmRSS")
    with torch.inference_mode():
        if mode == "before":
            store = {}
            with model.bridge.hooks(fwd_hooks=[(model.hook_name("last"), lambda r, hook: store.setdefault("h", r))]):
                model.hf_model(input_ids=ids[None], use_cache=False, logits_to_keep=1)
        else:
            teacher_force(model, ids, layers=["last"], last_logits=1)
    print(json.dumps({"length": length, "mode": mode, "added_mb": _status_mb("VmHWM") - base}))


def memory(args) -> list[dict]:
    """Part 2: each (length, mode) in a fresh subprocess."""
    rows = []
    for length in args.lengths:
        for mode in ("before", "after"):
            if mode == "before" and length > args.max_before:
                rows.append({"length": length, "mode": mode, "added_mb": None})
                continue
            out = subprocess.run([sys.executable, __file__, "--memory-child", str(length), mode],
                                 capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if out.returncode != 0:
                rows.append({"length": length, "mode": mode, "added_mb": None, "error": out.stderr[-300:]})
            else:
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[32, 80])
    ap.add_argument("--tokens", type=int, default=48, help="tokens per timed generation (proxy)")
    ap.add_argument("--embedded-tokens", type=int, default=32, help="tokens per timed generation (SmolLM2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 4096, 8192])
    ap.add_argument("--max-before", type=int, default=4096, help="longest L for the eager baseline (it is O(L^2))")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--memory-child", nargs=2, metavar=("LENGTH", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return
    report: dict = {"torch_threads": torch.get_num_threads()}
    if not args.skip_overhead:
        report["overhead_ms_per_token"] = overhead(args)
        print(f"\nPer-token cost, {PROXY}; {args.tokens} tokens, {args.repeats} repeats, median\n")
        names = list(next(iter(report["overhead_ms_per_token"].values())))
        print("| model | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for model, row in report["overhead_ms_per_token"].items():
            base = row[names[0]]
            cells = [f"{row[n]:.2f} ms ({row[n] / base:.2f}x)" for n in names]
            print(f"| {model} | " + " | ".join(cells) + " |")
    if not args.skip_memory:
        report["teacher_forced_peak_rss_mb"] = memory(args)
        print("\nPeak RSS added by one teacher-forced pass, random 4-layer 32-head thin Llama (PROXY), "
              "fresh subprocess per cell\n")
        print("| L | before: bridged eager full pass | after: teacher_force (SDPA, chunks of 512) |\n|---|---|---|")
        by = {(r["length"], r["mode"]): r for r in report["teacher_forced_peak_rss_mb"]}
        for length in args.lengths:
            cell = lambda m: ("not run" if by[(length, m)]["added_mb"] is None  # noqa: E731
                              else f"{by[(length, m)]['added_mb']:.0f} MB")
            print(f"| {length} | {cell('before')} | {cell('after')} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
