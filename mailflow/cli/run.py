"""Commands that do the work: init, run, poll, check, sink, demo, cron-line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from mailflow.cli.app import App, cli, pass_app
from mailflow.errors import MailflowError, RunFailed, StoreError


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", "sender_name", default="Your Name", show_default=True,
              help="Your name, as the emails' sender.")
@click.option("--email", "sender_email", default="you@example.com", show_default=True,
              help="The address the emails come from.")
@click.option("--time-zone", default="UTC", show_default=True,
              help="Default IANA time zone for engagements (e.g. Europe/London).")
@click.option("--language", type=click.Choice(["en", "fr", "de", "es"]), default=None,
              help="The playbook's default language (en_US, fr_FR, de_DE, es_ES conventions).")
@click.option("--locale", "locale", default=None,
              help="Default locale for engagements (e.g. en_GB, fr_CA); implies its language.")
@click.option("--force", is_flag=True, help="Overwrite the playbook files of an existing project.")
def init(directory: Path, sender_name: str, sender_email: str, time_zone: str,
         language: str | None, locale: str | None, force: bool) -> None:
    """Create a project: mailflow.toml, rules/, templates/emails/, engagements/example.toml.

    The name, address and time zone are checked first; you become the offboarding lead
    who signs the example engagement.

    \b
    Example:
      mailflow init ~/offboardings --name "Dana Whitfield" --email dana@whitfield.example \\
          --time-zone America/New_York
      mailflow init ~/clients-fr --language fr --time-zone Europe/Paris
    """
    import shlex

    from mailflow.errors import ConfigError
    from mailflow.project import PLACEHOLDER_SENDER, check_identity, init_locale, init_project
    try:
        check_identity(sender_name, sender_email, time_zone)
        init_locale(language, locale)
    except ConfigError as err:  # a mistyped option: a usage error, before anything is written
        raise click.UsageError(str(err).removeprefix("init: ")) from None
    project = init_project(directory, sender_name=sender_name, sender_email=sender_email,
                           time_zone=time_zone, language=language, locale=locale, force=force)
    if (sender_name, sender_email) == PLACEHOLDER_SENDER:
        click.echo("note: no --name/--email given: set [sender] in mailflow.toml before "
                   "sending (`mailflow check` reminds you)", err=True)
    click.echo(f"created {project.root}\n"
               f"next: edit {project.config_path.name}, then\n"
               f"  cd {shlex.quote(str(project.root))}\n"
               "  mailflow engagement add engagements/example.toml\n"
               "  mailflow plan")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Plan and render, report what would be sent; "
                                               "send and record nothing.")
@pass_app
def run(app: App, dry_run: bool) -> None:
    """Do what is due now: poll replies, plan, draft, hold, send (what cron runs).

    Quiet when all is well; problems go to stderr with a non-zero exit: 1 something failed
    or needs you, 2 bad config/rule/engagement file, 75 another run holds the lock.

    \b
    Example:
      mailflow run              # from cron, every 5 minutes
      mailflow run --dry-run -v # what would happen now
    """
    from mailflow.desk.run import run_tick
    progress = None
    # under cron (no TTY): no bar, only errors
    if sys.stderr.isatty() and not dry_run and not app.quiet:
        def progress(total: int):  # noqa: ANN202
            return click.progressbar(length=total, label="sending", file=sys.stderr)
    report = run_tick(app.loaded, app.store, app.now, dry_run=dry_run, progress=progress)
    interactive = sys.stdout.isatty()
    if dry_run:
        for key in report.would_send:
            click.echo(f"would send {key}")
        for key in report.drafted:
            click.echo(f"would draft {key}")
        if not report.would_send and not report.drafted:
            click.echo("nothing is due")
    elif (app.verbose or interactive) and not app.quiet:
        summary = (f"sent {len(report.sent)}, drafted {len(report.drafted)}, "
                   f"awaiting approval {len(report.held)}, retrying {len(report.retrying)}, "
                   f"replies {report.replies}, waiting for window/limit {report.deferred}")
        if app.verbose or report.sent or report.drafted or report.replies:
            click.echo(summary)
        if app.verbose > 1:
            for key in report.sent:
                click.echo(f"  sent {key}")
    for note in report.notes if (app.verbose or interactive) and not app.quiet else []:
        click.echo(f"note: {note}", err=True)
    for line in report.retrying if not (app.verbose or interactive) else []:
        click.echo(f"mailflow: {line}: temporarily refused, will retry", err=True)
    fail_on_problems(report)


def fail_on_problems(report) -> None:  # noqa: ANN001 - a runner.TickReport
    """Each problem, and each thing that newly needs you, as one line on stderr, then exit
    non-zero (cron mails it); nothing when all is well or only things already told wait.

    The code is the README's: 6 a server could not be reached, 7 a draft could not be
    rendered, 2 a bad config, else 1.
    """
    for line in report.problems:
        click.echo(f"mailflow: {line}", err=True)
    for line in getattr(report, "told", ()):
        click.echo(f"mailflow: {line}", err=True)
    if report.problems or getattr(report, "told", None):
        raise click.exceptions.Exit(report.exit_code or RunFailed.exit_code)


@cli.command()
@pass_app
def poll(app: App) -> None:
    """Fetch new replies from IMAP once and act on them (run does this too).

    \b
    Example:
      mailflow poll -v
    """
    from mailflow.desk.polling import poll_once
    report = poll_once(app.loaded, app.store, app.now)
    if (app.verbose or sys.stdout.isatty()) and not app.quiet:
        click.echo(f"{report.replies} new repl{'y' if report.replies == 1 else 'ies'}")
        for note in report.notes:
            click.echo(f"note: {note}", err=True)
    fail_on_problems(report)


@cli.command()
@click.option("--port", default=1025, show_default=True, help="Port to listen on (127.0.0.1).")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              default=Path("sink"), show_default=True, help="Where to save .eml files.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def sink(port: int, folder: Path, host: str) -> None:
    """A local SMTP server that saves every message as a .eml file (try sequences safely).

    Point mailflow.toml's [smtp] at it: host = "127.0.0.1", port = 1025, security = "none".

    \b
    Example:
      mailflow sink --port 1025 --dir sink/
    """
    from mailflow.transport.sink import start_sink

    def said(path: Path, rcpts: list[str], subject: str) -> None:
        click.echo(f"{path}  to {', '.join(rcpts)}: {subject}")

    controller = start_sink(folder, host, port, on_message=said)
    try:  # Ctrl-C is how a sink stops: exit 0, whenever it comes
        click.echo(f"listening on {host}:{port}, saving to {folder.resolve()}/ (Ctrl-C to stop)")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@cli.command("cron-line")
@click.option("--every", default=5, show_default=True, type=click.IntRange(1, 59),
              help="Minutes between runs.")
@click.option("--plain", is_flag=True,
              help="Call mailflow directly, not through the packaged wrapper script.")
@pass_app
def cron_line(app: App, every: int, plain: bool) -> None:
    """Print the crontab line that runs this project (paste it into `crontab -e`).

    The line calls the wrapper shipped in the package (timestamped, rotating log in
    .mailflow/cron.log; quiet when another run holds the lock; mailflow's exit status).
    With --plain it calls mailflow directly, still logging and keeping the exit status.

    \b
    Example:
      (crontab -l; mailflow cron-line) | crontab -
      mailflow cron-line --every 10 --plain
    """
    from mailflow.desk.cron import cron_line as line
    click.echo(line(app.project.root, _mailflow_executable(), every, plain))


@cli.command("systemd-units")
@click.option("--install", is_flag=True,
              help="Write them into ~/.config/systemd/user instead of printing them.")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="With --install: write them here instead.")
@pass_app
def systemd_units(app: App, install: bool, folder: Path | None) -> None:
    """Print (or --install) a systemd user service and timer that run this project.

    The service calls the packaged wrapper every 5 minutes; exit 75 counts as success.
    Secrets named by password_env go in ~/.config/mailflow/env (mode 600).

    \b
    Example:
      mailflow systemd-units --install
      mailflow systemd-units > /dev/null
    """
    from mailflow.desk.cron import install_units, user_unit_dir
    from mailflow.desk.cron import systemd_units as units_for
    units = units_for(app.project.root, _mailflow_executable())
    if not install:
        for name, text in units.items():
            click.echo(f"# --- {name}\n{text}")
        return
    for path in install_units(units, folder or user_unit_dir()):
        click.echo(f"wrote {path}")
    click.echo("next:\n  systemctl --user daemon-reload && systemctl --user enable --now "
               "mailflow.timer\n  loginctl enable-linger \"$USER\"   # keep running while "
               "logged out")


def _mailflow_executable() -> str:
    # the script next to this interpreter, not a shim (pyenv, asdf) that needs a login shell
    import shutil
    beside = Path(sys.executable).with_name("mailflow")
    if beside.is_file():
        return str(beside)
    return shutil.which("mailflow") or str(beside)


@cli.command()
@click.option("--connect", is_flag=True, help="Also log in to SMTP and IMAP (sends nothing).")
@pass_app
def check(app: App, connect: bool) -> None:
    """Check config, rules, templates and engagements; report every problem at once.

    Renders every stage for every engagement file and stored engagement (each once), says
    where the store and an engagement file disagree, and warns about placeholder senders
    and example.com addresses. Exit 0 when there is no problem (warnings allowed), 2 for
    problems in the files, 6 when --connect could not reach a server.

    \b
    Example:
      mailflow check
      mailflow check --connect
    """
    from mailflow.desk.checks import check_project
    found = check_project(app.project, connect=connect, now=app.now)
    for line in found.notes if not app.quiet else []:
        click.echo(line)
    for line in found.warnings:
        click.echo(f"warning: {line}", err=True)
    for line in found.problems:
        click.echo(f"problem: {line}", err=True)
    if found.problems:
        click.echo(f"{len(found.problems)} problem(s)", err=True)
        raise click.exceptions.Exit(found.exit_code)
    if not app.quiet:
        click.echo(f"no problems, but {len(found.warnings)} warning(s) above" if found.warnings
                   else "all good")


@cli.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the demo project here (default: a new temporary folder).")
def demo(folder: Path | None) -> None:
    """Walk a sample engagement through the whole sequence, against a local SMTP sink.

    Creates a throwaway project, starts an SMTP server on 127.0.0.1 that saves every
    message as a .eml file, moves the clock day by day through the offboarding (approving
    drafts as a consultant would) and prints the timeline. Nothing leaves the machine.

    \b
    Example:
      mailflow demo
      mailflow demo --dir /tmp/mailflow-demo
    """
    from mailflow.desk.demo import run_demo
    run_demo(folder, echo=click.echo)


@cli.command()
@click.option("--repair", is_flag=True, help="Rebuild the checkpoint from the journal and render "
                                             "missing bodies again (those drafts need approving "
                                             "again).")
@click.option("--quarantine", is_flag=True, help="With --repair: move damaged journal lines into "
                                                 ".mailflow/events.damaged.jsonl.")
@pass_app
def doctor(app: App, repair: bool, quarantine: bool) -> None:
    """Check the state: journal, checkpoint and bodies; every problem on one line each.

    Exits 0 when all is well, 5 when something is damaged (after --repair: when something is
    still damaged).

    \b
    Example:
      mailflow doctor
      mailflow doctor --repair --quarantine
    """
    from mailflow.desk import doctor as doc
    if quarantine and not repair:
        raise click.UsageError("--quarantine goes with --repair")
    if repair:
        found = doc.repair(app.store, app.loaded, app.now, quarantine=quarantine)
    else:
        try:  # the kept plans are checked against the rules when they load
            loaded = app.loaded
        except MailflowError:
            loaded = None  # a broken config must not keep the store from being checked
        found = doc.check(app.store, loaded)
    for line in found.repaired:
        click.echo(f"repaired: {line}")
    for line in found.notes:
        click.echo(f"note: {line}")
    for line in found.problems:
        click.echo(f"mailflow: {line}", err=True)
    if found.problems:
        raise click.exceptions.Exit(StoreError.exit_code)
    if not found.repaired:
        click.echo("the journal, the checkpoint and the bodies are sound")
