#!/usr/bin/env python
"""Execute chapter notebooks from their jupytext source and write the paired, executed ``.ipynb``.

    .venv/bin/python scripts/execute_notebook.py notebooks/05_error_bounds.py [more.py ...]

The ``.py`` (py:percent) is the source of truth: its cells are read with jupytext, executed with
the default parameters in ``notebooks/`` (the working directory the book, papermill and nbval use)
and written to the ``.ipynb`` beside it, replacing its previous outputs. Commit both files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient


def execute(py: Path, timeout: int = 1800) -> Path:
    nb = jupytext.read(str(py))
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(py.parent)}}).execute()
    out = py.with_suffix(".ipynb")
    nbformat.write(nb, str(out))
    print(f"{out}: executed in {time.time() - start:.0f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks/NN_name.py files")
    parser.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for py in args.notebooks:
        if py.suffix != ".py":
            sys.exit(f"{py}: give the jupytext .py source")
        execute(py.resolve(), args.timeout)


if __name__ == "__main__":
    main()
