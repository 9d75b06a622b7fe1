"""``python -m mipeaks ...``: the ``mipeaks`` command (see :mod:`mipeaks.cli`)."""

from mipeaks.cli import main

raise SystemExit(main())
