"""Tests for mipeaks.recycling: Representation Recycling as a plug-in of the generation core.

The reference for a recycled step is built on an untouched deep copy of the Hugging Face model
(taken before the TransformerBridge replaced its decoder layers) with plain torch hooks: a
forward hook saves decoder layer ℓ*'s output, and a forward pre-hook feeds it back as that
layer's input at the recycled position, so the block runs twice there.
"""

from __future__ import annotations

import copy

import pytest
import torch

from mipeaks.generation import Intervention, generate
from mipeaks.models import wrap_model
from mipeaks.recycling import PAPER_RR, PAPER_RR_WORDS, Recycle, RecycleConfig
from mipeaks.suppression import word_ids

PROMPT = "Natalia sold clips to 48 of her friends. How many clips did she sell?"
LAYER = 1


class LogitSpy(Intervention):
    """Keeps the logits of the pass whose token is emitted (a recomputed pass overwrites)."""

    def start(self, batch_size: int) -> None:
        self.final: dict[int, torch.Tensor] = {}

    def process_logits(self, step, logits):
        self.final[step.index] = logits.clone()
        return logits


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def pair(request, tokenizer_dir):
    """A tiny wrapped model and an untouched Hugging Face copy of the same weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, Qwen2Config

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = {"llama": LlamaConfig, "qwen2": Qwen2Config}[request.param](
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config).float().eval()
    reference = copy.deepcopy(hf)  # taken before the bridge replaces the decoder layers
    return wrap_model(hf, tok, name=f"tiny-{request.param}"), reference


def _layer_out(out):
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def reference_logits(hf, ids: list[int], position: int, layer: int) -> torch.Tensor:
    """Last-position logits when block ``layer`` runs twice at ``position`` (plain torch hooks)."""
    block = hf.model.layers[layer]
    x = torch.tensor([ids])
    saved = {}
    handle = block.register_forward_hook(lambda m, a, o: saved.__setitem__("h", _layer_out(o)[:, position].clone()))
    hf(input_ids=x)
    handle.remove()

    def pre(module, args, kwargs):
        hs = (args[0] if args else kwargs["hidden_states"]).clone()
        hs[:, position] = saved["h"]
        if args:
            return (hs, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": hs}

    handle = block.register_forward_pre_hook(pre, with_kwargs=True)
    try:
        return hf(input_ids=x).logits[0, -1].float()
    finally:
        handle.remove()


def _first_new(tokens: list[int], start: int) -> int:
    return next(s for s in range(start, len(tokens)) if tokens[s] not in tokens[:s])


def test_empty_trigger_set_is_plain_greedy(tiny) -> None:
    (plain,) = generate(tiny, PROMPT, max_new_tokens=8, stop_ids=())
    rr = Recycle(LAYER, trigger_ids=[], p=1.0)
    (out,) = generate(tiny, PROMPT, max_new_tokens=8, stop_ids=(), interventions=[rr])
    assert torch.equal(out.token_ids, plain.token_ids)
    assert rr.stats == {"triggers": [0], "recycles": [0]}
    never = Recycle(LAYER, trigger_ids=range(len(tiny.tokenizer)), p=0.0)  # triggers, coin never
    (out,) = generate(tiny, PROMPT, max_new_tokens=8, stop_ids=(), interventions=[never])
    assert torch.equal(out.token_ids, plain.token_ids)
    assert never.stats == {"triggers": [8], "recycles": [0]}


def test_recycled_step_equals_double_application(pair) -> None:
    model, hf = pair
    prompt = model.tokenizer.encode(PROMPT)
    (plain,) = generate(model, PROMPT, max_new_tokens=8, stop_ids=())
    g = plain.token_ids.tolist()
    for s in (0, _first_new(g, 3)):  # the prefill step and a cached step
        rr, spy = Recycle(LAYER, trigger_ids=[g[s]], p=1.0), LogitSpy()
        (out,) = generate(model, PROMPT, max_new_tokens=s + 2, stop_ids=(), interventions=[rr, spy])
        tokens = out.token_ids.tolist()
        assert tokens[:s] == g[:s] and rr.recycles == [1] and rr.triggers == [1]
        position = len(prompt) + s - 1  # the position whose state predicts generated token s
        want = reference_logits(hf, prompt + g[:s], position, LAYER)
        torch.testing.assert_close(spy.final[s][0], want, rtol=1e-4, atol=1e-4)
        assert tokens[s] == int(want.argmax())
        assert not torch.allclose(want, reference_logits(hf, prompt + g[:s], position, LAYER + 1))
        # the next step attends to the recycled position's (single) KV entry
        after = reference_logits(hf, prompt + g[:s] + [tokens[s]], position, LAYER)
        torch.testing.assert_close(spy.final[s + 1][0], after, rtol=1e-4, atol=1e-4)


def test_kv_cache_holds_one_entry_per_position(tiny) -> None:
    calls: list[tuple[int, int]] = []
    seen = {}

    def record(module, args, kwargs):
        cache = kwargs["past_key_values"]
        seen["cache"] = cache
        calls.append((cache.get_seq_length(), kwargs["input_ids"].shape[1]))

    prompt = tiny.tokenizer.encode(PROMPT)
    rr = Recycle(LAYER, trigger_ids=range(len(tiny.tokenizer)), p=1.0)  # recycle at every step
    handle = tiny.hf_model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        (out,) = generate(tiny, torch.tensor(prompt), max_new_tokens=6, stop_ids=(), interventions=[rr])
    finally:
        handle.remove()
    assert rr.recycles == [6] and len(calls) == 12  # a regular and a recomputed pass per step
    for t in range(6):
        past = 0 if t == 0 else len(prompt) + t - 1
        assert calls[2 * t] == calls[2 * t + 1] == (past, len(prompt) if t == 0 else 1)
    assert seen["cache"].get_seq_length() == len(prompt) + len(out.token_ids) - 1


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_coin_is_seeded_per_row(tiny) -> None:
    every = range(len(tiny.tokenizer))
    other = "A short one."

    def run(prompts, seed=0):
        rr = Recycle(LAYER, trigger_ids=every, p=0.5, seed=seed)
        out = generate(tiny, prompts, max_new_tokens=10, stop_ids=(), interventions=[rr])
        return [g.token_ids.tolist() for g in out], rr.recycles

    alone = [run(PROMPT), run(other)]
    assert run(PROMPT) == alone[0]  # reproducible
    assert all(0 < r[0] < 10 for _, r in alone)  # every step triggers; the coin decides
    assert run(PROMPT, seed=1)[1] != alone[0][1] or run(PROMPT, seed=2)[1] != alone[0][1]
    tokens, recycles = run([other, PROMPT])  # a row's coin depends on its own prompt only
    assert tokens == [alone[1][0][0], alone[0][0][0]] and recycles == [alone[1][1][0], alone[0][1][0]]


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_config_and_presets(tiny) -> None:
    plug = RecycleConfig(layer=-1, p=1.0).build(tiny)
    assert plug.layer == tiny.n_layers - 1 and plug.p == 1.0
    assert set(word_ids(tiny.tokenizer, PAPER_RR_WORDS, case_sensitive=True)) == set(plug.trigger_ids)
    with pytest.raises(ValueError, match="out of range"):
        RecycleConfig(layer=99).build(tiny)
    with pytest.raises(ValueError, match="p must be"):
        Recycle(0, [1], p=1.5)
    preset = PAPER_RR["deepseek-ai/DeepSeek-R1-Distill-Llama-8B"]
    assert preset["layer"] == 23 and preset["p"] == 0.5 and len(preset["words"]) == 10
    assert preset["words"][:3] == ("So", "Let", "Hmm") and preset["words"][-1] == "Wait"
