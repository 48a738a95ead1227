"""What the consultant's commands change: engagements and drafts, each as journal events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mailflow.config.engagements import load_engagement_file, set_field
from mailflow.config.loading import Loaded
from mailflow.config.rules import Sequence
from mailflow.engine import sending
from mailflow.engine.planner import PENDING
from mailflow.errors import ConfigError, NotFoundError, StateError
from mailflow.store import State, Writer, now_iso


def find_engagement(state: State, eid: str) -> dict:
    """The engagement with this id, or a NotFoundError listing what exists."""
    try:
        return state.engagements[eid]
    except KeyError:
        known = ", ".join(sorted(state.engagements)[:10]) or "none yet"
        raise NotFoundError(f"no engagement {eid!r} (known: {known})") from None


def find_message(state: State, ref: str) -> dict:
    """A message by key; `eng/stage` means step 0, and a unique key prefix is enough."""
    if ref in state.messages:
        return state.messages[ref]
    if ref.count("/") == 1 and f"{ref}/0" in state.messages:
        return state.messages[f"{ref}/0"]
    hits = [k for k in state.messages if k.startswith(ref)]
    if len(hits) == 1:
        return state.messages[hits[0]]
    if len(hits) > 1:
        raise NotFoundError(f"{ref!r} matches {len(hits)} messages: {', '.join(sorted(hits)[:5])}")
    raise NotFoundError(f"no draft or message {ref!r} (see `mailflow drafts` or `mailflow status`)")


def add_engagement(w: Writer, loaded: Loaded, path: Path, now: dt.datetime,
                   replace: bool = False) -> dict:
    """Validate an engagement file against the project's rules and store it."""
    record = load_engagement_file(path, loaded.config.time_zone)
    existing = w.state.engagements.get(record["id"])
    if existing and not replace:
        raise ConfigError(f"{path}: id: engagement {record['id']!r} already exists; use "
                          "`mailflow engagement add --replace` to update it")
    _check_against_rules(loaded, record, path)
    if existing:
        record["status"] = existing["status"]
        record["data_rev"] = existing.get("data_rev", 0) + 1
    w.record("engagement.replaced" if existing else "engagement.added", at=now,
             engagement=record["id"], engagements={"key": record["id"], "set": record})
    return record


def missing_dates(seq: Sequence, record: dict) -> list[str]:
    """'dates.X: required by stage ...' for each date a stage anchors on that the record lacks."""
    stage_ids = {s.id for s in seq.stages}
    missing = []
    for stage in seq.stages:
        anchor = stage.due.anchor or "previous"
        if (anchor in ("previous", "reply") or anchor.startswith(("reply:", "done:"))
                or anchor in stage_ids):
            continue
        if anchor not in record["dates"]:
            missing.append(f"dates.{anchor}: required by stage {stage.id!r} of "
                           f"{seq.path.name} ({stage.due.describe()})")
    return missing


def _check_against_rules(loaded: Loaded, record: dict, path: Path) -> None:
    missing = missing_dates(loaded.sequence_for(record), record)
    if missing:
        raise ConfigError(f"{path}: {missing[0]}")


def set_engagement_fields(w: Writer, loaded: Loaded, eid: str, assignments: list[str],
                          now: dt.datetime) -> dict:
    """Change fields of a stored engagement (e.g. contract_end=2027-01-15); the plan follows."""
    record = find_engagement(w.state, eid)
    where = Path(f"engagement {eid}")
    updated = dict(record)
    for assignment in assignments:
        updated = set_field(updated, assignment, where, loaded.config.time_zone)
    _check_against_rules(loaded, updated, where)
    updated["data_rev"] = record.get("data_rev", 0) + 1
    changed = {k: v for k, v in updated.items() if record.get(k) != v}
    w.record("engagement.changed", at=now, engagement=eid,
             engagements={"key": eid, "set": changed}, fields=assignments)
    return w.state.engagements[eid]


def set_status(w: Writer, eid: str, status: str, now: dt.datetime) -> dict:
    """Pause, resume (active), cancel or complete an engagement."""
    record = find_engagement(w.state, eid)
    if record["status"] in ("cancelled", "completed") and status != record["status"]:
        raise StateError(f"engagement {eid} is {record['status']}; it cannot become {status}")
    w.record(f"engagement.{status}", at=now, engagement=eid,
             engagements={"key": eid, "set": {"status": status}})
    if status in ("cancelled", "completed"):
        for msg in w.state.messages_of(eid):
            if msg["state"] in PENDING:
                w.update_message(msg, "message.cancelled", at=now, state="cancelled",
                                 note=f"engagement {status}")
    return record


def approve(w: Writer, msg: dict, who: str, now: dt.datetime, via: dict | None = None) -> None:
    """Approve a draft; it goes out on the first run at or after its due time.

    `via` says how the approval came when not from the CLI (channel, from whom, which digest).
    """
    if msg["state"] != "awaiting_approval":
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}; only drafts awaiting "
                         "approval can be approved")
    # approving a message that is already past due is a decision to send it late
    late_ok = bool(msg.get("overdue")) or (msg.get("due") or "") <= now_iso(now)
    extra = {"approved_via": via} if via else {}
    # a stage held because it now falls after its date is approved as late, knowingly
    w.update_message(msg, "message.approved", at=now, state="approved", approved_by=who,
                     approved_at=now_iso(now), late_ok=late_ok, overdue=False,
                     late_ok_for=msg.get("late_hold"), **extra)


def reject(w: Writer, msg: dict, who: str, reason: str, now: dt.datetime) -> None:
    """Reject a draft: it will not be sent; later stages go on."""
    if msg["state"] not in ("awaiting_approval", "approved", "blocked", "planned"):
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}; it cannot be "
                         "rejected")
    w.update_message(msg, "message.rejected", at=now, state="rejected", rejected_by=who,
                     note=reason)


def resolve(w: Writer, msg: dict, sent: bool, who: str, now: dt.datetime) -> None:
    """Settle a message in doubt: it did go out (--sent), or send it again (--resend)."""
    if msg["state"] != "in_doubt":
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}, not in doubt")
    if sent:
        w.update_message(msg, "message.resolved", at=now, **sending.confirmed_sent(msg, who, now))
    else:
        w.update_message(msg, "message.resolved", at=now, state="approved", late_ok=True,
                         note=f"resend approved by {who}")


def apply_edit(w: Writer, msg: dict, subject: str, html: str, text: str, who: str,
               now: dt.datetime) -> None:
    """Keep a consultant's edit of one draft; an approved draft needs approving again."""
    if msg["state"] not in ("awaiting_approval", "approved", "blocked"):
        raise StateError(f"{msg['key']} is {msg['state'].replace('_', ' ')}; only unsent drafts "
                         "can be edited")
    if any(c in subject for c in "\r\n") or not subject.strip():
        raise ConfigError(f"{msg['key']}: the subject must be one non-empty line")
    w.update_message(msg, "message.edited", at=now, state="awaiting_approval",
                     subject=subject.strip(), body=w.put_body(html, text),
                     edited={"by": who, "at": now_iso(now)}, error=None)
