#!/usr/bin/env python
"""Write ``book/_generated/plans.md``, the plan tables of every paper preset that ``book/reproduce.md`` includes.

    .venv/bin/python scripts/plan_tables.py           # after changing a preset, the cost model or architectures.json

``tests/test_plan.py`` fails when the committed file differs from a fresh generation.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mipeaks.plan import book_tables  # noqa: E402

TARGET = ROOT / "book" / "_generated" / "plans.md"


def main() -> None:
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(book_tables(), encoding="utf-8")
    print(TARGET.relative_to(ROOT))


if __name__ == "__main__":
    main()
