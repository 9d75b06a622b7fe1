"""State capture: parity with plain Hugging Face, gold representations, batching, resumable runs."""

from __future__ import annotations

import json

import pytest
import torch

from mipeaks.collect import CollectConfig, collect, generate_trace, generate_traces, gold_representation, load_run
from mipeaks.data import encode_prompt, load_problems
from mipeaks.models import EMBEDDED_MODEL, cache_dir


def _hf_layer_output(path, ids, layer):
    """Output of HF decoder layer `layer` on an un-bridged copy, via a plain torch hook."""
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    out = {}
    handle = hf.model.layers[layer].register_forward_hook(
        lambda mod, args, o: out.__setitem__("h", (o[0] if isinstance(o, tuple) else o).detach()))
    with torch.no_grad():
        hf(ids[None])
    handle.remove()
    return out["h"][0]


@pytest.mark.slow
@pytest.mark.parametrize("layer", [12, "last"])
def test_capture_matches_teacher_forced_hf_layer(embedded, layer):
    problem = load_problems("gsm8k", 1)[0]
    trace = generate_trace(embedded, encode_prompt(embedded.tokenizer, problem, "raw"), layer=layer,
                           max_new_tokens=12)
    full = torch.cat([trace.prompt_ids, trace.token_ids[:-1]])
    ref = _hf_layer_output(cache_dir() / "models" / EMBEDDED_MODEL, full, trace.layer)
    torch.testing.assert_close(trace.states, ref[len(trace.prompt_ids) - 1:], rtol=1e-4, atol=1e-4)
    assert trace.states.shape == (len(trace.token_ids), embedded.d_model)


@pytest.mark.slow
def test_gold_is_last_token_of_solution(embedded):
    problem = load_problems("gsm8k", 1)[0]
    gold = gold_representation(embedded, problem.solution, layer=-1)
    ids = torch.tensor(embedded.tokenizer.encode(problem.solution))
    ref = _hf_layer_output(cache_dir() / "models" / EMBEDDED_MODEL, ids, embedded.n_layers - 1)[-1]
    # float32 through two attention paths: 1.6e-4 seen at one thread; another token would differ by O(1)
    torch.testing.assert_close(gold, ref, rtol=1e-3, atol=1e-3)
    answer_only = gold_representation(embedded, problem.answer, layer=-1)
    assert not torch.allclose(gold, answer_only)


def test_batched_capture_equals_one_by_one(tiny):
    prompts = [torch.tensor(tiny.tokenizer.encode(t)) for t in ("Hi", "Let us add 2 and 3 then", "So")]
    batched = generate_traces(tiny, prompts, layer="last", max_new_tokens=8)
    for prompt, b in zip(prompts, batched):
        single = generate_traces(tiny, [prompt], layer="last", max_new_tokens=8)[0]
        assert single.token_ids.tolist() == b.token_ids.tolist()
        torch.testing.assert_close(single.states, b.states, rtol=1e-4, atol=1e-4)


def test_per_row_stop(tiny):
    prompts = [torch.tensor(tiny.tokenizer.encode(t)) for t in ("a b c", "x")]
    first = generate_traces(tiny, prompts, max_new_tokens=6)
    stop = int(first[0].token_ids[2])  # make row 0 stop at its 3rd token
    out = generate_traces(tiny, prompts, max_new_tokens=6, interventions=())
    from mipeaks.generation import generate
    rows = generate(tiny, prompts, max_new_tokens=6, stop_ids=[stop], capture_layers=["last"])
    assert rows[0].stop_reason == "eos" and rows[0].token_ids[-1] == stop
    assert len(rows[0].token_ids) == list(first[0].token_ids).index(stop) + 1
    assert rows[0].states[tiny.n_layers - 1].shape[0] == len(rows[0].token_ids)
    assert out[1].token_ids.tolist()[: len(rows[1].token_ids)] == rows[1].token_ids.tolist()


@pytest.mark.slow
def test_run_resumes_with_identical_files(embedded, tmp_path):
    problems = load_problems("gsm8k", 3)
    cfg = CollectConfig(n=3, max_new_tokens=6, batch_size=2)
    whole = collect(embedded, problems, cfg, tmp_path / "whole", progress=False)
    part = collect(embedded, problems, cfg, tmp_path / "part", progress=False, stop_after=1)
    assert len(part) == 2  # the first batch of two
    resumed = collect(embedded, problems, cfg, tmp_path / "part", progress=False)
    assert len(resumed) == len(whole) == 3
    for a, b in zip(whole.record_paths(), resumed.record_paths()):
        assert a.read_bytes() == b.read_bytes()
        assert a.with_suffix(".json").read_bytes() == b.with_suffix(".json").read_bytes()
    manifest = json.loads((tmp_path / "part" / "manifest.json").read_text())
    assert manifest["config"]["batch_size"] == 2 and manifest["hook"] == "blocks.29.hook_resid_post"
    assert manifest["versions"]["torch"] and manifest["model"]["name"] == EMBEDDED_MODEL
    traces = list(load_run(tmp_path / "part").traces())
    assert [t.problem_id for t in traces] == ["0", "1", "2"]
    assert all(t.gold.shape == (576,) and t.states.shape[0] == len(t.token_ids) for t in traces)
    with pytest.raises(ValueError, match="different config"):
        collect(embedded, problems, CollectConfig(n=3, max_new_tokens=7, batch_size=2), tmp_path / "part")


def test_config_validation():
    with pytest.raises(ValueError, match="gold"):
        CollectConfig(gold="boxed")


def test_git_commit_is_dirty_only_for_sources(tmp_path) -> None:
    import subprocess

    from mipeaks.provenance import git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "mipeaks").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "mipeaks" / "x.py").write_text("a = 1\n")
    (tmp_path / "notebooks" / "01.ipynb").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    head = git_commit(root=tmp_path)
    assert head is not None and len(head) == 40 and not head.endswith("-dirty")
    (tmp_path / "notebooks" / "01.ipynb").write_text('{"executed": true}\n')  # re-executed outputs
    assert git_commit(root=tmp_path) == head
    (tmp_path / "mipeaks" / "x.py").write_text("a = 2\n")  # code that changes numbers
    assert git_commit(root=tmp_path) == head + "-dirty"
    assert git_commit(root=tmp_path / "nowhere") is None
