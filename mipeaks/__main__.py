"""``python -m mipeaks ...``: the ``mipeaks`` command (see :mod:`mipeaks.cli`)."""

from mipeaks.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
