#!/usr/bin/env python
"""Publish the built book as one version of a multi-version site (see book/changelog.md).

    .venv/bin/python scripts/publish_version.py [--html _build/html] [--site _build/site] [--base-url /]

Copies ``--html`` to ``<site>/<version>/`` (the installed mipeaks version), writes the version list
``book/_static/switcher.json`` (with each ``url`` rebuilt as ``<base-url><version>/`` when
``--base-url`` is given) to ``<site>/switcher.json`` and into every published version, so that
older versions' switchers list newer ones, and points ``<site>/index.html`` at the preferred
version. The version must already be listed in ``book/_static/switcher.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("--site", type=Path, default=ROOT / "_build" / "site")
    parser.add_argument("--switcher", type=Path, default=ROOT / "book" / "_static" / "switcher.json")
    parser.add_argument("--base-url", default=None, help="rebuild each url as <base-url><version>/")
    args = parser.parse_args()

    from mipeaks.provenance import versions

    version = versions(("mipeaks",))["mipeaks"]
    entries = json.loads(args.switcher.read_text())
    if version not in [e["version"] for e in entries]:
        sys.exit(f"version {version} is not in {args.switcher}: add it there first")
    if args.base_url is not None:
        base = args.base_url if args.base_url.endswith("/") else args.base_url + "/"
        for e in entries:
            e["url"] = f"{base}{e['version']}/"
    if not (args.html / "index.html").is_file():
        sys.exit(f"no built book at {args.html}: run make book (or make book-cached) first")
    target = args.site / version
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(args.html, target)
    text = json.dumps(entries, indent=2) + "\n"
    (args.site / "switcher.json").write_text(text)
    for entry in entries:
        folder = args.site / entry["version"]
        if folder.is_dir():
            (folder / "switcher.json").write_text(text)
    preferred = next((e for e in entries if e.get("preferred")), entries[0])
    (args.site / "index.html").write_text(
        f'<!DOCTYPE html><meta charset="utf-8"><title>mipeaks book</title>'
        f'<meta http-equiv="refresh" content="0; url={preferred["version"]}/index.html">'
        f'<a href="{preferred["version"]}/index.html">mipeaks {preferred["version"]}</a>\n')
    print(f"published {version} to {target}; versions: {[e['version'] for e in entries]}")


if __name__ == "__main__":
    main()
