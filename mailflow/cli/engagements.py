"""`mailflow engagement ...`: add, list, show, set, pause, resume, cancel."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.app import App, cli, echo_json, json_option, pass_app
from mailflow.desk import views


@cli.group()
def engagement() -> None:
    """Add and manage engagements (one client contract being wound down each).

    \b
    Example:
      mailflow engagement add engagements/acme.toml
      mailflow engagement set acme-2026 contract_end=2027-01-15
      mailflow engagement pause acme-2026
    """


@engagement.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Update an engagement that already exists.")
@pass_app
def engagement_add(app: App, files: tuple[Path, ...], replace: bool) -> None:
    """Add engagements from TOML files (see engagements/example.toml).

    Every file is checked before any is added: one bad file adds nothing.

    \b
    Example:
      mailflow engagement add engagements/northwind.toml
    """
    from mailflow.desk.actions import add_engagement
    with app.store.writer() as w:
        added = [add_engagement(w, app.loaded, path, app.now, replace=replace) for path in files]
        if replace:
            replan(app, w)  # says at once which approved drafts the new data changed
        w.save()
    for record in added:
        click.echo(f"{'updated' if replace else 'added'} {record['id']} ({record['client']}, "
                   f"contract ends {record['dates']['contract_end']})")


@engagement.command("list")
@json_option
@pass_app
def engagement_list(app: App, as_json: bool) -> None:
    """List engagements with their status and contract end.

    \b
    Example:
      mailflow engagement list --json
    """
    state = app.store.load()
    rows = [views.engagement_row(e) for e in sorted(state.engagements.values(),
                                                     key=lambda e: e["dates"]["contract_end"])]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no engagements yet: mailflow engagement add FILE.toml")
        return
    views.echo_table(["id", "client", "status", "contract end", "zone"],
                     [[r["id"], r["client"], r["status"], r["contract_end"], r["time_zone"]]
                      for r in rows])


@engagement.command("show")
@click.argument("eid", metavar="ID")
@json_option
@pass_app
def engagement_show(app: App, eid: str, as_json: bool) -> None:
    """Show one engagement's data and messages.

    \b
    Example:
      mailflow engagement show northwind-2026
    """
    from mailflow.desk.actions import find_engagement
    state = app.store.load()
    record = find_engagement(state, eid)
    if as_json:
        echo_json({k: v for k, v in record.items() if k not in ("planned", "rev")})
        return
    click.echo(views.engagement_text(record, state, app.loaded))


@engagement.command("set")
@click.argument("eid", metavar="ID")
@click.argument("assignments", metavar="KEY=VALUE...", nargs=-1, required=True)
@pass_app
def engagement_set(app: App, eid: str, assignments: tuple[str, ...]) -> None:
    """Change fields; every unsent message is re-planned at once.

    Dates are named plainly (contract_end, start, or any custom date) or as dates.NAME;
    other fields by their dotted path (client, links.feedback_form, support_offer).

    \b
    Example:
      mailflow engagement set northwind-2026 contract_end=2027-02-12
    """
    from mailflow.desk.actions import set_engagement_fields
    with app.store.writer() as w:
        set_engagement_fields(w, app.loaded, eid, list(assignments), app.now)
        replan(app, w)
        w.save()
    click.echo(f"updated {eid}; new timeline: mailflow plan {eid}")


def replan(app: App, w) -> None:  # noqa: ANN001
    """Bring every engagement's unsent messages in line with its data and status, now."""
    from mailflow.engine.tick import Tick
    tick = Tick(app.loaded, w, app.now)
    tick.plan()
    tick.draft()
    for line in tick.report.withdrawn + tick.report.problems:
        click.echo(f"mailflow: {line}", err=True)


def _status_command(name: str, status: str, verb: str) -> None:
    @engagement.command(name, help=f"{verb} an engagement.\n\n\b\nExample:\n  mailflow engagement "
                                   f"{name} northwind-2026")
    @click.argument("eid", metavar="ID")
    @pass_app
    def command(app: App, eid: str) -> None:
        from mailflow.desk.actions import set_status
        with app.store.writer() as w:
            set_status(w, eid, status, app.now)
            replan(app, w)
            w.save()
        click.echo(f"{eid} is now {status}")


_status_command("pause", "paused", "Pause (nothing is sent until you resume)")
_status_command("resume", "active", "Resume (re-plans every unsent message)")
_status_command("cancel", "cancelled", "Cancel (every unsent message is cancelled)")
_status_command("complete", "completed", "Mark as completed (unsent messages are cancelled)")
