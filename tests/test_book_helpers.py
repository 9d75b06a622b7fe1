"""The notebook helpers of ``mipeaks.book``: parameters cells, presets, number printing, labels, provenance."""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np
import pytest
import torch

from mipeaks import book
from mipeaks.theory import BoundsConfig

NOTEBOOK = '''# %%
from mipeaks import book

# %% tags=["parameters"]
model = "org/some-model"
n = 5
ks = [0, 2]
run_root = str(book.REPO_ROOT)

# %%
print(n)
'''


@pytest.fixture
def notebook(tmp_path):
    path = tmp_path / "07_recycling.py"
    path.write_text(NOTEBOOK)
    return path


def test_notebook_parameters(notebook, tmp_path) -> None:
    assert book.notebook_parameters(notebook) == {"model": "org/some-model", "n": 5, "ks": [0, 2],
                                                  "run_root": "str(book.REPO_ROOT)"}  # non-literal: its source
    none = tmp_path / "none.py"
    none.write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="expected exactly one 'parameters' cell, found 0"):
        book.notebook_parameters(none)


def test_presets(notebook, tmp_path) -> None:
    smoke = book.load_preset("cpu-smoke")
    assert set(smoke) == {"description", "shared", "notebooks"} and smoke["shared"]
    with pytest.raises(FileNotFoundError, match="available: .*'cpu-smoke'"):
        book.load_preset("no-such-preset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("shared: {}\nchapters: {}\n")
    with pytest.raises(ValueError, match=r"unknown top-level keys \['chapters'\]"):
        book.load_preset(bad)
    preset = {"shared": {"model": "org/big", "device": "cuda"}, "notebooks": {"07_recycling": {"n": 100}}}
    # shared names apply where the chapter has them (no 'device' here); the chapter's own section wins
    assert book.preset_parameters(preset, notebook) == {"model": "org/big", "n": 100}
    with pytest.raises(KeyError, match=r"preset sets \['layer'\] for 07_recycling"):
        book.preset_parameters({"notebooks": {"07_recycling": {"layer": 3}}}, notebook)


def test_print_numbers_formats(capsys) -> None:
    book.print_numbers({"neg zero": -0.0004, "inf": float("-inf"), "np": np.float32(0.5), "t": torch.tensor(2.25),
                        "flag": True, "none": None, "text": "a b", "arr": np.array([1, 2]), "big": 123456789,
                        "nan": math.nan})
    assert capsys.readouterr().out.splitlines() == [
        "neg zero : 0.000", "inf      : -inf", "np       : 0.500", "t        : 2.250", "flag     : True",
        "none     : None", "text     : a b", "arr      : [1, 2]", "big      : 123456789", "nan      : nan"]


def test_labels_and_version() -> None:
    cfg = BoundsConfig()
    assert book.ours_label({"model": "org/Name-7B/", "n": 5, "device": "cpu"}) == "mipeaks: Name-7B, n=5, CPU"
    assert book.ours_label(cfg) == "mipeaks: ?, CPU"
    assert book.label("paper", "M") == "paper: M"
    assert book.version_string().startswith("mipeaks 0.1.0, commit ")
    with pytest.raises(TypeError, match="expected a dataclass instance or a mapping, got int"):
        book.ours_label(3)


def test_provenance_cell(capsys) -> None:
    cfg = BoundsConfig(n_classes=4)
    table = book.provenance_cell(cfg, started=time.time() - 2.0, dataset="synthetic tables")
    values = table["value"].to_dict()
    assert values["BoundsConfig.n_classes"] == "4" and values["dataset"] == "synthetic tables"
    assert values["model"] == "none (no model is run in this chapter)"
    assert float(values["wall time"].removesuffix(" s")) >= 2.0
    assert {"mipeaks version", "git commit", "device", "libraries", "python", "run at (UTC)"} <= set(values)


def test_init_notebook_prints_warnings_without_paths(monkeypatch, capsys) -> None:
    for name in ("TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_PROGRESS_BARS"):  # restored after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    with warnings.catch_warnings():
        before = time.time()
        started = book.init_notebook()
        assert before <= started <= time.time()
        assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
        warnings.warn("weights in /home/someone/.cache/x/model.safetensors look odd", UserWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)  # silenced: differs between environments
    err = capsys.readouterr().err
    assert err == "UserWarning: weights in model.safetensors look odd\n"


def test_print_numbers_significant_digits(capsys) -> None:
    book.print_numbers({"small": 2.1234e-5, "mid": 0.43219, "big": 1234.5, "n": 7, "seq": [0.0123456, 2.0]},
                       significant=2)
    assert capsys.readouterr().out.splitlines() == [
        "small : 2.1e-05", "mid   : 0.43", "big   : 1.2e+03", "n     : 7", "seq   : [0.012, 2]"]
