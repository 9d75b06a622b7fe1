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

__all__ = [
    "NOTEBOOK_DIR",
    "REPO_ROOT",
    "config_from",
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
    "version_string",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
_STARTED = time.time()


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

    Also sets ``TOKENIZERS_PARALLELISM=false``, silences ``DeprecationWarning`` and
    ``FutureWarning`` from libraries (they vary between environments and would make outputs
    machine-dependent) and tqdm's "IProgress not found" notice, and turns off the Hugging Face
    download and weight-loading progress bars.

    Returns:
        The start time (``time.time()``) that :func:`provenance_cell` reports the wall time from.
    """
    global _STARTED
    import sys

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when transformers is imported
    if "transformers" in sys.modules:  # already imported: switch its bars off directly
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    warnings.showwarning = _showwarning
    for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message="IProgress not found")
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
    rows.append(("dataset", str(dataset or fields.get("dataset", "none"))))
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

        display(table)
    except ImportError:  # pragma: no cover - outside IPython
        print(table.to_string())
    return table



def task_note(dataset: str, n: int, baseline: int, *, max_new_tokens: int, prompt_style: str,
              arm: str = "baseline", others: Mapping[str, int] | None = None) -> str:
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

    Returns:
        A Markdown paragraph (display it with ``IPython.display.Markdown``).
    """
    from mipeaks.evaluate import wilson_interval

    def acc(k: int) -> str:
        low, high = wilson_interval(k, n)
        return f"{k}/{n} = {k / n:.0%} (95% Wilson interval {low:.0%}-{high:.0%})"

    low, high = wilson_interval(baseline, n)
    if dataset == "arith":
        from mipeaks.data import ARITH_STEPS

        mix = sorted(set(ARITH_STEPS))
        steps = (f"{mix[0]} step{'s' if mix[0] > 1 else ''} each" if len(mix) == 1
                 else f"step counts cycling through {', '.join(map(str, ARITH_STEPS))}")
        text = (
            f"**Why a synthetic task.** This run uses `arith`, {n} seeded arithmetic word problems "
            f"(add, subtract, multiply, share; {steps}; `mipeaks.data.arith_problems`), "
            f"not GSM8K: the embedded 135M model answers almost no "
            f"GSM8K problem at a length a CPU affords, so every arm would sit at zero accuracy, with no room "
            f"to fall. The task's difficulty was fixed from the baseline alone, before any intervention "
            f"was run. The paper's presets keep GSM8K, MATH-500 and AIME24. ")
    else:
        text = f"This run uses **{dataset}** ({n} problems). "
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
