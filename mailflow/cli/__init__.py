"""The `mailflow` command line: parses, calls the library, prints; errors become exit codes.

The commands are imported inside `main`, not here: importing them takes most of a short
command's time, and a Ctrl-C in that window must end as any other Ctrl-C does (one line,
exit 130), not with a traceback from deep inside an import.
"""

from __future__ import annotations

import sys
from typing import Any


def _load() -> Any:  # noqa: ANN401 - click.Group, typed where it is defined
    """The click group with every command attached."""
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
    return cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `mailflow` console script."""
    try:
        cli = _load()
    except KeyboardInterrupt:
        sys.stderr.write("mailflow: interrupted\n")
        raise SystemExit(130) from None
    cli.main(args=argv, prog_name="mailflow")


def __getattr__(name: str) -> Any:  # noqa: ANN401
    """`from mailflow.cli import cli` still works (tests, completion, docs)."""
    if name == "cli":
        return _load()
    raise AttributeError(f"module 'mailflow.cli' has no attribute {name!r}")


__all__ = ["cli", "main"]  # noqa: F822 - `cli` is provided by __getattr__
