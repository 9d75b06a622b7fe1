"""Every config is validated when it is built, before a model loads or a file is written (issue 12.9)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mipeaks import book, data
from mipeaks.collect import CollectConfig, collect
from mipeaks.data import Problem
from mipeaks.evaluate import EvalConfig, SuppressionSweepConfig, TTTSSweepConfig, evaluate
from mipeaks.models import ModelNotAvailableError
from mipeaks.pipeline import CompareConfig, MIConfig, collect_run, run_dir
from mipeaks.theory import BoundsConfig

PROBLEMS = [Problem(id=f"p{i}", question=f"What is {i} + 2?", solution=f"{i} + 2 = {i + 2}", answer=str(i + 2))
            for i in range(3)]
NO_MODEL = "nobody/no-such-model"  # fails to load offline: reaching the loader would raise ModelNotAvailableError


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text, f"not one line: {text!r}"
    return text


@pytest.mark.parametrize("n", [-1, 0])
def test_n_below_one_fails_before_the_model_loads(n, tmp_path) -> None:
    with pytest.raises(ValueError) as err:
        evaluate(NO_MODEL, PROBLEMS, EvalConfig(out_dir=str(tmp_path)), n=n, progress=False)
    assert "EvalConfig.n must be >= 1 or None" in _one_line(err) and repr(n) in str(err.value)
    assert not list(tmp_path.iterdir()), "a manifest or record was written"


def test_n_above_the_problems_given_is_an_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="n=4 problems asked for but only 3 given"):
        evaluate(NO_MODEL, PROBLEMS, EvalConfig(out_dir=str(tmp_path)), n=4, progress=False)


def test_intervention_params_are_type_checked_before_the_model_loads(tmp_path) -> None:
    with pytest.raises(TypeError, match="RecycleConfig.layer must be int, got 'abc'"):
        EvalConfig(intervention="recycle", params={"layer": "abc"})
    with pytest.raises(ValueError, match=r"RecycleConfig.p must be in \[0, 1\], got 1.5"):
        evaluate(NO_MODEL, PROBLEMS, EvalConfig(out_dir=str(tmp_path)), intervention="recycle",
                 params={"layer": 1, "p": 1.5}, progress=False)
    with pytest.raises(TypeError, match="TTTSConfig.answer_tokens must be int"):
        EvalConfig(intervention="ttts", params={"answer_tokens": "16"})
    assert not list(tmp_path.iterdir())


def test_suppress_needs_words() -> None:
    with pytest.raises(ValueError, match="'suppress' must name words or ids"):
        EvalConfig(intervention="suppress")
    with pytest.raises(ValueError, match="'suppress' must name words or ids"):
        EvalConfig(intervention="suppress", params={"words": [], "case_sensitive": True})
    assert EvalConfig(intervention="suppress", params={"ids": [5]}).params == {"ids": [5]}
    SuppressionSweepConfig()  # the sweep fills each arm's words itself


@pytest.mark.parametrize("cls", [EvalConfig, CollectConfig, MIConfig, CompareConfig, TTTSSweepConfig])
def test_a_string_in_an_int_field_names_the_field_and_type(cls) -> None:
    with pytest.raises(TypeError) as err:
        cls(max_new_tokens="abc")
    assert _one_line(err) == f"{cls.__name__}.max_new_tokens must be int, got 'abc' (str)"


@pytest.mark.parametrize("field, value", [("n", 2.5), ("batch_size", True), ("params", ["words"]),
                                          ("seed", "0"), ("out_dir", 3)])
def test_every_field_is_type_checked(field, value) -> None:
    with pytest.raises(TypeError, match=f"EvalConfig.{field} must be"):
        EvalConfig(**{field: value})


def test_numbers_and_paths_are_normalised(tmp_path) -> None:
    assert MIConfig(sigma=50).sigma == 50.0 and isinstance(MIConfig(sigma=50).sigma, float)
    assert EvalConfig(out_dir=tmp_path).out_dir == str(tmp_path)  # a Path becomes a JSON-able str
    assert TTTSSweepConfig(budgets=[8, 16]).budgets == (8, 16)


@pytest.mark.parametrize("cls", [EvalConfig, CollectConfig, MIConfig])
def test_unknown_prompt_style_lists_the_styles(cls) -> None:
    with pytest.raises(ValueError) as err:
        cls(prompt_style="rwa")
    text = _one_line(err)
    assert f"{cls.__name__}.prompt_style must be one of" in text and "did you mean 'raw'" in text
    assert all(style in text for style in data.PROMPT_STYLES)


def test_empty_question_fails_before_the_model_loads_and_writes_nothing(tmp_path) -> None:
    empty = [*PROBLEMS[:1], Problem(id="blank", question="  ", solution="s", answer="1")]
    with pytest.raises(ValueError, match="problem 'blank' has an empty question"):
        evaluate(NO_MODEL, empty, EvalConfig(prompt_style="raw", out_dir=str(tmp_path)), progress=False)
    with pytest.raises(ValueError, match="problem 'blank' has an empty question"):
        collect(None, empty, CollectConfig(), tmp_path / "run")  # checked before the model is touched
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="unique: 'p0' appears twice"):
        evaluate(NO_MODEL, PROBLEMS + PROBLEMS[:1], EvalConfig(out_dir=str(tmp_path)), progress=False)


def test_the_loader_is_reached_once_the_inputs_are_valid(tmp_path) -> None:
    """The checks above fail for their own reason, not because the model cannot load."""
    with pytest.raises(ModelNotAvailableError):
        evaluate(NO_MODEL, PROBLEMS, EvalConfig(out_dir=str(tmp_path)), progress=False)


def test_collect_run_checks_the_problems_before_loading(tmp_path) -> None:
    path = tmp_path / "three.jsonl"
    path.write_text("".join(json.dumps({"question": p.question, "answer": f"x #### {p.answer}"}) + "\n"
                            for p in PROBLEMS))
    with pytest.raises(ValueError, match="asked for n=5"):
        collect_run(MIConfig(model=NO_MODEL, n=5, data_path=str(path), run_root=str(tmp_path / "runs")))
    assert not (tmp_path / "runs").exists()


def test_layer_spellings_share_one_run_directory() -> None:
    assert CollectConfig(layer="5").layer == 5 and MIConfig(layer=" -2 ").layer == -2
    assert run_dir(MIConfig(layer=5)) == run_dir(MIConfig(layer="5"))
    assert run_dir(MIConfig(layer="Last")) == run_dir(MIConfig(layer="last"))
    assert CompareConfig(contrast_layer="MIDDLE").contrast_layer == "middle"
    with pytest.raises(ValueError) as err:
        MIConfig(layer="five")
    assert _one_line(err) == "MIConfig.layer must be an int (negative: from the end) or 'last', got 'five'"
    with pytest.raises(ValueError, match="'middle' or None, got 'mid'"):
        CompareConfig(contrast_layer="mid")


@pytest.mark.parametrize("cls, bad", [
    (EvalConfig, dict(device="tpu")), (MIConfig, dict(device="gpu")), (EvalConfig, dict(dtype="fp8")),
    (CollectConfig, dict(dataset="gsm8")), (EvalConfig, dict(grading="exact")), (MIConfig, dict(tau=-1.0)),
    (MIConfig, dict(sigma=0.0)), (MIConfig, dict(top_k=0)), (CollectConfig, dict(batch_size=0)),
    (MIConfig, dict(n=0)), (EvalConfig, dict(intervention="steer")),
])
def test_bad_values_name_the_field(cls, bad) -> None:
    (field, value), = bad.items()
    with pytest.raises(ValueError) as err:
        cls(**bad)
    assert _one_line(err).startswith(f"{cls.__name__}.{field} must be") and repr(value) in str(err.value)


def test_datasets_come_from_the_registry(monkeypatch) -> None:
    with pytest.raises(ValueError, match="did you mean 'gsm8k'"):
        EvalConfig(dataset="gsm8")
    monkeypatch.setitem(data.DATASETS, "toyset", data.DATASETS["gsm8k"])
    assert EvalConfig(dataset="toyset").dataset == "toyset" and CollectConfig(dataset="toyset").dataset == "toyset"


def test_bounds_config_and_load_problems_arguments() -> None:
    with pytest.raises(TypeError, match="BoundsConfig.points must be int, got 'abc'"):
        BoundsConfig(points="abc")
    with pytest.raises(ValueError, match="BoundsConfig.points must be >= 2, got 1"):
        BoundsConfig(points=1)
    assert BoundsConfig(h_y_bits=2).h_y_bits == 2.0
    with pytest.raises(ValueError, match="unknown dataset None"):
        data.load_problems(None)
    with pytest.raises(ValueError, match="n must be a positive int or None, got '5'"):
        data.load_problems("gsm8k", "5")


def test_sweep_configs(tmp_path) -> None:
    with pytest.raises(TypeError, match="SuppressionSweepConfig.ks must be tuple"):
        SuppressionSweepConfig(ks=("a",))
    with pytest.raises(ValueError, match="thinking_list must be 'paper' or an existing"):
        SuppressionSweepConfig(thinking_list=str(tmp_path / "missing.jsonl"))
    with pytest.raises(ValueError, match="TTTSSweepConfig.budgets must be non-empty"):
        TTTSSweepConfig(budgets=())


# ---------------------------------------------------------------------------
# Notebook parameters (papermill)
# ---------------------------------------------------------------------------

BOUNDS = {f.name: getattr(BoundsConfig(), f.name) for f in dataclasses.fields(BoundsConfig)}


def _history(*injected: str) -> dict:
    """A kernel namespace as papermill leaves it: ``_ih`` holds every executed cell's source."""
    return {"_ih": ["", "from mipeaks import book", "n_classes = 4\npoints = 5", *injected]}


def test_config_from_rejects_a_misspelt_injected_parameter() -> None:
    namespace = {**BOUNDS, **_history("# Parameters\npoint = 9\n"), "point": 9}
    with pytest.raises(ValueError) as err:
        book.config_from(BoundsConfig, namespace)
    assert _one_line(err).startswith("unknown parameter 'point' (did you mean 'points'?): BoundsConfig has [")
    assert book.injected_parameters(namespace) == ["point"]
    # a correct injection passes, and names defined by other cells are not parameters
    ok = book.config_from(BoundsConfig, {**BOUNDS, **_history("# Parameters\npoints = 9\n"), "points": 9, "x": 1})
    assert ok.points == 9


@pytest.mark.heavy
def test_papermill_run_fails_on_a_misspelt_or_mistyped_parameter(tmp_path) -> None:
    """End to end: a two-cell notebook executed by papermill in a real kernel."""
    nbformat = pytest.importorskip("nbformat")
    papermill = pytest.importorskip("papermill")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("max_new_tokens = 8\nlayer = 'last'\n")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("from mipeaks import book\nfrom mipeaks.collect import CollectConfig\n"
                                          "defaults = {f: getattr(CollectConfig(), f) for f in "
                                          "CollectConfig.__dataclass_fields__}\nglobals().update(defaults)"),
                params, nbformat.v4.new_code_cell("config = book.config_from(CollectConfig, globals())\n"
                                                  "print(config.max_new_tokens, config.layer)")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(src))
    run = dict(kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    out = papermill.execute_notebook(str(src), str(tmp_path / "ok.ipynb"), parameters={"layer": "3"}, **run)
    assert out.cells[-1].outputs[0]["text"] == "8 3\n"  # "3" and 3 are one layer
    for params, ename, message in [({"max_new_token": 4}, "ValueError", "did you mean 'max_new_tokens'?"),
                                   ({"max_new_tokens": "abc"}, "TypeError",
                                    "CollectConfig.max_new_tokens must be int, got 'abc' (str)")]:
        with pytest.raises(papermill.PapermillExecutionError) as err:
            papermill.execute_notebook(str(src), str(tmp_path / "bad.ipynb"), parameters=params, **run)
        assert err.value.ename == ename and message in err.value.evalue
