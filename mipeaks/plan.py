"""What a preset will cost before renting GPUs for it: ``mipeaks plan PRESET`` (offline).

For every chapter of a preset (``notebooks/params/<PRESET>.yaml``, resolved per chapter by
:func:`mipeaks.book.preset_parameters`) the plan checks the layers against the model (the captured
``layer``, chapter 3's ``contrast_layer`` and the RR layer ``params.layer``; a layer the model does
not have is a one-line :class:`PlanError`) and prints, per model the chapter runs:

* **generated tokens**: problems × ``max_new_tokens`` × arms, an upper bound (every problem runs to
  its cap; early stops make the real figure smaller). Chapters 2, 4 and 9 reuse chapter 1's trace
  collection when their collection settings are the same, and then generate nothing. Chapters 6-8
  sweep benchmarks (``datasets``): one row per benchmark, its ``n`` (``null``: the benchmark's size)
  and, for TTTS, its own ``budgets``. The TTTS sweep is charged with its prefix reuse
  (:func:`_ttts_job`): one full run per word at the largest budget (``recipe: official``: plus the
  ``base_tokens`` base), only the answer tokens at the smaller budgets.
* **teacher-forced tokens**: tokens read without generating: chapter 1's gold solutions
  (:data:`GOLD_TOKENS` each), chapter 3's contrast-layer pass over prompt + generation, and the
  evaluation chapters' gold-answer score (:func:`mipeaks.evaluate.gold_logprob`, prompt +
  reasoning + answer, once per record).
* **weights** (parameters × bytes of the preset's ``dtype``) and the **KV cache** at the longest
  context of a batch: ``2 × layers × kv_heads × head_dim × bytes × (prompt + max_new_tokens) × batch``.
* **devices** of :data:`DEVICE_BYTES` (80 GiB) needed for weights + KV, using :data:`USABLE`
  of each (the rest: CUDA context, activations, allocator slack).
* **GPU-hours** from this cost model:

  - one decode step of a batch reads every weight once and the batch's KV cache, and greedy
    decoding at these batch sizes is bound by memory bandwidth, so
    ``t_step = (weights + KV at the mean context) / bandwidth + overhead``; the mean context is
    ``prompt + max_new_tokens / 2``;
  - ``overhead`` is the framework's fixed cost per step: :data:`OVERHEAD_S_PER_LAYER` per block.
    It is the figure measured on this project's machines for the TransformerLens bridge on a thin
    32-layer Llama, where compute is negligible (26 ms per token, i.e. 0.81 ms per block per step;
    plain Hugging Face ``generate``: 11 ms), the launch-bound floor of a small-batch GPU decode.
    Pass ``overhead_ms`` (``--overhead-ms``, milliseconds per step for the whole model) to use a
    figure measured on your GPU instead;
  - steps = ⌈problems / batch⌉ × ``max_new_tokens`` per arm (a batch runs until its longest
    member stops); RR arms add a recomputed forward pass on ``p`` × :data:`TRIGGER_RATE` of the
    steps;
  - teacher-forced tokens and prompt prefill are compute-bound:
    ``2 × parameters × tokens / (peak bf16 FLOP/s × MFU)`` with :data:`MFU` = 0.4;
  - a model spread over k devices by ``device="auto"`` (accelerate's sequential dispatch) runs its
    blocks one device after the other, so the step time is the single-device figure while k devices
    are held: GPU-hours = hours × k.

  Bandwidth and peak FLOP/s (dense bf16) by ``gpu``: ``a100-80gb`` (the paper's 4×A100) 2.039 TB/s,
  312 TFLOP/s; ``h100-80gb`` (SXM) 3.35 TB/s, 989 TFLOP/s: the vendors' data sheets.

Prompt and gold-solution lengths are not in the presets; the plan assumes :data:`PROMPT_TOKENS`
and :data:`GOLD_TOKENS` per problem (generous for GSM8K, MATH and AIME). The figures are
estimates for budgeting, not measurements: compare them with a real run's provenance wall time.

The architecture numbers come from ``mipeaks/architectures.json`` (each model's public
``config.json``); a preset naming a local model directory is read from its own ``config.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "DEVICE_BYTES",
    "GOLD_TOKENS",
    "GPUS",
    "MFU",
    "OVERHEAD_S_PER_LAYER",
    "PROMPT_TOKENS",
    "TRIGGER_RATE",
    "USABLE",
    "Architecture",
    "GPU",
    "PlanError",
    "architecture",
    "architectures",
    "book_tables",
    "chapters",
    "format_plan",
    "main",
    "plan",
    "presets",
]

PROMPT_TOKENS = 256  # [ours] assumed prompt length (question + template), tokens
GOLD_TOKENS = 512  # [ours] assumed gold-solution length, tokens
TRIGGER_RATE = 0.05  # [ours] assumed share of generated tokens that are RR trigger words
MFU = 0.4  # [ours] assumed model-FLOP utilisation of teacher-forced passes
DEVICE_BYTES = 80 * 2**30  # an 80 GB A100/H100
USABLE = 0.9  # share of a device's memory given to weights + KV
OVERHEAD_S_PER_LAYER = 0.026 / 32  # measured: bridge, thin 32-layer Llama, 26 ms per token (module docstring)
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


class PlanError(ValueError):
    """A preset cannot be planned: unknown model, a layer the model lacks, or a bad value."""


@dataclasses.dataclass(frozen=True)
class GPU:
    """A GPU of the cost model.

    Attributes:
        name: its key in :data:`GPUS`.
        bandwidth: HBM bandwidth, bytes/s.
        flops: dense bf16 peak, FLOP/s.
    """

    name: str
    bandwidth: float
    flops: float


GPUS: dict[str, GPU] = {
    "a100-80gb": GPU("a100-80gb", 2.039e12, 312e12),
    "h100-80gb": GPU("h100-80gb", 3.35e12, 989e12),
}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """The numbers of a decoder-only transformer that size its memory and cost (a ``config.json`` subset).

    Attributes:
        name: hub id (or local path) of the model.
        architecture: the ``transformers`` class name.
        layers: decoder blocks.
        d_model: residual-stream width.
        heads: query heads.
        kv_heads: key/value heads (grouped-query attention).
        d_mlp: MLP width.
        vocab: vocabulary size.
        context: ``max_position_embeddings``.
        tied: input and output embeddings share weights.
        qkv_bias: q/k/v projections have a bias (Qwen2).
        params: published parameter count (None: unknown, use :meth:`n_params`).
        source: where the numbers come from.
    """

    name: str
    architecture: str
    layers: int
    d_model: int
    heads: int
    kv_heads: int
    d_mlp: int
    vocab: int
    context: int
    tied: bool = False
    qkv_bias: bool = False
    params: float | None = None
    source: str = ""

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.d_model // self.heads

    def n_params(self) -> int:
        """Parameters implied by the architecture (Llama/Qwen2 layout: gated MLP, RMSNorm, no other biases)."""
        kv = self.kv_heads * self.head_dim
        attn = 2 * self.d_model * self.d_model + 2 * self.d_model * kv
        attn += (self.d_model + 2 * kv) if self.qkv_bias else 0
        block = attn + 3 * self.d_model * self.d_mlp + 2 * self.d_model
        embed = self.vocab * self.d_model * (1 if self.tied else 2)
        return self.layers * block + embed + self.d_model

    def kv_bytes_per_token(self, dtype: str) -> int:
        """KV-cache bytes one token of one sequence takes: ``2 × layers × kv_heads × head_dim × bytes``."""
        return 2 * self.layers * self.kv_heads * self.head_dim * _dtype_bytes(dtype)

    def weight_bytes(self, dtype: str) -> int:
        """Bytes of the weights in ``dtype``."""
        return self.n_params() * _dtype_bytes(dtype)


def _dtype_bytes(dtype: str) -> int:
    key = str(dtype).removeprefix("torch.")
    if key not in _BYTES:
        raise PlanError(f"dtype {dtype!r} is not one of {sorted(_BYTES)}")
    return _BYTES[key]


@lru_cache(maxsize=1)
def architectures() -> dict[str, Architecture]:
    """Every shipped architecture, by model name (``mipeaks/architectures.json``)."""
    data = json.loads(resources.files("mipeaks").joinpath("architectures.json").read_text(encoding="utf-8"))
    return {name: Architecture(name=name, **spec) for name, spec in data["models"].items()}


def architecture(model: str) -> Architecture:
    """The architecture of ``model``: a shipped entry, or a local directory's ``config.json``.

    Raises:
        PlanError: the model is neither shipped nor a local directory with a ``config.json``.
    """
    table = architectures()
    if model in table:
        return table[model]
    config = Path(model).expanduser() / "config.json"
    if config.is_file():
        c = json.loads(config.read_text(encoding="utf-8"))
        try:
            return Architecture(
                name=model, architecture=(c.get("architectures") or ["?"])[0],
                layers=c["num_hidden_layers"], d_model=c["hidden_size"], heads=c["num_attention_heads"],
                kv_heads=c.get("num_key_value_heads") or c["num_attention_heads"], d_mlp=c["intermediate_size"],
                vocab=c["vocab_size"], context=c.get("max_position_embeddings") or 0,
                tied=bool(c.get("tie_word_embeddings", False)),
                qkv_bias=bool(c.get("attention_bias", c.get("model_type") == "qwen2")), source=str(config))
        except KeyError as err:
            raise PlanError(f"{config} lacks {err.args[0]!r}: not a Llama/Qwen2-style config") from None
    raise PlanError(f"no architecture for model {model!r}: use one of {sorted(table)} or a local model directory")


def presets() -> list[str]:
    """The preset slugs in ``notebooks/params/``."""
    from mipeaks.book import NOTEBOOK_DIR

    return sorted(p.stem for p in (NOTEBOOK_DIR / "params").glob("*.yaml"))


def chapters() -> list[str]:
    """The chapter stems (``notebooks/NN_*.py``), in order."""
    from mipeaks.book import NOTEBOOK_DIR

    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


@lru_cache(maxsize=None)
def _defaults(stem: str) -> dict[str, Any]:
    """A chapter's own parameter values (what a preset does not set), read once per process."""
    from mipeaks.book import NOTEBOOK_DIR, notebook_parameters

    return notebook_parameters(NOTEBOOK_DIR / f"{stem}.py")


def _resolve_layer(layer: Any, arch: Architecture, where: str) -> int:
    """A layer value of a preset as a block index, or a one-line PlanError."""
    n = arch.layers
    value = layer
    if isinstance(value, str):
        key = value.strip().lower()
        if key == "last":
            return n - 1
        if key == "middle":
            return n // 2
        try:
            value = int(key)
        except ValueError:
            raise PlanError(f"{where}: layer {layer!r} is not an int, 'last' or 'middle'") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlanError(f"{where}: layer {layer!r} is not an int, 'last' or 'middle'")
    index = value + n if value < 0 else value
    if not 0 <= index < n:
        raise PlanError(f"{where}: layer {layer} does not exist in {arch.name}, which has {n} blocks "
                        f"(use 0..{n - 1} or -{n}..-1)")
    return index


def _n_problems(params: Mapping[str, Any], where: str) -> int:
    from mipeaks.data import DATASETS

    n = params.get("n")
    if n is not None:
        return int(n)
    spec = DATASETS.get(str(params.get("dataset")))
    if spec is None or spec.size is None:
        raise PlanError(f"{where}: n is null and the size of dataset {params.get('dataset')!r} is not known; set n")
    return int(spec.size)


@dataclasses.dataclass
class _Job:
    """One model's work in one chapter."""

    chapter: str
    model: str
    dtype: str
    problems: int = 0
    arms: int = 0
    batch: int = 1
    longest: int = 0  # most tokens one sequence generates
    generated: int = 0  # upper bound on generated tokens over all arms
    steps: int = 0  # decode steps over all arms
    teacher_forced: int = 0
    recompute: float = 0.0  # extra decode steps as a share of ``steps`` (RR)
    layers: str = ""
    device: str = ""
    note: str = ""


def _chapter_jobs(stem: str, p: Mapping[str, Any], seen: dict[tuple, str], where: str) -> list[_Job]:
    """The jobs of one chapter from its resolved parameters (``seen``: collections already paid for)."""
    jobs = _jobs(stem, p, seen, where)
    for job in jobs:
        job.device = str(p.get("device", ""))
    return jobs


def _ttts_job(stem: str, model: str, dtype: str, p: Mapping[str, Any], n: int, batch: int) -> _Job:
    """One benchmark of the TTTS sweep, with the prefix reuse of :func:`mipeaks.evaluate.ttts_sweep`.

    Each word decodes one full run at the largest budget (``recipe="official"``: a base of
    ``base_tokens``, the word, one continuation of the budget; ``"budget"``: the budget), then the
    answer; every smaller budget is read off it and decodes only its ``answer_tokens``. Origin
    decodes a full run at the largest budget only when ``base_tokens`` is set (else its reasoning
    is TTTS's base segment), and the answer at every budget. Every record is teacher-forced once
    for the gold-answer score (prompt + reasoning).
    """
    params = dict(p.get("params") or {})
    answer = int(params.get("answer_tokens", 16))
    budgets = p["budgets"][p["dataset"]] if isinstance(p["budgets"], Mapping) else p["budgets"]
    budgets = [int(b) for b in budgets]
    words = list(p.get("words") or ["Wait"])
    base = int(params["base_tokens"]) if params.get("recipe") == "official" else 0
    top, W, B = max(budgets), len(words), len(budgets)
    origin_full = params.get("base_tokens") is not None
    per_problem = (W * (base + top + answer) + W * (B - 1) * answer
                   + (top + answer if origin_full else answer) + (B - 1) * answer)
    teacher = n * (B * (1 + W) * PROMPT_TOKENS + W * sum(base + b for b in budgets) + sum(budgets))
    return _Job(stem, model, dtype, problems=n, arms=(1 + W) * B, batch=batch, longest=base + top + answer,
                generated=n * per_problem, steps=math.ceil(n / batch) * per_problem, teacher_forced=teacher,
                note=f"budgets {budgets}; {W} word{'s' if W != 1 else ''}" + (f"; base {base}" if base else ""))


def _jobs(stem: str, p: Mapping[str, Any], seen: dict[tuple, str], where: str) -> list[_Job]:
    """What each kind of chapter runs (MI collection, suppression sweep, TTTS sweep, RR arms, one arm)."""
    if "model" not in p:
        return [_Job(stem, "", "", note="no model")]
    model, dtype = str(p["model"]), str(p.get("dtype", "float32"))
    arch = architecture(model)
    n = _n_problems(p, where) if "datasets" not in p else 0
    batch = int(p.get("batch_size", 1))
    T = int(p["max_new_tokens"])
    jobs: list[_Job] = []
    if "layer" in p:  # an MI chapter: one trace collection (shared between chapters with equal settings)
        checked = [f"layer {_resolve_layer(p['layer'], arch, where)}"]
        collect_keys = ("model", "dataset", "n", "prompt_style", "layer", "max_new_tokens", "gold",
                        "batch_size", "dtype", "data_path", "sample", "sample_seed")
        models = [model] + ([str(p["base_model"])] if p.get("base_model") else [])
        for i, name in enumerate(models):
            a = architecture(name)
            if i:
                checked = [f"layer {_resolve_layer(p['layer'], a, where + ' (base_model)')}"]
            elif p.get("contrast_layer") is not None:
                checked.append(f"contrast {_resolve_layer(p['contrast_layer'], a, where + ' contrast_layer')}")
            key = tuple(str(p.get(k)) for k in collect_keys if k != "model") + (name,)
            job = _Job(stem, name, dtype, problems=n, arms=1, batch=batch, longest=T, layers="; ".join(checked))
            if key in seen:
                job.arms, job.note = 0, f"reuses the traces of {seen[key]}"
            else:
                seen[key] = stem
                job.steps, job.generated = math.ceil(n / batch) * T, n * T
                job.teacher_forced = n * GOLD_TOKENS
            if i == 0 and p.get("contrast_layer") is not None:
                job.teacher_forced += n * (PROMPT_TOKENS + T)
            jobs.append(job)
        return jobs
    if "datasets" in p:  # a benchmark sweep (chapters 6-8): one job per benchmark
        for dataset in p["datasets"]:
            q = {**p, "dataset": dataset}
            q.pop("datasets")
            for job in _jobs(stem, q, seen, where):
                job.note = "; ".join([dataset] + ([job.note] if job.note else []))
                jobs.append(job)
        return jobs
    if "ks" in p:  # suppression sweep: the baseline, then thinking and random words at every k > 0
        arms = 1 + 2 * sum(1 for k in p["ks"] if int(k) > 0)
        return [_Job(stem, model, dtype, problems=n, arms=arms, batch=batch, longest=T, generated=arms * n * T,
                     steps=arms * math.ceil(n / batch) * T, teacher_forced=arms * n * (PROMPT_TOKENS + T),
                     note=f"ks {list(p['ks'])}")]
    if "budgets" in p:  # TTTS sweep: Origin and TTTS with each word at every budget (see _ttts_job)
        return [_ttts_job(stem, model, dtype, p, n, batch)]
    if p.get("intervention") == "recycle":  # Origin, RR at the preset's coin p, RR at p = 1
        rr = dict(p.get("params") or {})
        layer = _resolve_layer(rr.get("layer"), arch, where + " RR params.layer")
        coin = float(rr.get("p", 0.5))  # RecycleConfig's default
        steps = math.ceil(n / batch) * T
        return [_Job(stem, model, dtype, problems=n, arms=3, batch=batch, longest=T, generated=3 * n * T,
                     steps=3 * steps, teacher_forced=3 * n * (PROMPT_TOKENS + T),
                     recompute=TRIGGER_RATE * (coin + 1.0) / 3,
                     layers=f"RR {layer}", note=f"RR p {coin:g} and 1")]
    steps = math.ceil(n / batch) * T  # any other evaluation chapter: one arm
    return [_Job(stem, model, dtype, problems=n, arms=1, batch=batch, longest=T, generated=n * T, steps=steps,
                 teacher_forced=n * (PROMPT_TOKENS + T))]


def _row(job: _Job, gpu: GPU, overhead_ms: float | None) -> dict[str, Any]:
    row: dict[str, Any] = dict(chapter=job.chapter, model=job.model.split("/")[-1] or "-", dtype=job.dtype or "-",
                               layers=job.layers or "-", problems=job.problems, arms=job.arms, batch=job.batch)
    if not job.model:
        return {**row, "generated": 0, "teacher_forced": 0, "weights_GiB": 0.0, "kv_GiB": 0.0, "devices": 0,
                "gpu_hours": 0.0, "note": job.note}
    arch = architecture(job.model)
    weights = arch.weight_bytes(job.dtype)
    per_token = arch.kv_bytes_per_token(job.dtype)
    longest = PROMPT_TOKENS + job.longest
    kv_peak = per_token * longest * job.batch
    devices = math.ceil((weights + kv_peak) / (USABLE * DEVICE_BYTES))
    overhead = overhead_ms / 1e3 if overhead_ms is not None else OVERHEAD_S_PER_LAYER * arch.layers
    mean_ctx = PROMPT_TOKENS + (longest - PROMPT_TOKENS) / 2
    t_step = (weights + per_token * mean_ctx * job.batch) / gpu.bandwidth + overhead
    decode_s = job.steps * (1 + job.recompute) * t_step
    prefill_tokens = job.teacher_forced + (job.arms * job.problems * PROMPT_TOKENS if job.steps else 0)
    prefill_s = 2 * arch.n_params() * prefill_tokens / (gpu.flops * MFU)
    notes = [job.note] if job.note else []
    if devices > 1 and job.device != "auto":
        notes.append(f"needs device 'auto' (preset: {job.device!r})")
    if longest > arch.context:
        notes.append(f"{longest} tokens exceed the {arch.context}-token context")
    return {**row, "generated": job.generated,
            "teacher_forced": job.teacher_forced, "weights_GiB": weights / 2**30, "kv_GiB": kv_peak / 2**30,
            "devices": devices, "gpu_hours": (decode_s + prefill_s) / 3600 * devices, "note": "; ".join(notes)}


def plan(preset: str | Path | Mapping[str, Any], *, gpu: str = "a100-80gb",
         overhead_ms: float | None = None) -> pd.DataFrame:
    """The cost plan of a preset: one row per chapter and model, then a ``total`` row.

    Args:
        preset: a slug of ``notebooks/params/``, a YAML path, or a loaded preset mapping.
        gpu: a key of :data:`GPUS` (bandwidth and FLOP/s of the cost model).
        overhead_ms: per-step framework overhead in milliseconds for the whole model (None: the
            measured :data:`OVERHEAD_S_PER_LAYER` × blocks).

    Returns:
        Columns ``chapter, model, dtype, layers`` (the checked block indices), ``problems, arms,
        batch, generated`` (upper bound on generated tokens), ``teacher_forced`` (tokens),
        ``weights_GiB, kv_GiB`` (KV cache at the longest context of a batch), ``devices`` (80 GiB
        devices), ``gpu_hours``, ``note``.

    Raises:
        PlanError: unknown preset, GPU or model, or a layer the model does not have (one line).
    """
    from mipeaks.book import load_preset, preset_parameters

    if gpu not in GPUS:
        raise PlanError(f"unknown gpu {gpu!r}: use one of {sorted(GPUS)}")
    if overhead_ms is not None and not overhead_ms >= 0:
        raise PlanError(f"overhead_ms must be >= 0, got {overhead_ms!r}")
    name = preset if isinstance(preset, (str, Path)) else "<preset>"
    if isinstance(preset, (str, Path)):
        try:
            preset = load_preset(preset)
        except FileNotFoundError:
            raise PlanError(f"no preset {str(name)!r}; available: {', '.join(presets())}") from None
    seen: dict[tuple, str] = {}
    rows = []
    for stem in chapters():
        try:
            params = {**_defaults(stem), **preset_parameters(preset, stem)}
        except KeyError as err:
            raise PlanError(f"preset {name}: {err.args[0]}") from None
        for job in _chapter_jobs(stem, params, seen, f"preset {name}, chapter {stem}"):
            rows.append(_row(job, GPUS[gpu], overhead_ms))
    df = pd.DataFrame(rows)
    total = {c: "" for c in df.columns}
    total.update(chapter="total", generated=int(df["generated"].sum()), teacher_forced=int(df["teacher_forced"].sum()),
                 weights_GiB=float(df["weights_GiB"].max()), kv_GiB=float(df["kv_GiB"].max()),
                 devices=int(df["devices"].max()), gpu_hours=float(df["gpu_hours"].sum()),
                 note=f"{gpu}; max memory and devices, summed tokens and GPU-hours")
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


_NUMERIC = ("problems", "arms", "batch", "generated", "teacher_forced", "weights_GiB", "kv_GiB", "devices",
            "gpu_hours")


def format_plan(df: pd.DataFrame, fmt: str = "text") -> str:
    """Render a :func:`plan` table as ``"text"``, ``"markdown"`` or ``"csv"`` (fixed number formats)."""
    out = df.copy()
    for col in ("weights_GiB", "kv_GiB"):
        out[col] = out[col].map(lambda v: f"{v:.1f}" if v != "" else "")
    out["gpu_hours"] = out["gpu_hours"].map(lambda v: f"{v:.2f}" if v != "" else "")
    for col in ("generated", "teacher_forced"):
        out[col] = out[col].map(lambda v: f"{int(v):,}" if v != "" else "")
    if fmt == "csv":
        return out.to_csv(index=False)
    if fmt == "markdown":  # numbers right-aligned; no tabulate dependency
        right = [c for c in out.columns if c in _NUMERIC]
        lines = ["| " + " | ".join(out.columns) + " |",
                 "|" + "|".join("--:" if c in right else ":--" for c in out.columns) + "|"]
        lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in out.itertuples(index=False)]
        return "\n".join(lines) + "\n"
    if fmt == "text":
        return out.to_string(index=False) + "\n"
    raise PlanError(f"unknown format {fmt!r}: use text, markdown or csv")


def book_tables(slugs: Sequence[str] | None = None) -> str:
    """The markdown of ``book/_generated/plans.md``: a summary over presets, then each preset's plan.

    Args:
        slugs: presets to show (default: every preset but ``cpu-smoke``).
    """
    from mipeaks.book import load_preset

    slugs = [s for s in presets() if s != "cpu-smoke"] if slugs is None else list(slugs)
    head = ["<!-- Generated by scripts/plan_tables.py from mipeaks.plan; do not edit by hand. -->", "",
            "| preset | model | generated tokens | teacher-forced tokens | devices (80 GB) | "
            "GPU-hours A100-80GB | GPU-hours H100-80GB |", "|:--|:--|--:|--:|--:|--:|--:|"]
    details = []
    for slug in slugs:
        a100, h100 = plan(slug), plan(slug, gpu="h100-80gb")
        total = a100.iloc[-1]
        model = load_preset(slug)["shared"].get("model", "?")
        head.append(f"| `{slug}` | {model} | {int(total['generated']):,} | {int(total['teacher_forced']):,} | "
                    f"{int(total['devices'])} | {total['gpu_hours']:,.1f} | {h100.iloc[-1]['gpu_hours']:,.1f} |")
        details += ["", f"### `{slug}`", "", f"`mipeaks plan {slug}` (A100-80GB):", "",
                    format_plan(a100, "markdown").rstrip("\n")]
    return "\n".join(head + details) + "\n"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """``mipeaks plan PRESET``: print a preset's plan table; errors are one line on stderr, exit 2."""
    parser = _Parser(prog="mipeaks plan", description="What a preset will cost, offline: per chapter the layers "
                     "checked, tokens to generate and teacher-force, weights and KV cache, 80 GB devices and "
                     "GPU-hours (cost model: pydoc mipeaks.plan).")
    parser.add_argument("preset", help="a file stem of notebooks/params/ (or a preset YAML path)")
    parser.add_argument("--gpu", default="a100-80gb", choices=sorted(GPUS), help="GPU of the cost model")
    parser.add_argument("--overhead-ms", type=float, default=None,
                        help="framework overhead per decode step, ms (default: measured 0.81 ms per block)")
    parser.add_argument("--format", default="text", choices=("text", "markdown", "csv"), help="output format")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a bad option (2): a return code, not an exception
        return int(stop.code or 0)
    try:
        table = plan(args.preset, gpu=args.gpu, overhead_ms=args.overhead_ms)
    except PlanError as err:
        print(f"mipeaks plan: error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(format_plan(table, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
