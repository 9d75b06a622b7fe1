#!/usr/bin/env python
"""Write the paper-model presets ``notebooks/params/<slug>.yaml`` from one table (run after editing it).

    .venv/bin/python scripts/make_presets.py

Each preset holds the paper's settings (paper_notes.md) for one model; comments mark the source of
each value: [P] paper text, [C] official code, [ours] our choice where neither says. The CPU
smoke preset (``cpu-smoke.yaml``) is written by hand. ``tests/test_book.py`` checks that every
name exists in the chapters' parameters cells.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mipeaks.lens import PAPER_THINKING_TOKENS_R1_LLAMA_8B  # noqa: E402

# slug: (hub id, role, number of blocks, device, partner slug)
MODELS: dict[str, tuple[str, str, int, str, str | None]] = {
    "r1-qwen-7b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "reasoning", 28, "cuda", "qwen2.5-math-7b"),
    "r1-llama-8b": ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "reasoning", 32, "cuda", "llama-3.1-8b"),
    "r1-qwen-14b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B", "reasoning", 48, "cuda", "qwen2.5-14b"),
    "r1-qwen-32b": ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "reasoning", 64, "auto", "qwen2.5-32b"),
    "qwq-32b": ("Qwen/QwQ-32B", "reasoning", 64, "auto", None),
    "r1-llama-70b": ("deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "reasoning", 80, "auto", "llama-3.3-70b-instruct"),
    "qwen2.5-math-7b": ("Qwen/Qwen2.5-Math-7B", "base", 28, "cuda", "r1-qwen-7b"),
    "llama-3.1-8b": ("meta-llama/Llama-3.1-8B", "base", 32, "cuda", "r1-llama-8b"),
    "qwen2.5-14b": ("Qwen/Qwen2.5-14B", "base", 48, "cuda", "r1-qwen-14b"),
    "qwen2.5-32b": ("Qwen/Qwen2.5-32B", "base", 64, "auto", "r1-qwen-32b"),
    "llama-3.3-70b-instruct": ("meta-llama/Llama-3.3-70B-Instruct", "base", 80, "auto", "r1-llama-70b"),
}

#: The reasoning models whose pair Fig. 3 plots (the other pairs appear in Table 2 only).
FIG3_MODELS = ("r1-llama-8b", "r1-qwen-14b")

MI_CHAPTERS = ("01_mi_trajectories", "02_peak_statistics", "03_reasoning_vs_base", "04_thinking_tokens",
               "09_what_hsic_measures")


def rr_layer(slug: str, n_blocks: int) -> tuple[int, str]:
    """ℓ* for Representation Recycling: 23 for R1-Llama-8B [C]; elsewhere the same relative depth."""
    if slug == "r1-llama-8b":
        return 23, "[C] run_RR.sh: 23 (0-based, of 32)"
    layer = round(23 / 31 * (n_blocks - 1))
    return layer, f"[ours] same relative depth as the code's 23 of 32 ({n_blocks} blocks); not published"


def render(slug: str) -> str:
    model, role, n_blocks, device, partner = MODELS[slug]
    short = model.split("/")[-1]
    layer, layer_note = rr_layer(slug, n_blocks)
    partner_line = f"  Paired with preset {partner}." if partner else ""
    lines = [
        f"# {short}: the paper's settings. Run: make reproduce PRESET={slug}",
        f"# Role in the paper: {role} model.{partner_line}",
        "# Sources: [P] paper text, [C] official code (ChnQ/MI-Peaks @ bcee82c), [ours] where neither says.",
        "# shared: applied to every chapter that has the parameter; notebooks: per chapter (file stem).",
        f'description: "{short}, the paper\'s settings (MATH train, 100 sampled, raw prompt, 512 tokens; bfloat16)"',
        "shared:",
        f"  model: {model}",
        "  dtype: bfloat16  # [C] ran float32 (no torch_dtype); bfloat16 halves memory. float32 matches the code.",
        f"  device: {device}  # [P] 4xA100; 'auto' spreads 32B-70B models over the visible GPUs",
        "notebooks:",
    ]
    mi = [
        "    dataset: math-train  # [P] MATH train, 12k problems ([ours] nlile/hendrycks-MATH-benchmark train; "
        "[C] math_train_12k.csv, not public: set data_path to it)",
        "    n: 100  # [P] 100 problems",
        "    sample: random  # [P] \"randomly sampled\" ([C] the first 100 rows of its CSV: sample: first)",
        "    sample_seed: 0  # [ours] the paper gives no seed",
        "    prompt_style: raw  # [C] raw problem text, no chat template (MI-Peaks issue #3)",
        "    layer: last  # [P] last layer ([C] the last block's output, before the final norm)",
        "    max_new_tokens: 512  # [C] greedy, 512 new tokens",
        "    gold: solution  # [C] last-token state of the whole gold solution (issue #4)",
        "    batch_size: 1  # [C]",
        "    estimator: hsic_paper  # [C] hsic_normalized_cca (exact evaluation)",
        "    sigma: 50.0  # [C]",
        "    peak_rule: iqr  # [P] Q3 + 1.5 IQR ([C] notebook: topk with top_k 20)",
        "    tau: 1.5  # [P]",
        "    top_k: 20  # [C]",
        "    token_mode: generated  # [C] the generated token ([P] logit lens: lens)",
        "    pool_whitespace: true  # [C] the jsonl list pools ' So' and 'So'",
    ]
    lines.append(f"  {MI_CHAPTERS[0]}: &mi")
    lines += mi
    for chapter in MI_CHAPTERS[1:]:
        if chapter == "04_thinking_tokens":
            # Fig. 4 is the official notebook's figure: top-20 steps per trace, tokens counted unstripped.
            lines += [f"  {chapter}:", "    <<: *mi",
                      "    peak_rule: topk  # [C] Fig. 4 counts the notebook's top-20 MI steps per trace",
                      "    pool_whitespace: false  # [C] the notebook counts ' So' and 'So' as separate bars"]
            continue
        if chapter != "03_reasoning_vs_base":
            lines.append(f"  {chapter}: *mi")
            continue
        lines += [f"  {chapter}:", "    <<: *mi",
                  "    contrast_layer: null  # [ours] the second-layer contrast is not in the paper: skipped"]
        pair = slug if role == "reasoning" else partner
        figure = "Fig. 3 and Table 2 pair" if pair in FIG3_MODELS else "Table 2 pair (Fig. 3 shows only R1-Llama-8B and R1-Qwen-14B)"
        if role == "reasoning":
            base = MODELS[partner][0] if partner else "Qwen/Qwen2.5-32B"
            why = f"[P] {figure}" if partner else "[ours] QwQ-32B is built on Qwen2.5-32B; no pair in the paper"
            lines.append(f"    base_model: {base}  # {why}")
        else:
            lines += [f"    model: {MODELS[partner][0]}  # the reasoning model of the pair (this chapter compares both)",
                      f"    base_model: {model}  # [P] {figure}"]
    words = ", ".join(["So", "Let", "Hmm", "I", "The", "Okay", "That", "First", "Now", "Wait"])
    ttts_words = ", ".join(w for w, _ in PAPER_THINKING_TOKENS_R1_LLAMA_8B if w.isalpha())
    lines += [
        "  06_suppression:",
        "    datasets: [gsm8k, math500, aime24]  # [P] Fig. 5's three panels",
        "    n: null  # [P] the whole benchmark",
        "    prompt_style: deepseek-math  # [C] the evaluation harness's prompt, no chat template",
        "    max_new_tokens: 8192  # [ours] not published",
        "    grading: paper  # [C] the harness's math_equal",
        "    extraction: harness  # [C] the harness's answer extraction order",
        "    intervention: suppress",
        "    params: {case_sensitive: false}  # [ours] mask every case and whitespace variant of a word",
        "    seed: 0  # [ours] seed of the random control words",
        "    batch_size: 8  # [ours] left-padded batches; 1 decodes one problem at a time",
        "    ks: [0, 2, 4, 6, 8, 10]  # [P] Fig. 5's x-axis runs to about 10",
        "    thinking_list: paper  # [ours] the official R1-Llama-8B list's words; or chapter 4's exported jsonl",
        "  07_recycling:",
        "    datasets: [gsm8k, math500, aime24]  # [P] Fig. 6's three panels ([C] run_RR.sh: aime24)",
        "    n: null  # [P] the whole benchmark (AIME24: 30 problems)",
        "    prompt_style: deepseek-math  # [C]",
        "    max_new_tokens: 16000  # [C] run_RR.sh (its AIME24 run; [ours] the same for GSM8K and MATH500)",
        "    grading: paper  # [C]",
        "    extraction: harness  # [C]",
        "    intervention: recycle",
        f"    params: {{layer: {layer}, words: [{words}], p: 0.5}}  # layer: {layer_note}; words, p: [C]",
        "    seed: 0  # [C] run_RR.sh",
        "    batch_size: 8  # [ours] the code decodes one at a time; each row's coin is its own, so batches equal batch 1",
        "  08_ttts:",
        "    datasets: [gsm8k, math500, aime24]  # [P] Fig. 7's three panels",
        "    n: null  # [P] the whole benchmark",
        "    prompt_style: deepseek-math  # [C]",
        "    max_new_tokens: 12288  # [P] the largest budget of the AIME24 panel",
        "    budgets:  # [P] Fig. 7's x-axes (read from the figure), one per benchmark",
        "      gsm8k: [256, 512, 1024, 1536, 2048, 2560]",
        "      math500: [512, 1024, 2048, 3072, 4096, 5120]",
        "      aime24: [3072, 4096, 6144, 8192, 10240, 12288]",
        f"    words: [{ttts_words}]  # [C] every alphabetic word of the jsonl, one experiment each",
        "    grading: paper  # [C]",
        "    extraction: harness  # [C]",
        "    intervention: ttts",
        "    params: {recipe: official, base_tokens: 4096, answer_tokens: 16}  # [C] TTTS_evaluate.py: base of 4096, "
        "one continuation of the budget, 16 answer tokens",
        "    seed: 0",
        "    batch_size: 8  # [ours] one KV cache per batch; rows continue, append words and stop on their own",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    for slug in MODELS:
        path = ROOT / "notebooks" / "params" / f"{slug}.yaml"
        path.write_text(render(slug))
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
