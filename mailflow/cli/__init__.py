"""The `mailflow` command line: parses, calls the library, prints; errors become exit codes.

The commands are imported inside `main`, not here: importing them takes most of a short
command's time, and a Ctrl-C in that window must end as any other Ctrl-C does (one line,
exit 130), not with a traceback from deep inside an import. `main` imports only the module of
the command it runs (`COMMAND_MODULES`); help, completion and an unknown name load them all.
"""

from __future__ import annotations

import sys
from typing import Any

# each top-level command and the module under mailflow.cli that defines it: `mailflow
# drafts` imports cli.drafts alone, not the command line of every other command (issue 18:
# `status` and `drafts` are start-up figures); tests/cli/test_help.py keeps this complete
COMMAND_MODULES = {
    "check": "run", "checklist": "checklist", "cron-line": "run", "demo": "run",
    "doc": "documents", "doctor": "run", "done": "checklist", "drafts": "drafts",
    "engagement": "engagements", "init": "run", "log": "views", "plan": "views", "poll": "run",
    "replies": "drafts", "run": "run", "sink": "run", "status": "views",
    "systemd-units": "run", "undo": "checklist", "watch": "watch",
}


def load_command(name: str) -> None:
    """Import the module that attaches command `name` to the group (every one if unknown)."""
    import importlib
    modules = [COMMAND_MODULES[name]] if name in COMMAND_MODULES else \
        sorted(set(COMMAND_MODULES.values()))
    for module in modules:
        importlib.import_module(f"mailflow.cli.{module}")


def _group() -> Any:  # noqa: ANN401 - click.Group, typed where it is defined
    """The click group, loading each command's module as click resolves its name."""
    from mailflow.cli.app import cli
    cli.load_command = load_command
    return cli


def _load() -> Any:  # noqa: ANN401
    """The click group with every command attached."""
    cli = _group()
    load_command("")
    return cli


def main(argv: list[str] | None = None) -> None:
    """Run one `mailflow` command (raises SystemExit with its exit code, as click does)."""
    try:
        cli = _group()
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
