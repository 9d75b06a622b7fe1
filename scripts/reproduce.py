#!/usr/bin/env python
"""Run every chapter with one preset and build a book from the results (``make reproduce PRESET=...``).

    .venv/bin/python scripts/reproduce.py r1-llama-8b [--only 05_error_bounds ...] [--keep-going]
        [--no-book] [--dry-run] [--timeout SECONDS] [--out _build/presets]

For each chapter of ``book/_toc.yml``: resolve the preset into the chapter's parameters
(:func:`mipeaks.book.preset_parameters`), write them to ``<out>/<preset>/params/<chapter>.yaml`` (a
flat file for ``papermill -f``), and execute the chapter's ``.ipynb`` with papermill into
``<out>/<preset>/notebooks/``. Then build a book from those notebooks, executing nothing, into
``<out>/<preset>/html``. See book/reproduce.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_book import ROOT, build, toc_chapters  # noqa: E402

from mipeaks.book import load_preset, preset_parameters  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="a slug under notebooks/params/ (e.g. r1-llama-8b) or a YAML path")
    parser.add_argument("--only", nargs="+", default=None, help="chapter stems to run (others: committed)")
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "presets")
    parser.add_argument("--keep-going", action="store_true", help="continue after a failing chapter")
    parser.add_argument("--no-book", action="store_true", help="execute the notebooks only")
    parser.add_argument("--dry-run", action="store_true", help="write and print the parameters, run nothing")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default: none)")
    args = parser.parse_args()

    preset = load_preset(args.preset)
    name = Path(args.preset).stem
    base = args.out / name
    (base / "params").mkdir(parents=True, exist_ok=True)
    (base / "notebooks").mkdir(parents=True, exist_ok=True)
    chapters = [Path(c).stem for c in toc_chapters()]
    unknown = sorted(set(args.only or []) - set(chapters)) + sorted(set(preset["notebooks"]) - set(chapters))
    if unknown:
        sys.exit(f"unknown chapter(s) {unknown}; chapters: {chapters}")
    selected = [c for c in chapters if args.only is None or c in args.only]

    resolved = {}
    for stem in selected:
        params = preset_parameters(preset, ROOT / "notebooks" / f"{stem}.ipynb")
        (base / "params" / f"{stem}.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        resolved[stem] = params
        print(f"{stem}: {params}", flush=True)
    if args.dry_run:
        return

    import papermill

    failed: list[str] = []
    for stem in selected:
        start = time.time()
        print(f"== {stem} ({name})", flush=True)
        try:
            papermill.execute_notebook(
                str(ROOT / "notebooks" / f"{stem}.ipynb"), str(base / "notebooks" / f"{stem}.ipynb"),
                parameters=resolved[stem], cwd=str(ROOT / "notebooks"), kernel_name="python3",
                progress_bar=False, execution_timeout=args.timeout, request_save_on_cell_execute=True)
        except Exception:  # noqa: BLE001 - report and maybe continue
            traceback.print_exc(limit=1)
            failed.append(stem)
            (base / "notebooks" / f"{stem}.ipynb").rename(base / "notebooks" / f"{stem}.failed.ipynb")
            if not args.keep_going:
                sys.exit(f"{stem} failed; its partial notebook: {base / 'notebooks' / f'{stem}.failed.ipynb'}")
        print(f"   {stem}: {time.time() - start:.0f} s", flush=True)
    if failed:
        print(f"failed chapters (their committed CPU version is used in the book): {failed}")
    if args.no_book:
        return
    banner = (f"Preset {name}: {preset['description']}".strip(" :") if preset["description"]
              else f"Preset {name}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # building needs no network
    build(base / "notebooks", work=base / "staged", html=base / "html", execute="off", banner=banner,
          title_suffix=f"preset {name}", fallback=ROOT / "notebooks")


if __name__ == "__main__":
    main()
