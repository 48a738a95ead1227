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
    """Run one `mailflow` command (raises SystemExit with its exit code, as click does)."""
    try:
        cli = _load()
    except KeyboardInterrupt:
        sys.stderr.write("mailflow: interrupted\n")
        raise SystemExit(130) from None
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


def __getattr__(name: str) -> Any:  # noqa: ANN401
    """`from mailflow.cli import cli` still works (tests, completion, docs)."""
    if name == "cli":
        return _load()
    raise AttributeError(f"module 'mailflow.cli' has no attribute {name!r}")


__all__ = ["cli", "entry", "main"]  # noqa: F822 - `cli` is provided by __getattr__
