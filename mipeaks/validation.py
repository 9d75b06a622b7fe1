"""Checks that config dataclasses run in ``__post_init__``, before any model loads or file is written.

Every failure is a :class:`TypeError` (a value of the wrong type) or a :class:`ValueError` (a value
out of range or not among the accepted ones) with one line naming the config, the field, the
offending value and what is accepted::

    EvalConfig.max_new_tokens must be int, got 'abc' (str)
    EvalConfig.prompt_style must be one of ['chat', 'deepseek-math', 'raw'], got 'rwa' (did you mean 'raw'?)

:func:`check_types` type-checks every field against its annotation (``int``, ``float``, ``str``,
``bool``, ``X | None``, ``tuple[X, ...]``, ``Mapping``; lists become tuples for tuple fields and
path objects become strings for ``str`` fields); the other helpers check one field each.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import Problem

__all__ = [
    "DEVICE_PATTERN",
    "check_choice",
    "check_device",
    "check_kwargs",
    "check_min",
    "check_problems",
    "check_types",
    "close_matches",
    "normalise_layer",
]

#: Devices a config accepts: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (``device_map="auto"``).
DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps|auto")


def close_matches(word: str, choices: Iterable[str], cutoff: float = 0.6) -> list[str]:
    """The ``choices`` that look like a misspelling of ``word`` (best first, at most 3)."""
    return difflib.get_close_matches(str(word), [str(c) for c in choices], n=3, cutoff=cutoff)


def _where(config: Any, name: str) -> str:
    return f"{type(config).__name__}.{name}"


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _conform(value: Any, tp: Any) -> tuple[bool, Any]:
    """``(ok, value)``: whether ``value`` fits the annotation ``tp``, and the value to store."""
    if tp is Any:
        return True, value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, out = _conform(value, arg)
            if ok:
                return True, out
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        if isinstance(value, os.PathLike):
            return True, os.fspath(value)
        return isinstance(value, str), value
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False, value
        args = typing.get_args(tp)
        inner = args[0] if len(args) == 2 and args[1] is Ellipsis else Any
        out = []
        for item in value:
            ok, item = _conform(item, inner)
            if not ok:
                return False, value
            out.append(item)
        return True, tuple(out)
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping) or tp is Mapping:
        return isinstance(value, Mapping), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value  # an annotation this helper does not know: not checked


def check_types(config: Any) -> None:
    """Check every field of the dataclass instance ``config`` against its type annotation.

    Lists are stored as tuples in ``tuple[...]`` fields, ints as floats in ``float`` fields and
    path objects as strings in ``str`` fields (the config stays hashable and JSON-clean).

    Raises:
        TypeError: the first field whose value does not fit; the message names the field, the
            expected type and the value.
    """
    fixed = check_kwargs(type(config), {f.name: getattr(config, f.name) for f in dataclasses.fields(config)})
    for name, value in fixed.items():
        if value is not getattr(config, name):
            object.__setattr__(config, name, value)


def check_kwargs(cls: type, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Type-check keyword arguments for the dataclass ``cls`` before building it (see :func:`check_types`).

    Names that are not fields of ``cls`` are passed through (the constructor rejects them).

    Returns:
        The arguments, normalised as :func:`check_types` stores them.

    Raises:
        TypeError: the first argument whose value does not fit its field's annotation.
    """
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    out = dict(kwargs)
    for name, value in kwargs.items():
        if name not in names:
            continue
        tp = hints.get(name, Any)
        ok, out[name] = _conform(value, tp)
        if not ok:
            raise TypeError(f"{cls.__name__}.{name} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})")
    return out


def check_choice(config: Any, name: str, choices: Iterable[Any], *, optional: bool = False) -> None:
    """Check that field ``name`` of ``config`` is one of ``choices`` (or None when ``optional``).

    Raises:
        ValueError: naming the field, the accepted values and close matches of the value.
    """
    value = getattr(config, name)
    choices = list(choices)
    if value in choices or (optional and value is None):
        return
    shown = sorted(map(str, choices)) + (["None"] if optional else [])
    close = close_matches(value, map(str, choices)) if isinstance(value, str) else []
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    raise ValueError(f"{_where(config, name)} must be one of {shown}, got {value!r}{hint}")


def check_min(config: Any, name: str, low: int | float, *, optional: bool = False) -> None:
    """Check that the number in field ``name`` is ``>= low`` (None passes when ``optional``).

    Raises:
        ValueError: naming the field, the bound and the value.
    """
    value = getattr(config, name)
    if optional and value is None:
        return
    if value < low:
        accepted = f">= {low}" + (" or None" if optional else "")
        raise ValueError(f"{_where(config, name)} must be {accepted}, got {value!r}")


def check_device(config: Any, name: str = "device") -> None:
    """Check a device string: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.

    Raises:
        ValueError: naming the field, the accepted forms and the value.
    """
    value = getattr(config, name)
    if not DEVICE_PATTERN.fullmatch(str(value)):
        raise ValueError(f"{_where(config, name)} must be 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto', got {value!r}")


def normalise_layer(config: Any, name: str = "layer", words: tuple[str, ...] = ("last",),
                    *, optional: bool = False) -> None:
    """Store field ``name`` as an int block index or one of ``words`` (lower case).

    ``"5"`` and ``5`` name the same block, so both become ``5`` (one run directory, not two).

    Raises:
        ValueError: a string that is neither an integer nor one of ``words``.
    """
    value = getattr(config, name)
    if value is None and optional:
        return
    if isinstance(value, str):
        text = value.strip().lower()
        if text in words:
            value = text
        elif re.fullmatch(r"[+-]?\d+", text):
            value = int(text)
        else:
            options = ["an int (negative: from the end)", *map(repr, words)] + (["None"] if optional else [])
            accepted = ", ".join(options[:-1]) + " or " + options[-1]
            raise ValueError(f"{_where(config, name)} must be {accepted}, got {getattr(config, name)!r}")
    object.__setattr__(config, name, value)


def check_problems(problems: Iterable[Problem], n: int | None = None) -> list[Problem]:
    """The first ``n`` problems (all for None), after checking them before any model loads.

    Raises:
        ValueError: fewer than ``n`` problems, none at all, duplicate ids, or an empty question
            (an empty ``raw`` prompt); the message names the offending problem.
    """
    from .data import Problem  # noqa: F811 (run time)

    problems = list(problems)
    if n is not None and n > len(problems):
        raise ValueError(f"n={n} problems asked for but only {len(problems)} given")
    problems = problems[:n] if n is not None else problems
    if not problems:
        raise ValueError("no problems given: pass at least one")
    seen: set[str] = set()
    for p in problems:
        if not isinstance(p, Problem):
            raise TypeError(f"problems must be mipeaks.data.Problem objects, got {type(p).__name__}: {p!r:.60}")
        if p.id in seen:
            raise ValueError(f"problem ids must be unique: {p.id!r} appears twice")
        seen.add(p.id)
        if not p.question.strip():
            raise ValueError(f"problem {p.id!r} has an empty question (the prompt would be empty)")
    return problems
