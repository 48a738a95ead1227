"""`mailflow engagement ...`: add, list, show, set, add-item, remove-item, status changes."""

from __future__ import annotations

from pathlib import Path

import click

from mailflow.cli.app import App, cli, complete_engagement, echo_json, json_option, pass_app


@cli.group()
def engagement() -> None:
    """Add and manage engagements (one client contract being wound down each).

    \b
    Example:
      mailflow engagement add engagements/example.toml
      mailflow engagement set northwind-2026 contract_end=2027-02-05
      mailflow engagement pause northwind-2026
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
      mailflow engagement add engagements/example.toml
    """
    from mailflow.desk.actions import add_engagement
    with app.store.writer() as w:
        added = [add_engagement(w, app.loaded, path, app.now, replace=replace) for path in files]
        if replace:
            _replan(app, w)  # says at once which approved drafts the new data changed
        w.save()
    for record in added:
        click.echo(f"{'updated' if replace else 'added'} {record['id']} ({record['client']}, "
                   f"contract ends {record['dates']['contract_end']})")
        if replace:  # say what changed: a replace never reverts anything silently
            click.echo(f"  changed: {', '.join(record['changed']) or 'nothing'}")


@engagement.command("list")
@json_option
@pass_app
def engagement_list(app: App, as_json: bool) -> None:
    """List engagements with their status and contract end.

    \b
    Example:
      mailflow engagement list --json
    """
    from mailflow.desk import views
    from mailflow.desk.tables import natural_key
    state = app.store.load()
    rows = [views.engagement_row(e) for e in sorted(
        state.engagements.values(), key=lambda e: (e["dates"]["contract_end"],
                                                   natural_key(e["id"])))]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no engagements yet: mailflow engagement add FILE.toml")
        return
    views.echo_table(["id", "client", "status", "contract end", "zone"],
                     [[r["id"], r["client"], r["status"] + (
                         " (archived)" if state.engagements[r["id"]].get("archived") else ""),
                       r["contract_end"], r["time_zone"]] for r in rows])


# what a run keeps on the record for itself (a plan and its signature), not the engagement
_CACHE_FIELDS = ("planned", "plan", "plan_checklist", "kept", "rev")


@engagement.command("show")
@click.argument("eid", metavar="ID", shell_complete=complete_engagement)
@json_option
@pass_app
def engagement_show(app: App, eid: str, as_json: bool) -> None:
    """Show one engagement's data and messages.

    \b
    Example:
      mailflow engagement show northwind-2026
    """
    from mailflow.desk import views
    from mailflow.desk.actions import find_engagement
    state = app.store.load()
    record = find_engagement(state, eid, archived_ok=True)
    plan = views.preview(state, app.loaded, app.now, [eid])
    if as_json:
        echo_json({**{k: v for k, v in record.items() if k not in _CACHE_FIELDS},
                   "messages": views.message_rows(state, record, plan),
                   "error": plan.errors.get(eid)})
        return
    click.echo(views.engagement_text(record, state, app.loaded, plan))
    if record.get("moved_out"):
        click.echo(f"archived: moved out of the working state on {record['moved_out'][:10]} "
                   f"({app.store.shelf.path(eid)})")
    if eid in plan.errors:
        click.echo(f"mailflow: engagement {eid}: {plan.errors[eid]}", err=True)


@engagement.command("set")
@click.argument("eid", metavar="ID", shell_complete=complete_engagement)
@click.argument("assignments", metavar="KEY=VALUE...", nargs=-1, required=True)
@pass_app
def engagement_set(app: App, eid: str, assignments: tuple[str, ...]) -> None:
    """Change fields in the engagement's file (comments kept); unsent emails are re-planned.

    The engagement file stays the one home of the data: it is edited in place and read
    again, and the change is journaled. Dates are named plainly (contract_end, start) or
    as dates.NAME; other fields by their dotted path (client, links.feedback_form); list
    items by their index from 0 (invoices.0.status=paid). Quote a value to keep it text.

    \b
    Example:
      mailflow engagement set northwind-2026 contract_end=2027-02-12
      mailflow engagement set northwind-2026 invoices.0.status=paid
    """
    from mailflow.desk.actions import set_engagement_fields
    with app.store.writer() as w:
        set_engagement_fields(w, app.loaded, eid, list(assignments), app.now)
        _replan(app, w)
        w.save()
    click.echo(f"updated {eid}; new timeline: mailflow plan {eid}")


LIST_NAMES = click.Choice(["deliverables", "shared_access", "invoices", "checklist"])


@engagement.command("add-item")
@click.argument("eid", metavar="ID", shell_complete=complete_engagement)
@click.argument("list_name", metavar="LIST", type=LIST_NAMES)
@click.argument("fields", metavar="FIELD=VALUE...", nargs=-1, required=True)
@pass_app
def engagement_add_item(app: App, eid: str, list_name: str, fields: tuple[str, ...]) -> None:
    """Add an item to a list of the engagement (deliverables, shared_access, invoices, checklist).

    \b
    Example:
      mailflow engagement add-item northwind-2026 invoices number=WC-2027-007 amount=950 \\
          currency=USD due=2027-02-15 status=outstanding
    """
    from mailflow.desk.engagement_files import add_item_to_document, edit_file
    added: list[int] = []
    with app.store.writer() as w:
        edit_file(w, app.loaded, eid,
                  lambda doc: added.append(add_item_to_document(doc, list_name, list(fields))),
                  app.now, [f"{list_name}+", *fields])
        _replan(app, w)
        w.save()
    click.echo(f"added {list_name}.{added[0]} to {eid}")


@engagement.command("remove-item")
@click.argument("eid", metavar="ID", shell_complete=complete_engagement)
@click.argument("list_name", metavar="LIST", type=LIST_NAMES)
@click.argument("index", metavar="INDEX", type=click.IntRange(0))
@pass_app
def engagement_remove_item(app: App, eid: str, list_name: str, index: int) -> None:
    """Remove an item, by its index from 0, from a list of the engagement.

    `mailflow engagement show ID` lists the items in order.

    \b
    Example:
      mailflow engagement remove-item northwind-2026 shared_access 2
    """
    from mailflow.desk.engagement_files import edit_file, remove_item_from_document
    removed: list[dict] = []
    with app.store.writer() as w:
        edit_file(w, app.loaded, eid,
                  lambda doc: removed.append(remove_item_from_document(doc, list_name, index)),
                  app.now, [f"{list_name}-{index}"])
        _replan(app, w)
        w.save()
    first = next(iter(removed[0].values()), "")
    click.echo(f"removed {list_name}.{index} ({first}) from {eid}")


def _replan(app: App, w) -> None:  # noqa: ANN001
    from mailflow.desk.actions import replan
    for line in replan(w, app.loaded, app.now):
        click.echo(f"mailflow: {line}", err=True)


def _status_command(name: str, status: str, verb: str, confirm: str | None = None) -> None:
    example = f"\n\n\b\nExample:\n  mailflow engagement {name} northwind-2026"
    if confirm:
        example += f"\n  mailflow engagement {name} northwind-2026 -y"

    @engagement.command(name, help=f"{verb}.{example}")
    @click.argument("eid", metavar="ID", shell_complete=complete_engagement)
    @click.option("-y", "--yes", is_flag=True, hidden=confirm is None,
                  help="Do not ask for confirmation.")
    @pass_app
    def command(app: App, eid: str, yes: bool) -> None:
        from mailflow.desk.actions import find_engagement, set_status
        if confirm and not yes:
            find_engagement(app.store.load(), eid)
            click.confirm(confirm.format(eid=eid), abort=True)
        with app.store.writer() as w:
            set_status(w, eid, status, app.now)
            _replan(app, w)
            w.save()
        click.echo(f"{eid} is now {status}")


_status_command("pause", "paused", "Pause an engagement (nothing is sent until you resume)")
_status_command("resume", "active", "Resume an engagement (re-plans every unsent message)")
_status_command("cancel", "cancelled",
                "Cancel an engagement: every unsent message is cancelled, and that is final",
                "Cancel {eid}? Its unsent emails are cancelled and cannot be brought back")


@engagement.command("complete")
@click.argument("eid", metavar="ID", shell_complete=complete_engagement)
@click.option("--force", is_flag=True,
              help="Complete it although emails or checklist items are still open.")
@click.option("-y", "--yes", is_flag=True, hidden=True, help="Do not ask for confirmation.")
@pass_app
def engagement_complete(app: App, eid: str, force: bool, yes: bool) -> None:
    """Mark an engagement completed once its sequence is done and its checklist is clear.

    Refused (exit 4, naming what is open) while an email is still to go out or a checklist
    item is open; with --force it is completed anyway and its unsent emails are cancelled.

    \b
    Example:
      mailflow engagement complete northwind-2026
      mailflow engagement complete northwind-2026 --force
    """
    from mailflow.desk.actions import find_engagement, set_status
    from mailflow.desk.wrapup import completion_refusal
    with app.store.writer() as w:
        record = find_engagement(w.state, eid)
        if not force and record["status"] != "completed":
            completion_refusal(w.state, app.loaded, record, app.now)
        set_status(w, eid, "completed", app.now)
        _replan(app, w)
        w.save()
    click.echo(f"{eid} is now completed")


@engagement.command("archive")
@click.argument("eid", metavar="ID", shell_complete=complete_engagement)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def engagement_archive(app: App, eid: str, yes: bool) -> None:
    """Put an engagement away: out of status, plan, drafts and every run.

    One still active or paused is cancelled first (you are asked). `mailflow status
    --all-archived` shows archived engagements; their history stays in `mailflow log`.

    \b
    Example:
      mailflow engagement archive northwind-2026 -y
    """
    from mailflow.desk.actions import archive, find_engagement
    record = find_engagement(app.store.load(), eid)
    if not yes and record["status"] in ("active", "paused") and not record.get("archived"):
        click.confirm(f"{eid} is {record['status']}: archiving cancels its unsent emails. "
                      "Archive it?", abort=True)
    with app.store.writer() as w:
        archive(w, eid, app.now)
        w.save()
    click.echo(f"archived {eid}")
