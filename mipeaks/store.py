"""Record integrity: atomic writes, one writer at a time, validated resume, content and code keys, sharding.

Every record that :func:`~mipeaks.collect.collect` or :func:`~mipeaks.evaluate.evaluate` writes is
reused on a later call only when everything that produced it is the same. Its **key** hashes:

* the problem's content (:func:`problem_hash`: id, dataset, question, solution, answer) and the
  prompt token ids;
* the settings (the config's fields that change a record);
* the model's identity (:func:`model_fingerprint`): for a model loaded from a directory (the embedded
  model's de-quantised copy, a local folder, a hub snapshot) the bytes of its small files
  (``config.json``, tokenizer files, the safetensors index, the embedded model's GGUF sha256 note)
  plus the name, size, first and last MiB of every weight file; for a model that exists only in memory, the bytes of
  every parameter;
* the code (:func:`code_fingerprint`): the syntax tree, less comments and docstrings, of the package
  modules that change records (:data:`COLLECT_CODE`, :data:`EVAL_CODE`) and the versions of the
  libraries that compute them (:data:`LIBRARIES`).

A stale or damaged record is recomputed, with one warning line (logger ``mipeaks``) that names the
file and the reason. Files are written atomically (unique temporary file, flush, fsync, rename) and
a JSONL record is appended, newline-terminated, in one write. A writer holds a lock
(:func:`writer_lock`, the ``filelock`` package) per run directory or records file; a second writer
gets :class:`WriterLockedError` naming the holder's pid and host, or, with ``$MIPEAKS_WRITER_WAIT``
seconds set (the book's chapters set it: they share runs), waits that long for the holder and then
resumes from what it wrote.

Under ``torchrun`` / ``accelerate launch`` (``RANK``, ``WORLD_SIZE`` set) :func:`rank_world` joins or
starts a process group (gloo), each rank takes every ``world``-th batch (:func:`shard`) and writes
its own files; :func:`barrier` lets rank 0 finish the shared files once every rank is done.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import hashlib
import json
import logging
import os
import socket
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import filelock

from .provenance import versions

__all__ = [
    "COLLECT_CODE",
    "EVAL_CODE",
    "LIBRARIES",
    "WriterLockedError",
    "append_jsonl",
    "atomic_write",
    "barrier",
    "code_fingerprint",
    "digest",
    "model_fingerprint",
    "note_read",
    "problem_hash",
    "rank_world",
    "read_jsonl",
    "rewrite_jsonl",
    "runs_read",
    "shard",
    "warn",
    "writer_lock",
]

log = logging.getLogger("mipeaks")

#: Environment variable: seconds :func:`writer_lock` waits for another writer (default 0: refuse).
WAIT_ENV = "MIPEAKS_WRITER_WAIT"
T = TypeVar("T")

#: Package modules whose code changes a collection record (trace tokens, states, gold state).
COLLECT_CODE = ("collect", "data", "forcing", "generation", "models", "store")
#: Package modules whose code changes an evaluation record (output, grading, gold log-prob).
EVAL_CODE = ("data", "evaluate", "forcing", "generation", "grading", "models", "recycling", "store", "suppression",
             "ttts")
#: Libraries whose version is part of the code fingerprint.
LIBRARIES = ("torch", "transformers", "transformer-lens", "safetensors", "math-verify")


class WriterLockedError(RuntimeError):
    """Another process is writing the same run directory or records file."""


def digest(obj: Any, length: int = 16) -> str:
    """Short sha256 hex digest of a JSON-serialisable value (keys sorted) or of bytes."""
    data = obj if isinstance(obj, bytes) else json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:length]


def warn(path: str | Path, reason: str) -> None:
    """Say once, on one line, that records of ``path`` are recomputed and why."""
    log.warning("mipeaks: %s: %s", path, reason)


def problem_hash(problem: Any) -> str:
    """Content hash of a problem: its id, dataset, question, worked solution and gold answer."""
    return digest([str(problem.id), problem.dataset, problem.question, problem.solution, problem.answer])


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return tree


_CODE_CACHE: dict[tuple[str, ...], str] = {}


def code_fingerprint(modules: Sequence[str], package: str | Path | None = None) -> str:
    """Hash of the named ``mipeaks`` modules' code (syntax trees, without comments or docstrings) and of
    the :data:`LIBRARIES` versions: an edit that cannot change a result (a comment, a docstring, a
    reformat) keeps it; any other edit changes it. ``package``: another copy of the package folder.
    """
    package = Path(package) if package is not None else Path(__file__).resolve().parent
    names = sorted(modules)
    stats = [(package / f"{name}.py").stat() for name in names]
    key = (str(package), *names, *(f"{st.st_mtime_ns}:{st.st_size}" for st in stats), *LIBRARIES)
    if key not in _CODE_CACHE:
        parts = []
        for name in names:
            source = (package / f"{name}.py").read_text(encoding="utf-8")
            parts.append([name, ast.dump(_strip_docstrings(ast.parse(source)))])
        lib = versions(LIBRARIES)
        _CODE_CACHE[key] = digest([parts, lib])
    return _CODE_CACHE[key]


_MODEL_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SMALL_FILE = 64 << 20
_SAMPLE = 1 << 20


def model_fingerprint(model: Any) -> str:
    """Identity of a loaded model's weights and tokenizer, cheap to compute.

    A model loaded from a directory (``hf_model.name_or_path``; a hub model: its cached snapshot,
    whose folder name is the commit): the bytes of its small files (configs, tokenizer, safetensors
    index, the embedded model's ``mipeaks-source.txt`` with the GGUF's sha256) and, for each weight
    file, its name, size and first and last MiB. A model built in memory: the bytes of every
    parameter and buffer. Both add the dtype and the tokenizer's vocabulary size.
    """
    if model in _MODEL_CACHE:
        return _MODEL_CACHE[model]
    import torch

    hf = model.hf_model
    folder = Path(str(getattr(hf, "name_or_path", "") or ""))
    hub = str(getattr(model, "source", "")).removeprefix("hub:").split(" ")[0]
    if str(getattr(model, "source", "")).startswith("hub:") and not folder.is_dir():
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = hub.partition("@")
        found = try_to_load_from_cache(repo, "config.json", revision=revision or None)
        if isinstance(found, str):
            folder = Path(found).parent  # snapshots/<commit>/: the commit names the weights
    h = hashlib.sha256()
    h.update(json.dumps([str(model.dtype), len(model.tokenizer)]).encode())
    if str(folder) not in ("", ".") and folder.is_dir() and (folder / "config.json").is_file():
        if folder.parent.name == "snapshots":
            h.update(folder.name.encode())
        for path in sorted(p for p in folder.iterdir() if p.is_file()):  # top level: not checkpoints/
            size = path.stat().st_size
            h.update(f"{path.relative_to(folder)}:{size}\n".encode())
            if size <= _SMALL_FILE and path.suffix in (".json", ".txt", ".model", ".jinja"):
                h.update(path.read_bytes())
            elif size > _SMALL_FILE or path.suffix in (".safetensors", ".bin", ".gguf", ".pt", ".pth"):
                with open(path, "rb") as fh:  # weights: their first and last MiB (cheap, changes with training)
                    h.update(fh.read(_SAMPLE))
                    fh.seek(max(size - _SAMPLE, 0))
                    h.update(fh.read(_SAMPLE))
    else:
        h.update(hf.config.to_json_string(use_diff=False).encode())
        with torch.no_grad():
            for name, tensor in [*hf.named_parameters(), *hf.named_buffers()]:
                h.update(name.encode())
                h.update(tensor.detach().cpu().contiguous().flatten().view(torch.uint8).numpy().tobytes())
    _MODEL_CACHE[model] = h.hexdigest()[:16]
    return _MODEL_CACHE[model]


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` atomically: a uniquely named temporary file beside it, flushed,
    fsynced and renamed over ``path`` (readers see the old file or the new one, never a part)."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every OS)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def append_jsonl(path: str | Path, record: Mapping[str, Any]) -> None:
    """Append one record as a newline-terminated JSON line, in a single write, then fsync."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_jsonl(path: str | Path, required: Sequence[str] = ("id",)) -> tuple[list[dict[str, Any]], list[str]]:
    """Read a JSONL records file, keeping only whole, valid records.

    A line is damaged when it is not one JSON object (a crash cut it short; two records glued
    together), lacks a ``required`` key, or is the last line and has no newline (the record after it
    would be glued on).

    Returns:
        ``(records, problems)``: the valid records in file order, and one short description per
        damaged line (``"line 3: not one JSON object"``); no file gives ``([], [])``.
    """
    path = Path(path)
    if not path.exists():
        return [], []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    records, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            problems.append(f"line {number}: not one JSON object")
            continue
        missing = [k for k in required if not isinstance(record, dict) or k not in record]
        if missing:
            problems.append(f"line {number}: missing field(s) {missing}")
            continue
        records.append(record)
    if tail.strip():
        problems.append(f"line {len(lines) + 1}: last record has no newline")
    return records, problems


def rewrite_jsonl(path: str | Path, records: Sequence[Mapping[str, Any]]) -> None:
    """Replace a JSONL file by ``records`` atomically (used to drop damaged or stale lines)."""
    atomic_write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


@contextlib.contextmanager
def writer_lock(path: str | Path, wait: float | None = None) -> Iterator[None]:
    """Hold the writer lock ``path`` (a ``filelock`` lock file) while the block runs.

    The holder's pid, host and start time are written beside it (``<path>.owner``).

    Args:
        path: the lock file.
        wait: seconds to wait for another holder before giving up (None: ``$MIPEAKS_WRITER_WAIT``,
            default 0, i.e. refuse at once). Chapters of the book share runs and records files, so
            :func:`mipeaks.book.init_notebook` sets it: a chapter run beside another waits, then
            resumes the other's finished records instead of failing.

    Raises:
        WriterLockedError: another process holds it (after ``wait`` seconds); the message names the holder.
        ValueError: ``wait`` (or ``$MIPEAKS_WRITER_WAIT``) is not a number >= 0.
    """
    path = Path(path)
    if wait is None:
        raw = os.environ.get(WAIT_ENV, "0") or "0"
        try:
            wait = float(raw)
        except ValueError:
            raise ValueError(f"${WAIT_ENV} must be a number of seconds, got {raw!r}") from None
    if not wait >= 0:  # also refuses NaN
        raise ValueError(f"writer_lock wait must be >= 0 seconds, got {wait!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = path.with_name(path.name + ".owner")
    lock = filelock.FileLock(str(path), timeout=0)

    def holder() -> str:
        with contextlib.suppress(OSError):
            return owner.read_text().strip() or "unknown process"
        return "unknown process"

    try:
        lock.acquire()
    except filelock.Timeout:
        if not wait:
            raise WriterLockedError(f"{path.parent} is being written by {holder()} (lock {path.name}); "
                                    "wait for it to finish or write elsewhere") from None
        log.info("%s is being written by %s; waiting up to %g s", path.parent, holder(), wait)
        try:
            lock.acquire(timeout=wait)
        except filelock.Timeout:
            raise WriterLockedError(f"{path.parent} is still being written by {holder()} after {wait:g} s "
                                    f"(lock {path.name}); wait for it to finish or write elsewhere") from None
    try:
        atomic_write(owner, f"pid {os.getpid()} on {socket.gethostname()} since "
                            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


_RUNS_READ: dict[str, str | None] = {}


def note_read(path: str | Path, commit: str | None) -> None:
    """Remember that this process read the run or records file ``path``, made at ``commit``."""
    _RUNS_READ[str(path)] = commit


def runs_read() -> dict[str, str | None]:
    """Runs and records files read in this process, with the commit that made them (for provenance)."""
    return dict(_RUNS_READ)


def rank_world() -> tuple[int, int]:
    """This process's rank and the number of processes of a data-parallel launch.

    Outside ``torchrun`` / ``accelerate launch`` (no ``WORLD_SIZE`` > 1, no process group): ``(0, 1)``.
    Under a launcher, a process group is started with the gloo backend when none exists yet (it is
    only used for :func:`barrier`).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world} but torch.distributed is not available in this torch build")
    dist.init_process_group("gloo")
    atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return dist.get_rank(), dist.get_world_size()


def barrier() -> None:
    """Wait for every rank (no-op outside a data-parallel launch)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def shard(items: Sequence[T], rank: int | None = None, world: int | None = None) -> list[T]:
    """This rank's share of ``items``: every ``world``-th item from position ``rank`` (all outside a launch)."""
    if rank is None or world is None:
        rank, world = rank_world()
    return list(items[rank::world])
