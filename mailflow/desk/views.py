"""Shaping the state for people (tables, timelines) and scripts (JSON rows). No I/O but echo."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

import click

from mailflow import timing
from mailflow.desk import tables
from mailflow.desk.tables import echo_table  # noqa: F401 - (where callers find it)
from mailflow.engine.planner import PlanItem
from mailflow.engine.schedule import message_time, next_time, plan_at
from mailflow.errors import MailflowError

STATE_MARKS = {
    "planned": "due {date}", "blocked": "BLOCKED", "awaiting_approval": "to approve {date}",
    "approved": "ok {date}", "sending": "sending", "sent": "sent {date}", "retry": "retry",
    "failed": "FAILED", "in_doubt": "IN DOUBT", "rejected": "rejected", "cancelled": "cancelled",
    "bounced": "BOUNCED",
}


def next_time_plain(msg: dict, item: PlanItem | None) -> dt.datetime | None:
    """Without a project at hand: when it went, else the plan's due, else the stored due."""
    ts = msg.get("sent_at") or msg.get("due")
    if msg.get("sent_at") or item is None or item.due is None:
        return dt.datetime.fromisoformat(ts) if ts else None
    return item.due


def shown(text: str | None) -> str:
    """A sender's text as printed in a terminal: escape sequences and controls removed
    (replies recorded before the poller cleaned them keep theirs in the store)."""
    from mailflow.inbound.headers import printable
    return printable(text or "")


def one_line(text: str) -> str:
    """Text on one line: line breaks and other control characters become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def local(ts: str | dt.datetime | None, zone_name: str, fmt: str | None = None) -> str:
    """A stored UTC time in the engagement's zone: 'Tue 2027-01-19 09:00 EST'."""
    if not ts:
        return ""
    return _local(ts, zone_name, fmt)


# a view shows the same few instants (window openings, send times) in thousands of cells:
# each formatted once (issue 18; pure, so a cache changes no output)
@functools.lru_cache(maxsize=8192)
def _local(ts: str | dt.datetime, zone_name: str, fmt: str | None) -> str:
    when = dt.datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    zone = timing.load_zone(zone_name)
    if fmt:
        return when.astimezone(zone).strftime(fmt)
    return timing.format_local(when, zone)


def engagement_row(e: dict) -> dict:
    """An engagement as a JSON row."""
    return {"id": e["id"], "client": e["client"], "status": e["status"],
            "contract_end": e["dates"]["contract_end"], "time_zone": e["time_zone"],
            "sequence": e.get("sequence", "offboarding"), "flagged": e.get("flagged"),
            "feedback": e.get("feedback")}


def message_row(m: dict, zone: str, when: dt.datetime | None = None) -> dict:
    """A message as a JSON row (without its bodies); `when` is its real next send time
    (engine.schedule), which the due time shown defaults to."""
    shown = when.isoformat() if when else m.get("due")
    return {"id": m["key"], "engagement": m["engagement"], "stage": m["stage"],
            "step": m["step"], "state": m["state"], "due": m.get("due"),
            "due_local": local(shown, zone), "goes_out": shown, "sent_at": m.get("sent_at"),
            "subject": m.get("subject"), "to": [p["email"] for p in m.get("to") or []],
            "cc": [p["email"] for p in m.get("cc") or []], "why": waiting_reason(m),
            "error": m.get("error"), "server_reply": m.get("server_reply"),
            "approved_by": m.get("approved_by"), "message_id": m.get("message_id"),
            "attachments": [{k: a[k] for k in ("name", "filename", "content_type", "size", "ref")}
                            for a in m.get("attachments") or ()]}


def attachment_line(a: dict) -> str:
    """An attached document as a draft shows it: its file name, type, size and content id."""
    size = a["size"]
    shown = f"{size} bytes" if size < 1024 else f"{size / 1024:.1f} KiB"
    return f"{a['filename']} ({a['content_type']}, {shown}, content {a['ref'][:12]})"


def waiting_reason(m: dict) -> str:
    """Why a message waits for the consultant: approval, overdue, in doubt, blocked."""
    state = m["state"]
    if state == "awaiting_approval":
        if m.get("late_hold") and m.get("late_ok_for") != m.get("late_hold"):
            return "late: " + m["late_hold"].removeprefix("held for you: ")
        return "overdue" if m.get("overdue") else ("edited" if m.get("edited") else "approval")
    if state == "in_doubt":
        return "in doubt"
    if state == "blocked":
        return "blocked: " + (m.get("error") or "").split(": ", 2)[-1]
    return ""


def intent_cell(intent: dict | None) -> str:
    """A reply's suggested intent in a table cell: 'date change 2027-02-03'."""
    if not intent:
        return ""
    kind = intent["kind"].replace("_", " ")
    return f"{kind} {intent['detail']}" if intent.get("detail") else kind


def plan_rows(items: list[PlanItem], messages: dict[str, dict], zone: str,
              when=None) -> list[dict]:  # noqa: ANN001 - (msg, item) -> next time
    """The timeline of one engagement: planner items merged with what already happened.

    `when` gives a message's next time (`Preview.when`: engine.schedule),
    so that plan, status, drafts and show give one date for one message at one `now`.
    """
    rows = []
    for item in items:
        msg = messages.get(item.key) or {}
        state = msg.get("state") or item.status
        at = when(msg, item) if when else next_time_plain(msg, item)  # one answer, every view
        when_iso = at.isoformat() if at else None
        rows.append({"id": item.key, "stage": item.stage, "step": item.step,
                     "template": item.template, "status": item.status, "state": state,
                     "when": when_iso, "when_local": local(when_iso, zone),
                     "reasons": list(item.reasons),
                     "approval": item.approval})
    return rows


def echo_plan(eng: dict, rows: list[dict]) -> None:
    """Print one engagement's timeline with the reasons for each date."""
    click.secho(f"{eng['id']}  {eng['client']}  ({eng['status']}, {eng['time_zone']}, contract "
                f"ends {eng['dates']['contract_end']})", bold=True)
    for r in rows:
        name = r["stage"] + (f" reminder {r['step']}" if r["step"] else "")
        state = r["state"].replace("_", " ")
        when = r["when_local"] or "-"
        click.echo(f"  {when:<28} {name:<32} {state}")
        if r["state"] not in ("sent",):
            for reason in r["reasons"]:
                click.echo(f"  {'':<28}   - {reason}")
    click.echo()


def stage_mark(msgs: list[dict], item: PlanItem | None, replies: list[dict], zone: str,
               when: dt.datetime | None = None) -> str:
    """One cell of the status grid: the state of a stage (first email and its reminders).

    `when` is the real next send time of an unsent stage (engine.schedule), shown as its date.
    """
    first = next((m for m in msgs if m["step"] == 0), None)
    kinds = {r.get("kind") for r in replies}
    if first is None:
        if item is None:
            return ""
        return {"skipped": "skipped", "waiting": "waiting", "error": "ERROR",
                "scheduled": f"due {local(when or item.due, zone, '%m-%d')}"}.get(
                    item.status, item.status)
    date = local(first.get("sent_at") or when or first.get("due"), zone, "%m-%d")
    mark = STATE_MARKS.get(first["state"], first["state"]).format(date=date)
    if "human" in kinds or "unsubscribe" in kinds:
        mark += " replied"
    elif "auto_reply" in kinds:
        mark += " auto-reply"
    if "bounce" in kinds and first["state"] != "bounced":
        mark += " bounced"
    reminders = [m for m in msgs if m["step"] > 0 and m["state"] == "sent"]
    if reminders:
        mark += f" +{len(reminders)}"
    return mark


def engagement_text(record: dict, state, loaded,  # noqa: ANN001
                    preview: Preview | None = None) -> str:
    """A readable page about one engagement."""
    lines = [f"{record['id']}: {record['client']} ({record['status']})",
             f"  offboarding lead: {_person(record['consultant'])}",
             f"  time zone: {record['time_zone']}",
             "  to: " + ", ".join(_person(p) for p in record["contacts"]["to"])]
    if record["contacts"].get("cc"):
        lines.append("  cc: " + ", ".join(_person(p) for p in record["contacts"]["cc"]))
    lines.append("  dates: " + ", ".join(f"{k} {v}" for k, v in record["dates"].items()))
    lines.append(f"  support offer: {'yes' if record.get('support_offer') else 'no'}")
    for label, key, fmt in (("deliverables", "deliverables", "{name} ({status}, {date})"),
                            ("shared access", "shared_access",
                             "{system}: removed {revoke_date} by {owner}"),
                            ("invoices", "invoices", "{number}: {amount} {currency} due {due} "
                                                     "({status})")):
        items = record.get(key) or []
        if items:
            lines.append(f"  {label}:")
            lines += ["    - " + fmt.format_map(_Blank(i)) for i in items]
    if record.get("flagged"):
        lines.append(f"  FLAGGED: {record['flagged']}")
    if record.get("feedback"):
        lines.append(f"  feedback: {record['feedback']}")
    rows = message_rows(state, record, preview)
    if rows:
        lines.append("  messages:")
        for m in rows:
            lines.append(f"    {m['id']:<44} {m['state']:<18} {m['when_local']}")
    return "\n".join(lines)


def message_rows(state, record: dict, preview: Preview | None = None) -> list[dict]:  # noqa: ANN001
    """One engagement's messages with their next time (as every view gives it), in order."""
    items = preview.items_by_key() if preview else {}
    out = []
    for m in state.messages_of(record["id"]):
        item = items.get(m["key"])
        at = preview.when(m, item) if preview else next_time_plain(m, item)
        out.append({"id": m["key"], "stage": m["stage"], "step": m["step"], "state": m["state"],
                    "when": at.isoformat() if at else None,
                    "when_local": local(at, record["time_zone"]), "subject": m.get("subject")})
    return sorted(out, key=lambda r: (r["when"] or "~", tables.natural_key(r["id"])))


class _Blank(dict):
    """format_map() source that shows '?' for a missing or empty field."""

    def __getitem__(self, key: str) -> object:
        value = super().get(key)
        return "?" if value is None else value


def _person(p: dict) -> str:
    return f"{p['name']} <{p['email']}>" if p.get("name") else p["email"]


# -- the plan as of now, for views (never saved) -------------------------------------------

@dataclass
class Preview:
    """The planner's items for every engagement at `now`, or the error that broke one."""

    loaded: object = None
    state: object = None
    now: dt.datetime | None = None
    items: dict[str, list[PlanItem]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def items_by_key(self) -> dict[str, PlanItem]:
        """Every item by message key."""
        return {i.key: i for items in self.items.values() for i in items}

    def when(self, msg: dict | None, item: PlanItem | None) -> dt.datetime | None:
        """A message's (or plan item's) next time: the one answer every view gives
        (engine.schedule, as the cron lines, the digest and the approval confirmations)."""
        eid = (msg or {}).get("engagement") or (item.engagement if item else None)
        eng = self.state.engagements.get(eid)
        if eng is None:
            return next_time_plain(msg or {}, item)
        return message_time(self.loaded, eng, msg, item, self.now)

    def when_for(self, eng: dict):  # noqa: ANN201 - (msg, item) -> datetime | None
        """`when` for the messages and items of one engagement, its zone, calendar and stage
        windows looked up once (the status grid asks for every stage of every engagement)."""
        ctx = self.loaded.context_for(eng)
        windows: dict[str | None, object] = {}

        def when(msg: dict | None, item: PlanItem | None) -> dt.datetime | None:
            if not msg and item is None:
                return next_time_plain({}, None)
            stage = (msg or {}).get("stage") or (item.stage if item else None)
            if stage not in windows:
                try:
                    windows[stage] = self.loaded.sequence_for(eng).stage(stage).window
                except (KeyError, LookupError, MailflowError):
                    windows[stage] = self.loaded.window
            return next_time(msg, item, self.now, ctx.zone, windows[stage], ctx.calendar)
        return when


def preview(state, loaded, now: dt.datetime, ids: list[str] | None = None) -> Preview:  # noqa: ANN001
    """Each active engagement's plan at `now` (engine.schedule.plan_at: the one its last tick
    kept while nothing changed, projected past an overdue stage); a broken one keeps its
    error."""
    replies = state.replies_by_engagement()
    out = Preview(loaded, state, now)
    for eid in ids if ids is not None else list(state.engagements):
        eng = state.engagements[eid]
        if eng.get("status") != "active" or eng.get("archived"):
            continue
        try:
            out.items[eid] = plan_at(loaded, state, eng, now, replies.get(eid, []))
        except Exception as err:  # noqa: BLE001 - shown as this engagement's broken row
            out.errors[eid] = f"{type(err).__name__}: {err}" if not str(err) else str(err)
    return out
