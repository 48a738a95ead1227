"""The `mailflow` command line: parses, calls the library, prints; errors become exit codes."""

from mailflow.cli import (  # noqa: F401  (each attaches its commands)
    checklist,
    documents,
    drafts,
    engagements,
    run,
    views,
    watch,
)
from mailflow.cli.app import cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `mailflow` console script."""
    cli.main(args=argv, prog_name="mailflow")


__all__ = ["cli", "main"]
