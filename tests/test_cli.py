"""The ``mipeaks`` command: help everywhere, options generated from the configs, end-to-end runs on the
embedded model, and one-line errors (exit 2, no traceback) for every bad value."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from mipeaks import cli, mi
from mipeaks.collect import CollectConfig, load_run
from mipeaks.evaluate import EvalConfig, SuppressionSweepConfig, TTTSSweepConfig
from mipeaks.pipeline import MIConfig

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "notebooks" / "params"


def _run(*args: str, module: str = "mipeaks", timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("MIPEAKS_DEBUG", None)
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=timeout)


def _one_line_error(capsys, argv: list[str]) -> str:
    """Run ``mipeaks argv`` in-process; assert exit 2 with exactly one stderr line; return it.

    transformers' "Loading weights" progress bar (shown where a model loads before the check, and
    hidden by whichever earlier test in the process disabled it) is not part of the error.
    """
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, (out, err)
    err = re.sub(r"Loading weights:[^\n]*?it/s\]", "", err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("mipeaks"), lines
    return lines[0]


# ---------------------------------------------------------------------------
# --help and generated options
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["collect"], ["mi"], ["eval"], ["sweep"], ["sweep", "suppression"],
                                  ["sweep", "ttts"], ["reproduce"]])
def test_help_of_every_subcommand(argv):
    proc = _run(*argv, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: mipeaks {' '.join(argv)}".rstrip())
    if not argv:
        for name in cli.COMMANDS:
            assert f"    {name}" in proc.stdout


def test_pipeline_module_help_is_the_mi_help():
    proc = _run("--help", module="mipeaks.pipeline")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: mipeaks mi") and "--token-mode" in proc.stdout


@pytest.mark.parametrize("cls", [MIConfig, EvalConfig, SuppressionSweepConfig, TTTSSweepConfig])
def test_every_config_field_has_an_option(cls):
    parser = cli.ArgumentParser(prog="x")
    names = cli.add_config_options(parser, cls)
    assert names == [f.name for f in dataclasses.fields(cls)]
    options = {s for a in parser._actions for s in a.option_strings}
    assert {"--" + f.name.replace("_", "-") for f in dataclasses.fields(cls)} <= options


def test_options_parse_to_the_field_types():
    parser = cli.ArgumentParser(prog="x")
    cli.add_config_options(parser, SuppressionSweepConfig)
    args = vars(parser.parse_args(["--ks", "0,2,5", "--params", "{case_sensitive: true}", "--n", "None",
                                   "--max-new-tokens", "16", "--device", "cuda:1"]))
    assert args == {"ks": (0, 2, 5), "params": {"case_sensitive": True}, "n": None, "max_new_tokens": 16,
                    "device": "cuda:1"}  # options not given stay absent (the preset or the default applies)
    parser = cli.ArgumentParser(prog="x")
    cli.add_config_options(parser, MIConfig)
    assert vars(parser.parse_args(["--layer", "-2", "--sigma", "None", "--tau", "2"])) == {
        "layer": -2, "sigma": None, "tau": 2.0}
    assert vars(parser.parse_args(["--layer", "last"])) == {"layer": "last"}


def test_check_value_devices_and_choices():
    for ok in ("cpu", "cuda", "cuda:0", "cuda:12", "mps", "auto"):
        assert cli.check_value("device", ok) == ok
    for bad in ("tpu", "cuda:", "cuda:x", "CPU", "", None):
        with pytest.raises(cli.UsageError, match="--device: expected cpu, cuda, cuda:N, mps or auto"):
            cli.check_value("device", bad)
    with pytest.raises(cli.UsageError, match="--prompt-style: expected one of raw, deepseek-math, chat"):
        cli.check_value("prompt_style", "fancy")
    assert cli.check_value("intervention", None) is None
    with pytest.raises(cli.UsageError, match="--layer"):
        cli.check_value("layer", "middle")


def test_preset_values_are_overridden_by_the_command_line():
    preset = yaml.safe_load((PRESETS / "cpu-smoke.yaml").read_text())
    chapter = preset["notebooks"]["09_what_hsic_measures"]
    values = cli.config_values(MIConfig, {"n": 3}, preset="cpu-smoke", chapter="09_what_hsic_measures")
    assert values["n"] == 3 != chapter["n"]
    assert values["max_new_tokens"] == chapter["max_new_tokens"] and values["top_k"] == chapter["top_k"]
    assert values["model"] == preset["shared"]["model"] and "estimator" not in values
    sweep = cli.config_values(TTTSSweepConfig, {}, preset="cpu-smoke", chapter="08_ttts")
    assert sweep["budgets"] == tuple(preset["notebooks"]["08_ttts"]["budgets"])  # YAML list -> tuple field
    assert TTTSSweepConfig(**sweep).budgets == (8, 16)


# ---------------------------------------------------------------------------
# One line, exit 2, no traceback
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv, expected", [
    (["collect", "--bogus", "1"], "unrecognized arguments: --bogus"),
    (["collect", "--max-new-tokens", "abc"], "argument --max-new-tokens: expected an int, got 'abc'"),
    (["eval", "--device", "tpu"], "argument --device: expected cpu, cuda, cuda:N, mps or auto, got 'tpu'"),
    (["collect", "--dataset", "gsm9k"], "argument --dataset: expected one of aime24, arith, gsm8k"),
    (["mi", "--prompt-style", "fancy"], "argument --prompt-style: expected one of raw, deepseek-math, chat"),
    (["sweep", "ttts", "--budgets", "a,b"], "argument --budgets: expected comma-separated ints"),
    (["eval", "--params", "[1, 2]"], "argument --params: expected a YAML/JSON mapping"),
    (["collect", "--preset", "no-such-preset"], "no preset 'no-such-preset'; available: ['cpu-smoke'"),
    (["collect", "--preset", "cpu-smoke", "--chapter", "99_nothing"], "argument --chapter: expected one of 01_mi"),
    (["reproduce", "no-such-preset"], "no preset 'no-such-preset'"),
    (["reproduce", "cpu-smoke", "--only", "99_nothing"], "argument --only: unknown chapter(s) ['99_nothing']"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    (["sweep", "both"], "argument KIND: invalid choice: 'both'"),
    (["collect", "--model", "nobody/no-such-model", "--n", "1"], "'nobody/no-such-model' is not in the local"),
])
def test_bad_values_are_one_line(capsys, argv, expected):
    assert expected in _one_line_error(capsys, argv)


def test_bad_preset_values_are_one_line(capsys, tmp_path):
    (tmp_path / "tpu.yaml").write_text("shared: {device: tpu}\n")
    (tmp_path / "extra.yaml").write_text("notebooks:\n  01_mi_trajectories: {colour: red}\n")
    line = _one_line_error(capsys, ["collect", "--preset", str(tmp_path / "tpu.yaml")])
    assert "chapter 01_mi_trajectories: argument --device: expected cpu, cuda" in line
    line = _one_line_error(capsys, ["reproduce", str(tmp_path / "tpu.yaml"), "--dry-run", "--out", str(tmp_path)])
    assert "argument --device" in line and not (tmp_path / "tpu").exists()  # nothing written before the check
    assert "sets ['colour'] for 01_mi_trajectories" in _one_line_error(
        capsys, ["mi", "--preset", str(tmp_path / "extra.yaml")])


def test_missing_field_in_a_data_file(capsys, tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [{"question": "1+1?", "answer": "2\n#### 2"}, {"question": "2+2?", "answer": "4\n#### 4"},
            {"question": "3+3?"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    line = _one_line_error(capsys, ["collect", "--data-path", str(path), "--n", "3"])
    assert line.endswith(f"{path}:3: missing field 'answer'")


@pytest.mark.slow
def test_layer_that_does_not_exist(capsys):
    line = _one_line_error(capsys, ["collect", "--n", "1", "--max-new-tokens", "2", "--layer", "30"])
    assert "argument --layer: layer 30 is out of range" in line and "use 0..29" in line
    assert not list(Path(os.environ["MIPEAKS_RUNS"]).glob("*/manifest.json"))  # nothing collected


@pytest.mark.heavy
def test_bad_values_in_a_subprocess_have_no_traceback(tmp_path):
    for argv, expected in ((["collect", "--max-new-tokens", "abc"], "--max-new-tokens: expected an int"),
                           (["collect", "--device", "tpu", "--n", "1"], "--device: expected cpu, cuda"),
                           (["mi", "--nn", "3"], "unrecognized arguments: --nn 3")):
        proc = _run(*argv)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert expected in proc.stderr
    proc = _run("no-such-preset", "--dry-run", module="scripts.reproduce")  # the script is an alias
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no preset 'no-such-preset'" in proc.stderr


def test_library_bugs_keep_their_traceback():
    try:
        torch.zeros(2) @ torch.zeros(3)
    except RuntimeError as err:  # raised inside torch: a bug to show, not a bad input
        assert not cli._user_error(err)
    from mipeaks.data import load_problems

    with pytest.raises(RuntimeError) as exc:  # raised by mipeaks on purpose: one line
        load_problems("math-train", 1, source="hub")
    assert cli._user_error(exc.value)


def test_plan_is_registered():
    assert "plan" in cli.COMMANDS and "plan" in cli._RUNNERS


# ---------------------------------------------------------------------------
# End to end on the embedded model
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.heavy
def test_collect_then_mi_then_pipeline_module(tmp_path):
    settings = ["--n", "2", "--max-new-tokens", "6", "--batch-size", "2"]
    proc = _run("collect", *settings, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    runs = list(Path(os.environ["MIPEAKS_RUNS"]).glob("*/manifest.json"))
    assert len(runs) == 1
    run = load_run(runs[0].parent)
    assert proc.stdout.splitlines()[0] == f"run: {run.path}"
    cfg = MIConfig(n=2, max_new_tokens=6, batch_size=2)
    assert run.config == cfg.collect_config()
    traces = list(run.traces())
    assert [t.problem_id for t in traces] == ["0", "1"] and all(0 < len(t.token_ids) <= 6 for t in traces)
    header, *table = proc.stdout.splitlines()[1:]
    assert header.split() == ["id", "prompt_tokens", "tokens", "stop", "layer"]
    assert [line.split()[0] for line in table] == ["0", "1"]
    assert [int(line.split()[2]) for line in table] == [len(t.token_ids) for t in traces]
    stamps = {p: p.stat().st_mtime_ns for p in run.record_paths()}

    proc = _run("mi", *settings, "--peak-rule", "topk", "--top-k", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert {p: p.stat().st_mtime_ns for p in run.record_paths()} == stamps  # resumed, not recollected
    stats = pd.read_csv(run.path / "peak_stats-hsic_paper-s50-top2-generated.csv", dtype={"id": str})
    for trace, row in zip(traces, stats.itertuples()):
        m = np.array([mi.hsic_paper(h, trace.gold) for h in trace.states])
        top = np.sort(np.argsort(-m, kind="stable")[:2])
        assert row.id == trace.problem_id and row.n_steps == len(m) and row.n_peaks == 2
        assert row.max_interval == top[1] - top[0]
        assert row.mean == pytest.approx(m.mean(), rel=1e-6)
    words = [json.loads(line) for line in
             (run.path / "thinking_tokens-hsic_paper-s50-top2-generated.jsonl").read_text().splitlines()]
    assert sum(w["freq"] for w in words) <= 4
    assert "Table 1" in proc.stdout and "Table 2" in proc.stdout and "thinking tokens:" in proc.stdout

    export = tmp_path / "words.jsonl"  # issue 12 point 7: the module entry point ran into a NameError
    proc = _run(*settings, "--peak-rule", "topk", "--top-k", "2", "--export", str(export), "--no-progress",
                module="mipeaks.pipeline")
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in export.read_text().splitlines()] == words
    assert "Table 1" in proc.stdout


@pytest.mark.slow
def test_eval_one_arm(capsys):
    assert cli.main(["eval", "--n", "2", "--max-new-tokens", "4", "--batch-size", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    path = Path(out[-1].removeprefix("wrote "))
    assert path.parent == Path(os.environ["MIPEAKS_RUNS"]) / "evals"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["id"] for r in records] == ["0", "1"] and all(r["tokens"] <= 4 for r in records)
    header, row = out[0].split(), out[1].split()
    assert header[:4] == ["intervention", "n", "correct", "accuracy"]
    assert row[:3] == ["baseline", "2", str(sum(r["correct"] for r in records))]
    manifest = json.loads(path.with_suffix(".manifest.json").read_text())
    assert manifest["config"]["max_new_tokens"] == 4 and manifest["config"]["model"] == "smollm2-135m-instruct"


@pytest.mark.slow
def test_sweeps(capsys):
    assert cli.main(["sweep", "suppression", "--n", "1", "--max-new-tokens", "3", "--ks", "0,1",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    table = pd.read_csv(out[-1].removeprefix("wrote "))
    assert list(zip(table["k"], table["arm"])) == [(0, "thinking"), (0, "random"), (1, "thinking"), (1, "random")]
    assert table.loc[2, "words"] == "So"  # the paper list's first word
    assert cli.main(["sweep", "ttts", "--n", "1", "--max-new-tokens", "4", "--budgets", "2,4",
                     "--no-progress"]) == 0
    table = pd.read_csv(capsys.readouterr().out.splitlines()[-1].removeprefix("wrote "))
    assert list(zip(table["budget"], table["method"])) == [(2, "origin"), (2, "ttts"), (4, "origin"), (4, "ttts")]


def test_reproduce_dry_run_writes_each_chapters_parameters(tmp_path, capsys):
    chapters = ["05_error_bounds", "08_ttts"]
    assert cli.main(["reproduce", "cpu-smoke", "--dry-run", "--out", str(tmp_path), "--only", *chapters]) == 0
    preset = yaml.safe_load((PRESETS / "cpu-smoke.yaml").read_text())
    written = sorted(p.name for p in (tmp_path / "cpu-smoke" / "params").iterdir())
    assert written == [f"{c}.yaml" for c in chapters]
    for chapter in chapters:
        params = yaml.safe_load((tmp_path / "cpu-smoke" / "params" / f"{chapter}.yaml").read_text())
        assert preset["notebooks"][chapter].items() <= params.items()
    ttts = yaml.safe_load((tmp_path / "cpu-smoke" / "params" / "08_ttts.yaml").read_text())
    assert ttts["model"] == preset["shared"]["model"] and ttts["device"] == "cpu"
    assert "05_error_bounds: {" in capsys.readouterr().out
    assert not list((tmp_path / "cpu-smoke" / "notebooks").glob("*.ipynb"))  # nothing executed


def test_a_launchers_separator_is_dropped(tmp_path, capsys):
    # `torchrun --nproc_per_node 2 -m mipeaks -- collect --n 4`: torchrun's own parser reads a bare `--n` as an
    # ambiguous abbreviation of its --nnodes/--nproc-per-node, so the arguments come after `--`, which it passes on.
    assert cli.main(["--", "reproduce", "cpu-smoke", "--dry-run", "--out", str(tmp_path), "--only", "07_recycling"]) == 0
    assert (tmp_path / "cpu-smoke" / "params" / "07_recycling.yaml").is_file()


def test_argparse_type_errors_name_the_expected_form():
    parse = cli._type("max_new_tokens", int)
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected an int, got '1\.5'"):
        parse("1.5")
    assert cli._type("n", int | None)("none") is None
    collect_help = cli._mi_parser("mipeaks collect", "collect")[0].format_help()
    assert all("--" + f.name.replace("_", "-") in collect_help for f in dataclasses.fields(CollectConfig))
    assert "--estimator" not in collect_help  # collect exposes the collection fields only


def test_console_script_entry_point():
    import importlib
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["mipeaks"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is cli.main
    assert "-m mipeaks reproduce $(PRESET)" in (ROOT / "Makefile").read_text()  # make reproduce = mipeaks reproduce
