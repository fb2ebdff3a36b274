"""``python -m cityos``: the command line."""

from cityos.cli import run

run()
