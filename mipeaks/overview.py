"""The book's overview page: the paper's claims, and where this book's run stands on each.

Every chapter attaches its key numbers to its executed notebook
(:func:`mipeaks.book.save_key_numbers`). :func:`read_key_numbers` collects them from the
``.ipynb`` files and :func:`claims_table` evaluates :data:`CLAIMS` on them, one row per claim,
figure or table of the paper, with a status word computed from the numbers and the model:

* ``reproduced`` / ``not reproduced``: the run used one of the paper's models
  (:data:`mipeaks.book.PAPER_MODELS`) and its numbers do / do not show the paper's finding
  (each claim's ``check`` says what "show" means);
* ``not reproducible on this model``: the run used another model; a small model cannot test a
  finding about large reasoning models, whatever its numbers;
* ``pending a GPU preset run``: the chapter has no key numbers yet, or lacks what the claim
  needs (e.g. chapter 3 without ``base_model``);
* ``holds`` / ``fails``: a mathematical statement checked numerically (no model involved);
* ``not run``: the data the claim needs is not available to the package.

Chapters whose claims are not evaluated here pass ``findings={item: {"ours": text, "holds":
bool | None}}`` to :func:`~mipeaks.book.save_key_numbers`; the row then uses them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .book import KEY_NUMBERS_MIME, PAPER_MODELS
from .peaks import PAPER_TABLE1

__all__ = ["CLAIMS", "STATUSES", "Claim", "claims_markdown", "claims_table", "read_key_numbers"]

#: Every status word a row can have.
STATUSES: tuple[str, ...] = ("reproduced", "not reproduced", "not reproducible on this model",
                             "pending a GPU preset run", "holds", "fails", "not run")

_FAMILY_PEAK_RANGE = {"Llama": (0.2, 0.6), "Qwen": (2.0, 7.0)}  # Fig. 2 as published


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim, figure or table of the paper.

    Attributes:
        chapter: file stem of the chapter that tests it.
        item: the paper's label, e.g. ``"Table 1"``.
        finding: the paper's number or finding, in words.
        ours: ``(key_numbers, record) -> text`` summarising our numbers; None: use the record's
            ``findings[item]["ours"]``.
        check: ``(key_numbers, record) -> bool | None``; True when our numbers show the finding,
            None when they cannot say (missing inputs). None: use ``findings[item]["holds"]``.
        needs_model: False for statements that involve no model (theorems).
        runnable: False when the package cannot load the data the claim needs.
    """

    chapter: str
    item: str
    finding: str
    ours: Callable[[Mapping[str, Any], Mapping[str, Any]], str] | None = None
    check: Callable[[Mapping[str, Any], Mapping[str, Any]], bool | None] | None = None
    needs_model: bool = True
    runnable: bool = True


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, list) and all(v is None for v in x)):
        return "none"
    if isinstance(x, float):
        return f"{x:.3g}"
    if isinstance(x, list):
        return "–".join(_fmt(v) for v in x)
    return str(x)


def _family(record: Mapping[str, Any]) -> str | None:
    name = str(record.get("paper_model") or "")
    return next((f for f in _FAMILY_PEAK_RANGE if f in name), None)


def _fig2_ours(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> str:
    return (f"{kn.get('problems with >= 1 IQR peak')} of {kn.get('problems')} problems have IQR peaks; "
            f"MI at IQR peaks {_fmt(kn.get('MI at IQR peaks (min, max)'))}")


def _fig2_check(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> bool | None:
    family, span = _family(rec), kn.get("MI at IQR peaks (min, max)")
    if family is None or not span or None in span or not kn.get("problems"):
        return None
    lo, hi = _FAMILY_PEAK_RANGE[family]
    mostly_peaky = kn["problems with >= 1 IQR peak"] >= kn["problems"] / 2
    return bool(mostly_peaky and lo / 2 <= span[1] and span[0] <= hi * 2)  # peaks on the family's scale


def _paper_ratio(rec: Mapping[str, Any]) -> float | None:
    row = next((r for r in PAPER_TABLE1 if r["model"] == rec.get("paper_model")), None)
    return None if row is None else float(row["ratio"])


def _table1_ours(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> str:
    paper = _paper_ratio(rec)
    return (f"mean IQR peak ratio {_fmt(kn.get('mean IQR peak ratio'))} over {_fmt(kn.get('mean steps'))} steps"
            + (f" (paper, same model: {paper:.3g})" if paper is not None else ""))


def _table1_check(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> bool | None:
    paper, ours = _paper_ratio(rec), kn.get("mean IQR peak ratio")
    if paper is None or ours is None:
        return None
    return bool(paper / 2 <= ours <= paper * 2)  # within a factor of two of the published ratio


def _table2_ours(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> str:
    if kn.get("pair: mean (reasoning, base)") is None:
        return "no reasoning/base pair in this run (base_model not set)"
    return "; ".join(f"{col} {_fmt(kn.get(f'pair: {col} (reasoning, base)'))} (reasoning, base)"
                     for col in ("mean", "aom"))


def _table2_check(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> bool | None:
    pairs = [kn.get(f"pair: {col} (reasoning, base)") for col in ("mean", "aom")]
    if any(p is None or None in p for p in pairs):
        return None
    return bool(all(r > b for r, b in pairs))


def _fig4_ours(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> str:
    words = [k.split(": ", 1)[1].split(" (")[0] for k in kn if k.startswith("top word ")][:5]
    return (f"{kn.get('paper top-15 words in our top-15')} of the paper's top-15 words in ours; "
            f"our top words: {', '.join(words) or 'none'}")


def _fig4_check(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> bool | None:
    overlap = kn.get("paper top-15 words in our top-15")
    return None if overlap is None else bool(overlap >= 8)


def _bounds_ours(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> str:
    return (f"{kn.get('random tables')} random joint tables: {kn.get('tables violating Thm 1')} violate Theorem 1, "
            f"{kn.get('tables violating Thm 2')} violate Theorem 2")


def _bounds_check(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> bool | None:
    counts = [kn.get("tables violating Thm 1"), kn.get("tables violating Thm 2")]
    return None if None in counts else bool(sum(counts) == 0)


def _gold_ours(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> str:
    return (f"own gold's mean rank {_fmt(kn.get('own-gold rank (mean)'))} of {kn.get('golds compared')} "
            f"(chance {_fmt(kn.get('own-gold rank, chance level'))})")


def _gold_check(kn: Mapping[str, Any], rec: Mapping[str, Any]) -> bool | None:
    rank, chance = kn.get("own-gold rank (mean)"), kn.get("own-gold rank, chance level")
    return None if rank is None or chance is None else bool(rank < (1 + chance) / 2)


#: The paper's claims, in the paper's order, with the chapter that tests each.
CLAIMS: tuple[Claim, ...] = (
    Claim("01_mi_trajectories", "Fig. 1–2",
          "MI trajectories are flat with a few sharp peaks; peaks at about 0.2–0.6 (Llama LRMs), "
          "values at about 2–7 (Qwen LRMs)", _fig2_ours, _fig2_check),
    Claim("02_peak_statistics", "Table 1",
          "peaks are sparse: 0.5%–4.8% of 512 steps (IQR rule, τ = 1.5), in bursts", _table1_ours, _table1_check),
    Claim("03_reasoning_vs_base", "Fig. 3, Table 2",
          "every LRM has a higher Mean and AOM than its non-reasoning base model", _table2_ours, _table2_check),
    Claim("03_reasoning_vs_base", "Table 3",
          "the same on GPQA and MedQA (AOM)", lambda kn, rec: "GPQA and MedQA are not loaded by mipeaks.data",
          lambda kn, rec: None, runnable=False),
    Claim("04_thinking_tokens", "Fig. 4, 8",
          "peak tokens are thinking words (So, Let, Hmm, Wait, Therefore, …)", _fig4_ours, _fig4_check),
    Claim("05_error_bounds", "Theorems 1–2",
          "the error probability is bounded below (Fano) and above (Hellman–Raviv) by the cumulative MI",
          _bounds_ours, _bounds_check, needs_model=False),
    Claim("06_suppression", "Fig. 5",
          "suppressing thinking tokens lowers accuracy much more than suppressing random tokens"),
    Claim("07_recycling", "Fig. 6",
          "Representation Recycling raises accuracy on GSM8K, MATH500 and AIME24"),
    Claim("08_ttts", "Fig. 7",
          "appending a thinking token (TTTS) keeps improving accuracy as the token budget grows"),
    Claim("09_what_hsic_measures", "MI-Peaks issue #7 (implicit in §3)",
          "m_t measures information about this problem's gold solution", _gold_ours, _gold_check),
)


def read_key_numbers(notebook_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The key-number records of the executed notebooks in ``notebook_dir``, by chapter stem.

    Reads every ``*.ipynb`` there and takes the last output of MIME type
    :data:`mipeaks.book.KEY_NUMBERS_MIME`; notebooks without one are left out.
    """
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(notebook_dir).glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
                data = output.get("data", {}).get(KEY_NUMBERS_MIME)
                if data is not None:
                    records[path.stem] = json.loads(data) if isinstance(data, str) else data
    return records


def _status(claim: Claim, record: Mapping[str, Any] | None) -> tuple[str, str]:
    """``(ours, status)`` of one claim."""
    if not claim.runnable:
        return (claim.ours({}, {}) if claim.ours else ""), "not run"
    if record is None:
        return "no key numbers yet (chapter not executed with save_key_numbers)", "pending a GPU preset run"
    kn = record.get("key_numbers", {})
    given = record.get("findings", {}).get(claim.item, {})
    ours = claim.ours(kn, record) if claim.ours else str(given.get("ours", "see the chapter"))
    holds = claim.check(kn, record) if claim.check else given.get("holds")
    if not claim.needs_model:
        return ours, ("pending a GPU preset run" if holds is None else "holds" if holds else "fails")
    if not record.get("paper_model"):
        return ours, "not reproducible on this model"
    if holds is None:
        return ours, "pending a GPU preset run"
    return ours, "reproduced" if holds else "not reproduced"


def claims_table(records: Mapping[str, Mapping[str, Any]], claims: tuple[Claim, ...] = CLAIMS) -> pd.DataFrame:
    """One row per claim: paper item, the paper's finding, chapter, our run, our numbers, status.

    Args:
        records: :func:`read_key_numbers` output.
        claims: the claims to evaluate (default :data:`CLAIMS`).
    """
    rows = []
    for claim in claims:
        record = records.get(claim.chapter)
        ours, status = _status(claim, record)
        run = ("–" if record is None or not (claim.needs_model and claim.runnable) or not record.get("model") else
               f"{record.get('model_name')}, n={record.get('n') if record.get('n') is not None else 'all'}, "
               f"{record.get('hardware')}")
        rows.append({"paper": claim.item, "the paper's finding": claim.finding, "chapter": claim.chapter,
                     "our run (model, n, hardware)": run, "our numbers": ours, "status": status})
    return pd.DataFrame(rows)


def claims_markdown(notebook_dir: str | Path) -> str:
    """The overview table as Markdown (chapter cells link to the chapter), from ``notebook_dir``'s notebooks."""
    table = claims_table(read_key_numbers(notebook_dir))

    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    head = ["paper", "the paper's finding", "chapter", "our run (model, n, hardware)", "our numbers", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.to_dict("records"):
        row["chapter"] = f"{{doc}}`{row['chapter'][:2].lstrip('0')} <../notebooks/{row['chapter']}>`"
        row["status"] = f"**{row['status']}**"
        lines.append("| " + " | ".join(cell(row[h]) for h in head) + " |")
    paper = ", ".join(PAPER_MODELS.values())
    lines += ["", f"The paper's models: {paper}."]
    return "\n".join(lines)
