"""Shared fixtures: the embedded model, tiny random models built from a config, the shared data."""

from __future__ import annotations

import gc
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch

from mipeaks.generation import Intervention
from mipeaks.models import EMBEDDED_MODEL, cache_dir, load_model, wrap_model

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# Chapters whose runs others read go first, one per worker: 01 collects the MI run (02-04 and 09 read
# it), 06 the baseline records (07 reads them). A reader started beside its producer waits for it.
NOTEBOOKS_FIRST = ("01_mi_trajectories", "06_suppression", "08_ttts", "09_what_hsic_measures", "07_recycling")


def _schedule_rank(item) -> tuple[int, int]:
    if item.path.suffix == ".ipynb":
        stem = item.path.stem
        return 0, NOTEBOOKS_FIRST.index(stem) if stem in NOTEBOOKS_FIRST else len(NOTEBOOKS_FIRST)
    return (1 if item.get_closest_marker("heavy") else 2), 0


def pytest_collection_modifyitems(config, items) -> None:
    """Put long work first: the notebooks (nbval; producers of shared runs first), then ``heavy`` tests.

    ``make test`` runs the unit tests and nbval in one pytest-xdist session with ``--dist loadscope
    --no-loadscope-reorder``: a test file or notebook (one kernel) goes to one worker, in this
    order. Longest-first, no worker ends on a long item while the other idles.
    """
    items.sort(key=_schedule_rank)  # stable: a notebook's cells and a file's tests keep their order


@pytest.fixture(autouse=True)
def _seed_and_free(monkeypatch, tmp_path):
    """Seed torch, keep runs and evaluation records out of the repository, free memory afterwards."""
    torch.manual_seed(0)
    monkeypatch.setenv("MIPEAKS_RUNS", str(tmp_path / "runs"))
    monkeypatch.delenv("MIPEAKS_WRITER_WAIT", raising=False)  # refuse a second writer (init_notebook sets a wait)
    yield
    gc.collect()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only benchmark copies beside the checkout (tests and CI only)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark copies not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded():
    """The embedded SmolLM2-135M-Instruct, float32 on CPU (converted once into the user cache)."""
    return load_model(EMBEDDED_MODEL)


@pytest.fixture(scope="session")
def tokenizer_dir(embedded) -> Path:
    """A tokenizer saved on disk (the bridge cannot take one that exists only in memory)."""
    return cache_dir() / "models" / EMBEDDED_MODEL


TINY_ARCHS = ("llama", "qwen2", "qwen3")


def tiny_config(tok, arch: str = "llama", **overrides):
    """The config of a tiny random causal LM (hidden 64, 4 heads, 2 KV heads) over ``tok``'s vocabulary."""
    from transformers import LlamaConfig, Qwen2Config, Qwen3Config

    common = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    return {"llama": LlamaConfig, "qwen2": Qwen2Config, "qwen3": Qwen3Config}[arch](**{**common, **overrides})


class Force(Intervention):
    """Forces a fixed continuation, then the ``stop`` token (a test plug-in of ``generate``)."""

    def __init__(self, ids: list[int], stop: int):
        self.ids, self.stop = ids, stop

    def process_logits(self, step, logits):
        out = torch.full_like(logits, float("-inf"))
        out[:, self.ids[step.index] if step.index < len(self.ids) else self.stop] = 0.0
        return out


def build_tiny(arch: str, tokenizer_dir: Path, *, n_layers: int = 3, seed: int = 0):
    """A tiny random causal LM of the given architecture, wrapped in a TransformerBridge."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = tiny_config(tok, arch, num_hidden_layers=n_layers)
    torch.manual_seed(seed)
    hf = AutoModelForCausalLM.from_config(config).float().eval()
    return wrap_model(hf, tok, name=f"tiny-{arch}", source="random init from config")


def save_tiny_llama(path: Path, tokenizer_dir: Path, **overrides) -> Path:
    """Save a tiny random Llama (:func:`tiny_config`, seed 0) and its tokenizer to ``path``: a stand-in
    for a hub model in launcher, subprocess and preset tests (a process loads it in seconds)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(tiny_config(tok, **overrides)).float().eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """A tiny random Llama saved to a local directory (see :func:`save_tiny_llama`)."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama-saved"), tokenizer_dir)


@pytest.fixture(scope="session", params=TINY_ARCHS)
def tiny(request, tokenizer_dir):
    """A tiny random Llama / Qwen2 / Qwen3 model (parametrised)."""
    return build_tiny(request.param, tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_llama(tokenizer_dir):
    """A tiny random 4-block Llama (so that ``"middle"`` is a block of its own)."""
    return build_tiny("llama", tokenizer_dir, n_layers=4)


@pytest.fixture(scope="session")
def tiny_run(tiny_llama, tmp_path_factory):
    """``(config, run, trajectories)`` of 4 GSM8K problems x 12 tokens of :func:`tiny_llama`, top-3 peaks."""
    from mipeaks.collect import collect
    from mipeaks.data import load_problems
    from mipeaks.pipeline import MIConfig, run_dir, trajectories

    cfg = MIConfig(model=tiny_llama.name, n=4, max_new_tokens=12, prompt_style="raw", peak_rule="topk", top_k=3,
                   run_root=str(tmp_path_factory.mktemp("runs")))
    run = collect(tiny_llama, load_problems("gsm8k", 4), cfg.collect_config(), run_dir(cfg), progress=False)
    return cfg, run, trajectories(run, cfg)
