"""Agreement between the two answer graders ("verify" and "paper") on real benchmark items.

For every item of GSM8K (test), MATH-500 and AIME24 the script builds (prediction, gold)
answer pairs with a known expected verdict:

* the gold answer against itself, and (MATH-500, AIME24) against the last ``\\boxed{}``
  of the gold solution;
* equivalent rewrites of the gold answer: ``$..$``, ``\\text{}`` and unit wrappers,
  leading zeros, thousands separators, ``N.0``, ``x = N``, decimal <-> fraction,
  ``a/b`` and ``\\dfrac``, tuple spacing;
* symbolic rewrites of non-numeric answers: ``\\left(g\\right)``, ``b+a`` for ``a+b``;
* wrong answers: gold + 1, ``-(g)``, a reversed tuple, and another item's (different)
  answer.

It grades every pair in both modes and prints, per dataset and per rewrite kind, how
often the modes agree and how often each matches the expected verdict, followed by a
few disagreements.

A second table grades whole texts with :func:`mipeaks.grading.grade` (extraction
included) in three settings: ``verify``, ``paper`` and ``paper`` with the harness's
extraction order. The texts are each item's gold solution (GSM8K rationales end in
``#### N``; MATH-500 and AIME24 solutions box their answer), the same solution under a
markdown heading ``#### Step 1`` (expected: still correct), the solution graded
against another item's answer (expected: wrong), and the gold/prediction pairs of
math-verify's own tests (``tests/data/math_verify_cases.jsonl``, with their expected
verdicts and, for reference, plain ``math_verify.verify(parse(gold), parse(pred))``).

Usage (from the repository root)::

    python benchmarks/grading_agreement.py                       # ../shared/data/*
    python benchmarks/grading_agreement.py --json runs/grading_agreement.json
    python benchmarks/grading_agreement.py --math500 my/math500.jsonl --limit 100
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

from mipeaks.grading import gold_gsm8k, grade, is_equivalent, last_boxed, shutdown_workers

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MV_CASES = Path(__file__).resolve().parents[1] / "tests" / "data" / "math_verify_cases.jsonl"
SETTINGS = (("verify", "ours"), ("paper", "ours"), ("paper", "harness"))

Pair = tuple[str, str, str, bool]  # (kind, pred, gold, expected)


def _read_jsonl(path: Path, limit: int | None) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (the first ``limit`` rows if given)."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
            if limit is not None and len(rows) >= limit:
                break
    return rows


_INT_RE = re.compile(r"-?\d+")
_DEC_RE = re.compile(r"-?\d*\.\d+")
_FRAC_RE = re.compile(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}")


def _terminating_decimal(fr: Fraction) -> str | None:
    """Exact decimal string of a fraction whose denominator is 2^a 5^b, else None."""
    den = fr.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return None
    digits = 0
    while (fr * 10**digits).denominator != 1:
        digits += 1
    return f"{float(fr):.{digits}f}"


def _tuple_parts(gold: str) -> list[str] | None:
    """Elements of a flat ``(a, b, ...)`` tuple answer, else None."""
    m = re.fullmatch(r"\((.*)\)", gold.strip().replace("\\left(", "(").replace("\\right)", ")"))
    if not m:
        return None
    inner = m.group(1)
    if any(c in inner for c in "()[]{}\\"):
        return None
    parts = [p.strip() for p in inner.split(",")]
    return parts if len(parts) >= 2 else None


def _balanced(s: str) -> bool:
    depth = 0
    for c in s:
        depth += {"{": 1, "(": 1, "[": 1, "}": -1, ")": -1, "]": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


def _is_symbolic(g: str) -> bool:
    """A single non-numeric expression (no lists, relations, text, matrices, +-)."""
    if re.fullmatch(r"[-\d.\s]+", g) or len(g) < 2 or not _balanced(g):
        return False
    banned = (",", "=", "<", ">", "\\text", "\\mbox", "\\begin", "\\le", "\\ge", "\\pm", "\\cup", "\\infty", "\\%", "^\\circ", ":")
    return not any(b in g for b in banned) and g[0] not in "([" and any(c.isalpha() or c == "\\" for c in g)


def _top_level_sum(g: str) -> tuple[str, str] | None:
    """``(a, b)`` if ``g`` is ``a+b`` with exactly one top-level sign, a plus."""
    depth, signs = 0, []
    for i, c in enumerate(g):
        depth += {"{": 1, "(": 1, "[": 1, "}": -1, ")": -1, "]": -1}.get(c, 0)
        if depth == 0 and c in "+-" and i > 0:
            signs.append(i)
    if len(signs) != 1 or g[signs[0]] != "+":
        return None
    a, b = g[: signs[0]].strip(), g[signs[0] + 1 :].strip()
    return (a, b) if a and b and not a.startswith("-") else None


def variants(gold: str) -> Iterator[tuple[str, str, bool]]:
    """Equivalent rewrites and wrong answers for one gold answer.

    Args:
        gold: The gold answer string.

    Yields:
        ``(kind, prediction, expected)`` triples.
    """
    g = gold.strip()
    yield "self", g, True
    yield "dollars", f"${g}$", True
    if _INT_RE.fullmatch(g):
        n = int(g)
        yield "text_wrap", f"\\text{{{n}}}", True
        yield "leading_zeros", (f"00{n}" if n >= 0 else f"-00{-n}"), True
        yield "no_leading_zeros", str(n), True
        if abs(n) >= 1000:
            yield "thousands", f"{n:,}", True
        yield "decimal_point", f"{n}.0", True
        yield "unit", f"{n}\\text{{ cm}}", True
        yield "x_equals", f"x = {n}", True
        yield "plus_one", str(n + 1), False
    elif _DEC_RE.fullmatch(g):
        fr = Fraction(g)
        yield "as_fraction", f"\\frac{{{fr.numerator}}}{{{fr.denominator}}}", True
        yield "plus_one", _terminating_decimal(fr + 1) or str(float(fr) + 1), False
    else:
        m = _FRAC_RE.fullmatch(g)
        if m:
            sign, a, b = m.group(1), int(m.group(2)), int(m.group(3))
            fr = Fraction(a, b) * (-1 if sign else 1)
            dec = _terminating_decimal(fr)
            if dec is not None:
                yield "as_decimal", dec, True
            yield "slash", f"{sign}{a}/{b}", True
            yield "dfrac", f"{sign}\\dfrac{{{a}}}{{{b}}}", True
            plus = fr + 1
            yield "plus_one", f"\\frac{{{plus.numerator}}}{{{plus.denominator}}}", False
        if _is_symbolic(g):
            yield "parenthesised", f"\\left({g}\\right)", True
            yield "negated", f"-\\left({g}\\right)", False
            terms = _top_level_sum(g)
            if terms is not None:
                yield "commuted_sum", f"{terms[1]}+{terms[0]}", True
        parts = _tuple_parts(g)
        if parts:
            yield "tuple_spacing", "(" + ", ".join(parts) + ")", True
            rev = list(reversed(parts))
            if rev != parts:
                yield "tuple_reversed", "(" + ",".join(rev) + ")", False


def _loose_key(answer: str) -> str:
    """Text key under which two answers are trivially the same (labels only)."""
    key = re.sub(r"\s|\$|\\left|\\right|\\!", "", answer)
    key = re.sub(r"^[A-Za-z]=", "", key)
    return key.replace("\\dfrac", "\\frac").lstrip("0")


def build_pairs(name: str, rows: list[dict[str, Any]]) -> list[Pair]:
    """All (kind, pred, gold, expected) pairs for one dataset.

    Args:
        name: ``"gsm8k"``, ``"math500"`` or ``"aime24"``.
        rows: The dataset rows.

    Returns:
        The list of pairs.
    """
    if name == "gsm8k":
        golds = [gold_gsm8k(r["answer"]) for r in rows]
    else:
        golds = [str(r["answer"]).strip() for r in rows]
    pairs: list[Pair] = []
    for i, (row, gold) in enumerate(zip(rows, golds)):
        if name in ("math500", "aime24"):
            boxed = last_boxed(row.get("solution", ""))
            if boxed is not None:
                pairs.append(("solution_boxed", boxed, gold, True))
        for kind, pred, expected in variants(gold):
            pairs.append((kind, pred, gold, expected))
        # Another item's answer, skipping ones that are merely rewrites of this one.
        for step in range(1, len(golds)):
            other = golds[(i + step) % len(golds)]
            if _loose_key(other) != _loose_key(gold):
                pairs.append(("other_item", other, gold, False))
                break
    return pairs


def grade_pairs(pairs: list[Pair], timeout: float, jobs: int) -> list[dict[str, Any]]:
    """Grade every pair in both modes (``jobs`` threads share the worker pool)."""

    def one(pair: Pair) -> dict[str, Any]:
        kind, pred, gold, expected = pair
        return {
            "kind": kind,
            "pred": pred,
            "gold": gold,
            "expected": expected,
            "verify": is_equivalent(pred, gold, mode="verify", timeout=timeout),
            "paper": is_equivalent(pred, gold, mode="paper", timeout=timeout),
        }

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        return list(ex.map(one, pairs))


def output_cases(name: str, rows: list[dict[str, Any]]) -> list[tuple[str, str, str, bool]]:
    """(kind, text, gold, expected) whole-text cases for one dataset.

    Args:
        name: ``"gsm8k"``, ``"math500"`` or ``"aime24"``.
        rows: The dataset rows.

    Returns:
        The list of cases.
    """
    if name == "gsm8k":
        texts = [r["answer"] for r in rows]
        golds = [gold_gsm8k(t) for t in texts]
    else:
        texts = [str(r.get("solution", "")) for r in rows]
        golds = [str(r["answer"]).strip() for r in rows]
    cases = []
    for i, (text, gold) in enumerate(zip(texts, golds)):
        if not text.strip():
            continue
        cases.append(("solution", text, gold, True))
        cases.append(("under_heading", "#### Step 1\n" + text, gold, True))
        for step in range(1, len(golds)):
            other = golds[(i + step) % len(golds)]
            if _loose_key(other) != _loose_key(gold):
                cases.append(("other_answer", text, other, False))
                break
    return cases


def grade_outputs(cases: list[tuple[str, str, str, bool]], timeout: float, jobs: int) -> list[dict[str, Any]]:
    """Grade whole texts in every setting of ``SETTINGS``."""

    def one(case: tuple[str, str, str, bool]) -> dict[str, Any]:
        kind, text, gold, expected = case
        out: dict[str, Any] = {"kind": kind, "gold": gold, "expected": expected, "timed_out": 0}
        for mode, extraction in SETTINGS:
            res = grade(text, gold, mode=mode, extraction=extraction, timeout=timeout)
            out[f"{mode}/{extraction}"] = res.correct
            out["timed_out"] += res.timed_out
        return out

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        return list(ex.map(one, cases))


def _plain_math_verify(cases: list[dict[str, Any]]) -> int:
    """How often plain ``verify(parse(gold), parse(pred))`` gives the expected verdict."""
    import logging

    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return sum(bool(verify(parse(c["gold"]), parse(c["pred"]))) == c["expected"] for c in cases)


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and rates for a list of graded pairs."""
    n = len(results)
    agree = sum(r["verify"] == r["paper"] for r in results)
    v_ok = sum(r["verify"] == r["expected"] for r in results)
    p_ok = sum(r["paper"] == r["expected"] for r in results)
    return {
        "n": n,
        "agree": agree,
        "agreement_rate": agree / n if n else float("nan"),
        "disagreements": n - agree,
        "verify_matches_expected": v_ok / n if n else float("nan"),
        "paper_matches_expected": p_ok / n if n else float("nan"),
    }


def _group(results: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Results grouped by ``kind``, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault(r["kind"], []).append(r)
    return list(groups.values())


def _summarise_outputs(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of expected verdicts per setting for whole-text cases."""
    out: dict[str, Any] = {"n": len(results), "timed_out": sum(r["timed_out"] for r in results)}
    for mode, extraction in SETTINGS:
        key = f"{mode}/{extraction}"
        out[key] = sum(r[key] == r["expected"] for r in results)
    return out


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        Process exit status.
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gsm8k", type=Path, default=DEFAULT_DATA / "gsm8k_test.jsonl")
    ap.add_argument("--math500", type=Path, default=DEFAULT_DATA / "math500.jsonl")
    ap.add_argument("--aime24", type=Path, default=DEFAULT_DATA / "aime24.jsonl")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N rows of each file")
    ap.add_argument("--timeout", type=float, default=3.0, help="per-comparison time bound (s)")
    ap.add_argument("--jobs", type=int, default=2, help="grading threads")
    ap.add_argument("--examples", type=int, default=5, help="disagreements to print per dataset")
    ap.add_argument("--json", type=Path, default=None, help="save summary and disagreements here")
    args = ap.parse_args(argv)

    datasets = {"gsm8k": args.gsm8k, "math500": args.math500, "aime24": args.aime24}
    missing = [str(p) for p in datasets.values() if not p.is_file()]
    if missing:
        print("missing dataset file(s): " + ", ".join(missing), file=sys.stderr)
        return 2

    report: dict[str, Any] = {"datasets": {}, "by_kind": {}, "outputs": {}, "timeout": args.timeout}
    all_results: list[dict[str, Any]] = []
    t0 = time.time()
    try:
        for name, path in datasets.items():
            rows = _read_jsonl(path, args.limit)
            results = grade_pairs(build_pairs(name, rows), args.timeout, args.jobs)
            for r in results:
                r["dataset"] = name
            all_results.extend(results)
            summary = summarise(results)
            summary["items"] = len(rows)
            summary["examples"] = [r for r in results if r["verify"] != r["paper"]]
            report["datasets"][name] = summary
            for kind_results in _group(grade_outputs(output_cases(name, rows), args.timeout, args.jobs)):
                report["outputs"][f"{name} / {kind_results[0]['kind']}"] = _summarise_outputs(kind_results)
        if MV_CASES.is_file():
            mv = [json.loads(line) for line in MV_CASES.read_text(encoding="utf-8").splitlines() if line.strip()]
            mv_cases = [("math-verify", c["pred"], c["gold"], c["expected"]) for c in mv]
            results = grade_outputs(mv_cases, args.timeout, args.jobs)
            summary = _summarise_outputs(results)
            summary["plain math-verify"] = _plain_math_verify(mv)
            report["outputs"]["math-verify tests / pairs"] = summary
    finally:
        shutdown_workers()
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in all_results:
        by_kind[r["kind"]].append(r)
    report["by_kind"] = {k: summarise(v) for k, v in sorted(by_kind.items())}
    report["seconds"] = round(time.time() - t0, 1)

    print("| dataset | items | pairs | agreement | disagreements | verify = expected | paper = expected |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s in report["datasets"].items():
        print(
            f"| {name} | {s['items']} | {s['n']} | {_fmt(s['agreement_rate'])} | {s['disagreements']} "
            f"| {_fmt(s['verify_matches_expected'])} | {_fmt(s['paper_matches_expected'])} |"
        )
    print()
    print("| pair kind | pairs | agreement | verify = expected | paper = expected |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind, s in report["by_kind"].items():
        print(
            f"| {kind} | {s['n']} | {_fmt(s['agreement_rate'])} "
            f"| {_fmt(s['verify_matches_expected'])} | {_fmt(s['paper_matches_expected'])} |"
        )
    print()
    print("Whole texts graded by grade(): cases whose verdict equals the expected one")
    print("| texts | cases | verify | paper | paper, harness extraction | plain math-verify | timed out |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key, s in report["outputs"].items():
        print(
            f"| {key} | {s['n']} | {s['verify/ours']} | {s['paper/ours']} | {s['paper/harness']} "
            f"| {s.get('plain math-verify', '–')} | {s['timed_out']} |"
        )
    for name, s in report["datasets"].items():
        if s["examples"]:
            print(f"\n{name}: {s['disagreements']} disagreement(s), e.g.")
            for r in s["examples"][: args.examples]:
                print(
                    f"  [{r['kind']}] pred={r['pred']!r} gold={r['gold']!r} "
                    f"expected={r['expected']} verify={r['verify']} paper={r['paper']}"
                )
    print(f"\n({report['seconds']} s, timeout {args.timeout} s per comparison)")

    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
