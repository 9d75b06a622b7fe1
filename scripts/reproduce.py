#!/usr/bin/env python
"""Run every chapter with one preset and build a book: ``mipeaks reproduce`` (see :mod:`mipeaks.reproduce`).

    .venv/bin/python scripts/reproduce.py r1-llama-8b [--only 05_error_bounds ...] [--keep-going]
        [--no-book] [--dry-run] [--timeout SECONDS] [--out _build/presets]
"""

import sys

from mipeaks.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["reproduce", *sys.argv[1:]]))
