"""Model loading, hook parity with plain Hugging Face, layer resolution and error paths."""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import pytest
import torch

from mipeaks import models
from mipeaks.generation import generate
from mipeaks.models import EMBEDDED_MODEL, ModelNotAvailableError, cache_dir, load_model

PROMPT = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."


def _plain_hf(path, **kw):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager", **kw).eval()


def _decoder_layer_outputs(hf_model, ids):
    """Outputs of every HF decoder layer (residual stream before the final norm), by torch hooks."""
    outs, handles = {}, []
    for i, layer in enumerate(hf_model.model.layers):
        handles.append(layer.register_forward_hook(
            lambda mod, args, out, i=i: outs.__setitem__(i, (out[0] if isinstance(out, tuple) else out).detach())))
    try:
        with torch.no_grad():
            hf_model(ids[None])
    finally:
        for h in handles:
            h.remove()
    return outs


def test_embedded_model_shape_and_source(embedded):
    assert embedded.n_layers == 30 and embedded.d_model == 576
    assert embedded.dtype == torch.float32 and embedded.device.type == "cpu"
    assert type(embedded.hf_model).__name__ == "LlamaForCausalLM"
    assert "sha256" in embedded.source
    assert (cache_dir() / "models" / EMBEDDED_MODEL / "model.safetensors").is_file()


def test_embedded_reloads_from_cache_without_gguf(embedded, monkeypatch):
    # With the snapshot in place the GGUF is never touched again.
    monkeypatch.setattr(models, "_embedded_gguf", lambda: pytest.fail("GGUF read on a cached load"))
    again = load_model(EMBEDDED_MODEL)
    assert again.n_layers == embedded.n_layers


@pytest.mark.slow
def test_golden_parity_every_layer(embedded):
    """blocks.L.hook_resid_post == the output of HF decoder layer L, for every layer."""
    ids = torch.tensor(embedded.tokenizer.encode(PROMPT))
    reference = _decoder_layer_outputs(_plain_hf(cache_dir() / "models" / EMBEDDED_MODEL), ids)
    names = [embedded.hook_name(layer) for layer in range(embedded.n_layers)]
    with torch.no_grad():
        _, cache = embedded.bridge.run_with_cache(ids[None], names_filter=lambda n: n in names)
    for layer, name in enumerate(names):
        torch.testing.assert_close(cache[name][0], reference[layer][0], rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_kv_cached_generation_matches_plain_hf(embedded):
    """Greedy tokens from the core equal HF generate on an un-bridged copy (catches KV-cache bugs)."""
    ids = torch.tensor(embedded.tokenizer.encode(PROMPT))
    ours = generate(embedded, ids, max_new_tokens=24, stop_ids=())[0].token_ids
    plain = _plain_hf(cache_dir() / "models" / EMBEDDED_MODEL)
    with torch.no_grad():
        ref = plain.generate(ids[None], max_new_tokens=24, min_new_tokens=24, do_sample=False,
                             pad_token_id=embedded.tokenizer.eos_token_id)[0, len(ids):]
    assert ours.tolist() == ref.tolist()


def test_tiny_models_load_hook_generate(tiny):
    ids = torch.tensor(tiny.tokenizer.encode("Let me think"))
    out = generate(tiny, ids, max_new_tokens=6, capture_layers=[0, "last"], stop_ids=())[0]
    assert out.token_ids.shape == (6,)
    assert out.states[tiny.n_layers - 1].shape == (6, tiny.d_model)
    # the state captured at step t equals the teacher-forced hook value at the position predicting t
    full = torch.cat([ids, out.token_ids[:-1]])
    names = [tiny.hook_name(0), tiny.hook_name("last")]
    with torch.no_grad():
        _, cache = tiny.bridge.run_with_cache(full[None], names_filter=lambda n: n in names)
    for layer, name in zip([0, tiny.n_layers - 1], names):
        torch.testing.assert_close(out.states[layer], cache[name][0, len(ids) - 1:], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("layer,expected", [(0, 0), (2, 2), (-1, 2), (-3, 0), ("last", 2), ("1", 1)])
def test_resolve_layer(tiny, layer, expected):
    assert tiny.n_layers == 3
    assert tiny.resolve_layer(layer) == expected


@pytest.mark.parametrize("layer", [3, -4, 100, "middle", 1.5, True])
def test_resolve_layer_out_of_range_names_range(tiny, layer):
    with pytest.raises(ValueError, match=r"0\.\.2|int, a negative int or 'last'"):
        tiny.resolve_layer(layer)


def test_offline_hub_id_fails_fast_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as err:
        load_model("deepseek-ai/DeepSeek-R1-Distill-Llama-8B")
    assert time.monotonic() - start < 15  # a generous bound: a retry storm takes minutes
    message = str(err.value)
    assert "\n" not in message and "huggingface-cli download" in message
    assert err.value.__cause__ is None and (err.value.__context__ is None or err.value.__suppress_context__)


def test_unknown_name_and_bad_directory(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="neither"):
        load_model("no-such-model")
    with pytest.raises(ModelNotAvailableError, match="config.json"):
        load_model(str(tmp_path))


def test_local_directory_loads(embedded):
    local = load_model(str(cache_dir() / "models" / EMBEDDED_MODEL))
    assert local.source.startswith("local:") and local.n_layers == 30


def test_corrupt_gguf_is_rejected(monkeypatch, tmp_path):
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"not a gguf")
    monkeypatch.setenv("MIPEAKS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "_embedded_gguf", lambda: fake)
    with pytest.raises(ModelNotAvailableError, match="sha256"):
        load_model(EMBEDDED_MODEL)


def test_trust_remote_code_off_by_default_and_dtypes(embedded):
    assert inspect.signature(load_model).parameters["trust_remote_code"].default is False
    bf16 = load_model(EMBEDDED_MODEL, dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        load_model(EMBEDDED_MODEL, dtype="int3")



def test_a_second_converter_waits_for_the_first(tmp_path, monkeypatch):
    """Two processes loading the embedded model into a fresh cache (torchrun ranks, test workers)
    must not convert over each other: the second waits on the cache's lock, then reuses the copy.
    The conversion itself is replaced by a recorder here (its real run: the test above)."""
    import threading

    from filelock import FileLock

    monkeypatch.setenv("MIPEAKS_CACHE", str(tmp_path))
    converted: list[Path] = []

    def convert(target: Path) -> None:
        converted.append(target)
        target.mkdir(parents=True)
        (target / "mipeaks-source.txt").write_text(f"{models._GGUF_SHA256} test\n")

    monkeypatch.setattr(models, "_convert_embedded", convert)
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    results: list[Path] = []
    with FileLock(str(models_dir / f".{EMBEDDED_MODEL}.lock")):  # another process is converting
        second = threading.Thread(target=lambda: results.append(models._embedded_snapshot()))
        second.start()
        second.join(timeout=2)
        assert second.is_alive() and not converted, "the second converter did not wait for the lock"
    second.join(timeout=60)
    assert converted == [models_dir / EMBEDDED_MODEL] and results == converted
    assert models._embedded_snapshot() == results[0] and len(converted) == 1  # a converted copy is reused
