"""The `mailflow` command: parses, calls the library, prints. Errors become exit codes here."""

from __future__ import annotations

import os
import re
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from mailflow import __version__
from mailflow.errors import USAGE_EXIT_CODE, MailflowError
from mailflow.project import Project, find_project

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable


class App:
    """What every command shares: the project, its loaded config, the store and the clock."""

    def __init__(self, project_dir: str | None, now: str | None, verbose: int,
                 quiet: bool = False) -> None:
        self.project_dir = project_dir
        self.now_text = now
        self.verbose = 0 if quiet else verbose
        self.quiet = quiet

    @cached_property
    def project(self) -> Project:
        """The project found from --project, $MAILFLOW_PROJECT or the current folder."""
        return find_project(self.project_dir)

    @cached_property
    def loaded(self):  # noqa: ANN201
        """Config and rules, validated."""
        from mailflow.config.loading import load_project
        return load_project(self.project)

    @cached_property
    def store(self):  # noqa: ANN201
        """The project's state store."""
        from mailflow.store import Store
        return Store(self.project.state_dir)

    @cached_property
    def now(self) -> dt.datetime:
        """--now, $MAILFLOW_NOW or the system clock (UTC); a bare time is in the project's zone."""
        from mailflow.clock import resolve_now
        return resolve_now(self.now_text, lambda: self.loaded.zone)

    @property
    def user(self) -> str:
        """Who approves: the config's approver, else $USER."""
        try:
            configured = self.loaded.config.approver
        except MailflowError:
            configured = None
        return configured or os.environ.get("USER") or os.environ.get("LOGNAME") or "consultant"


pass_app = click.make_pass_decorator(App)


def echo_json(data: Any) -> None:
    """Print data as JSON for scripts (dates as ISO strings)."""
    import json
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def json_option(f):  # noqa: ANN001, ANN201
    """--json on a listing command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


class Failure(click.ClickException):
    """A MailflowError on its way out: one line on stderr and the error's own exit code."""

    def __init__(self, err: MailflowError) -> None:
        super().__init__(str(err))
        self.exit_code = err.exit_code

    def show(self, file: Any = None) -> None:
        """Print `mailflow: <message>` on stderr."""
        click.echo(f"mailflow: {self.message}", err=True)


# options of the `mailflow` group that people type after the subcommand too
# (`mailflow run --dry-run -v`): they are moved in front of it before click parses
_GLOBAL_VALUE = ("--project", "--now")
_GLOBAL_FLAG = re.compile(r"^(-[vq]+|--verbose|--quiet)$")


def hoist_global_options(args: list[str]) -> list[str]:
    """The command line with the global options in front of the subcommand.

    `--project`, `--now`, `-v`/`-q` may stand anywhere before a `--`; a `--json` given
    before the subcommand goes after it, where the listing commands take it.
    """
    front: list[str] = []
    rest: list[str] = []
    as_json = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_VALUE:
            take = 1 if "=" in arg else 2
            front += args[i:i + take]
            i += take
            continue
        if _GLOBAL_FLAG.match(arg):
            front.append(arg)
        elif arg == "--json" and not any(not a.startswith("-") for a in rest):
            as_json = True  # before the subcommand: moved after it
        else:
            rest.append(arg)
        i += 1
    if as_json:
        cut = rest.index("--") if "--" in rest else len(rest)
        rest.insert(cut, "--json")
    return front + rest


def _as_usage(err: click.UsageError) -> click.UsageError:
    # a typo on the command line is not a broken config file (both were 2): sysexits' 64
    err.exit_code = USAGE_EXIT_CODE
    return err


def terminal_columns() -> int:
    """`shutil.get_terminal_size().columns` without importing shutil (and, with it, bz2 and
    lzma): `mailflow --help` is a start-up figure of issue 18."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class MailflowContext(click.Context):
    """click's context, with a help formatter sized like click's own, at less cost."""

    def make_formatter(self) -> click.HelpFormatter:
        """click's formatter at the width click would choose (see `terminal_columns`)."""
        width = self.terminal_width
        if width is None and click.formatting.FORCED_WIDTH is None:
            width = max(min(terminal_columns(), self.max_content_width or 80) - 2, 50)
        return self.formatter_class(width=width, max_width=self.max_content_width)


class MailflowGroup(click.Group):
    """The one place where errors turn into messages and exit codes."""

    context_class = MailflowContext

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        """Parse the command line, global options anywhere; usage errors exit 64."""
        try:
            if parent is None:
                args = hoist_global_options(list(args))
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            raise _as_usage(err) from None
        except KeyboardInterrupt:  # Ctrl-C while parsing: as in a command, not click's "Aborted!"
            click.echo("mailflow: interrupted", err=True)
            raise SystemExit(130) from None

    # imports the module that attaches a command ("": every one); set by mailflow.cli, whose
    # command modules import this one: a hook, not an import, keeps the graph one-way
    load_command: Callable[[str], None] | None = None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command of this name, its module imported on first use (see mailflow.cli)."""
        if cmd_name not in self.commands and self.load_command is not None:
            self.load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name (help and completion list them all)."""
        if self.load_command is not None:
            self.load_command("")
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a MailflowError becomes a Failure, Ctrl-C exit 130."""
        try:
            return super().invoke(ctx)
        except MailflowError as err:
            raise Failure(err) from None
        except click.UsageError as err:
            raise _as_usage(err) from None
        except KeyboardInterrupt:
            click.echo("mailflow: interrupted", err=True)
            ctx.exit(130)
        finally:
            app = ctx.obj
            store = app.__dict__.get("store") if isinstance(app, App) else None
            for note in store.notes if store is not None else ():
                click.echo(f"mailflow: note: {note}", err=True)


@click.group(cls=MailflowGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--project", "project_dir", metavar="DIR", envvar="MAILFLOW_PROJECT",
              help="The project folder (default: $MAILFLOW_PROJECT, else the nearest parent "
                   "folder holding mailflow.toml).")
@click.option("--now", metavar="ISO-8601", envvar="MAILFLOW_NOW",
              help="Pretend it is this time (e.g. 2027-01-05T09:30, in the project's zone "
                   "unless an offset is given). Also $MAILFLOW_NOW.")
@click.option("-v", "--verbose", count=True, help="Say more (a summary line even under cron).")
@click.option("-q", "--quiet", is_flag=True, help="Say only what needs you (errors, prompts).")
@click.version_option(__version__, "--version", prog_name="mailflow")
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None, now: str | None, verbose: int,
        quiet: bool) -> None:
    """Run the emails of a client offboarding: plan, draft, approve, send, track replies.

    \b
    Example (start here):
      mailflow init ~/offboardings && cd ~/offboardings
      mailflow engagement add engagements/example.toml
      mailflow plan                # what goes out when
      mailflow run                 # what cron runs every few minutes
      mailflow drafts              # drafts waiting for your approval
      mailflow status              # every engagement at a glance

    The options above go before or after the command: `mailflow run --dry-run -v` and
    `mailflow -v run --dry-run` are the same. NO_COLOR turns off bold and colour.
    """
    if os.environ.get("NO_COLOR"):
        ctx.color = False  # https://no-color.org: no styling at all, bold included
    ctx.obj = App(project_dir, now, verbose, quiet)


# -- shell completion of ids (engagements, drafts, replies) --------------------------------

def _state_for_completion(ctx: click.Context):  # noqa: ANN202
    from mailflow.store import Store
    try:
        project = find_project(ctx.find_root().params.get("project_dir"))
        return Store(project.state_dir).load()
    except MailflowError:
        return None  # no project here: nothing to offer, and completion must never fail


def complete_engagement(ctx: click.Context, param: click.Parameter, incomplete: str
                        ) -> list[str]:
    """Engagement ids starting with what was typed."""
    state = _state_for_completion(ctx)
    return sorted(e for e in (state.engagements if state else {}) if e.startswith(incomplete))


def complete_message(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Draft and message keys starting with what was typed (drafts waiting for you first)."""
    state = _state_for_completion(ctx)
    if state is None:
        return []
    keys = [k for k in state.messages if k.startswith(incomplete)]
    waiting = [k for k in keys if state.messages[k]["state"] in ("awaiting_approval",
                                                                 "in_doubt", "blocked")]
    return sorted(waiting) + sorted(set(keys) - set(waiting))


def complete_reply(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Reply ids starting with what was typed."""
    state = _state_for_completion(ctx)
    return sorted(r for r in (state.replies if state else {}) if r.startswith(incomplete))
