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
        assert os.environ["MIPEAKS_WRITER_WAIT"] == str(book.CHAPTER_WRITER_WAIT)  # chapters share runs: wait
        warnings.warn("weights in /home/someone/.cache/x/model.safetensors look odd", UserWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)  # silenced: differs between environments
    err = capsys.readouterr().err
    assert err == "UserWarning: weights in model.safetensors look odd\n"


def test_print_numbers_significant_digits(capsys) -> None:
    book.print_numbers({"small": 2.1234e-5, "mid": 0.43219, "big": 1234.5, "n": 7, "seq": [0.0123456, 2.0]},
                       significant=2)
    assert capsys.readouterr().out.splitlines() == [
        "small : 2.1e-05", "mid   : 0.43", "big   : 1.2e+03", "n     : 7", "seq   : [0.012, 2]"]


# ---------------------------------------------------------------------------
# Text generated from the run (issue 11 §1) and the overview (§6)
# ---------------------------------------------------------------------------

CPU_CFG = {"model": "smollm2-135m-instruct", "dataset": "gsm8k", "n": 20, "dtype": "float32", "device": "cpu",
           "prompt_style": "chat", "max_new_tokens": 128, "layer": "last"}
R1_CFG = {**CPU_CFG, "model": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "dataset": "math-train", "n": 100,
          "dtype": "bfloat16", "prompt_style": "raw", "max_new_tokens": 512}


def test_paper_model_names() -> None:
    assert book.paper_model("deepseek-ai/DeepSeek-R1-Distill-Llama-8B") == "R1-Llama-8B"
    assert book.paper_model("/data/models/deepseek-r1-distill-qwen-14b/") == "R1-Qwen-14B"  # a local copy
    assert book.paper_model("Qwen/Qwen2.5-14B") == "Qwen2.5-14B"
    assert book.paper_model("smollm2-135m-instruct") is None
    assert book.paper_model("/tmp/tiny-llama") is None
    assert book.model_name(CPU_CFG) == "SmolLM2-135M-Instruct"
    assert book.model_name(R1_CFG) == "R1-Llama-8B"
    assert book.model_name({"model": "/tmp/x/tiny-llama"}) == "tiny-llama"


def test_model_box_names_the_run_not_the_cpu_default() -> None:
    box = book.model_box(R1_CFG, settings="layer last, sigma=50")
    assert box.startswith("```{important}") and box.endswith("```")
    assert "**R1-Llama-8B**" in box and "bfloat16" in box
    assert "100 MATH train problems (a seeded random sample, seed 0)" in box
    assert "It is the paper's R1-Llama-8B." in box and "not one of the paper's models" not in box
    assert "Settings: layer last, sigma=50." in box
    tiny = {**CPU_CFG, "model": "/tmp/runs/tiny-llama", "n": 3, "max_new_tokens": 8}
    box = book.model_box(tiny, paper_settings=book.PAPER_MI_SETTINGS, note="No pair.")
    assert "**tiny-llama**" in box and "the first 3 GSM8K test problems" in box
    assert "**not one of the paper's models**" in box and "SmolLM2" not in box and "135M" not in box
    assert "* `max_new_tokens` = `8` (the paper: `512`)" in box and "* `n` = `3` (the paper: `100`)" in box
    assert "`layer`" not in box  # same as the paper's: not listed
    assert box.splitlines()[-2] == "No pair."
    assert book.model_box(tiny, n=2).count("the first 2 GSM8K test problems") == 1  # n actually run wins
    assert "all MATH-500 problems" in book.model_box({**tiny, "dataset": "math500", "n": None})


def test_figure_title_and_reading() -> None:
    assert (book.figure_title("MI trajectories", CPU_CFG)
            == "MI trajectories: SmolLM2-135M-Instruct, GSM8K test, n=20 (not one of the paper's models)")
    assert book.figure_title("Peaks", R1_CFG, n=6) == "Peaks: R1-Llama-8B, MATH train, n=6"
    assert book.reading("One.", None, "", " Two. ") == "**Reading.** One. Two."
    assert book.reading(None) == ""


def test_differences_lists_only_changed_fields() -> None:
    assert book.differences(R1_CFG) == ""  # dtype is not one of the paper's MI settings
    assert book.differences(CPU_CFG).splitlines() == [
        "* `dataset` = `'gsm8k'` (the paper: `'math-train'`)", "* `n` = `20` (the paper: `100`)",
        "* `prompt_style` = `'chat'` (the paper: `'raw'`)", "* `max_new_tokens` = `128` (the paper: `512`)"]


def test_count_interval_garwood() -> None:
    # exact Poisson 95% limits (Garwood 1936 tables): k=0: (0, 3.689); k=2: (0.242, 7.225); k=10: (4.795, 18.39)
    assert book.count_interval(0) == pytest.approx((0.0, 3.6889), abs=1e-4)
    assert book.count_interval(2) == pytest.approx((0.2422, 7.2247), abs=1e-4)
    assert book.count_interval(10) == pytest.approx((4.7954, 18.3904), abs=1e-4)
    with pytest.raises(ValueError, match="non-negative integer, got -1"):
        book.count_interval(-1)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.5"):
        book.count_interval(3, level=1.5)


def test_tables_show_full_text() -> None:
    book.init_notebook()
    import pandas as pd

    assert pd.get_option("display.max_colwidth") is None
    long = "x" * 120
    assert long in pd.DataFrame({"value": [long]}).to_html()


def _notebook_with(tmp_path, stem: str, payload: dict | None) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("book.save_key_numbers(...)")
    if payload is not None:
        cell.outputs = [nbformat.v4.new_output("display_data", data={book.KEY_NUMBERS_MIME: payload})]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    nbformat.write(nb, str(tmp_path / f"{stem}.ipynb"))


def test_overview_statuses_from_numbers_and_model(tmp_path) -> None:
    from mipeaks import overview

    ch2 = {"mean IQR peak ratio": 0.05, "mean steps": 510.0}  # R1-Llama-8B's published ratio: 0.048
    _notebook_with(tmp_path, "02_peak_statistics", book.key_numbers_payload("02_peak_statistics", ch2, R1_CFG))
    _notebook_with(tmp_path, "04_thinking_tokens", book.key_numbers_payload(
        "04_thinking_tokens", {"paper top-15 words in our top-15": 3, "top word 1: So (peaks, lift)": [9, 2.0]},
        R1_CFG))
    _notebook_with(tmp_path, "01_mi_trajectories", book.key_numbers_payload(
        "01_mi_trajectories", {"problems": 20, "problems with >= 1 IQR peak": 6,
                               "MI at IQR peaks (min, max)": [1.2, 1.9]}, CPU_CFG))
    _notebook_with(tmp_path, "05_error_bounds", book.key_numbers_payload(
        "05_error_bounds", {"random tables": 200, "tables violating Thm 1": 0, "tables violating Thm 2": 1},
        BoundsConfig()))
    _notebook_with(tmp_path, "08_ttts", book.key_numbers_payload(
        "08_ttts", {}, R1_CFG, findings={"Fig. 7": {"ours": "accuracy 0.8 -> 0.85", "holds": True}}))
    _notebook_with(tmp_path, "07_recycling", None)  # executed, but without key numbers
    records = overview.read_key_numbers(tmp_path)
    assert set(records) == {"01_mi_trajectories", "02_peak_statistics", "04_thinking_tokens", "05_error_bounds",
                            "08_ttts"}
    table = overview.claims_table(records).set_index("paper")
    status = table["status"].to_dict()
    assert status["Table 1"] == "reproduced"  # 0.05 within a factor 2 of 0.048
    assert status["Fig. 4, 8"] == "not reproduced"  # 3 of 15 words
    assert status["Fig. 1–2"] == "not reproducible on this model"  # SmolLM2 can never reproduce
    assert status["Theorems 1–2"] == "fails"  # one violating table
    assert status["Fig. 7"] == "reproduced" and table.loc["Fig. 7", "our numbers"] == "accuracy 0.8 -> 0.85"
    assert status["Fig. 6"] == status["Fig. 5"] == "pending a GPU preset run"  # no key numbers
    assert status["Fig. 3, Table 2"] == "pending a GPU preset run"
    assert status["Table 3"] == "not run"
    assert set(status.values()) <= set(overview.STATUSES)
    assert table.loc["Table 1", "our run (model, n, hardware)"] == "R1-Llama-8B, n=100, CPU"
    assert "(paper, same model: 0.048)" in table.loc["Table 1", "our numbers"]
    # far from the published ratio: not reproduced
    far = book.key_numbers_payload("02_peak_statistics", {**ch2, "mean IQR peak ratio": 0.2}, R1_CFG)
    assert overview.claims_table({"02_peak_statistics": far}).set_index("paper").loc["Table 1", "status"] == (
        "not reproduced")
    text = overview.claims_markdown(tmp_path)
    assert text.splitlines()[0].startswith("| paper | the paper's finding |")
    assert "{doc}`2 <../notebooks/02_peak_statistics>`" in text and "**reproduced**" in text


def test_key_numbers_payload_is_json() -> None:
    import json

    payload = book.key_numbers_payload("01_x", {"a": np.float32(0.5), "b": [np.int64(2), math.nan], "c": True},
                                       CPU_CFG)
    assert json.loads(json.dumps(payload))["key_numbers"] == {"a": 0.5, "b": [2, None], "c": True}
    assert payload["paper_model"] is None and payload["model_name"] == "SmolLM2-135M-Instruct"
    assert payload["n"] == 20 and payload["hardware"] == "CPU"


@pytest.mark.parametrize("stem", ["01_mi_trajectories", "02_peak_statistics", "03_reasoning_vs_base",
                                  "04_thinking_tokens", "09_what_hsic_measures"])
def test_mi_chapters_type_no_model_or_run_size(stem) -> None:
    """Issue 11 §1: what names the model or the run's size is generated, not typed into the chapter."""
    import jupytext

    nb = jupytext.read(str(book.NOTEBOOK_DIR / f"{stem}.py"))
    text = "\n".join(c.source for c in nb.cells if "parameters" not in c.metadata.get("tags", []))
    for typed in ("SmolLM2", "135M", "CPU default", "first 20", "our 20", "20 problems", "NOT the paper",
                  "d = 576", "sentence-initial"):
        assert typed not in text, f"{stem} types {typed!r}: generate it from the config and results"
    assert "book.model_box(" in text and "book.save_key_numbers(" in text


@pytest.mark.slow
@pytest.mark.heavy
def test_embedded_model_conversion_prints_nothing(tmp_path, monkeypatch, capfd) -> None:
    """Issue 11 §5: the one-time GGUF conversion's progress bars must not land in chapter 1."""
    from mipeaks.models import _embedded_snapshot

    monkeypatch.setenv("MIPEAKS_CACHE", str(tmp_path))
    path = _embedded_snapshot()  # a fresh cache: converts the GGUF once
    assert (path / "mipeaks-source.txt").is_file()
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out + err)[:200]


@pytest.mark.parametrize("stem", ["06_suppression", "07_recycling", "08_ttts"])
def test_eval_chapters_type_no_model_or_run_size(stem) -> None:
    """Issue 11 §1 for chapters 6-8: model, n and settings come from the run, not from typed prose."""
    import jupytext

    nb = jupytext.read(str(book.NOTEBOOK_DIR / f"{stem}.py"))
    text = "\n".join(c.source for c in nb.cells if "parameters" not in c.metadata.get("tags", []))
    for typed in ("SmolLM2", "135M", "CPU default", "NOT the paper", "30 blocks", "first 40", "a few dozen"):
        assert typed not in text, f"{stem} types {typed!r}: generate it from the config and results"
    assert "book.model_box(" in text and "book.reading(" in text and "book.save_key_numbers(" in text


def test_data_text_and_title_of_a_benchmark_sweep() -> None:
    sweep = {"model": "org/m", "datasets": ("gsm8k", "math500", "aime24"), "n": 5}
    assert book.data_text(sweep) == "the first 5 problems of each of GSM8K test, MATH-500 and AIME 2024"
    assert book.data_text({**sweep, "n": None}) == "all problems of GSM8K test, MATH-500 and AIME 2024"
    assert book.data_text({**sweep, "datasets": ("arith",)}) == "the first 5 synthetic arithmetic (arith) problems"
    assert book.figure_title("Fig. 5", sweep) == "Fig. 5: m, GSM8K test, MATH-500, AIME 2024, n=5 (not one of the paper's models)"
    box = book.model_box({**sweep, "dtype": "bfloat16", "device": "cpu"}, settings="s")
    assert "the first 5 problems of each of GSM8K test, MATH-500 and AIME 2024" in box


def test_eval_settings_accuracy_and_truncation_sentences() -> None:
    cfg = {"prompt_style": "deepseek-math", "max_new_tokens": 48, "grading": "verify", "extraction": "ours",
           "batch_size": 10}
    text = book.eval_settings(cfg, ks=[0, 5])
    assert text == ("greedy decoding, `deepseek-math` prompt, at most 48 new tokens, grading `verify`, "
                    "extraction `ours`, batch size 10; ks = [0, 5]")
    # Wilson 95% interval of 5/10: 23.66%-76.34% (textbook value)
    assert book.accuracy_text(5, 10) == "5/10 = 50% (95% Wilson interval 24%-76%)"
    with pytest.raises(ValueError):
        book.accuracy_text(1, 0)
    most = book.truncation_sentence(34, 40, 48, "k = 0")
    assert most.startswith("34 of the 40 k = 0 outputs (85%) stopped at the 48-token cap: most answers are cut off")
    assert book.truncation_sentence(0, 4, 48, "Origin").endswith("every output ended on its own.")
    assert book.truncation_sentence(1, 4, 48, "Origin").endswith("the others ended on their own.")
    with pytest.raises(ValueError):
        book.truncation_sentence(5, 4, 48, "x")


def test_arm_sentences_read_the_intervals() -> None:
    row = {"n": 10, "correct": 1, "changed": 7, "answer_changed": 3, "gold_logprob_diff": -0.5,
           "gold_logprob_diff_ci_low": -0.8, "gold_logprob_diff_ci_high": -0.2, "ref_ci_low": 0.2366,
           "ref_ci_high": 0.7634}
    text = book.arm_sentences(row, label="thinking k = 5", reference="k = 0")
    assert text.startswith("thinking k = 5: accuracy 1/10 = 10% (95% Wilson interval 2%-40%), outside k = 0's interval")
    assert "7 of 10 outputs differ from k = 0's (3 extracted answers differ)" in text
    assert "changes by -0.500 nats/token (95% interval -0.800 to -0.200): lower" in text
    spans = book.arm_sentences({**row, "correct": 5, "gold_logprob_diff_ci_high": 0.1}, label="a", reference="b")
    assert "inside b's interval" in spans and "no measurable change" in spans
    higher = book.arm_sentences({**row, "gold_logprob_diff": 0.3, "gold_logprob_diff_ci_low": 0.1,
                                 "gold_logprob_diff_ci_high": 0.5}, label="a", reference="b")
    assert ": higher" in higher
    same = book.arm_sentences({**row, "changed": 0, "answer_changed": 0}, label="a", reference="b")
    assert same.endswith("so the gold answer's log-probability is unchanged.")
    no_ref = book.arm_sentences({k: v for k, v in row.items() if not k.startswith("ref_")}, label="a", reference="b")
    assert "interval" in no_ref and "b's interval" not in no_ref


def test_task_note_of_another_model_on_arith_names_no_embedded_model() -> None:
    note = book.task_note("arith", 4, 1, max_new_tokens=8, prompt_style="raw", model="/tmp/tiny-llama-preset")
    assert "This run (tiny-llama-preset) uses `arith`" in note and "not from tiny-llama-preset's" in note
    assert "SmolLM2" not in note and "135M" not in note and "CPU default" not in note
    cpu = book.task_note("arith", 4, 1, max_new_tokens=8, prompt_style="raw", model="smollm2-135m-instruct")
    assert "SmolLM2-135M-Instruct, answers almost no GSM8K problem" in cpu


def test_recycling_layer_text() -> None:
    from mipeaks.recycling import layer_text, paper_layer

    assert [paper_layer(n) for n in (32, 28, 30, 48)] == [23, 20, 22, 35]  # round(23/31*(n-1))
    assert layer_text(23, 32) == "ℓ* = 23 (block 24 of 32): the official run's layer"
    assert layer_text(22, 30).endswith("the official run's relative depth (23 of 32 blocks)")
    assert layer_text(-1, 3) == "ℓ* = 2 (block 3 of 3): not the official run's relative depth (that would be 1)"
    with pytest.raises(ValueError):
        paper_layer(0)


def test_budget_trend_calls_a_plateau_only_when_flat_and_stopping() -> None:
    def row(correct, budget, tokens):
        return {"correct": correct, "n": 40, "budget": budget, "mean_reasoning_tokens": tokens}

    # 6/40 has Wilson interval 7%-29%: 16/40 = 40% is above it, 1/40 below, 11/40 inside
    assert "still rises" in book.budget_trend(row(6, 40, 38.8), row(16, 80, 50.0))
    assert "falls" in book.budget_trend(row(6, 40, 38.8), row(1, 80, 50.0))
    flat = book.budget_trend(row(6, 40, 38.8), row(11, 80, 40.0))
    assert "a plateau" in flat and "50% of the larger budget" in flat
    busy = book.budget_trend(row(6, 40, 38.8), row(11, 80, 71.3))  # 89% used: most outputs hit the cap
    assert "cannot tell a plateau" in busy and "a plateau." not in busy


def test_data_text_of_a_one_benchmark_sweep_names_its_sampling() -> None:
    """A sweep config has ``datasets``, not ``dataset``: its one benchmark decides the sampling rule."""
    from mipeaks.evaluate import SuppressionSweepConfig

    text = book.data_text(SuppressionSweepConfig(datasets=("math-train",), n=40))
    assert "40 MATH train problems (a seeded random sample, seed 0)" in text, text
    assert book.data_text(SuppressionSweepConfig(datasets=("gsm8k",), n=40)).startswith("the first 40 ")
