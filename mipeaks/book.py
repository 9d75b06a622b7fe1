"""Helpers for the companion book's notebooks (``notebooks/NN_name.py``) and its presets.

A chapter notebook looks like this (jupytext py:percent)::

    # %%
    from mipeaks import book
    from mipeaks.collect import CollectConfig
    book.init_notebook()                       # seaborn theme, path-free warnings, start the clock

    # %% tags=["parameters"]
    model = "smollm2-135m-instruct"            # exactly the fields of ONE config dataclass
    dataset = "gsm8k"
    ...

    # %%
    config = book.config_from(CollectConfig, globals())   # errors on a missing name

    # %%  (key numbers: nbval compares this cell's output in CI)
    # NBVAL_CHECK_OUTPUT
    book.print_numbers({"mean MI": 0.1234, "peaks/sample": 3.0})

    # %%
    book.provenance_cell(config, model=loaded)  # the last cell of every chapter

Presets (``notebooks/params/<slug>.yaml``) have two parts; see :func:`preset_parameters`::

    shared:                 # set in every notebook that HAS a parameter of that name
      model: deepseek-ai/DeepSeek-R1-Distill-Llama-8B
      device: cuda
    notebooks:              # per chapter (file stem); each name must be a parameter of that chapter
      07_recycling:
        layer: 23

``scripts/reproduce.py`` (``make reproduce PRESET=<slug>``) resolves one flat parameter file per
notebook (``_build/presets/<slug>/params/<stem>.yaml``), each usable as ``papermill -f``.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import store

__all__ = [
    "DATASET_NAMES",
    "KEY_NUMBERS_MIME",
    "NOTEBOOK_DIR",
    "PAPER_MI_SETTINGS",
    "PAPER_MODELS",
    "REPO_ROOT",
    "config_from",
    "count_interval",
    "accuracy_text",
    "arm_sentences",
    "data_text",
    "dataset_names",
    "eval_settings",
    "differences",
    "figure_title",
    "key_numbers_payload",
    "model_box",
    "model_name",
    "paper_model",
    "reading",
    "save_key_numbers",
    "show_markdown",
    "injected_parameters",
    "init_notebook",
    "label",
    "load_preset",
    "notebook_parameters",
    "ours_label",
    "paper_vs_ours",
    "preset_parameters",
    "print_numbers",
    "provenance_cell",
    "set_style",
    "task_note",
    "truncation_sentence",
    "version_string",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
_STARTED = time.time()
#: Seconds a chapter waits for another process writing the same run (``$MIPEAKS_WRITER_WAIT``).
CHAPTER_WRITER_WAIT = 3600


# ---------------------------------------------------------------------------
# Notebook set-up
# ---------------------------------------------------------------------------


def _showwarning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:
    """Print ``Category: message`` only: the default format leaks the machine's file paths."""
    import sys

    text = re.sub(r"(/[^\s:'\"]+)+/", "", str(message))  # strip directories quoted in the message
    print(f"{category.__name__}: {text}", file=file or sys.stderr)


def set_style() -> None:
    """The book's seaborn theme (white grid, colour-blind palette, fixed figure size and dpi).

    Inside a Jupyter kernel it also selects the inline backend, so figures land in the notebook
    even when ``MPLBACKEND=Agg`` is set in the environment.
    """
    import sys

    import matplotlib as mpl
    import seaborn as sns

    if "ipykernel" in sys.modules:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("matplotlib", "inline")

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
    mpl.rcParams.update({"figure.figsize": (8.0, 4.5), "figure.dpi": 100, "savefig.dpi": 100,
                         "figure.autolayout": True})


def init_notebook() -> float:
    """Start a chapter: set the seaborn style, print warnings without paths, start the wall clock.

    Also sets ``TOKENIZERS_PARALLELISM=false`` and ``$MIPEAKS_WRITER_WAIT`` (a chapter executed
    beside another that writes the same run waits for it, see :func:`mipeaks.store.writer_lock`),
    silences ``DeprecationWarning`` and ``FutureWarning`` from libraries (they vary between
    environments and would make outputs machine-dependent) and tqdm's "IProgress not found"
    notice, and turns off the Hugging Face download and weight-loading progress bars.

    Returns:
        The start time (``time.time()``) that :func:`provenance_cell` reports the wall time from.
    """
    global _STARTED
    import sys

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when transformers is imported
    # Chapters share runs (1-4, 9) and records (6, 7): one run beside another waits for it, then resumes.
    os.environ.setdefault(store.WAIT_ENV, str(CHAPTER_WRITER_WAIT))
    if "transformers" in sys.modules:  # already imported: switch its bars off directly
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    warnings.showwarning = _showwarning
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message="IProgress not found")
    pd.set_option("display.max_colwidth", None)  # full cell text in tables (pandas cuts at 50 by default)
    set_style()
    _STARTED = time.time()
    return _STARTED


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


#: The first line of the cell papermill injects (its Python translator's comment).
PAPERMILL_MARK = "# Parameters"


def injected_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """Names assigned by papermill's injected-parameters cell, read from the kernel's input history.

    IPython keeps every executed cell's source in ``_ih`` (also ``In``); papermill's injected cell
    starts with :data:`PAPERMILL_MARK`. Outside a papermill run the list is empty.
    """
    history = namespace.get("_ih") or namespace.get("In") or []
    names: list[str] = []
    for source in history:
        if not isinstance(source, str) or not source.lstrip().startswith(PAPERMILL_MARK):
            continue
        try:
            body = ast.parse(source).body
        except SyntaxError:
            continue
        for node in body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


def config_from(cls: type, namespace: Mapping[str, Any]) -> Any:
    """Build the frozen config dataclass ``cls`` from a notebook namespace (``globals()``).

    Every field of ``cls`` must be defined in ``namespace`` (the ``parameters`` cell); other
    names are ignored, except those papermill injected (:func:`injected_parameters`): each must
    be a field, so a misspelt ``-p`` name fails instead of running with the default. Lists (what
    papermill injects from YAML) become tuples for tuple fields; the config's own
    ``__post_init__`` checks types and values.

    Raises:
        TypeError: ``cls`` is not a dataclass.
        NameError: a field has no value in ``namespace``; the message lists all missing names.
        ValueError: an injected parameter is not a field of ``cls``; the message lists close
            matches and the fields.
    """
    from .validation import close_matches

    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        raise TypeError(f"{cls!r} is not a dataclass type")
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    unknown = [name for name in injected_parameters(namespace) if name not in names]
    if unknown:
        hints = [f"{u!r} (did you mean {' or '.join(map(repr, close_matches(u, names)))}?)"
                 if close_matches(u, names) else repr(u) for u in unknown]
        raise ValueError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(hints)}: {cls.__name__} has {names}")
    missing = [f.name for f in fields if f.name not in namespace]
    if missing:
        raise NameError(f"the parameters cell does not define {missing} (fields of {cls.__name__})")
    kwargs: dict[str, Any] = {}
    for f in fields:
        value = namespace[f.name]
        if isinstance(value, list) and "tuple" in str(f.type):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _config_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"expected a dataclass instance or a mapping, got {type(config).__name__}")


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Names and default values of the ``parameters``-tagged cell of a notebook (``.py`` or ``.ipynb``).

    Values that are not literals come back as their source text.

    Raises:
        ValueError: the notebook has no parameters cell, or more than one.
    """
    import jupytext

    nb = jupytext.read(str(path))
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected exactly one 'parameters' cell, found {len(cells)}")
    source = cells[0].source
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    out[target.id] = ast.get_source_segment(source, node.value)
    return out


def load_preset(name: str | Path) -> dict[str, Any]:
    """Read a preset: a slug under ``notebooks/params/`` or a path to a YAML file.

    Returns ``{"shared": {...}, "notebooks": {stem: {...}}}`` (missing parts are empty).

    Raises:
        FileNotFoundError: no such preset (the message lists the available ones).
        ValueError: the file has keys other than ``shared``/``notebooks``/``description``.
    """
    import yaml

    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):  # a slug (it may contain dots: "qwen2.5-14b")
        path = NOTEBOOK_DIR / "params" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (NOTEBOOK_DIR / "params").glob("*.yaml"))
        raise FileNotFoundError(f"no preset {name!r}; available: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    extra = set(data) - {"shared", "notebooks", "description"}
    if extra:
        raise ValueError(f"{path}: unknown top-level keys {sorted(extra)} (use shared:, notebooks:)")
    return {"description": data.get("description", ""), "shared": dict(data.get("shared") or {}),
            "notebooks": {k: dict(v or {}) for k, v in (data.get("notebooks") or {}).items()}}


def preset_parameters(preset: Mapping[str, Any] | str | Path, notebook: str | Path) -> dict[str, Any]:
    """The flat parameters a preset gives one notebook (for ``papermill -f``).

    ``shared`` names are applied where the notebook has a parameter of that name and skipped
    elsewhere; the notebook's own section (keyed by file stem, e.g. ``07_recycling``) overrides
    them, and each of its names must be a parameter of that notebook.

    Raises:
        KeyError: a notebook section sets a name the notebook does not have.
    """
    if not isinstance(preset, Mapping):
        preset = load_preset(preset)
    path = Path(notebook)
    if not path.suffix:
        path = NOTEBOOK_DIR / f"{path.name}.py"
    names = notebook_parameters(path)
    params = {k: v for k, v in preset.get("shared", {}).items() if k in names}
    own = preset.get("notebooks", {}).get(path.stem, {})
    unknown = sorted(set(own) - set(names))
    if unknown:
        raise KeyError(f"preset sets {unknown} for {path.stem}, which has parameters {sorted(names)}")
    params.update(own)
    return params


# ---------------------------------------------------------------------------
# Output helpers
# ---------------------------------------------------------------------------


def _fmt(value: Any, digits: int, significant: int | None = None) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return str(value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = f"{value:.{significant}g}" if significant else f"{value:.{digits}f}"
        return text[1:] if re.fullmatch(r"-0\.?0*", text) else text  # no "-0.000"
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        seq = value.tolist() if hasattr(value, "tolist") else value
        return "[" + ", ".join(_fmt(v, digits, significant) for v in seq) + "]"
    return str(value)


def print_numbers(mapping: Mapping[str, Any], digits: int = 3, *, significant: int | None = None) -> None:
    """Print ``key: value`` lines, floats at ``digits`` decimals, for nbval-checked cells.

    Put ``# NBVAL_CHECK_OUTPUT`` in the cell: CI (``--nbval-lax``) then compares this text, so a
    changed result fails while cosmetic output does not. Sequences print element-wise.
    With ``significant``, floats print at that many significant digits instead (``1.23e-05``),
    for values of any magnitude; keep it off for differences that may be float noise around 0.
    """
    width = max((len(str(k)) for k in mapping), default=0)
    for key, value in mapping.items():
        print(f"{str(key):<{width}} : {_fmt(value, digits, significant)}")


def label(source: str, model: str, n: int | None = None, hardware: str | None = None) -> str:
    """Who produced a row, e.g. ``label("paper", "R1-Llama-8B", 100, "4xA100")``
    -> ``"paper: R1-Llama-8B, n=100, 4xA100"``."""
    parts = [model] + ([f"n={n}"] if n is not None else []) + ([hardware] if hardware else [])
    return f"{source}: " + ", ".join(parts)


def _hardware(device: str | None) -> str:
    import torch

    if device and str(device).startswith(("cuda", "auto")) and torch.cuda.is_available():
        return f"{torch.cuda.device_count()}x{torch.cuda.get_device_name(0)}"
    return "CPU"


def ours_label(config: Any, model: Any = None) -> str:
    """``label("mipeaks", <model>, n, <hardware>)`` for a config with ``model``/``n``/``device`` fields."""
    fields = _config_dict(config)
    name = getattr(model, "name", None) or fields.get("model") or "?"
    name = str(name).rstrip("/").split("/")[-1]
    return label("mipeaks", name, fields.get("n"), _hardware(fields.get("device", "cpu")))


def paper_vs_ours(paper_df: pd.DataFrame, ours_df: pd.DataFrame, *, ours_label: str,
                  paper_label: str) -> pd.DataFrame:
    """Stack the paper's published rows and ours into one table with a leading ``source`` column.

    ``source`` says who produced each row (use :func:`label` / :func:`ours_label`). The row
    index of each input becomes a column (named after the index, or ``row``) when it is not a
    plain RangeIndex. Columns missing on one side are left empty (NaN).
    """
    def prep(df: pd.DataFrame, who: str) -> pd.DataFrame:
        df = df.copy()
        if not isinstance(df.index, pd.RangeIndex):
            df = df.reset_index(names=[n or "row" for n in df.index.names])
        df.insert(0, "source", who)
        return df

    return pd.concat([prep(paper_df, paper_label), prep(ours_df, ours_label)], ignore_index=True)


def version_string(short: bool = True) -> str:
    """``"mipeaks 0.1.0, commit abc1234"`` (``unknown`` outside a git checkout)."""
    from mipeaks.provenance import git_commit, versions

    return f"mipeaks {versions(('mipeaks',))['mipeaks']}, commit {git_commit(short=short) or 'unknown'}"


def provenance_cell(config: Any, model: Any = None, started: float | None = None,
                    dataset: str | None = None) -> pd.DataFrame:
    """Display (and return) the chapter's provenance table.

    Rows: mipeaks version, git commit, the commit(s) that made each run or records file this
    process read, model (name and source), dataset, every parameter of
    ``config``, device, library versions, date and wall time since :func:`init_notebook` (or
    ``started``, a ``time.time()`` value).

    Args:
        config: the chapter's config dataclass (or a mapping).
        model: the :class:`~mipeaks.models.LoadedModel` used, if any.
        started: start time; default: when :func:`init_notebook` ran (or this module was imported).
        dataset: dataset description when ``config`` has no ``dataset`` field.
    """
    from mipeaks.provenance import provenance

    prov = provenance()
    fields = _config_dict(config)
    vers = prov["versions"]
    rows: list[tuple[str, str]] = [("mipeaks version", str(vers.get("mipeaks"))),
                                   ("git commit", str(prov["git_commit"]))]
    from mipeaks.store import runs_read

    made: dict[str, list[str]] = {}
    for path, commit in runs_read().items():
        made.setdefault(commit or "unknown", []).append(Path(path).name)
    rows += [(f"runs read, made at commit {commit}", ", ".join(names[:3]) + (f" and {len(names) - 3} more"
                                                                              if len(names) > 3 else ""))
             for commit, names in made.items()]
    if model is not None:
        info = model.describe() if hasattr(model, "describe") else {"name": str(model)}
        rows.append(("model", f"{info.get('name')} ({info.get('source') or 'source unknown'}; "
                              f"{info.get('dtype', '?')}, {info.get('device', '?')})"))
    elif "model" in fields:
        rows.append(("model", f"{fields['model']} (not loaded in this chapter)"))
    else:
        rows.append(("model", "none (no model is run in this chapter)"))
    rows.append(("dataset", str(dataset or fields.get("dataset") or ", ".join(fields.get("datasets") or ()) or "none")))
    name = type(config).__name__ if dataclasses.is_dataclass(config) else "parameters"
    rows += [(f"{name}.{k}", json.dumps(v, default=str)) for k, v in fields.items()]
    rows += [("device", prov["device"]),
             ("libraries", ", ".join(f"{k} {v}" for k, v in vers.items() if k != "mipeaks")),
             ("python", prov["python"]),
             ("run at (UTC)", prov["created_utc"]),
             ("wall time", f"{time.time() - (_STARTED if started is None else started):.1f} s")]
    table = pd.DataFrame(rows, columns=["item", "value"]).set_index("item")
    try:
        from IPython.display import display

        with pd.option_context("display.max_colwidth", None):
            display(table)
    except ImportError:  # pragma: no cover - outside IPython
        print(table.to_string())
    return table



def task_note(dataset: str, n: int, baseline: int, *, max_new_tokens: int, prompt_style: str,
              arm: str = "baseline", others: Mapping[str, int] | None = None, model: Any = None) -> str:
    """Markdown saying which task a chapter ran (and why), the baseline accuracy and each arm's, with intervals.

    For ``"arith"`` (the CPU default of chapters 6-8) it explains why the run uses a synthetic task.
    Each arm in ``others`` is reported with its 95% Wilson interval and whether its accuracy lies
    outside the baseline's interval.

    Args:
        dataset: the run's dataset name.
        n: number of problems.
        baseline: problems the baseline arm answered correctly.
        max_new_tokens: the generation length of the run.
        prompt_style: the run's prompt style.
        arm: what the baseline is called in the chapter (``"k = 0"``, ``"Origin"``, ...).
        others: correct counts of the other arms, by label (same ``n``).
        model: the run's model (name or loaded model); the ``arith`` note names it.

    Returns:
        A Markdown paragraph (display it with ``IPython.display.Markdown``).
    """
    from mipeaks.evaluate import wilson_interval
    from mipeaks.models import EMBEDDED_MODEL

    def acc(k: int) -> str:
        low, high = wilson_interval(k, n)
        return f"{k}/{n} = {k / n:.0%} (95% Wilson interval {low:.0%}-{high:.0%})"

    low, high = wilson_interval(baseline, n)
    if dataset == "arith":
        from mipeaks.data import ARITH_DEFAULT_TEMPLATES, ARITH_STEPS

        mix = sorted(set(ARITH_STEPS))
        steps = (f"{mix[0]} step{'s' if mix[0] > 1 else ''} each" if len(mix) == 1
                 else f"step counts cycling through {', '.join(map(str, ARITH_STEPS))}")
        names = {"add": "additions", "subtract": "subtractions", "multiply": "multiplications",
                 "share": "equal shares"}
        ops = [names[t] for t in ARITH_DEFAULT_TEMPLATES]
        ops_text = ops[0] if len(ops) == 1 else ", ".join(ops[:-1]) + " and " + ops[-1]
        text = (
            f"**Why a synthetic task.** This run uses `arith`, {n} seeded arithmetic word problems "
            f"({ops_text}; {steps}; `mipeaks.data.arith_problems`), "
            f"not GSM8K. ")
        embedded = model is None or model_name(None, model) == model_name(None, EMBEDDED_MODEL)
        if embedded:
            text += (f"Its model, {model_name(None, EMBEDDED_MODEL)}, answers almost no GSM8K problem at a length a "
                     "CPU affords, so every arm would sit at zero accuracy, with no room to fall. The task's "
                     "difficulty was chosen from this model's baseline runs alone (no intervention enters the choice; "
                     "the trials are listed in `arith_problems`). ")
        else:
            text += (f"The task was made for the book's CPU run, whose small model answers almost no GSM8K problem "
                     f"at a length a CPU affords; its difficulty was chosen from that model's baseline, not from "
                     f"{model_name(None, model)}'s. ")
        if not embedded:
            text = text.replace("This run uses", f"This run ({model_name(None, model)}) uses", 1)
        text += "The paper's presets run GSM8K, MATH-500 and AIME24. "
    else:
        text = f"This run uses **{DATASET_NAMES.get(dataset, dataset)}** ({n} problems). "
    text += (f"With the `{prompt_style}` prompt and at most {max_new_tokens} new tokens, the {arm} accuracy is "
             f"**{acc(baseline)}**.")
    if others:
        parts = []
        for label, k in others.items():
            where = "outside" if not low <= k / n <= high else "inside"
            parts.append(f"{label}: {acc(k)}, {where} the {arm} interval")
        text += " " + "; ".join(parts) + "."
        text += (f" An accuracy inside the {arm} interval is within the binomial noise of one run of {n} "
                 "problems; one outside it is a change larger than that noise.")
    return text


# ---------------------------------------------------------------------------
# Text generated from the run: model boxes, titles, readings, key numbers
# ---------------------------------------------------------------------------

#: The paper's models, Hugging Face hub id -> the short name its tables and figures use: the six
#: LRMs of Table 1 and the five non-reasoning models of Table 2. The one list of them in the package.
PAPER_MODELS: dict[str, str] = {
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": "R1-Qwen-7B",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-8B": "R1-Llama-8B",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": "R1-Qwen-14B",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B": "R1-Qwen-32B",
    "Qwen/QwQ-32B": "QwQ-32B",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B": "R1-Llama-70B",
    "meta-llama/Llama-3.1-8B": "Llama-3.1-8B",
    "Qwen/Qwen2.5-Math-7B": "Qwen2.5-Math-7B",
    "Qwen/Qwen2.5-14B": "Qwen2.5-14B",
    "Qwen/Qwen2.5-32B": "Qwen2.5-32B",
    "meta-llama/Llama-3.3-70B-Instruct": "Llama-3.3-70B-Instruct",
}

#: The paper's settings of the MI experiments (chapters 1-4 and 9): paper text and official code.
PAPER_MI_SETTINGS: dict[str, Any] = {"dataset": "math-train", "n": 100, "prompt_style": "raw", "layer": "last",
                                     "max_new_tokens": 512, "gold": "solution", "batch_size": 1,
                                     "estimator": "hsic_paper", "sigma": 50.0, "peak_rule": "iqr", "tau": 1.5,
                                     "top_k": 20, "token_mode": "generated"}

#: How the book names each dataset of :data:`mipeaks.data.DATASETS`.
DATASET_NAMES: dict[str, str] = {"gsm8k": "GSM8K test", "math500": "MATH-500", "aime24": "AIME 2024",
                                 "math-train": "MATH train", "arith": "synthetic arithmetic (arith)"}

#: MIME type of the key numbers a chapter attaches to its executed notebook (:func:`save_key_numbers`).
KEY_NUMBERS_MIME = "application/vnd.mipeaks.key-numbers+json"


def paper_model(model: Any) -> str | None:
    """The paper's short name of ``model`` (hub id, local directory or loaded model), or None.

    A local directory counts when its last path component is the last part of a paper hub id
    (``/data/DeepSeek-R1-Distill-Llama-8B``); the comparison ignores case.
    """
    name = str(getattr(model, "source", None) or getattr(model, "name", None) or model).rstrip("/")
    tail = name.split("/")[-1].lower()
    for hub_id, short in PAPER_MODELS.items():
        if name.lower() == hub_id.lower() or tail == hub_id.split("/")[-1].lower():
            return short
    return None


def model_name(config: Any, model: Any = None) -> str:
    """Display name of the run's model: the paper's short name, else the loaded name, else the config's."""
    fields = _config_dict(config) if config is not None else {}
    for candidate in (model, fields.get("model")):
        if candidate is not None and paper_model(candidate):
            return str(paper_model(candidate))
    name = getattr(model, "name", None) or (model if isinstance(model, str) else None) or fields.get("model") or "?"
    name = str(name).rstrip("/").split("/")[-1]
    return "SmolLM2-135M-Instruct" if name == "smollm2-135m-instruct" else name


def dataset_names(config: Any) -> list[str]:
    """The book's names of the run's data sets: ``dataset``, or each of a sweep's ``datasets``."""
    fields = _config_dict(config)
    sets = fields.get("datasets") or ([fields["dataset"]] if fields.get("dataset") is not None else [])
    return [DATASET_NAMES.get(str(d), str(d)) for d in sets]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def data_text(config: Any) -> str:
    """``"the first 20 GSM8K test problems"``, ``"100 MATH train problems (a seeded random sample,
    seed 0)"`` (the config's ``sample``/``sample_seed``, :func:`mipeaks.data.resolve_sample`), or
    ``"all ... problems"`` when ``n`` is None.

    A sweep over several benchmarks (a ``datasets`` field) gives ``"the first 20 problems of each of
    GSM8K test, MATH-500 and AIME 2024"``.
    """
    from .data import resolve_sample

    fields = _config_dict(config)
    names = dataset_names(config)
    data = _join(names)
    n = fields.get("n")
    if len(names) > 1:
        return f"all problems of {data}" if n is None else f"the first {n} problem{'s' if n != 1 else ''} of each of {data}"
    dataset = str(fields.get("dataset") or (list(fields.get("datasets") or []) or [None])[0])
    try:
        rule = resolve_sample(dataset, fields.get("sample", "auto"))  # load_problems' default: "auto"
    except ValueError:  # an unknown dataset or sample: the config's own check reports it
        rule = "first"
    if rule == "random":
        seed = fields.get("sample_seed", 0)
        what = "all" if n is None else f"{n}"
        return f"{what} {data} problem{'s' if n != 1 else ''} (a seeded random sample, seed {seed})"
    return f"all {data} problems" if n is None else f"the first {n} {data} problem{'s' if n != 1 else ''}"


def _not_paper_note(config: Any, model: Any) -> str:
    fields = _config_dict(config)
    if paper_model(model if model is not None else fields.get("model", "")):
        return ""
    return " (not one of the paper's models)"


def figure_title(what: str, config: Any, model: Any = None, *, n: int | None = None) -> str:
    """A figure title naming what, the model, the data and n, e.g.
    ``"MI trajectories: SmolLM2-135M-Instruct, GSM8K test, n=20 (not one of the paper's models)"``.

    Args:
        what: what the figure shows.
        config: the chapter's config (``model``, ``dataset``, ``n`` fields).
        model: the loaded model, if any (its name wins over the config's).
        n: the number of problems shown, when it differs from ``config.n`` (e.g. the run's length).
    """
    fields = _config_dict(config)
    data = ", ".join(dataset_names(config))
    count = n if n is not None else fields.get("n")
    parts = [model_name(config, model)] + ([str(data)] if data else []) + ([f"n={count}"] if count else [])
    return f"{what}: {', '.join(parts)}{_not_paper_note(config, model)}"


def model_box(config: Any, model: Any = None, *, n: int | None = None, settings: str | None = None,
              note: str | None = None, paper_settings: Mapping[str, Any] | None = None) -> str:
    """The "Which model produced these numbers" box of a chapter, as MyST Markdown (an admonition).

    It names the model (the paper's short name when it is one of :data:`PAPER_MODELS`, and says
    so when it is not), dtype and device, the data and ``n``, and the run's settings.

    Args:
        config: the chapter's config dataclass (or mapping) with ``model``/``dtype``/``device``.
        model: the loaded model, if any.
        n: the number of problems actually run (default: ``config.n``).
        settings: one line of settings (e.g. :func:`mipeaks.pipeline.settings_text`).
        note: a further sentence that depends on the run (e.g. why a comparison is skipped).
        paper_settings: the paper's values of config fields; the fields that differ are listed
            (:func:`differences`). None: no list.

    Returns:
        Markdown; show it with :func:`show_markdown`.
    """
    fields = _config_dict(config)
    name = model_name(config, model)
    ident = str(fields.get("model", name))
    dtype = getattr(model, "dtype", None) or fields.get("dtype", "?")
    device = _hardware(fields.get("device", "cpu"))
    count = n if n is not None else fields.get("n")
    data = data_text({**fields, "n": count}) if dataset_names(config) else "no data set"
    short = paper_model(model if model is not None else ident)
    whose = (f"It is the paper's {short}." if short else
             f"It is **not one of the paper's models** ({', '.join(PAPER_MODELS.values())}).")
    lines = ["```{important}",
             f"**Which model produced these numbers.** **{name}** (`{ident}`; "
             f"{str(dtype).removeprefix('torch.')}, {device}) on {data}. {whose}"]
    if settings:
        lines += ["", f"Settings: {settings}."]
    diff = differences(config, paper_settings) if paper_settings is not None else ""
    if diff:
        lines += ["", "Where this run's settings differ from the paper's:", "", diff]
    if note:
        lines += ["", note]
    lines.append("```")
    return "\n".join(lines)


def differences(config: Any, paper: Mapping[str, Any] | None = None) -> str:
    """Markdown list of the config's fields that differ from the paper's settings, or ``""``.

    Args:
        config: the chapter's config.
        paper: the paper's values by field name (default :data:`PAPER_MI_SETTINGS`).
    """
    fields = _config_dict(config)
    paper = PAPER_MI_SETTINGS if paper is None else paper
    rows = [f"* `{k}` = `{fields[k]!r}` (the paper: `{v!r}`)" for k, v in paper.items()
            if k in fields and fields[k] != v]
    return "\n".join(rows)


def budget_trend(low: Mapping[str, Any], high: Mapping[str, Any]) -> str:
    """Origin's accuracy between two budgets, in words, judged against binomial noise.

    ``low`` and ``high`` hold ``correct``, ``n``, ``budget`` and ``mean_reasoning_tokens`` (rows of
    :func:`mipeaks.evaluate.ttts_sweep`). The accuracy "rises" or "falls" only when the larger
    budget's count leaves the smaller budget's 95% Wilson interval; it "plateaus" only when it
    stays inside it **and** the model stops by itself well inside the budget (< 75% used on average).
    """
    from mipeaks.evaluate import wilson_interval

    lo, hi = wilson_interval(int(low["correct"]), int(low["n"]))
    acc = int(high["correct"]) / int(high["n"])
    used = float(high["mean_reasoning_tokens"]) / float(high["budget"])
    text = (f"Origin's accuracy goes from {low['correct']}/{low['n']} at budget {low['budget']} to "
            f"{high['correct']}/{high['n']} at {high['budget']}, while its mean reasoning tokens go from "
            f"{float(low['mean_reasoning_tokens']):.1f} to {float(high['mean_reasoning_tokens']):.1f} "
            f"({used:.0%} of the larger budget)")
    if acc > hi:
        return text + ": it still rises beyond the binomial noise, so it has not plateaued at these budgets."
    if acc < lo:
        return text + ": it falls beyond the binomial noise."
    if used < 0.75:
        return text + ": no change beyond the noise while the model stops by itself, a plateau."
    return (text + ": no change beyond the noise, but the model uses most of the budget, so these budgets "
            "cannot tell a plateau from a slow rise.")


def reading(*sentences: str | None, title: str = "Reading") -> str:
    """A ``**Reading.**`` paragraph from sentences chosen from the numbers (None and "" are skipped)."""
    body = " ".join(s.strip() for s in sentences if s and s.strip())
    return f"**{title}.** {body}" if body else ""


def eval_settings(config: Any, **extra: Any) -> str:
    """One line of an evaluation chapter's settings, from its config, for :func:`model_box`.

    E.g. ``"greedy decoding, `deepseek-math` prompt, at most 48 new tokens, grading `verify`,
    extraction `ours`, batch size 10; ks = [0, 5]"``. Each ``extra`` item is appended as
    ``name = value`` (sweep axes, the intervention's parameters).
    """
    fields = _config_dict(config)
    parts = ["greedy decoding", f"`{fields.get('prompt_style')}` prompt",
             f"at most {fields.get('max_new_tokens')} new tokens", f"grading `{fields.get('grading')}`",
             f"extraction `{fields.get('extraction')}`", f"batch size {fields.get('batch_size')}"]
    text = ", ".join(parts)
    if extra:
        text += "; " + "; ".join(f"{k} = {v}" for k, v in extra.items())
    return text


def accuracy_text(correct: int, n: int) -> str:
    """``"12/40 = 30% (95% Wilson interval 18-45%)"``.

    Raises:
        ValueError: unless ``0 <= correct <= n`` and ``n >= 1``.
    """
    from mipeaks.evaluate import wilson_interval

    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    low, high = wilson_interval(correct, n)
    return f"{correct}/{n} = {correct / n:.0%} (95% Wilson interval {low:.0%}-{high:.0%})"


def arm_sentences(row: Mapping[str, Any], *, label: str, reference: str) -> str:
    """Sentences on one arm of a sweep against its reference arm, written from a :func:`~mipeaks.evaluate.compare_arms` row.

    They give the arm's accuracy with its Wilson interval and whether it lies outside the
    reference's (the row must have ``ref_ci_low``/``ref_ci_high``, or the comparison is left
    out), how many outputs differ from the reference's, and the change of the gold answer's
    mean log-probability with its 95% interval, read as lower / higher / no measurable change.

    Args:
        row: a row with ``n, correct, ci_low, ci_high, changed, answer_changed, gold_logprob_diff,
            gold_logprob_diff_ci_low, gold_logprob_diff_ci_high`` (and optionally ``ref_ci_low``,
            ``ref_ci_high``).
        label: the arm's name in the text.
        reference: the reference arm's name.
    """
    n, k = int(row["n"]), int(row["correct"])
    text = f"{label}: accuracy {accuracy_text(k, n)}"
    if row.get("ref_ci_low") is not None and row.get("ref_ci_high") is not None:
        inside = row["ref_ci_low"] <= k / n <= row["ref_ci_high"]
        text += f", {'inside' if inside else 'outside'} {reference}'s interval"
    changed, answers = int(row["changed"]), int(row["answer_changed"])
    text += (f"; {changed} of {n} outputs differ from {reference}'s ({answers} extracted "
             f"answer{'s' if answers != 1 else ''} differ)")
    diff, lo, hi = (row.get(c) for c in ("gold_logprob_diff", "gold_logprob_diff_ci_low",
                                         "gold_logprob_diff_ci_high"))
    if changed == 0:
        text += ", so the gold answer's log-probability is unchanged."
    elif lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        text += f"; the gold answer's mean log-probability changes by {diff:+.3f} nats/token (too few problems for an interval)."
    else:
        verdict = ("lower: the rewritten reasoning supports the gold answer less" if hi < 0 else
                   "higher: the rewritten reasoning supports the gold answer more" if lo > 0 else
                   "no measurable change (the interval spans zero)")
        text += (f"; the gold answer's mean log-probability changes by {diff:+.3f} nats/token "
                 f"(95% interval {lo:+.3f} to {hi:+.3f}): {verdict}.")
    return text


def truncation_sentence(capped: int, n: int, max_new_tokens: int, arm: str) -> str:
    """How many of an arm's outputs stopped at the token cap, and what that means for the accuracy.

    Args:
        capped: outputs whose ``stop_reason`` is ``"length"``.
        n: outputs.
        max_new_tokens: the cap.
        arm: the arm's name.

    Raises:
        ValueError: unless ``0 <= capped <= n`` and ``n >= 1``.
    """
    if not 0 <= capped <= n or n < 1:
        raise ValueError(f"need 0 <= capped <= n and n >= 1, got capped={capped}, n={n}")
    share = capped / n
    text = f"{capped} of the {n} {arm} outputs ({share:.0%}) stopped at the {max_new_tokens}-token cap"
    if share >= 0.5:
        return (text + ": most answers are cut off before the model finishes, so the accuracy measures what "
                "the model writes within the first tokens, and an intervention can only act on that prefix.")
    if capped:
        return text + "; the others ended on their own."
    return text + ": every output ended on its own."


def show_markdown(text: str) -> None:
    """Display Markdown in a notebook (``IPython.display.Markdown``); print it outside IPython."""
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover - outside IPython
        print(text)


def count_interval(k: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) Poisson confidence interval of a count ``k``.

    ``(chi2.ppf(a/2, 2k)/2, chi2.ppf(1 - a/2, 2k + 2)/2)`` with ``a = 1 - level``; 0 for the lower
    end when ``k = 0``. For ``k = 2`` at 95%: (0.242, 7.22).

    Raises:
        ValueError: ``k`` is negative or ``level`` is not in (0, 1).
    """
    from scipy.stats import chi2

    if isinstance(k, bool) or int(k) != k or k < 0:
        raise ValueError(f"count k must be a non-negative integer, got {k!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    a = 1.0 - level
    lo = 0.0 if k == 0 else float(chi2.ppf(a / 2, 2 * k) / 2)
    return lo, float(chi2.ppf(1 - a / 2, 2 * k + 2) / 2)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def key_numbers_payload(chapter: str, key_numbers: Mapping[str, Any], config: Any, model: Any = None,
                        findings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON record :func:`save_key_numbers` attaches: chapter, model, n, hardware, settings, numbers.

    Args:
        chapter: the notebook's file stem, e.g. ``"01_mi_trajectories"``.
        key_numbers: the chapter's checked numbers (non-finite floats become null).
        config: the chapter's config.
        model: the loaded model, if any.
        findings: optional ``{paper item: {"ours": text, "holds": bool | None}}`` for chapters whose
            claims :mod:`mipeaks.overview` does not evaluate itself.
    """
    fields = _config_dict(config)
    ident = str(fields.get("model")) if "model" in fields else None
    return {"chapter": chapter, "model": ident,
            "model_name": model_name(config, model) if ident else None,
            "paper_model": paper_model(model if model is not None else ident) if ident else None,
            "n": fields.get("n"), "dataset": fields.get("dataset") or ",".join(fields.get("datasets") or ()) or None,
            "hardware": _hardware(fields.get("device", "cpu")),
            "settings": _jsonable(fields), "key_numbers": _jsonable(dict(key_numbers)),
            "findings": _jsonable(dict(findings or {}))}


def save_key_numbers(chapter: str, key_numbers: Mapping[str, Any], config: Any, model: Any = None,
                     findings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Attach the chapter's key numbers to its executed notebook, for the overview page.

    Displays one output of MIME type :data:`KEY_NUMBERS_MIME` (the book shows nothing for it), so
    the record travels with the ``.ipynb`` and :func:`mipeaks.overview.read_key_numbers` finds it
    in committed and preset-built notebooks alike. Put it in its own cell after the checked one.

    Returns:
        The record (:func:`key_numbers_payload`).
    """
    payload = key_numbers_payload(chapter, key_numbers, config, model, findings)
    try:
        from IPython.display import display

        display({KEY_NUMBERS_MIME: payload}, raw=True)
    except ImportError:  # pragma: no cover - outside IPython
        pass
    return payload
