"""Provenance: package versions, git commit and device, for run manifests and notebook footers."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

__all__ = ["git_commit", "provenance", "runs_root", "versions"]

_PACKAGES = ("mipeaks", "torch", "transformers", "transformer-lens", "numpy", "math-verify")


def versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers (None when not installed)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


#: Tracked paths whose uncommitted changes can change a number (executed ``.ipynb`` outputs cannot).
_SOURCES = ("mipeaks", "notebooks/*.py", "notebooks/params", "scripts", "pyproject.toml", "requirements-nodeps.txt")


def git_commit(short: bool = False, root: str | Path | None = None) -> str | None:
    """Commit of the mipeaks checkout, or None outside a git checkout.

    ``-dirty`` is appended when the package, the notebook sources, the presets, the scripts or the
    pinned requirements have uncommitted changes, so a result never claims a commit whose code did
    not produce it. Re-executed ``.ipynb`` files alone do not count. ``root``: another checkout
    (default: the one this package is imported from).
    """
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    try:
        args = ["git", "-C", str(root), "rev-parse", *(["--short"] if short else []), "HEAD"]
        commit = subprocess.run(args, capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                *_SOURCES], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def runs_root(root: str | Path | None = None) -> Path:
    """Where runs live: ``root``, else ``$MIPEAKS_RUNS``, else ``<repository>/runs``.

    The default does not depend on the working directory, so notebooks (which run in
    ``notebooks/``), the book build and scripts share one set of collection runs and evaluation
    records.
    """
    if root is not None:
        return Path(root)
    env = os.environ.get("MIPEAKS_RUNS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "runs"


def _device() -> str:
    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def provenance(**extra: Any) -> dict[str, Any]:
    """A JSON-ready record: versions, git commit, python, device, UTC time, plus ``extra``."""
    return {
        "versions": versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "device": _device(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }
