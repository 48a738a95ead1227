"""Shaping the state for people (tables, timelines) and scripts (JSON rows). No I/O but echo."""

from __future__ import annotations

import datetime as dt
import shutil
import sys

import click

from mailflow import timing
from mailflow.engine.planner import PlanItem

STATE_MARKS = {
    "planned": "due {date}", "blocked": "BLOCKED", "awaiting_approval": "to approve {date}",
    "approved": "ok {date}", "sending": "sending", "sent": "sent {date}", "retry": "retry",
    "failed": "FAILED", "in_doubt": "IN DOUBT", "rejected": "rejected", "cancelled": "cancelled",
    "bounced": "BOUNCED",
}


def echo_table(headers: list[str], rows: list[list[object]]) -> None:
    """Print aligned columns; on a terminal, shorten the widest cells to fit its width."""
    cells = [[str(c) for c in headers]] + [[str("" if c is None else c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if sys.stdout.isatty():  # piped output stays whole, for grep and cut
        limit = shutil.get_terminal_size((120, 20)).columns
        while sum(widths) + 2 * (len(widths) - 1) > limit and max(widths) > 12:
            widths[widths.index(max(widths))] -= 1
    for n, row in enumerate(cells):
        line = "  ".join(_fit(c, w).ljust(w) for c, w in zip(row, widths, strict=True))
        click.echo(line.rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def local(ts: str | dt.datetime | None, zone_name: str, fmt: str | None = None) -> str:
    """A stored UTC time in the engagement's zone: 'Tue 2027-01-19 09:00 EST'."""
    if not ts:
        return ""
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
    (engine.sendtime), which the due time shown defaults to."""
    shown = when.isoformat() if when else m.get("due")
    return {"id": m["key"], "engagement": m["engagement"], "stage": m["stage"],
            "step": m["step"], "state": m["state"], "due": m.get("due"),
            "due_local": local(shown, zone), "goes_out": shown, "sent_at": m.get("sent_at"),
            "subject": m.get("subject"), "to": [p["email"] for p in m.get("to") or []],
            "cc": [p["email"] for p in m.get("cc") or []], "why": waiting_reason(m),
            "error": m.get("error"), "server_reply": m.get("server_reply"),
            "approved_by": m.get("approved_by"), "message_id": m.get("message_id")}


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
              send_time=None) -> list[dict]:  # noqa: ANN001 - (item) -> real send time
    """The timeline of one engagement: planner items merged with what already happened.

    `send_time` turns a planned due time into the real next send time (engine.sendtime), so
    that plan, status and drafts show one date for one message at one `now`.
    """
    rows = []
    for item in items:
        msg = messages.get(item.key) or {}
        state = msg.get("state") or item.status
        due = send_time(item) if send_time and item.due and item.status == "scheduled" \
            else item.due
        when = msg.get("sent_at") or (due and due.isoformat()) or msg.get("due")
        rows.append({"id": item.key, "stage": item.stage, "step": item.step,
                     "template": item.template, "status": item.status, "state": state,
                     "when": when, "when_local": local(when, zone), "reasons": list(item.reasons),
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

    `when` is the real next send time of an unsent stage (engine.sendtime), shown as its date.
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


def engagement_text(record: dict, state, loaded) -> str:  # noqa: ANN001
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
    msgs = sorted(state.messages_of(record["id"]), key=lambda m: (m.get("due") or "", m["key"]))
    if msgs:
        lines.append("  messages:")
        for m in msgs:
            when = local(m.get("sent_at") or m.get("due"), record["time_zone"])
            lines.append(f"    {m['key']:<44} {m['state']:<18} {when}")
    return "\n".join(lines)


class _Blank(dict):
    """format_map() source that shows '?' for a missing or empty field."""

    def __getitem__(self, key: str) -> object:
        value = super().get(key)
        return "?" if value is None else value


def _person(p: dict) -> str:
    return f"{p['name']} <{p['email']}>" if p.get("name") else p["email"]
