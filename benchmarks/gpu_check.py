"""The one script to run when a GPU is lent: capture throughput vs plain HF `generate`, on the embedded model.

Loads the embedded SmolLM2-135M-Instruct (bfloat16 on cuda by default) twice: wrapped in the
TransformerLens bridge (mipeaks' decoding core) and as an un-bridged Hugging Face copy. For each
batch size, greedy-decodes ``--tokens`` tokens per row (stopping disabled; left-padded prompts of
different lengths), alternating the contenders ``--repeats`` times after a warm-up, and reports:

* tokens/s of ``HF generate`` (plain copy, SDPA), the core without capture, and the core capturing
  ``blocks.{last}.hook_resid_post`` every step, with the ratio to HF generate;
* tokens/s as a fraction of the memory-bandwidth bound: a decode step must read every weight once,
  so at batch ``B`` the bound is ``B * hbm_bandwidth / weight_bytes`` tokens/s (KV-cache reads
  ignored: a lower bound on the real cost, so the fraction is an upper estimate of efficiency);
* peak GPU memory (``torch.cuda.max_memory_allocated``) per contender.

``--hbm-gbs`` is the device's memory bandwidth in GB/s. Defaults: 4800 on an H200 (4.8 TB/s HBM3e),
3350 on an H100 SXM (3.35 TB/s HBM3), detected from the device name; 100 otherwise (a rough
figure for a CPU, where the fraction means little). It also runs on the CPU (``--device cpu``,
float32), which the test suite does at a tiny size.

    python benchmarks/gpu_check.py                                   # cuda, bf16, batch 1 and 16
    python benchmarks/gpu_check.py --device cpu --tokens 4 --batch-sizes 1 2 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

#: Memory bandwidth (GB/s) by device-name fragment; the first match wins.
HBM_GBS = {"H200": 4800.0, "H100": 3350.0, "A100": 2039.0}
CPU_GBS = 100.0

QUESTIONS = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. How much more money does Betty need?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
)


def default_bandwidth(device: str) -> float:
    """The documented ``--hbm-gbs`` default for ``device`` (see the module docstring)."""
    if not device.startswith("cuda"):
        return CPU_GBS
    name = torch.cuda.get_device_name(torch.device(device))
    return next((gbs for key, gbs in HBM_GBS.items() if key in name), HBM_GBS["H100"])


def prompts_for(tokenizer, batch: int) -> list[torch.Tensor]:
    """``batch`` prompts of different lengths (so that a batch is really left-padded)."""
    return [torch.tensor(tokenizer.encode(f"Question {i + 1}. {QUESTIONS[i % len(QUESTIONS)]}\nAnswer:"))
            for i in range(batch)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default=None, help="default: bfloat16 on cuda, float32 on cpu")
    ap.add_argument("--tokens", type=int, default=256, help="greedy tokens per row")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hbm-gbs", type=float, default=None,
                    help="memory bandwidth in GB/s (default: 4800 on H200, 3350 on H100, 100 on cpu)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    from transformers import AutoModelForCausalLM

    from mipeaks.generation import generate, left_pad
    from mipeaks.models import EMBEDDED_MODEL, cache_dir, load_model

    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch sees no GPU; pass --device cpu")
    dtype = args.dtype or ("bfloat16" if cuda else "float32")
    model = load_model(EMBEDDED_MODEL, device=args.device, dtype=dtype)
    plain = AutoModelForCausalLM.from_pretrained(cache_dir() / "models" / EMBEDDED_MODEL, dtype=model.dtype,
                                                 attn_implementation="sdpa").to(args.device).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in plain.parameters())
    gbs = args.hbm_gbs or default_bandwidth(args.device)
    pad = model.tokenizer.eos_token_id
    n = args.tokens

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    rows = []
    for batch in args.batch_sizes:
        prompts = prompts_for(model.tokenizer, batch)
        ids, mask = left_pad(prompts, pad)
        ids, mask = ids.to(args.device), mask.to(args.device)

        def hf() -> None:
            with torch.inference_mode():
                plain.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               pad_token_id=pad)

        def core(capture: bool) -> None:
            generate(model, prompts, max_new_tokens=n, capture_layers=["last"] if capture else [], stop_ids=())

        contenders = {"HF generate (plain, sdpa)": hf, "core, no capture": lambda: core(False),
                      "core + capture": lambda: core(True)}
        rates: dict[str, list[float]] = {k: [] for k in contenders}
        peaks: dict[str, float] = {}
        for name, fn in contenders.items():  # warm-up, and the peak memory of each
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            fn()
            sync()
            peaks[name] = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        for _ in range(args.repeats):
            for name, fn in contenders.items():
                sync()
                t = time.perf_counter()
                fn()
                sync()
                rates[name].append(batch * n / (time.perf_counter() - t))
        bound = batch * gbs * 1e9 / weight_bytes
        base = statistics.median(rates["HF generate (plain, sdpa)"])
        for name, r in rates.items():
            med = statistics.median(r)
            rows.append({"batch": batch, "contender": name, "tok_s": med, "ratio_to_hf": med / base,
                         "fraction_of_bandwidth_bound": med / bound, "peak_mem_mib": peaks[name], "all": r})

    device_name = torch.cuda.get_device_name(torch.device(args.device)) if cuda else "cpu"
    print(f"\n{EMBEDDED_MODEL}, {dtype} on {device_name}; {n} greedy tokens per row, {args.repeats} repeats, "
          f"median. Weights {weight_bytes / 2**20:.0f} MiB; bandwidth {gbs:.0f} GB/s "
          f"(bound = batch x bandwidth / weight bytes).\n")
    print("| batch | contender | tokens/s | x HF generate | fraction of bandwidth bound | peak GPU MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        peak = "-" if r["peak_mem_mib"] is None else f"{r['peak_mem_mib']:.0f}"
        print(f"| {r['batch']} | {r['contender']} | {r['tok_s']:.1f} | {r['ratio_to_hf']:.3f} | "
              f"{r['fraction_of_bandwidth_bound']:.4f} | {peak} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_name, "dtype": dtype, "tokens": n,
                                               "hbm_gbs": gbs, "weight_bytes": weight_bytes, "rows": rows},
                                              indent=2))


if __name__ == "__main__":
    main()
