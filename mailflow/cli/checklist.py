"""`mailflow checklist`, `done` and `undo`: the wrap-up besides the emails."""

from __future__ import annotations

import datetime as dt

import click

from mailflow.cli.app import App, cli, echo_json, json_option, pass_app


def _complete_engagement(ctx: click.Context, param: click.Parameter, incomplete: str
                         ) -> list[str]:
    """Engagement ids for shell completion (nothing when no project is found)."""
    from mailflow.errors import MailflowError
    try:
        state = App(None, None, 0).store.load()
    except (MailflowError, OSError):
        return []
    return sorted(e for e in state.engagements if e.startswith(incomplete))


def _complete_item(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Checklist item ids of the engagement named before, for shell completion."""
    from mailflow.desk.checklist import items_of
    from mailflow.errors import MailflowError
    try:
        app = App(None, None, 0)
        state = app.store.load()
        eng = state.engagements[ctx.params.get("eid") or ""]
        return [i.id for i in items_of(state, app.loaded, eng) if i.id.startswith(incomplete)]
    except (MailflowError, OSError, KeyError):
        return []


def _today(eng: dict, now: dt.datetime) -> dt.date:
    from mailflow import timing
    return now.astimezone(timing.load_zone(eng["time_zone"])).date()


@cli.command()
@click.argument("eid", metavar="[ID]", required=False, shell_complete=_complete_engagement)
@click.option("--all", "show_all", is_flag=True, help="Also list done items.")
@json_option
@pass_app
def checklist(app: App, eid: str | None, show_all: bool, as_json: bool) -> None:
    """The wrap-up checklist: access removed, invoices paid, deliverables accepted, and more.

    Open items come first, with their owner and due date in the engagement's time zone;
    overdue ones are marked. Without an ID, every active engagement's open items.

    \b
    Example:
      mailflow checklist northwind-2026
      mailflow checklist --json
    """
    from mailflow.desk.actions import find_engagement
    from mailflow.desk.checklist import item_row, items_of, open_summary
    from mailflow.engine.checklist import ordered
    state = app.store.load()
    engagements = ([find_engagement(state, eid, archived_ok=True)] if eid else
                   [e for e in sorted(state.engagements.values(), key=lambda e: e["id"])
                    if e["status"] in ("active", "paused")])
    out = []
    for eng in engagements:
        today = _today(eng, app.now)
        items = ordered(items_of(state, app.loaded, eng))
        out.append({"engagement": eng["id"], **open_summary(items, today),
                    "items": [item_row(i, today) for i in items]})
    if as_json:
        echo_json(out)
        return
    if not out:
        click.echo("no active engagements")
    for entry, eng in zip(out, engagements, strict=True):
        click.secho(f"{eng['id']} ({eng['client']}): {entry['open']} open"
                    + (f", {entry['overdue']} overdue" if entry["overdue"] else ""), bold=True)
        for row in entry["items"]:
            if row["done"] and not (show_all or eid):
                continue
            click.echo("  " + _line(row))


def _line(row: dict) -> str:
    if row["done"]:
        who = f" by {row['done_by']}" if row["done_by"] else ""
        when = f" on {row['done_on']}" if row["done_on"] else ""
        what = f"{row['outcome']}" if row["outcome"] else "done"
        note = f" ({row['note']})" if row["note"] else ""
        return f"[x] {row['id']:<16} {row['title']} - {what}{when}{who}{note}"
    due = f"due {row['due']}" if row["due"] else "no due date"
    flag = "  OVERDUE" if row["overdue"] else ""
    return f"[ ] {row['id']:<16} {row['title']} - {row['owner']}, {due}{flag}"


@cli.command()
@click.argument("eid", metavar="ID", shell_complete=_complete_engagement)
@click.argument("ref", metavar="ITEM", shell_complete=_complete_item)
@click.option("--note", default="", help="A note kept with the item (e.g. who confirmed it).")
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The date it was done (default: today in the engagement's zone).")
@click.option("--outcome", default="", help="For support: accepted or declined; for the "
              "meeting: held or not-wanted.")
@pass_app
def done(app: App, eid: str, ref: str, note: str, on: dt.datetime | None, outcome: str) -> None:
    """Mark a checklist item done: access removed, an invoice paid, the meeting held...

    \b
    Example:
      mailflow done northwind-2026 access-1 --note "Tom confirmed by phone"
      mailflow done northwind-2026 invoice-wc-2026-118 --on 2027-01-20
      mailflow done northwind-2026 support --outcome declined
    """
    from mailflow.desk.actions import find_engagement
    from mailflow.desk.checklist import mark_done
    with app.store.writer() as w:
        eng = find_engagement(w.state, eid)
        item = mark_done(w, app.loaded, eng, ref, app.user, app.now, note=note,
                         on=on.date() if on else None, outcome=outcome)
        w.save()
    click.echo(f"{eid}/{item.id}: {item.title} - {item.outcome or 'done'} on "
               f"{item.done_on.isoformat() if item.done_on else '?'} by {item.done_by}")


@cli.command()
@click.argument("eid", metavar="ID", shell_complete=_complete_engagement)
@click.argument("ref", metavar="ITEM", shell_complete=_complete_item)
@pass_app
def undo(app: App, eid: str, ref: str) -> None:
    """Reopen a checklist item marked done by mistake.

    \b
    Example:
      mailflow undo northwind-2026 access-1
    """
    from mailflow.desk.actions import find_engagement
    from mailflow.desk.checklist import undo as reopen
    with app.store.writer() as w:
        eng = find_engagement(w.state, eid)
        item = reopen(w, app.loaded, eng, ref, app.user, app.now)
        w.save()
    click.echo(f"{eid}/{item.id}: {item.title} - open again")
