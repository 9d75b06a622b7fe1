"""`load_model(..., device="auto")` (accelerate's big-model dispatch) keeps hooks, capture, RR and the gold score exact.

On a CPU-only machine a model is split between CPU memory and disk: ``max_memory={"cpu": ...}``
smaller than the model sends the later blocks to ``offload_folder``, and accelerate's hooks load
them at every forward pass, as they move blocks between GPUs on a multi-GPU machine.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mipeaks.collect import generate_trace
from mipeaks.data import Problem
from mipeaks.evaluate import EvalConfig, evaluate, gold_logprob
from mipeaks.models import load_model

from conftest import tiny_config

PROMPT = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory, tokenizer_dir):
    """A tiny random Llama saved to disk, with blocks large enough that the CPU budget splits it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = tiny_config(tok, intermediate_size=4096, num_hidden_layers=4)
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config).float().eval()
    path = tmp_path_factory.mktemp("tiny-llama")
    hf.save_pretrained(path)
    tok.save_pretrained(path)
    def size(module):
        return sum(p.numel() * p.element_size() for p in module.parameters())

    # accelerate keeps room for the largest module (the 12.6 MB output embedding) next to what it
    # places: this budget holds the input embedding and about one block; the rest goes to disk.
    budget = 2 * size(hf.get_input_embeddings()) + 3 * size(hf.model.layers[0]) // 2
    return path, budget


@pytest.fixture(scope="module")
def pair(saved_tiny, tmp_path_factory):
    path, budget = saved_tiny
    reference = load_model(str(path))
    offload = tmp_path_factory.mktemp("offload")
    dispatched = load_model(str(path), device="auto", dtype="float32", max_memory={"cpu": budget},
                            offload_folder=offload)
    return reference, dispatched


def test_model_is_split_between_cpu_and_disk(pair):
    _, dispatched = pair
    placement = dispatched.hf_model.hf_device_map
    assert set(placement.values()) == {"cpu", "disk"}, placement
    assert placement["model.embed_tokens"] == "cpu" and placement["model.layers.3"] == "disk"
    assert dispatched.device == torch.device("cpu")


def test_captured_states_and_tokens_equal(pair):
    reference, dispatched = pair
    for layer in (1, "last"):
        a = generate_trace(reference, PROMPT, layer=layer, max_new_tokens=12, gold="48 + 24 = 72")
        b = generate_trace(dispatched, PROMPT, layer=layer, max_new_tokens=12, gold="48 + 24 = 72")
        assert torch.equal(a.token_ids, b.token_ids)
        assert a.states.shape == b.states.shape == (12, 64)
        assert torch.equal(b.states, a.states)  # bit-identical: the same kernels on the same weights
        assert torch.equal(b.gold, a.gold)


def test_recycling_and_gold_score_equal(pair, tmp_path):
    reference, dispatched = pair
    problems = [Problem(id="p0", question=PROMPT, solution="48 / 2 = 24. 48 + 24 = 72.", answer="72"),
                Problem(id="p1", question="What is 3 + 4?", solution="3 + 4 = 7.", answer="7")]
    base = EvalConfig(dataset="gsm8k", prompt_style="raw", max_new_tokens=10, dtype="float32")
    origin = evaluate(reference, problems, base, out_path=tmp_path / "origin.jsonl", progress=False)
    # trigger on ids the model really emits, so RR's recomputed step runs (p = 1: every trigger)
    ids = sorted({i for r in origin.records for i in r["output_ids"][:4]})
    rr = dataclasses.replace(base, intervention="recycle", params={"layer": 2, "words": [], "ids": ids, "p": 1.0})
    a = evaluate(reference, problems, rr, out_path=tmp_path / "ref.jsonl", progress=False)
    b = evaluate(dispatched, problems, rr, out_path=tmp_path / "dispatched.jsonl", progress=False)
    assert sum(r["recycles"] for r in a.records) > 0
    assert [r["output_ids"] for r in a.records] != [r["output_ids"] for r in origin.records]  # RR changed tokens
    for x, y in zip(a.records, b.records):
        assert x["output_ids"] == y["output_ids"] and x["recycles"] == y["recycles"]
        assert y["gold_logprob"] == pytest.approx(x["gold_logprob"], abs=1e-6)
    ctx = reference.tokenizer.encode(PROMPT)
    assert gold_logprob(dispatched, ctx, "72") == pytest.approx(gold_logprob(reference, ctx, "72"), abs=1e-6)


def test_dispatch_options_need_auto(saved_tiny):
    path, _ = saved_tiny
    with pytest.raises(ValueError, match="need device='auto', got device='cpu'"):
        load_model(str(path), max_memory={"cpu": "1GiB"})
