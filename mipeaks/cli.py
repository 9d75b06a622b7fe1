"""The ``mipeaks`` command line: one subcommand per job a chapter does.

    mipeaks collect --n 4 --max-new-tokens 8 --batch-size 2    # traces into a resumable run directory
    mipeaks mi --n 20 --peak-rule topk                          # + MI trajectories, peaks, Table 1/2, thinking tokens
    mipeaks eval --intervention recycle --params '{layer: 20}'  # one arm: graded JSONL records
    mipeaks sweep suppression --ks 0,2,5                        # Fig. 5 (``sweep ttts``: Fig. 7)
    mipeaks reproduce r1-llama-8b --dry-run                     # every chapter with a preset (``make reproduce``)
    mipeaks plan r1-llama-8b                                    # what a preset costs (:mod:`mipeaks.plan`)

The options of ``collect``, ``mi``, ``eval`` and ``sweep`` are generated from the fields of their
config dataclasses (:class:`~mipeaks.pipeline.MIConfig`, :class:`~mipeaks.evaluate.EvalConfig`,
:class:`~mipeaks.evaluate.SuppressionSweepConfig`, :class:`~mipeaks.evaluate.TTTSSweepConfig`), so
they cannot drift from the library. ``--preset NAME [--chapter STEM]`` starts from a preset's values
for one chapter (:func:`mipeaks.book.preset_parameters`); options given on the command line win.

Progress bars go to stderr; results go to stdout as a table and to files under the runs root
(``$MIPEAKS_RUNS`` or ``runs/``). A bad value prints one line ``mipeaks CMD: error: ...`` naming the
option and the accepted values, and exits with status 2 (``MIPEAKS_DEBUG=1`` shows the traceback).
``python -m mipeaks`` and ``python -m mipeaks.pipeline`` (= ``mipeaks mi``) run the same code.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["COMMANDS", "DEVICE_PATTERN", "ArgumentParser", "UsageError", "add_config_options", "check_value",
           "config_values", "main"]

#: Subcommands and their one-line help.
COMMANDS: dict[str, str] = {
    "collect": "generate and store hidden-state traces (a resumable run directory)",
    "mi": "traces, MI trajectories, peaks, Table 1/2 statistics and thinking tokens",
    "eval": "evaluate one arm (baseline or one intervention) into graded JSONL records",
    "sweep": "Fig. 5's suppression sweep, Fig. 6's RR arms or Fig. 7's TTTS budget sweep, on each benchmark",
    "reproduce": "run every chapter with a preset and build a book from it (make reproduce)",
    "plan": "what a preset will cost: tokens, memory, devices, GPU-hours (offline)",
}

#: The chapter whose preset section a subcommand reads when ``--chapter`` is not given.
DEFAULT_CHAPTER = {"collect": "01_mi_trajectories", "mi": "01_mi_trajectories", "eval": "07_recycling",
                   "suppression": "06_suppression", "recycling": "07_recycling", "ttts": "08_ttts"}

#: Accepted ``device`` values: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.
DEVICE_PATTERN = re.compile(r"cpu|cuda|cuda:\d+|mps|auto")
_DEVICE_TEXT = "cpu, cuda, cuda:N, mps or auto"


class UsageError(ValueError):
    """A bad command-line value; the message names the option and the accepted values."""


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and exit status 2."""

    def error(self, message: str) -> typing.NoReturn:
        """Print ``PROG: error: MESSAGE`` on one line and exit with status 2."""
        _fail(self.prog, message)



def _fail(prog: str, message: Any) -> typing.NoReturn:
    print(f"{prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(2)


# ---------------------------------------------------------------------------
# Options generated from config dataclasses
# ---------------------------------------------------------------------------


def _choices() -> dict[str, tuple[Any, ...]]:
    """Accepted values of the enumerated config fields, read from the library's own registries."""
    from . import data, grading, lens, mi, models, peaks
    from .evaluate import INTERVENTIONS

    return {"dataset": tuple(sorted(data.DATASETS)), "prompt_style": tuple(data.PROMPT_STYLES),
            "sample": tuple(data.SAMPLES),
            "estimator": tuple(mi.ESTIMATORS), "peak_rule": tuple(peaks.PEAK_RULES),
            "token_mode": tuple(lens.PEAK_TOKEN_MODES), "gold": ("solution", "answer"),
            "grading": tuple(grading.MODES), "dtype": tuple(models._DTYPES),
            "intervention": (None, *sorted(INTERVENTIONS))}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_value(name: str, value: Any) -> Any:
    """Check an enumerated field (dataset, prompt style, device, ...) before anything loads.

    Args:
        name: the config field.
        value: its value (already of the field's type).

    Returns:
        ``value``, unchanged.

    Raises:
        UsageError: the value is not accepted; the message names the option and the accepted values.
    """
    if name == "device":
        if not isinstance(value, str) or not DEVICE_PATTERN.fullmatch(value):
            raise UsageError(f"argument {_option(name)}: expected {_DEVICE_TEXT}, got {value!r}")
    elif name == "layer":
        if isinstance(value, bool) or not (isinstance(value, int) or str(value).strip().lower() == "last"):
            raise UsageError(f"argument {_option(name)}: expected a block index (negative counts from the end) "
                             f"or 'last', got {value!r}")
    elif name == "datasets":
        known = _choices()["dataset"]
        bad = [d for d in value if d not in known]
        if bad:
            raise UsageError(f"argument {_option(name)}: expected names of {', '.join(known)}; got {bad[0]!r}")
    else:
        accepted = _choices().get(name)
        if accepted is not None and value not in accepted:
            shown = ", ".join("None" if a is None else str(a) for a in accepted)
            raise UsageError(f"argument {_option(name)}: expected one of {shown}; got {value!r}")
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _describe(hint: Any) -> str:
    """The accepted form of a value of type ``hint``, for error messages and help."""
    if _is_union(hint):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) is tuple:
        if typing.get_args(hint)[0] is str:
            return "comma-separated names (e.g. gsm8k,math500)"
        return "comma-separated ints (e.g. 0,2,5)"
    if typing.get_origin(hint) in (Mapping, dict) or hint in (dict, Mapping):
        return "a YAML/JSON mapping (e.g. '{layer: 20, p: 0.5}')"
    return {bool: "true or false", int: "an int", float: "a number", str: "a string"}.get(hint, str(hint))


def _convert(hint: Any, text: str) -> Any:
    """``text`` as a value of type ``hint``; raises ValueError when it is not one."""
    if _is_union(hint):
        options = typing.get_args(hint)
        if type(None) in options and text.strip().lower() in ("none", "null"):
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                return _convert(option, text)
            except ValueError:
                continue
        raise ValueError(text)
    if hint is bool:
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(text)
        return lowered in ("true", "1", "yes")
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if typing.get_origin(hint) is tuple:
        items = [t for t in text.strip().strip("[]()").replace(" ", "").split(",") if t]
        inner = typing.get_args(hint)[0]
        return tuple(int(t) if inner is int else str(t) for t in items)
    if typing.get_origin(hint) in (Mapping, dict) or hint in (dict, Mapping):
        import yaml

        try:
            value = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError:
            raise ValueError(text) from None
        if not isinstance(value, dict):
            raise ValueError(text)
        return value
    if hint is str:
        return text
    raise ValueError(f"no converter for {hint}")


def _type(name: str, hint: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` for a config field: parse, then :func:`check_value`."""

    def parse(text: str) -> Any:
        try:
            value = _convert(hint, text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_describe(hint)}, got {text!r}") from None
        try:
            return check_value(name, value)
        except UsageError as err:  # argparse prefixes the option name itself
            raise argparse.ArgumentTypeError(str(err).split(": ", 1)[1]) from None

    parse.__name__ = name
    return parse


def _field_docs(*classes: type) -> dict[str, str]:
    """First line(s) of each field's entry in the ``Attributes:`` sections of ``classes`` (and their bases)."""
    docs: dict[str, str] = {}
    for klass in (k for cls in classes for k in cls.__mro__):
        text = inspect.cleandoc(klass.__doc__ or "")
        if "Attributes:" not in text:
            continue
        current = None
        for line in text.split("Attributes:", 1)[1].splitlines()[1:]:
            match = re.match(r" {4}(\w+): (.*)", line)
            if match:
                current = match.group(1) if match.group(1) not in docs else None
                if current:
                    docs[current] = match.group(2)
            elif line.startswith(" " * 8) and current:
                docs[current] += " " + line.strip()
            elif line.strip() and not line.startswith(" "):  # the next section
                break
    return docs


def _plain(text: str) -> str:
    """Docstring text without Sphinx markup (roles and double back-quotes)."""
    text = re.sub(r":\w+:`~([^`]+)`", lambda m: m.group(1).split(".")[-1], text)
    return re.sub(r":\w+:`([^`]+)`", r"\1", text).replace("``", "")


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def add_config_options(parser: argparse.ArgumentParser, cls: type, *, only: Sequence[str] | None = None,
                       doc_classes: Sequence[type] = ()) -> list[str]:
    """Add one ``--field-name`` option per field of the config dataclass ``cls``.

    Values are parsed by the field's annotation (ints, numbers, booleans, ``None``, comma-separated
    tuples, YAML mappings) and enumerated fields are checked against the library's registries
    (:func:`check_value`). Options left out keep the default ``argparse.SUPPRESS`` (absent from
    the namespace), so a preset's value or the dataclass default applies.

    Args:
        parser: the (sub)command's parser.
        cls: a config dataclass.
        only: the fields to expose (default: all).
        doc_classes: more classes whose ``Attributes:`` docs describe the fields.

    Returns:
        The names of the fields added.
    """
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls, *doc_classes)
    group = parser.add_argument_group(f"{cls.__name__} fields (see mipeaks.{cls.__module__.split('.')[-1]})")
    names = []
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        default = _default(f)
        accepted = _choices().get(f.name)
        form = ("{" + ",".join("None" if a is None else str(a) for a in accepted) + "}" if accepted
                else _DEVICE_TEXT if f.name == "device"
                else "a block index (negative: from the end) or 'last'" if f.name == "layer"
                else _describe(hints[f.name]))
        text = _plain(f"{docs.get(f.name, '')} [{form}; default: {default!r}]".strip())
        group.add_argument(_option(f.name), dest=f.name, default=argparse.SUPPRESS, type=_type(f.name, hints[f.name]),
                           metavar=f.name.upper(), help=text.replace("%", "%%"))
        names.append(f.name)
    return names


def _chapter_stems() -> list[str]:
    from .book import NOTEBOOK_DIR

    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))


def config_values(cls: type, given: Mapping[str, Any], *, preset: str | None = None, chapter: str | None = None,
                  fields: Sequence[str] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``cls``: a preset chapter's values, overridden by ``given``.

    Args:
        cls: the config dataclass.
        given: values from the command line (field name -> value).
        preset: a preset slug or YAML path (None: no preset).
        chapter: the chapter stem whose preset values apply.
        fields: the fields to take from the preset (default: all of ``cls``).

    Raises:
        UsageError: unknown chapter, or a preset value :func:`check_value` rejects.
        FileNotFoundError: unknown preset (the message lists the presets).
    """
    names = [f.name for f in dataclasses.fields(cls)] if fields is None else list(fields)
    values: dict[str, Any] = {}
    if preset is not None:
        from .book import NOTEBOOK_DIR, load_preset, preset_parameters

        stems = _chapter_stems()
        if chapter not in stems:
            raise UsageError(f"argument --chapter: expected one of {', '.join(stems)}; got {chapter!r}")
        params = preset_parameters(load_preset(preset), NOTEBOOK_DIR / f"{chapter}.py")
        for name, value in params.items():
            if name in names:
                try:
                    values[name] = check_value(name, value)
                except UsageError as err:
                    raise UsageError(f"preset {preset!r}, chapter {chapter}: {err}") from None
        swept = params.get("datasets")
        if "dataset" in names and "dataset" not in params and swept and "dataset" not in given:
            if len(swept) != 1:  # a one-benchmark command on a chapter that sweeps several
                raise UsageError(f"preset {preset!r}, chapter {chapter} sweeps the benchmarks {list(swept)}: "
                                 "pass --dataset")
            values["dataset"] = check_value("dataset", swept[0])
    values.update(given)
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        hint = hints[name]
        if isinstance(value, list) and (typing.get_origin(hint) is tuple or _is_union(hint) and any(
                typing.get_origin(a) is tuple for a in typing.get_args(hint))):
            values[name] = tuple(value)
    return values


# ---------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------


def _is_main_process() -> bool:
    """False on the non-zero ranks of a ``torchrun`` / ``accelerate launch`` job (they print no results)."""
    return os.environ.get("RANK", "0") == "0"


def _print_table(df: Any, title: str | None = None) -> None:
    import pandas as pd

    if not _is_main_process():
        return
    if title:
        print(title)
    with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))


def _quiet_libraries() -> None:
    """No Hugging Face download or weight-loading bars and no info logs: stderr keeps our bars and errors."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _add_common(parser: argparse.ArgumentParser, command: str, *, chapter: str) -> None:
    group = parser.add_argument_group("preset and output")
    group.add_argument("--preset", default=None, metavar="NAME",
                       help="start from a preset's values: a file stem of notebooks/params/ or a YAML path")
    group.add_argument("--chapter", default=chapter, metavar="STEM",
                       help=f"the chapter whose preset values apply (default: {chapter})")
    group.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def _split(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if k in names}


def _mi_parser(prog: str, command: str) -> tuple[ArgumentParser, list[str]]:
    from .collect import CollectConfig
    from .pipeline import MIConfig

    if command == "collect":
        desc = ("Generate greedy continuations and store the chosen layer's state at every step, plus the "
                "gold representation, in a resumable run directory under the runs root. Writes the run "
                "directory and prints one row per problem.")
        only = [f.name for f in dataclasses.fields(CollectConfig)] + ["run_root"]
    else:
        desc = ("Collect (or resume) the traces, then compute each problem's MI trajectory, its peaks, "
                "the paper's Table 1/2 statistics and the thinking tokens. Writes peak statistics (csv) and "
                "the thinking-token list (jsonl) into the run directory and prints the tables.")
        only = None
    parser = ArgumentParser(prog=prog, description=desc)
    names = add_config_options(parser, MIConfig, only=only, doc_classes=(CollectConfig,))
    if command == "mi":
        parser.add_argument("--export", default=None, metavar="PATH",
                            help="write the thinking-token jsonl here (default: inside the run directory)")
        parser.add_argument("--top", type=int, default=15, metavar="N", help="thinking tokens printed (default: 15)")
    _add_common(parser, command, chapter=DEFAULT_CHAPTER[command])
    return parser, names


def _run_collect(prog: str, argv: Sequence[str]) -> int:
    from .pipeline import MIConfig, collect_run

    parser, names = _mi_parser(prog, "collect")
    args = parser.parse_args(argv)
    cfg = MIConfig(**config_values(MIConfig, _split(args, names), preset=args.preset, chapter=args.chapter,
                                   fields=names))
    _, run = collect_run(cfg, _load_checked(cfg), progress=not args.no_progress)
    _print_table(_trace_rows(run), f"run: {run.path}")
    return 0


def _load_checked(cfg: Any) -> Any:
    """The model of an MI config, after its problems load (bad data fails first); checks its layer."""
    from .collect import load_config_problems
    from .models import load_model

    load_config_problems(cfg)
    model = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype)
    try:
        model.resolve_layer(cfg.layer)
    except ValueError as err:
        raise UsageError(f"argument --layer: {err}") from None
    return model


def _trace_rows(run: Any) -> Any:
    import pandas as pd

    rows = [{"id": t.problem_id, "prompt_tokens": len(t.prompt_ids), "tokens": len(t.token_ids),
             "stop": t.stop_reason, "layer": t.layer} for t in run.traces()]
    return pd.DataFrame(rows)


def _run_mi(prog: str, argv: Sequence[str]) -> int:
    from . import lens, peaks
    from .pipeline import MIConfig, collect_run, thinking_tokens, thinking_tokens_path, trajectories

    parser, names = _mi_parser(prog, "mi")
    args = parser.parse_args(argv)
    cfg = MIConfig(**config_values(MIConfig, _split(args, names), preset=args.preset, chapter=args.chapter))
    model, run = collect_run(cfg, _load_checked(cfg), progress=not args.no_progress)
    if not _is_main_process():  # under a launcher the other ranks only collect their shard
        return 0
    trajs = trajectories(run, cfg)
    stats = peaks.summarize(trajs, rule=cfg.peak_rule, tau=cfg.tau, k=cfg.top_k)
    words = thinking_tokens(model, run, trajs, cfg)
    default = thinking_tokens_path(run, cfg)
    export = Path(args.export) if args.export else default
    stats_path = default.with_name(default.stem.replace("thinking_tokens", "peak_stats", 1) + ".csv")
    lens.save_thinking_tokens(words, export)
    stats.to_csv(stats_path, index=False)
    _print_table(peaks.table1(stats), f"run: {run.path}\nTable 1 (peaks; per-sample means)")
    _print_table(peaks.table2(stats), "Table 2 (MI; per-sample means)")
    print("thinking tokens:", ", ".join(f"{w.word}({w.freq})" for w in words[: args.top]) or "(none)")
    print(f"wrote {stats_path}\nwrote {export}")
    return 0


def _run_eval(prog: str, argv: Sequence[str]) -> int:
    import pandas as pd

    from .data import load_problems
    from .evaluate import EvalConfig, evaluate
    from .models import EMBEDDED_MODEL

    parser = ArgumentParser(prog=prog, description=(
        "Decode and grade one arm (the baseline or one intervention) on a benchmark. Appends one JSONL "
        "record per problem under the runs root (resumable) and prints the accuracy row. --model None "
        "(the default) is the embedded model."))
    names = add_config_options(parser, EvalConfig)
    _add_common(parser, "eval", chapter=DEFAULT_CHAPTER["eval"])
    args = parser.parse_args(argv)
    cfg = EvalConfig(**config_values(EvalConfig, _split(args, names), preset=args.preset, chapter=args.chapter))
    problems = load_problems(cfg.dataset, cfg.n)  # a bad dataset fails before the model loads
    result = evaluate(cfg.model or EMBEDDED_MODEL, problems, cfg, progress=not args.no_progress)
    _print_table(pd.DataFrame([result.summary()]).drop(columns="path"))
    if _is_main_process():
        print(f"wrote {result.path}")
    return 0


def _run_sweep(prog: str, argv: Sequence[str]) -> int:
    from .data import load_problems
    from .evaluate import (RecyclingSweepConfig, SuppressionSweepConfig, TTTSSweepConfig, recycling_sweep,
                           suppression_sweep, ttts_sweep)
    from .models import EMBEDDED_MODEL, load_model

    kinds = {"suppression": (SuppressionSweepConfig, suppression_sweep, "Fig. 5: accuracy against the number of "
                             "suppressed words, thinking words vs random words"),
             "recycling": (RecyclingSweepConfig, recycling_sweep, "Fig. 6: Origin, RR with the coin p and RR at "
                           "p = 1 on each benchmark"),
             "ttts": (TTTSSweepConfig, ttts_sweep, "Fig. 7: accuracy against the token budget, Origin vs TTTS with "
                      "each word")}
    parser = ArgumentParser(prog=prog, description="Run one of the paper's sweeps; every arm's records are resumable. "
                     "Prints the sweep table and writes it as csv next to the records.")
    sub = parser.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=ArgumentParser)
    field_names: dict[str, list[str]] = {}
    for kind, (cls, _, desc) in kinds.items():
        kp = sub.add_parser(kind, help=desc, description=desc)
        field_names[kind] = add_config_options(kp, cls)
        _add_common(kp, kind, chapter=DEFAULT_CHAPTER[kind])
    args = parser.parse_args(argv)
    cls, sweep, _ = kinds[args.kind]
    cfg = cls(**config_values(cls, _split(args, field_names[args.kind]), preset=args.preset, chapter=args.chapter))
    problems = {d: load_problems(d, cfg.n) for d in cfg.datasets}  # a bad dataset fails before the model loads
    model = load_model(cfg.model or EMBEDDED_MODEL, device=cfg.device, dtype=cfg.dtype)
    table = sweep(model, problems, cfg, progress=not args.no_progress)
    blob = json.dumps(dataclasses.asdict(dataclasses.replace(cfg, model=model.name)), sort_keys=True, default=str)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model.name).strip("_")
    digest = hashlib.sha256(blob.encode()).hexdigest()[:10]
    out = cfg.records_dir() / f"sweep-{args.kind}-{slug}-{'+'.join(cfg.datasets)}-{digest}.csv"
    if _is_main_process():
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out, index=False)
    _print_table(table.drop(columns=[c for c in ("path",) if c in table.columns]))
    if _is_main_process():
        print(f"wrote {out}")
    return 0


def _run_reproduce(prog: str, argv: Sequence[str]) -> int:
    from . import reproduce

    parser = ArgumentParser(prog=prog, description=inspect.getdoc(reproduce),
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="a file stem of notebooks/params/ (e.g. r1-llama-8b) or a YAML path")
    parser.add_argument("--only", nargs="+", default=None, metavar="STEM",
                        help="chapter stems to run (the others: their committed CPU version)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: _build/presets at the repository root)")
    parser.add_argument("--keep-going", action="store_true", help="continue after a failing chapter")
    parser.add_argument("--no-book", action="store_true", help="execute the notebooks only")
    parser.add_argument("--dry-run", action="store_true", help="write and print the parameters, run nothing")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default: none)")
    args = parser.parse_args(argv)
    failed = reproduce.reproduce(args.preset, only=args.only, out=args.out, keep_going=args.keep_going,
                                 book=not args.no_book, dry_run=args.dry_run, timeout=args.timeout)
    return 1 if failed else 0


def _run_plan(prog: str, argv: Sequence[str]) -> int:
    import importlib

    try:
        plan = importlib.import_module(f"{__package__}.plan")
    except ModuleNotFoundError as err:
        if err.name != f"{__package__}.plan":
            raise
        _fail(prog, "mipeaks.plan is not part of this installation")
    return int(plan.main(list(argv)) or 0)


_RUNNERS: dict[str, Callable[[str, Sequence[str]], int]] = {
    "collect": _run_collect, "mi": _run_mi, "eval": _run_eval, "sweep": _run_sweep,
    "reproduce": _run_reproduce, "plan": _run_plan,
}


def _top_parser() -> ArgumentParser:
    from . import __version__

    parser = ArgumentParser(prog="mipeaks", description=_plain(__doc__.split("\n\n")[0]),
                     epilog="Run 'mipeaks COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"mipeaks {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, text in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _user_error(err: BaseException) -> bool:
    """Whether ``err`` is a bad input to report in one line (not a bug to show with its traceback)."""
    from .models import ModelNotAvailableError

    if isinstance(err, (ValueError, TypeError, KeyError, NameError, FileNotFoundError, NotADirectoryError,
                        PermissionError, ModelNotAvailableError)):
        return True
    if isinstance(err, RuntimeError):  # only the library's own messages (data not reachable, ...), not torch's
        tb = err.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith(f"{__package__}.")
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """The ``mipeaks`` command (also ``python -m mipeaks``).

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status (0: done; 1: a chapter of ``reproduce`` failed). Bad values exit with status 2
        (``SystemExit``) after one line on stderr.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:  # `torchrun ... -m mipeaks -- collect --n 4`: the launcher's parser keeps the `--`
        argv = argv[1:]
    if not argv or argv[0].startswith("-") or argv[0] not in _RUNNERS:
        _top_parser().parse_args(argv[:1])  # help, version, or a one-line error naming the commands
        return 0
    prog = f"mipeaks {argv[0]}"
    _quiet_libraries()
    try:
        return _RUNNERS[argv[0]](prog, argv[1:])
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (rerun the same command to resume)", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - bad inputs become one line; anything else keeps its traceback
        if os.environ.get("MIPEAKS_DEBUG") or not _user_error(err):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        _fail(prog, message)
