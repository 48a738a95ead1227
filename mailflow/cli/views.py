"""Read-only views: status, plan, log. None of them takes the lock or writes."""

from __future__ import annotations

import click

from mailflow.cli.app import App, cli, complete_engagement, echo_json, json_option, pass_app


@cli.command()
@click.option("--all-archived", "archived", is_flag=True,
              help="Show the archived engagements instead.")
@json_option
@pass_app
def status(app: App, archived: bool, as_json: bool) -> None:
    """Every engagement at a glance: one row each, one column per stage.

    Rows come soonest next email first; an engagement that cannot be planned shows as a
    row with its error. Ends with what needs you now (drafts to approve, messages in
    doubt, failures, replies that need action).

    \b
    Example:
      mailflow status
      mailflow status --all-archived
      mailflow status --json | jq '.engagements[] | select(.flagged)'
    """
    from mailflow.desk.status import compact_mark, short_header, status_view
    from mailflow.desk.tables import Column, echo_table
    grid, attention = status_view(app.store, app.loaded, app.now, archived, with_data=as_json)
    if as_json:
        echo_json({"engagements": [r.data for r in grid.rows], "needs_attention": attention})
        return
    if not grid.rows:
        click.echo("no archived engagements" if archived else
                   "no engagements yet: mailflow engagement add FILE.toml")
        return
    shorts: list[str] = []
    for name in grid.stages:
        shorts.append(short_header(name, shorts))
    # when every engagement is active the status column says nothing: it goes first when
    # narrow; a paused one must stay visible
    quiet = all(r.status == "active" for r in grid.rows)
    columns = [Column("engagement", keep=True),
               Column("status", rank=9 if quiet else 2, min_width=6)] + [
        Column(name, rank=3 + n // 2, min_width=9, short=short)
        for n, (name, short) in enumerate(zip(grid.stages, shorts, strict=True))] + [
        Column("checklist", rank=2, min_width=5)]
    rows, compact = [], []
    for r in grid.rows:
        cells = [r.cells.get(n, "") for n in grid.stages]
        if r.error:  # the error goes where the stages would be: never a silent blank row
            cells = [f"ERROR: {r.error}"] + [""] * (len(grid.stages) - 1)
        rows.append([r.id, r.status] + cells + [r.checklist])
        compact.append([r.id, r.status] + [compact_mark(c) for c in cells]
                       + [r.checklist])
    echo_table(columns, rows, compact=compact)
    for r in grid.rows:
        if r.error:
            click.echo(f"mailflow: engagement {r.id}: {r.error}", err=True)
    click.echo()
    if attention:
        click.secho("Needs you now:", bold=True)
        for line in attention:
            click.echo(f"  - {line}")
    else:
        click.echo("Nothing needs you now.")


@cli.command()
@click.argument("eid", metavar="[ID]", required=False, shell_complete=complete_engagement)
@json_option
@pass_app
def plan(app: App, eid: str | None, as_json: bool) -> None:
    """What goes out when, and why it falls there (changes nothing).

    Times are in each engagement's local time with the weekday; each line says which
    offset, window or holiday put it there.

    \b
    Example:
      mailflow plan northwind-2026
      mailflow --now 2027-01-05 plan --json
    """
    from mailflow.desk import views
    from mailflow.desk.actions import find_engagement
    from mailflow.desk.tables import natural_key
    from mailflow.errors import MailflowError
    state = app.store.load()
    engagements = [find_engagement(state, eid, archived_ok=True)] if eid else sorted(
        (e for e in state.engagements.values() if not e.get("archived")),
        key=lambda e: (e["dates"]["contract_end"], natural_key(e["id"])))
    plan = views.preview(state, app.loaded, app.now, [e["id"] for e in engagements])
    result = []
    for eng in engagements:
        msgs = {m["key"]: m for m in state.messages_of(eng["id"])}
        if eng["id"] in plan.errors:
            if eid:  # the one engagement asked for: its error is the answer
                raise MailflowError(f"engagement {eng['id']}: {plan.errors[eng['id']]}")
            click.echo(f"mailflow: engagement {eng['id']}: {plan.errors[eng['id']]}", err=True)
            result.append({"engagement": eng["id"], "status": eng["status"], "messages": [],
                           "error": plan.errors[eng["id"]]})
            continue
        if eng["status"] == "active":
            rows = views.plan_rows(plan.items[eng["id"]], msgs, eng["time_zone"], plan.when)
        else:
            rows = [{"id": m["key"], "stage": m["stage"], "step": m["step"], "state": m["state"],
                     "status": eng["status"], "when": m.get("sent_at") or m.get("due"),
                     "when_local": views.local(m.get("sent_at") or m.get("due"),
                                               eng["time_zone"]), "reasons": [
                         f"engagement {eng['status']}"]} for m in msgs.values()]
        result.append({"engagement": eng["id"], "status": eng["status"], "messages": rows})
        if not as_json:
            views.echo_plan(eng, rows)
    if as_json:
        echo_json(result)
    elif not engagements:
        click.echo("no engagements yet: mailflow engagement add FILE.toml")


@cli.command()
@click.option("--engagement", "eid", metavar="ID", help="Only this engagement.",
              shell_complete=complete_engagement)
@click.option("-n", "--limit", type=click.IntRange(min=0), default=0,
              help="Only the last N events (0, the default: all).")
@json_option
@pass_app
def log(app: App, eid: str | None, limit: int, as_json: bool) -> None:
    """The audit trail: everything mailflow did, oldest first.

    \b
    Times are each engagement's local time (--json keeps UTC).

    \b
    Example:
      mailflow log --engagement northwind-2026
      mailflow log -n 20
    """
    from mailflow.desk import views
    state = app.store.load()
    if eid:
        from mailflow.desk.actions import find_engagement
        # an unknown id is exit 3, not an empty log; an archived one is read from its archive
        record = find_engagement(state, eid, archived_ok=True)
        found = app.store.events_of(eid, hot=not record.get("moved_out"))
    else:
        found = app.store.events(hot=set(state.engagements))
    events = [_event_summary(event) for event in found]
    if limit:
        events = events[-limit:]
    if as_json:
        echo_json(events)
        return
    default_zone = app.loaded.config.time_zone
    for e in events:
        zone = state.engagements.get(e.get("engagement") or "", {}).get("time_zone",
                                                                          default_zone)
        when = views.local(e["at"], zone, "%Y-%m-%d %H:%M %Z")
        # one line per event: a reply's text may hold line breaks and control characters
        line = (f"{when}  {e['kind']:<22} {e.get('id') or e.get('engagement') or ''}"
                f"{'  ' + e['detail'] if e.get('detail') else ''}")
        click.echo(views.one_line(line))


_BULKY = ("body", "to", "cc", "digest", "rendered_for", "history", "entries", "confirmation",
          "token")


def _event_summary(event: dict) -> dict:
    from mailflow.store.archive import subject
    out = {"seq": event["seq"], "at": event["at"], "kind": event["kind"],
           "engagement": subject(event)}
    for table in ("messages", "replies", "engagements", "cursors", "digests"):
        part = event.get(table)
        if part:
            out["id"] = part["key"]
            changes = {k: v for k, v in part.get("set", {}).items()
                       if k not in _BULKY}
            if table == "engagements" and event["kind"] in ("engagement.added",
                                                             "engagement.replaced"):
                changes = {"client": changes.get("client")}
            elif table == "engagements" and "fields" in event:
                # what was asked (contract_end=...) or which fields a re-read changed
                out["detail"] = "fields: " + ", ".join(event["fields"] or ["none"])
                continue
            detail = ", ".join(f"{k}={_short(v)}" for k, v in changes.items() if v not in (None,))
            out["detail"] = detail
    for key in ("fields",):
        if key in event:
            out[key] = event[key]
    return out


def _short(value: object) -> str:
    import json
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."
