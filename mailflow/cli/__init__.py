"""The `mailflow` command line: parses, calls the library, prints; errors become exit codes."""

import sys

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
    """Run one `mailflow` command (raises SystemExit with its exit code, as click does)."""
    cli.main(args=argv, prog_name="mailflow")


def entry() -> None:
    """Entry point of the `mailflow` console script and `python -m mailflow`.

    Once the command is done the process ends without freeing what it loaded: the state of
    10,000 engagements is a million objects, and freeing them one by one was 50 ms of every
    idle run (issue 18). Nothing is lost: every file the commands write is written, fsynced
    and closed inside the command; stdout and stderr are flushed here.
    """
    import os
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code
        if code is None:
            code = 0
        elif not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or coverage writes its report at a normal exit
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone (`| head`), or a stream closed
            code = code or 120  # what Python's own exit says when stdout cannot be flushed
    os._exit(code)


__all__ = ["cli", "entry", "main"]
