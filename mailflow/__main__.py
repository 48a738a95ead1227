"""`python -m mailflow`: the same entry point as the `mailflow` console script."""

from mailflow.cli import entry

entry()
