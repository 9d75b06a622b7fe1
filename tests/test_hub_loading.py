"""The hub loading path of ``load_model``, offline, from a Hugging Face cache laid out by hand.

A tiny random Llama is saved, then placed where ``huggingface_hub`` keeps a downloaded snapshot
(``<HF_HUB_CACHE>/models--org--name/snapshots/<commit>/`` with ``refs/main`` naming the commit).
``load_model("org/name")`` runs in a fresh interpreter (the cache location is read at import
time) with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"

LOAD = """
import json, sys, torch
from mipeaks.models import load_model
name, revision = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
model = load_model(name, revision=revision)
ids = torch.tensor([[1, 2, 3, 4]])
logits = model.hf_model(input_ids=ids).logits[0, -1]
print(json.dumps({"source": model.describe()["source"], "n_layers": model.n_layers,
                  "logits": logits[:8].tolist()}))
"""


def _load(hf_home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("TRANSFORMERS_CACHE", None)
    return subprocess.run([sys.executable, "-c", LOAD, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.heavy
def test_hub_id_loads_offline_from_a_cache_snapshot(tokenizer_dir, tmp_path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                         tie_word_embeddings=False)
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config).float().eval()
    repo = tmp_path / "hf" / "hub" / "models--tiny-org--tiny-llama"
    snapshot = repo / "snapshots" / COMMIT
    hf.save_pretrained(snapshot)
    tok.save_pretrained(snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    with torch.inference_mode():
        want = hf(input_ids=torch.tensor([[1, 2, 3, 4]])).logits[0, -1, :8].tolist()

    proc = _load(tmp_path / "hf", "tiny-org/tiny-llama")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["source"] == "hub:tiny-org/tiny-llama@main (local HF cache)" and got["n_layers"] == 2
    torch.testing.assert_close(torch.tensor(got["logits"]), torch.tensor(want), rtol=1e-5, atol=1e-5)

    pinned = _load(tmp_path / "hf", "tiny-org/tiny-llama", COMMIT)  # a pinned revision resolves offline too
    assert pinned.returncode == 0 and f"@{COMMIT} (local HF cache)" in pinned.stdout

    # an id missing from the cache: tests/test_models.py::test_offline_hub_id_fails_fast_with_one_line
