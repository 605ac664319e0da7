"""``python -m lossaudit``: the same as the ``lossaudit`` command."""

from lossaudit.cli import run

raise SystemExit(run())
