"""`mailflow watch`: replies recorded within seconds (IMAP IDLE), until SIGTERM or Ctrl-C."""

from __future__ import annotations

import os
import sys

import click

from mailflow.cli.app import App, cli, pass_app


@cli.command()
@click.option("--renew-minutes", type=click.FloatRange(0.05, 28), default=25.0,
              show_default=True, help="Re-issue IDLE (and poll every folder) this often; "
                                      "RFC 2177 servers may drop an IDLE after 29 minutes.")
@click.option("--poll-every", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Seconds between polls when the server does not offer IDLE.")
@click.option("--no-idle", is_flag=True, help="Poll every --poll-every seconds even if the "
                                              "server offers IDLE.")
@pass_app
def watch(app: App, renew_minutes: float, poll_every: float, no_idle: bool) -> None:
    """Record clients' replies within seconds of their arrival, until stopped.

    Waits on the first of [imap] folders with IMAP IDLE and polls every folder when new mail
    arrives and at each renewal. Holds the project's lock only while it records mail, so
    cron's `mailflow run` keeps working beside it. Reconnects after a drop; polls every
    minute where the server lacks IDLE. SIGTERM or Ctrl-C stop it cleanly (exit 0). Problems
    go to stderr, each once; -v tells what it does, -vv each IDLE renewal too. See
    mailflow/cron/mailflow-watch.service (in the package) for a systemd user unit.

    \b
    Example:
      mailflow watch -v
      mailflow watch --poll-every 120 --no-idle
    """
    import signal

    from mailflow.desk.watch import StopFlag, Watcher, WatchSettings, running_clock
    given = app.now_text or os.environ.get("MAILFLOW_NOW")
    clock = running_clock(app.now if given else None)
    stop = StopFlag()
    told: dict[str, str] = {}

    def say(kind: str, text: str) -> None:
        if kind == "problem":
            if told.get("problem") != text:
                click.echo(f"mailflow: {text}", err=True)
            told["problem"] = text
        elif app.verbose > (kind == "debug"):
            click.echo(f"note: {text}", err=True)

    def on_report(report) -> None:  # noqa: ANN001 - engine.tick.TickReport
        if not report.problems:
            told.pop("problem", None)  # all well again: the next problem is told anew
        if report.replies and (app.verbose or sys.stdout.isatty()):
            click.echo(f"{clock():%Y-%m-%d %H:%M:%S}Z  {report.replies} new "
                       f"repl{'y' if report.replies == 1 else 'ies'}")
        for note in report.notes if app.verbose else []:
            click.echo(f"note: {note}", err=True)
        for line in report.problems:
            say("problem", line)

    settings = WatchSettings(idle_renew=renew_minutes * 60, poll_every=poll_every,
                             use_idle=not no_idle)
    watcher = Watcher(app.loaded, app.store, clock, stop, say, on_report, settings)
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if app.verbose or sys.stderr.isatty():
            click.echo(f"watching {app.loaded.config.imap.address} "
                       f"({', '.join(app.loaded.config.imap.folders)}); Ctrl-C to stop", err=True)
        watcher.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if app.verbose:
        click.echo(f"stopped ({signal.Signals(stop.signal).name if stop.signal else 'done'})",
                   err=True)
