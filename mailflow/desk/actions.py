"""What the consultant's commands change: engagements and drafts, each as journal events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mailflow.config.engagements import load_engagement_file, set_field
from mailflow.config.loading import Loaded
from mailflow.desk.lookup import (
    check_against_rules,
    find_engagement,
    find_message,
    missing_dates,
)
from mailflow.engine import sending
from mailflow.engine.outcomes import Outcome
from mailflow.engine.records import EDITABLE, ENDED, PENDING
from mailflow.engine.records import MessageState as S
from mailflow.errors import ConfigError, NotFoundError, StateError
from mailflow.store import Writer, now_iso

__all__ = ["add_engagement", "apply_edit", "approve", "archive", "check_against_rules",
           "find_engagement", "find_message", "mark_reply_handled", "missing_dates", "reject",
           "replan", "resolve", "set_engagement_fields", "set_status"]


def add_engagement(w: Writer, loaded: Loaded, path: Path, now: dt.datetime,
                   replace: bool = False) -> dict:
    """Validate an engagement file against the project's rules and store it."""
    from mailflow.desk.engagement_files import differences, file_hash, file_stamp, source_text
    record = load_engagement_file(path, loaded.config.time_zone)
    # the file is the engagement's home: the store remembers which one, and its content hash
    # (a changed file is re-read by the next run)
    record["source"] = source_text(path, loaded.project.root)
    record["source_hash"] = file_hash(path)
    record["source_stamp"] = file_stamp(path)
    existing = w.state.engagements.get(record["id"])
    if existing is None and w.state.shelf is not None and w.state.shelf.has(record["id"]):
        raise ConfigError(f"{path}: id: engagement {record['id']!r} already exists (archived, "
                          f"in {w.state.shelf.path(record['id'])}); an id stays taken: give "
                          "the file a new id")
    if existing and not replace:
        raise ConfigError(f"{path}: id: engagement {record['id']!r} already exists; use "
                          "`mailflow engagement add --replace` to update it")
    check_against_rules(loaded, record, path)
    fields = []
    if existing:
        record["status"] = existing["status"]
        record["data_rev"] = existing.get("data_rev", 0) + 1
        fields = differences(existing, record)  # said and journaled: never a silent revert
    w.record("engagement.replaced" if existing else "engagement.added", at=now,
             engagement=record["id"], engagements={"key": record["id"], "set": record},
             **({"fields": fields} if existing else {}))
    return {**record, "changed": fields}


def set_engagement_fields(w: Writer, loaded: Loaded, eid: str, assignments: list[str],
                          now: dt.datetime) -> dict:
    """Change fields (contract_end=2027-01-15, invoices.0.status=paid) in the engagement's file.

    The file is edited in place (comments kept) and re-read; an engagement stored before
    records kept their file is changed in the store only, as before.
    """
    from mailflow.desk.engagement_files import edit_file, set_in_document, source_of
    record = find_engagement(w.state, eid)
    if source_of(record, loaded.project.root) is not None:
        def change(doc: object) -> None:
            for assignment in assignments:
                set_in_document(doc, assignment)
        return edit_file(w, loaded, eid, change, now, assignments)
    where = Path(f"engagement {eid}")
    updated = dict(record)
    for assignment in assignments:
        updated = set_field(updated, assignment, where, loaded.config.time_zone)
    check_against_rules(loaded, updated, where)
    updated["data_rev"] = record.get("data_rev", 0) + 1
    changed = {k: v for k, v in updated.items() if record.get(k) != v}
    w.record("engagement.changed", at=now, engagement=eid,
             engagements={"key": eid, "set": changed}, fields=assignments)
    return w.state.engagements[eid]


def set_status(w: Writer, eid: str, status: str, now: dt.datetime) -> dict:
    """Pause, resume (active), cancel or complete an engagement."""
    record = find_engagement(w.state, eid)
    if record.get("archived"):
        raise StateError(f"engagement {eid} is archived; nothing more happens to it")
    if record["status"] in ENDED and status != record["status"]:
        raise StateError(
            f"engagement {eid} is {record['status']} and that is final: its unsent emails were "
            "cancelled and are not brought back. To run the offboarding again, give the file "
            "a new id and `mailflow engagement add` it; `mailflow engagement archive "
            f"{eid}` puts this one away")
    changes = {"status": status}
    if status in ENDED:  # when it ended decides when it moves out of the hot state
        changes["ended_at"] = now_iso(now)
    w.record(f"engagement.{status}", at=now, engagement=eid,
             engagements={"key": eid, "set": changes})
    if status in ENDED:
        for msg in w.state.messages_of(eid):
            if msg["state"] in PENDING:
                w.update_message(msg, "message.cancelled", at=now, state=S.CANCELLED,
                                 note=f"engagement {status}")
    return record


def approve(w: Writer, msg: dict, who: str, now: dt.datetime, via: dict | None = None) -> None:
    """Approve a draft; it goes out on the first run at or after its due time.

    `via` says how the approval came when not from the CLI (channel, from whom, which digest).
    """
    if msg["state"] != S.AWAITING_APPROVAL:
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}; only drafts awaiting "
                         "approval can be approved")
    # approving a message that is already past due is a decision to send it late
    late_ok = bool(msg.get("overdue")) or (msg.get("due") or "") <= now_iso(now)
    extra = {"approved_via": via} if via else {}
    # a stage held because it now falls after its date is approved as late, knowingly
    w.update_message(msg, "message.approved", at=now, state=S.APPROVED, approved_by=who,
                     approved_at=now_iso(now), late_ok=late_ok, overdue=False,
                     late_ok_for=msg.get("late_hold"), **extra)


def reject(w: Writer, msg: dict, who: str, reason: str, now: dt.datetime) -> None:
    """Reject a draft: it will not be sent; later stages go on."""
    if msg["state"] not in (S.AWAITING_APPROVAL, S.APPROVED, S.BLOCKED, S.PLANNED):
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}; it cannot be "
                         "rejected")
    w.update_message(msg, "message.rejected", at=now, state=S.REJECTED, rejected_by=who,
                     note=reason)


def resolve(w: Writer, msg: dict, sent: bool, who: str, now: dt.datetime) -> None:
    """Settle a message in doubt: it did go out (--sent), or send it again (--resend)."""
    if msg["state"] != S.IN_DOUBT:
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}, not in doubt")
    if sent:
        w.update_message(msg, "message.resolved", at=now, **sending.confirmed_sent(msg, who, now))
    else:
        w.update_message(msg, "message.resolved", at=now, state=S.APPROVED, late_ok=True,
                         note=f"resend approved by {who}")


def apply_edit(w: Writer, msg: dict, subject: str, html: str, text: str, who: str,
               now: dt.datetime) -> None:
    """Keep a consultant's edit of one draft; an approved draft needs approving again."""
    if msg["state"] not in EDITABLE:
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}; only unsent drafts "
                         "can be edited")
    # a retry or resend carries the same Message-ID: once anyone has the message, every other
    # recipient must get the very same words (found by the engine's state-machine test)
    got = sorted(r for r, o in (msg.get("recipients") or {}).items()
                 if o.get("outcome") == Outcome.DELIVERED.value)
    if got:
        raise StateError(f"{msg['key']} was already delivered to {', '.join(got)}; the others "
                         "get the same message, so it cannot be edited (reject it and write "
                         "a new email instead)")
    if any(c in subject for c in "\r\n") or not subject.strip():
        raise ConfigError(f"{msg['key']}: the subject must be one non-empty line")
    w.update_message(msg, "message.edited", at=now, state=S.AWAITING_APPROVAL,
                     subject=subject.strip(), body=w.put_body(html, text),
                     edited={"by": who, "at": now_iso(now)}, error=None)


def archive(w: Writer, eid: str, now: dt.datetime) -> dict:
    """Put an engagement away: out of `status` and of every run; unsent emails cancelled.

    An engagement still active or paused is cancelled first (the CLI asks before that).
    """
    record = find_engagement(w.state, eid)
    if record.get("archived"):
        raise StateError(f"engagement {eid} is already archived (since {record['archived']})")
    if record["status"] in ("active", "paused"):
        set_status(w, eid, "cancelled", now)
    w.record("engagement.archived", at=now, engagement=eid,
             engagements={"key": eid, "set": {"archived": now_iso(now)}})
    return record


def replan(w: Writer, loaded: Loaded, now: dt.datetime) -> list[str]:
    """Bring every engagement's unsent messages in line with its data and status, now.

    Returns the problems found (one line each), for the caller to show.
    """
    from mailflow.engine.tick import Tick
    tick = Tick(loaded, w, now)
    tick.plan()
    tick.draft()
    # approvals the new data took back first: the command that changed it says so at once
    return list(tick.report.withdrawn) + list(tick.report.problems)


def mark_reply_handled(w: Writer, rid: str, who: str, now: dt.datetime) -> dict:
    """A reply the consultant has dealt with: it no longer needs them."""
    reply = w.state.replies.get(rid)
    if reply is None:
        raise NotFoundError(f"no reply {rid!r} (see `mailflow replies`)")
    w.record("reply.handled", at=now, engagement=reply.get("engagement"),
             replies={"key": rid, "set": {"handled": now_iso(now), "handled_by": who}})
    return reply
