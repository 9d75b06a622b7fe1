"""Plain-HF-cost decoding and O(L) teacher forcing: ``LoadedModel.unbridged`` and ``mipeaks.forcing``.

References are the bridged model's own eager full pass (``bridge.run_with_cache``, every hook point
in place), so the tests say that un-bridging, SDPA and chunking change nothing but the cost.
"""

from __future__ import annotations

import collections

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mipeaks.collect import generate_trace
from mipeaks.evaluate import gold_logprob
from mipeaks.forcing import _chunks, teacher_force
from mipeaks.generation import generate
from mipeaks.layers import teacher_forced_states
from mipeaks.ttts import ANSWER_SUFFIX

PROMPT = "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May."


def _bridged_full_pass(model, ids, names):
    """Hook values and logits of one bridged (eager, every component wrapped) full forward pass."""
    with torch.no_grad():
        logits, cache = model.bridge.run_with_cache(ids[None], names_filter=lambda n: n in names)
    return cache, logits[0].float()


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("length,chunk,last", [(10, 4, 0), (10, 4, 3), (10, 4, 10), (1, 512, 1), (8, 4, 0), (600, 512, 9)])
def test_chunks_cover_the_sequence_in_order(length, chunk, last):
    spans = _chunks(length, chunk, last)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # contiguous
    assert all(end - start <= chunk for start, end in spans[:-1])
    assert spans[-1][1] - spans[-1][0] >= max(last, 1)  # the scored positions are in the last pass


def test_teacher_force_equals_the_bridged_full_pass(tiny):
    ids = torch.tensor(tiny.tokenizer.encode(PROMPT * 2))
    names = [tiny.hook_name(0), tiny.hook_name("last")]
    cache, logits = _bridged_full_pass(tiny, ids, names)
    forced = teacher_force(tiny, ids, layers=[0, "last"], states_from=5, last_logits=4, chunk_size=7)
    assert forced.forward_calls == len(_chunks(len(ids), 7, 4)) > 3
    for layer, name in zip([0, tiny.n_layers - 1], names):
        assert forced.states[layer].shape == (len(ids) - 5, tiny.d_model)
        assert _rel(forced.states[layer], cache[name][0, 5:]) < 1e-4
    assert _rel(forced.logits, logits[-4:]) < 1e-4
    # everything is restored: bridges back in the HF tree, eager attention
    assert type(tiny.hf_model.model.layers[0]).__name__ == "BlockBridge"
    assert tiny.hf_model.config._attn_implementation == "eager"


def test_gold_logprob_on_a_context_longer_than_a_chunk(tiny):
    tok = tiny.tokenizer
    context = (tok.encode(PROMPT) * 40)[:600]  # > one 512-token chunk
    head = context + tok.encode(ANSWER_SUFFIX + " \\boxed{", add_special_tokens=False)
    target = tok.encode("72}", add_special_tokens=False)
    _, logits = _bridged_full_pass(tiny, torch.tensor(head + target), [])
    logp = torch.log_softmax(logits[len(head) - 1: -1], dim=-1)
    want = float(logp[torch.arange(len(target)), torch.tensor(target)].mean())
    assert gold_logprob(tiny, context, "72") == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_capture_in_the_loop_equals_teacher_forcing(tiny):
    trace = generate_trace(tiny, torch.tensor(tiny.tokenizer.encode(PROMPT)), layer=1, max_new_tokens=20)
    again = teacher_forced_states(tiny, trace, 1)
    assert again.shape == trace.states.shape
    assert _rel(again, trace.states) < 1e-4


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_decoding_fires_only_the_requested_hook_points(tiny):
    """One forward per step, and per step only the captured block's two hook points fire."""
    fired: collections.Counter[str] = collections.Counter()
    calls = []
    handle = torch.nn.modules.module.register_module_forward_hook(
        lambda mod, args, out: fired.update([type(mod).__name__]))
    count = tiny.hf_model.register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        out = generate(tiny, PROMPT, max_new_tokens=6, capture_layers=[1], stop_ids=())[0]
    finally:
        handle.remove()
        count.remove()
    assert len(calls) == 6 and out.states[1].shape == (6, tiny.d_model)
    assert fired["HookPoint"] == 2 * 6  # blocks.1 hook_in + hook_out, nothing else
    assert fired["BlockBridge"] == 6 and fired["LlamaDecoderLayer"] == 6 * tiny.n_layers


@pytest.mark.parametrize("tiny", ["llama"], indirect=True)
def test_unbridged_keeps_what_is_hooked_and_restores(tiny):
    layers = tiny.hf_model.model.layers
    seen = {}
    with tiny.bridge.hooks(fwd_hooks=[("blocks.1.hook_resid_post", lambda r, hook: r)]), tiny.unbridged():
        assert [type(b).__name__ for b in layers] == ["LlamaDecoderLayer", "BlockBridge", "LlamaDecoderLayer"]
        assert type(layers[1].original_component.self_attn).__name__ == "LlamaAttention"
        assert tiny.hf_model.config._attn_implementation == "sdpa"
    # an attention-pattern hook keeps its whole block bridged and the eager attention it needs
    pattern = lambda p, hook: seen.setdefault("pattern", p.clone())  # noqa: E731
    ids = torch.tensor(tiny.tokenizer.encode(PROMPT))
    with tiny.bridge.hooks(fwd_hooks=[("blocks.2.attn.hook_pattern", pattern)]), tiny.unbridged():
        assert type(layers[2]).__name__ == "BlockBridge" and type(layers[0]).__name__ == "LlamaDecoderLayer"
        assert type(layers[2].original_component.self_attn).__name__ != "LlamaAttention"
        assert tiny.hf_model.config._attn_implementation == "eager"
        with torch.no_grad():
            tiny.hf_model(input_ids=ids[None])
    assert seen["pattern"].shape[-2:] == (len(ids), len(ids))
    with tiny.unbridged():  # nested: an inner pattern hook gets eager back, the outer SDPA returns after
        assert tiny.hf_model.config._attn_implementation == "sdpa"
        with tiny.bridge.hooks(fwd_hooks=[("blocks.0.attn.hook_pattern", pattern)]), tiny.unbridged():
            assert tiny.hf_model.config._attn_implementation == "eager"
            assert type(layers[0]).__name__ == "BlockBridge" and type(layers[1]).__name__ == "LlamaDecoderLayer"
        assert tiny.hf_model.config._attn_implementation == "sdpa"
        assert type(layers[0]).__name__ == "LlamaDecoderLayer"
    with pytest.raises(RuntimeError):  # restored on errors too
        with tiny.unbridged():
            raise RuntimeError("boom")
    assert all(type(b).__name__ == "BlockBridge" for b in layers)
    assert tiny.hf_model.config._attn_implementation == "eager"


class _LargestOutput(TorchDispatchMode):
    """Records the largest tensor any ATen op produces (a proxy for peak activation memory)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_teacher_forcing_memory_is_linear_in_length(tokenizer_dir):
    """No heads x L x L tensor: the largest activation grows linearly with L (4-layer 32-head model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from mipeaks.models import wrap_model

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    heads, chunk = 32, 128
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=4096)
    torch.manual_seed(0)
    model = wrap_model(AutoModelForCausalLM.from_config(config).float().eval(), tok, name="thin-32-heads")
    largest = {}
    for length in (512, 1024):
        ids = torch.randint(0, len(tok), (length,))
        with _LargestOutput() as spy:
            teacher_force(model, ids, layers=["last"], last_logits=2, chunk_size=chunk)
        largest[length] = spy.largest
        assert spy.largest < heads * chunk * length / 4  # no per-head score matrix, even per chunk
    assert largest[1024] <= 2.2 * largest[512]
    # the proxy sees the quadratic tensor of the bridged eager full pass (before this module)
    with _LargestOutput() as spy, torch.no_grad():
        model.hf_model(input_ids=torch.randint(0, len(tok), (1, 512)), logits_to_keep=1)
    assert spy.largest >= heads * 512 * 512


@pytest.mark.parametrize("tiny", ["llama", "qwen3"], indirect=True)
@pytest.mark.parametrize("name", ["blocks.1.hook_resid_pre", "blocks.1.hook_resid_mid", "blocks.1.hook_attn_out",
                                  "blocks.1.hook_mlp_out", "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_q"])
def test_any_hook_point_gives_the_bridged_value_when_unbridged(tiny, name):
    ids = torch.tensor(tiny.tokenizer.encode(PROMPT))
    cache, logits = _bridged_full_pass(tiny, ids, [name])
    seen = {}
    with tiny.bridge.hooks(fwd_hooks=[(name, lambda t, hook: seen.setdefault("t", t.clone()))]), tiny.unbridged():
        with torch.no_grad():
            out = tiny.hf_model(input_ids=ids[None]).logits[0].float()
    assert _rel(seen["t"], cache[name]) < 1e-4
    assert _rel(out, logits) < 1e-4
