"""Run every chapter with one preset and build a book from the results.

    mipeaks reproduce r1-llama-8b [--only 05_error_bounds ...] [--keep-going] [--no-book] [--dry-run]
        [--timeout SECONDS] [--out _build/presets]          # = make reproduce PRESET=r1-llama-8b

For each chapter of ``book/_toc.yml``: resolve the preset into the chapter's parameters
(:func:`mipeaks.book.preset_parameters`), write them to ``<out>/<preset>/params/<chapter>.yaml`` (a
flat file for ``papermill -f``), and execute the chapter's ``.ipynb`` with papermill into
``<out>/<preset>/notebooks/``. Then build a book from those notebooks, executing nothing, into
``<out>/<preset>/html`` (chapters not run keep their committed CPU version). See book/reproduce.md.
Needs the repository checkout (notebooks, book sources, ``scripts/build_book.py``).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from .book import NOTEBOOK_DIR, REPO_ROOT, load_preset, preset_parameters

__all__ = ["chapters", "reproduce", "resolve"]


def _build_book() -> ModuleType:
    """``scripts/build_book.py`` of the checkout (the book builder ``make book-cached`` uses)."""
    path = REPO_ROOT / "scripts" / "build_book.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: 'mipeaks reproduce' needs the repository checkout")
    spec = importlib.util.spec_from_file_location("mipeaks_build_book", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chapters() -> list[str]:
    """The chapter stems of the book's table of contents, in order (e.g. ``05_error_bounds``)."""
    return [Path(c).stem for c in _build_book().toc_chapters()]


def resolve(preset: str | Path, only: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each selected chapter's flat parameters under ``preset``, checked before anything runs.

    Args:
        preset: a file stem of ``notebooks/params/`` or a YAML path.
        only: chapter stems to keep (default: every chapter of the book).

    Returns:
        ``{chapter stem: {parameter: value}}`` in book order.

    Raises:
        FileNotFoundError: unknown preset (the message lists the presets).
        ValueError: an unknown chapter in ``only`` or in the preset, or a value the command line
            would reject (device, dataset, prompt style, ...; see :func:`mipeaks.cli.check_value`).
        KeyError: a preset chapter section sets a name that chapter does not have.
    """
    from .cli import check_value

    data = load_preset(preset)
    stems = chapters()
    unknown = sorted(set(only or []) - set(stems))
    if unknown:
        raise ValueError(f"argument --only: unknown chapter(s) {unknown}; chapters: {', '.join(stems)}")
    unknown = sorted(set(data["notebooks"]) - set(stems))
    if unknown:
        raise ValueError(f"preset {str(preset)!r}: unknown chapter(s) {unknown}; chapters: {', '.join(stems)}")
    out: dict[str, dict[str, Any]] = {}
    for stem in (s for s in stems if only is None or s in only):
        params = preset_parameters(data, NOTEBOOK_DIR / f"{stem}.py")
        for name, value in params.items():
            try:
                check_value(name, value)
            except ValueError as err:
                raise ValueError(f"preset {str(preset)!r}, chapter {stem}: {err}") from None
        out[stem] = params
    return out


def reproduce(preset: str | Path, *, only: Sequence[str] | None = None, out: str | Path | None = None,
              keep_going: bool = False, book: bool = True, dry_run: bool = False,
              timeout: int | None = None) -> list[str]:
    """Execute the chapters with a preset's parameters and build their book.

    Args:
        preset: a file stem of ``notebooks/params/`` or a YAML path.
        only: chapter stems to run (the others keep their committed version in the book).
        out: output folder (default: ``_build/presets`` at the repository root).
        keep_going: continue after a failing chapter.
        book: build the book after executing.
        dry_run: write and print the parameter files only.
        timeout: per-cell timeout in seconds (None: none).

    Returns:
        The stems of the chapters that failed (their partial notebook is ``<stem>.failed.ipynb``).
        Without ``keep_going`` the first failure stops the run.
    """
    import yaml

    resolved = resolve(preset, only)
    data = load_preset(preset)
    name = Path(preset).stem
    base = (Path(out) if out is not None else REPO_ROOT / "_build" / "presets") / name
    (base / "params").mkdir(parents=True, exist_ok=True)
    (base / "notebooks").mkdir(parents=True, exist_ok=True)
    for stem, params in resolved.items():
        (base / "params" / f"{stem}.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        print(f"{stem}: {params}", flush=True)
    if dry_run:
        return []

    import papermill

    failed: list[str] = []
    for stem, params in resolved.items():
        start = time.time()
        print(f"== {stem} ({name})", flush=True)
        target = base / "notebooks" / f"{stem}.ipynb"
        try:
            papermill.execute_notebook(
                str(NOTEBOOK_DIR / f"{stem}.ipynb"), str(target), parameters=params, cwd=str(NOTEBOOK_DIR),
                kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                request_save_on_cell_execute=True)
        except Exception as err:  # noqa: BLE001 - report the chapter and maybe continue
            failed.append(stem)
            partial = target.with_name(f"{stem}.failed.ipynb")
            if target.exists():
                target.rename(partial)
            first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            print(f"   {stem} failed ({type(err).__name__}: {first.strip()}); partial notebook: {partial}", flush=True)
            if not keep_going:
                return failed
        print(f"   {stem}: {time.time() - start:.0f} s", flush=True)
    if failed:
        print(f"failed chapters (their committed CPU version is used in the book): {failed}")
    if book:
        banner = f"Preset {name}: {data['description']}".strip(" :") if data["description"] else f"Preset {name}"
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # building needs no network
        _build_book().build(base / "notebooks", work=base / "staged", html=base / "html", execute="off",
                            banner=banner, title_suffix=f"preset {name}", fallback=NOTEBOOK_DIR)
    return failed
