"""The `mailflow` command: parses, calls the library, prints. Errors become exit codes here."""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import cached_property
from typing import Any

import click

from mailflow import __version__
from mailflow.errors import MailflowError
from mailflow.project import Project, find_project


class App:
    """What every command shares: the project, its loaded config, the store and the clock."""

    def __init__(self, project_dir: str | None, now: str | None, verbose: int) -> None:
        self.project_dir = project_dir
        self.now_text = now
        self.verbose = verbose

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
        """--now, $MAILFLOW_NOW or the system clock (UTC)."""
        from mailflow.clock import resolve_now
        zone = None
        if (self.now_text or os.environ.get("MAILFLOW_NOW")) and self.project_dir is not None:
            zone = self.loaded.zone
        return resolve_now(self.now_text, zone)

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


class MailflowGroup(click.Group):
    """The one place where errors turn into messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a MailflowError becomes a Failure, Ctrl-C exit 130."""
        try:
            return super().invoke(ctx)
        except MailflowError as err:
            raise Failure(err) from None
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
@click.version_option(__version__, "--version", prog_name="mailflow")
@click.pass_context
def cli(ctx: click.Context, project_dir: str | None, now: str | None, verbose: int) -> None:
    """Run the emails of a client offboarding: plan, draft, approve, send, track replies.

    \b
    Example (start here):
      mailflow init ~/offboardings && cd ~/offboardings
      mailflow engagement add engagements/example.toml
      mailflow plan                # what goes out when
      mailflow run                 # what cron runs every few minutes
      mailflow drafts              # drafts waiting for your approval
      mailflow status              # every engagement at a glance
    """
    ctx.obj = App(project_dir, now, verbose)
