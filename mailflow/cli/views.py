"""Read-only views: status, plan, log, replies. None of them takes the lock or writes."""

from __future__ import annotations

import json

import click

from mailflow.cli.app import App, cli, echo_json, json_option, pass_app
from mailflow.desk import views


@cli.command()
@json_option
@pass_app
def status(app: App, as_json: bool) -> None:
    """Every engagement at a glance: one row each, one column per stage.

    Ends with what needs you now (drafts to approve, messages in doubt, failures, replies
    that need action).

    \b
    Example:
      mailflow status
      mailflow status --json | jq '.engagements[] | select(.flagged)'
    """
    from mailflow.engine.sendtime import send_time_for
    from mailflow.engine.tick import Tick
    from mailflow.store import MemoryWriter
    state = app.store.load()
    loaded = app.loaded
    tick = Tick(loaded, MemoryWriter(state), app.now)
    replies_by_msg: dict[str, list[dict]] = {}
    for r in state.replies.values():
        replies_by_msg.setdefault(r.get("message") or "", []).append(r)
    replies_by_eng = state.replies_by_engagement()
    out, table = [], []
    stage_names: list[str] = []
    for eng in sorted(state.engagements.values(), key=lambda e: e["dates"]["contract_end"]):
        seq = loaded.sequence_for(eng)
        for s in seq.stages:
            if s.id not in stage_names:
                stage_names.append(s.id)
        msgs = {m["key"]: m for m in state.messages_of(eng["id"])}
        next_at = _sender_for(app.now, loaded.context_for(eng), seq)
        items = {}
        if eng["status"] == "active":
            try:
                items = {i.stage: i for i in tick.plan_one(eng, msgs,
                                                           replies_by_eng.get(eng["id"], []))
                         if i.step == 0}
            except Exception:  # noqa: BLE001 - a bad engagement must not hide the others
                items = {}
        cells, stages = {}, {}
        for s in seq.stages:
            stage_msgs = [m for m in msgs.values() if m["stage"] == s.id]
            replies = [r for m in stage_msgs for r in replies_by_msg.get(m["key"], [])]
            first = next((m for m in stage_msgs if m["step"] == 0), None)
            # one function for the date every view shows (issue 13)
            goes_out = send_time_for(loaded, state, first, app.now) if first else (
                next_at(items[s.id]) if s.id in items and items[s.id].due else None)
            cells[s.id] = views.stage_mark(stage_msgs, items.get(s.id), replies, eng["time_zone"],
                                           when=goes_out)
            stages[s.id] = {"state": first["state"] if first else
                            (items[s.id].status if s.id in items else None),
                            "sent_at": first.get("sent_at") if first else None,
                            "due": first.get("due") if first else (
                                items[s.id].due.isoformat() if s.id in items and items[s.id].due
                                else None),
                            "goes_out": goes_out.isoformat() if goes_out else None,
                            "replies": [r["kind"] for r in replies]}
        out.append({**views.engagement_row(eng), "stages": stages})
        table.append([eng["id"], eng["status"]] + [cells.get(n, "") for n in stage_names])
    attention = _attention(state)
    if as_json:
        echo_json({"engagements": out, "needs_attention": attention})
        return
    if not table:
        click.echo("no engagements yet: mailflow engagement add FILE.toml")
        return
    views.echo_table(["engagement", "status"] + stage_names,
                     [row + [""] * (2 + len(stage_names) - len(row)) for row in table])
    click.echo()
    if attention:
        click.secho("Needs you now:", bold=True)
        for line in attention:
            click.echo(f"  - {line}")
    else:
        click.echo("Nothing needs you now.")


def _attention(state) -> list[str]:  # noqa: ANN001
    lines = []
    counts: dict[str, int] = {}
    for m in state.messages.values():
        counts[m["state"]] = counts.get(m["state"], 0) + 1
        if m["state"] in ("in_doubt", "failed", "blocked"):
            why = m.get("note") or m.get("server_reply") or m.get("error") or ""
            lines.append(f"{m['key']}: {m['state'].replace('_', ' ')}: {why}"[:160])
        elif m["state"] == "approved" and m.get("held_for_replies"):
            lines.append(f"{m['key']}: {m.get('note')}"[:160])
    if counts.get("awaiting_approval"):
        lines.insert(0, f"{counts['awaiting_approval']} draft(s) to approve: mailflow drafts")
    for r in state.replies.values():
        if r.get("needs_action") and not r.get("handled"):
            lines.append(f"reply {r['id']} from {r.get('from')} ({r.get('stage')}): "
                         f"mailflow replies show {r['id']}")
    for e in state.engagements.values():
        if e.get("flagged"):
            lines.append(f"engagement {e['id']}: {e['flagged']}")
    return lines


@cli.command()
@click.argument("eid", metavar="[ID]", required=False)
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
    from mailflow.desk.actions import find_engagement
    from mailflow.engine.tick import Tick
    from mailflow.store import MemoryWriter
    state = app.store.load()
    engagements = [find_engagement(state, eid)] if eid else sorted(
        state.engagements.values(), key=lambda e: e["dates"]["contract_end"])
    tick = Tick(app.loaded, MemoryWriter(state), app.now)
    replies = state.replies_by_engagement()
    result = []
    for eng in engagements:
        msgs = {m["key"]: m for m in state.messages_of(eng["id"])}
        if eng["status"] == "active":
            items = tick.plan_one(eng, msgs, replies.get(eng["id"], []))
            ctx = app.loaded.context_for(eng)
            seq = app.loaded.sequence_for(eng)
            rows = views.plan_rows(items, msgs, eng["time_zone"], send_time=_sender_for(
                app.now, ctx, seq))
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


def _sender_for(now, ctx, seq):  # noqa: ANN001, ANN202
    """A plan item -> its real next send time, in its engagement's zone and stage's window."""
    from mailflow.engine.sendtime import next_send_time
    return lambda item: next_send_time(item.due, now, ctx.zone, seq.stage(item.stage).window,
                                       ctx.calendar)


@cli.command()
@click.option("--engagement", "eid", metavar="ID", help="Only this engagement.")
@click.option("-n", "--limit", type=int, default=0, help="Only the last N events.")
@json_option
@pass_app
def log(app: App, eid: str | None, limit: int, as_json: bool) -> None:
    """The audit trail: everything mailflow did, oldest first.

    \b
    Example:
      mailflow log --engagement northwind-2026
      mailflow log -n 20
    """
    events = []
    for event in app.store.events():
        if eid and event.get("engagement") != eid:
            continue
        events.append(_event_summary(event))
    if limit:
        events = events[-limit:]
    if as_json:
        echo_json(events)
        return
    for e in events:
        click.echo(f"{e['at']}  {e['kind']:<22} {e.get('id') or e.get('engagement') or ''}"
                   f"{'  ' + e['detail'] if e.get('detail') else ''}")


_BULKY = ("body", "to", "cc", "digest", "rendered_for", "history", "entries", "confirmation",
          "token")


def _event_summary(event: dict) -> dict:
    out = {"seq": event["seq"], "at": event["at"], "kind": event["kind"],
           "engagement": event.get("engagement")}
    for table in ("messages", "replies", "engagements", "cursors", "digests"):
        part = event.get(table)
        if part:
            out["id"] = part["key"]
            changes = {k: v for k, v in part.get("set", {}).items()
                       if k not in _BULKY}
            if table == "engagements" and event["kind"] in ("engagement.added",
                                                             "engagement.replaced"):
                changes = {"client": changes.get("client")}
            detail = ", ".join(f"{k}={_short(v)}" for k, v in changes.items() if v not in (None,))
            out["detail"] = detail
    for key in ("fields",):
        if key in event:
            out[key] = event[key]
    return out


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
