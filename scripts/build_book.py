#!/usr/bin/env python
"""Build the book from a given set of executed notebooks, in a staged copy of the sources.

    .venv/bin/python scripts/build_book.py --html _build/html                 # make book-cached
    .venv/bin/python scripts/build_book.py --notebooks _build/presets/X/notebooks \\
        --banner "Preset X" --html _build/presets/X/html                      # make reproduce

The book's sources (``_config.yml``, ``book/``) and the chapters listed in ``book/_toc.yml``
(taken from ``--notebooks``, default ``notebooks/``) are copied to ``<work>/src``; the copy of
``_config.yml`` gets ``execute_notebooks: off`` (unless ``--execute`` says otherwise) and the
optional banner. Jupyter Book then builds it with ``-W`` (warnings are errors) into
``<work>/_build/html``, which is moved to ``--html`` when given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def toc_chapters(toc: Path = ROOT / "book" / "_toc.yml") -> list[str]:
    """The chapter files of the TOC that live in ``notebooks/`` (e.g. ``05_error_bounds.ipynb``), in order."""
    data = yaml.safe_load(toc.read_text())
    files: list[str] = []
    for part in data.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
    return [Path(f).name for f in files if f.startswith("notebooks/")]


def stage(dst: Path, notebooks: Path, *, execute: str = "off", banner: str | None = None,
          title_suffix: str | None = None, fallback: Path | None = None) -> list[str]:
    """Copy the book sources and the chapters into ``dst``; return the chapters taken from ``fallback``."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    shutil.copytree(ROOT / "book", dst / "book", ignore=shutil.ignore_patterns("__pycache__"))
    (dst / "notebooks").mkdir()
    from_fallback, missing = [], []
    for name in toc_chapters():
        src = notebooks / name
        if not src.is_file() and fallback is not None and (fallback / name).is_file():
            src = fallback / name
            from_fallback.append(name)
        if not src.is_file():
            missing.append(name)
            continue
        shutil.copy2(src, dst / "notebooks" / name)
    if missing:
        raise FileNotFoundError(f"chapters missing from {notebooks}: {missing}")
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = execute
    if execute != "off":  # keep one cache for the repository, not one per staged copy
        config["execute"]["cache"] = str(ROOT / "_build" / ".jupyter_cache")
    if banner is not None:
        config.setdefault("sphinx", {}).setdefault("config", {})["mipeaks_banner"] = banner
    if title_suffix:
        config["title"] = f"{config['title']} ({title_suffix})"
    (dst / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return from_fallback


def build(notebooks: Path = ROOT / "notebooks", *, work: Path | None = None, html: Path | None = None,
          execute: str = "off", banner: str | None = None, title_suffix: str | None = None,
          fallback: Path | None = None, warnings_are_errors: bool = True, quiet: bool = False) -> Path:
    """Stage and build; return the directory holding the HTML."""
    work = Path(work) if work is not None else Path(tempfile.mkdtemp(prefix="mipeaks-book-"))
    src = work / "src"
    taken = stage(src, Path(notebooks), execute=execute, banner=banner, title_suffix=title_suffix,
                  fallback=fallback)
    if taken:
        print(f"note: {len(taken)} chapter(s) taken from {fallback} (not rerun): {', '.join(taken)}")
    shutil.rmtree(work / "_build" / "html", ignore_errors=True)  # Sphinx keeps stale static files
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(src), "--toc", str(src / "book" / "_toc.yml"), "--path-output", str(work),
           *(["-W", "--keep-going"] if warnings_are_errors else []), *(["-q"] if quiet else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    start = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=quiet, text=True)
    if proc.returncode != 0:
        if quiet:
            print(proc.stdout[-20000:], proc.stderr[-20000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"jupyter-book build failed ({proc.returncode})")
    out = work / "_build" / "html"
    if html is not None:
        html = Path(html)
        if html.exists():
            shutil.rmtree(html)
        html.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), str(html))
        out = html
    print(f"book built in {time.time() - start:.0f} s: {out / 'index.html'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks",
                        help="directory holding the executed chapter .ipynb files (default: notebooks/)")
    parser.add_argument("--fallback", type=Path, default=None,
                        help="take chapters missing from --notebooks from here (e.g. notebooks/)")
    parser.add_argument("--work", type=Path, default=ROOT / "_build" / "staged",
                        help="staging and build directory (default: _build/staged)")
    parser.add_argument("--html", type=Path, default=None, help="move the built HTML here")
    parser.add_argument("--execute", default="off", choices=["off", "cache", "force", "auto"],
                        help="execute_notebooks for this build (default: off)")
    parser.add_argument("--banner", default=None, help="text of the banner after the version stamp")
    parser.add_argument("--title-suffix", default=None, help="appended to the book title")
    args = parser.parse_args()
    build(args.notebooks, work=args.work, html=args.html, execute=args.execute, banner=args.banner,
          title_suffix=args.title_suffix, fallback=args.fallback)


if __name__ == "__main__":
    main()
