"""`mipeaks plan PRESET`: shipped architecture numbers, layer checks, and the cost figures recomputed by hand."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mipeaks import book, plan

PRESETS = plan.presets()


def _params_by_hand(a: plan.Architecture) -> int:
    """Parameter count written out module by module (Llama / Qwen2 layout), independent of n_params."""
    head_dim = a.d_model // a.heads
    q = a.d_model * a.heads * head_dim
    k = v = a.d_model * a.kv_heads * head_dim
    o = a.heads * head_dim * a.d_model
    bias = (a.heads * head_dim + 2 * a.kv_heads * head_dim) if a.qkv_bias else 0
    gate = up = down = a.d_model * a.d_mlp
    norms = 2 * a.d_model
    per_block = q + k + v + o + bias + gate + up + down + norms
    embed_in = a.vocab * a.d_model
    embed_out = 0 if a.tied else a.vocab * a.d_model
    return a.layers * per_block + embed_in + embed_out + a.d_model  # + the final norm


def test_every_preset_model_has_an_architecture():
    names = set()
    for slug in PRESETS:
        for stem in plan.chapters():
            params = book.preset_parameters(slug, stem)
            names |= {params[k] for k in ("model", "base_model") if params.get(k)}
    assert names, "no preset names a model"
    assert names <= set(plan.architectures()), f"missing: {sorted(names - set(plan.architectures()))}"


@pytest.mark.parametrize("name", sorted(plan.architectures()))
def test_parameter_count_matches_the_published_one(name):
    a = plan.architecture(name)
    by_hand = _params_by_hand(a)
    assert a.n_params() == by_hand
    # the hub pages round to 3 significant figures (7.62B, 14.8B, 70.6B)
    assert abs(by_hand - a.params) / a.params < 0.005, f"{name}: {by_hand:,} vs published {a.params:,.0f}"
    assert a.d_model % a.heads == 0 and a.heads % a.kv_heads == 0


def test_paper_models_known_values():
    # spot checks against the config.json facts (independent of the JSON file's other fields)
    assert _params_by_hand(plan.architecture("deepseek-ai/DeepSeek-R1-Distill-Llama-8B")) == 8_030_261_248
    assert _params_by_hand(plan.architecture("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")) == 7_615_616_512
    assert _params_by_hand(plan.architecture("deepseek-ai/DeepSeek-R1-Distill-Llama-70B")) == 70_553_706_496
    assert plan.architecture("Qwen/Qwen2.5-Math-7B").context == 4096


def test_embedded_entry_equals_the_model(embedded):
    a = plan.architecture("smollm2-135m-instruct")
    c = embedded.hf_model.config
    assert (a.layers, a.d_model, a.heads, a.kv_heads, a.d_mlp, a.vocab, a.context, a.tied) == (
        c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads,
        c.intermediate_size, c.vocab_size, c.max_position_embeddings, c.tie_word_embeddings)
    n = sum(p.numel() for p in embedded.hf_model.parameters())
    assert a.n_params() == n == a.params


def test_local_directory_architecture(tmp_path):
    (tmp_path / "config.json").write_text(
        '{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": 3, "hidden_size": 64,'
        ' "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100,'
        ' "max_position_embeddings": 1024, "tie_word_embeddings": false}')
    a = plan.architecture(str(tmp_path))
    from transformers import AutoModelForCausalLM, LlamaConfig

    hf = AutoModelForCausalLM.from_config(LlamaConfig.from_pretrained(tmp_path))
    assert a.n_params() == sum(p.numel() for p in hf.parameters())


@pytest.mark.parametrize("slug", PRESETS)
def test_plan_runs_offline_for_every_preset(slug, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    df = plan.plan(slug)
    assert list(df["chapter"])[-1] == "total"
    assert set(plan.chapters()) <= set(df["chapter"])
    body = df[df["chapter"] != "total"]
    assert (body["gpu_hours"] >= 0).all() and not body["gpu_hours"].isna().any()
    assert df.iloc[-1]["gpu_hours"] == pytest.approx(body["gpu_hours"].sum())
    assert df.iloc[-1]["generated"] == body["generated"].sum() > 0


def test_r1_llama_8b_recycling_recomputed_by_hand():
    df = plan.plan("r1-llama-8b")
    row = df[(df.chapter == "07_recycling") & df.note.str.startswith("aime24")].iloc[0]
    params = 8_030_261_248  # DeepSeek-R1-Distill-Llama-8B: 32 blocks, d 4096, 8 KV heads of 128, bf16
    weights = params * 2
    kv_token = 2 * 32 * 8 * 128 * 2
    prompt, new, n, arms, batch = 256, 16000, 30, 3, 8  # run_RR.sh: 16000 new tokens; AIME24: 30 problems
    assert row["layers"] == "RR 23"
    assert row["generated"] == arms * n * new == 1_440_000
    assert row["weights_GiB"] == pytest.approx(weights / 2**30)
    assert row["kv_GiB"] == pytest.approx(kv_token * (prompt + new) * batch / 2**30)
    assert row["devices"] == 1
    # a batch of 8 reads the weights once per step and its 8 KV caches; 4 batches of 30 problems per arm
    t_step = (weights + kv_token * (prompt + new / 2) * batch) / 2.039e12 + 0.026  # A100-80GB; 26 ms overhead
    decode = arms * math.ceil(n / batch) * new * (1 + 0.05 * (0.5 + 1.0) / 3) * t_step  # RR arms: p x 5% redone
    teacher = arms * n * (prompt + new)  # gold-answer score per record
    prefill = 2 * params * (teacher + arms * n * prompt) / (312e12 * 0.4)
    assert row["teacher_forced"] == teacher
    assert row["gpu_hours"] == pytest.approx((decode + prefill) / 3600, rel=1e-9)


def test_70b_suppression_needs_three_devices():
    df = plan.plan("r1-llama-70b")
    row = df[(df.chapter == "06_suppression") & df.note.str.startswith("math500")].iloc[0]
    weights = 70_553_706_496 * 2
    kv = 2 * 80 * 8 * 128 * 2 * (256 + 8192) * 8  # batch 8 at 8192 new tokens
    assert row["devices"] == math.ceil((weights + kv) / (0.9 * 80 * 2**30)) == 3
    assert row["generated"] == (1 + 2 * 5) * 500 * 8192  # baseline + thinking/random at k = 2..10


def test_h100_is_cheaper_and_overhead_override():
    a100 = plan.plan("r1-qwen-7b").iloc[-1]["gpu_hours"]
    h100 = plan.plan("r1-qwen-7b", gpu="h100-80gb").iloc[-1]["gpu_hours"]
    assert h100 < a100
    assert plan.plan("r1-qwen-7b", overhead_ms=0).iloc[-1]["gpu_hours"] < a100


def test_context_overflow_is_flagged():
    df = plan.plan("qwen2.5-math-7b")
    assert df[df.chapter == "07_recycling"].note.str.contains("exceed the 4096-token context").all()
    qwen7 = plan.plan("r1-qwen-7b")
    assert not qwen7[qwen7.chapter == "07_recycling"].note.str.contains("exceed").any()


def _bad_preset(tmp_path: Path, chapter: str, **values) -> Path:
    data = yaml.safe_load((book.NOTEBOOK_DIR / "params" / "r1-qwen-7b.yaml").read_text())
    data["notebooks"][chapter] = {**data["notebooks"][chapter], **values}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("chapter, values, needle", [
    ("07_recycling", {"params": {"layer": 28, "words": ["So"], "p": 0.5}}, "layer 28 does not exist"),
    ("01_mi_trajectories", {"layer": -29}, "layer -29 does not exist"),
    ("03_reasoning_vs_base", {"contrast_layer": 40}, "layer 40 does not exist"),
])
def test_bad_layer_is_one_line_error(tmp_path, capsys, chapter, values, needle):
    path = _bad_preset(tmp_path, chapter, **values)
    with pytest.raises(plan.PlanError, match=needle) as err:
        plan.plan(path)
    message = str(err.value)
    assert "\n" not in message and chapter in message and "28 blocks" in message
    assert plan.main([str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and needle in captured.err


def test_unknown_preset_exits_2_listing_presets(capsys):
    assert plan.main(["no-such-preset"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-preset" in err and "r1-llama-8b" in err and "qwen2.5-14b" in err


def test_unknown_model_is_one_line_error(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("shared: {model: org/not-a-model}\n")
    with pytest.raises(plan.PlanError, match="no architecture for model 'org/not-a-model'"):
        plan.plan(path)


def test_main_prints_the_table(capsys):
    assert plan.main(["r1-llama-8b", "--format", "csv"]) == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df["chapter"].iloc[-1] == "total" and "07_recycling" in set(df["chapter"])


def test_slug_with_a_dot_loads():
    assert book.load_preset("qwen2.5-14b")["shared"]["model"] == "Qwen/Qwen2.5-14B"


def test_book_tables_are_up_to_date():
    committed = (book.REPO_ROOT / "book" / "_generated" / "plans.md").read_text(encoding="utf-8")
    assert committed == plan.book_tables(), "run scripts/plan_tables.py and commit book/_generated/plans.md"
    assert "{include} _generated/plans.md" in (book.REPO_ROOT / "book" / "reproduce.md").read_text()
    for slug in PRESETS:
        assert (f"### `{slug}`" in committed) == (slug != "cpu-smoke")


def test_bad_option_is_one_line(capsys):
    assert plan.main(["r1-llama-8b", "--gpu", "v100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--gpu" in err and "a100-80gb" in err
    assert plan.main(["--help"]) == 0 and "GPU-hours" in capsys.readouterr().out


def test_r1_llama_8b_ttts_charges_words_budgets_and_reuse_by_hand():
    """Issue 11 §2-3: one row per benchmark; each word pays one official run (4096 base + the largest
    budget + 16 answer tokens), every smaller budget and Origin's answers only 16 tokens each."""
    df = plan.plan("r1-llama-8b")
    rows = df[df.chapter == "08_ttts"]
    assert [note.split(";")[0] for note in rows.note] == ["gsm8k", "math500", "aime24"]
    aime = rows.iloc[2]
    n, words, budgets = 30, 18, [3072, 4096, 6144, 8192, 10240, 12288]
    per_problem = words * (4096 + 12288 + 16) + words * 5 * 16 + (12288 + 16) + 5 * 16
    assert per_problem == 309_024
    assert aime["generated"] == n * per_problem == 9_270_720
    assert aime["arms"] == (1 + words) * len(budgets) == 114 and aime["batch"] == 8
    prompt = 256
    assert aime["teacher_forced"] == n * (114 * prompt + words * (6 * 4096 + sum(budgets)) + sum(budgets)) == 39_244_800
    assert rows.iloc[0]["problems"] == 1319 and rows.iloc[1]["problems"] == 500
    rr = df[df.chapter == "07_recycling"]
    assert list(rr.problems) == [1319, 500, 30] and (rr.layers == "RR 23").all()
