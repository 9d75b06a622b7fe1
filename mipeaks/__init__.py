"""mipeaks: a reproducible companion to "Thinking Tokens are Information Peaks in LLM Reasoning".

One module per concept of the paper: :mod:`~mipeaks.models`, :mod:`~mipeaks.data`,
:mod:`~mipeaks.generation` (the one decoding core), :mod:`~mipeaks.collect`, :mod:`~mipeaks.mi`,
:mod:`~mipeaks.peaks`, :mod:`~mipeaks.lens`, :mod:`~mipeaks.theory`, :mod:`~mipeaks.grading`,
:mod:`~mipeaks.suppression`, :mod:`~mipeaks.recycling`, :mod:`~mipeaks.ttts`,
:mod:`~mipeaks.evaluate`, and :mod:`~mipeaks.pipeline` (the MI pipeline, one call per step). The
analyses of the book's chapters live beside them: :mod:`~mipeaks.layers` (chapter 3's layer
contrast), :mod:`~mipeaks.enrichment` (chapter 4's base rates) and :mod:`~mipeaks.diagnostics`
(chapter 9's estimator diagnostics).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mipeaks")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

# Top-level names, imported on first use so that `import mipeaks` stays light.
_EXPORTS = {
    "load_model": "models", "LoadedModel": "models", "load_problems": "data", "Problem": "data",
    "format_prompt": "data", "generate": "generation", "generate_trace": "collect", "collect": "collect",
    "gold_representation": "collect", "load_run": "collect", "trajectory": "mi", "find_peaks": "peaks",
    "peak_stats": "peaks", "evaluate": "evaluate", "MIConfig": "pipeline",
}
__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'mipeaks' has no attribute {name!r}")
