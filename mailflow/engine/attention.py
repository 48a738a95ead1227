"""What needs the consultant, and what they have not been told yet. Pure: state and now in.

`mailflow run` under cron must say each thing once, when it first needs the consultant, and
once more when it becomes overdue (issue 13). Each item has a mark (kind, level and the
message's state episode); a mark recorded as told is never said again, so a second run at the
same state prints nothing, while a draft that leaves review and comes back is new again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mailflow import timing
from mailflow.engine.records import MessageState as S
from mailflow.engine.records import stored_time as _ts

_WAITING = frozenset({S.AWAITING_APPROVAL, S.IN_DOUBT, S.FAILED, S.PLANNED})
_WEEKENDS = timing.make_calendar(None)  # no holidays: Monday to Friday are working days
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Need:
    """One thing that needs the consultant, as cron should say it."""

    table: str  # "messages" or "replies": where the told mark is recorded
    key: str  # the record's key
    mark: str  # what telling it records, e.g. "approval:due:3"
    line: str  # one line for stderr
    urgent: bool = False  # the digest goes out at once for these


def next_working_day(now: dt.datetime, zone: ZoneInfo, calendar: timing.Calendar
                     ) -> dt.datetime:
    """The same local time on the first working day after today (UTC): a Friday's is Monday,
    and a holiday or closure of `calendar` is skipped (the day before Christmas, it is the
    27th or later)."""
    local = now.astimezone(zone)
    day = local.date() + dt.timedelta(days=1)
    for _ in range(timing.MAX_SEARCH_DAYS):
        if calendar.is_business_day(day):
            break
        day += dt.timedelta(days=1)
    return timing.local_instant(day, local.time().replace(tzinfo=None), zone).astimezone(dt.UTC)


def needs(state, now: dt.datetime, review_days: int,  # noqa: ANN001 - store.State
          describe=None, context=None) -> list[Need]:  # noqa: ANN001 - callables
    """Everything waiting for the consultant now, each with the mark that telling it records.

    `describe(msg)` names a draft for people ("Northwind, Deliverables recap, goes out ...");
    `context(engagement)` gives its zone and holiday calendar (default: UTC, weekends only),
    which say when "the next working day" is for the urgency of a draft.
    """
    describe = describe or (lambda m: m["key"])
    out: list[Need] = []
    horizon = now + dt.timedelta(days=review_days)
    # urgent: due within the next working day of the engagement's own calendar; engagements
    # share a handful of calendars, so each is asked once
    next_days: dict[tuple, dt.datetime] = {}

    def next_day_for(eng: dict) -> dt.datetime:
        zone, calendar = (context(eng).zone, context(eng).calendar) if context and eng \
            else (_UTC, _WEEKENDS)
        key = (str(zone), calendar)
        if key not in next_days:
            next_days[key] = next_working_day(now, zone, calendar)
        return next_days[key]

    for msg in state.live_messages():  # (none at rest is waiting for anyone)
        state_name = msg["state"]
        if state_name not in _WAITING:
            continue  # most messages: sent, planned or approved (a tick walks them all)
        if state_name == S.PLANNED and not msg.get("late_hold"):
            continue  # not drafted and not late: nothing to say (most of the live ones)
        eng = state.engagements.get(msg["engagement"]) or {}
        if eng.get("status") not in ("active", "paused"):
            continue
        episode = len(msg.get("history") or ())
        key = msg["key"]
        due = _ts(msg.get("due"))
        late = bool(msg.get("late_hold")) and msg.get("late_ok_for") != msg.get("late_hold")
        if state_name in (S.AWAITING_APPROVAL, S.PLANNED) and due is not None:
            if late:
                # keyed by the reason, not the state: said once from planning to the draft
                mark = "late:" + hashlib.sha256(msg["late_hold"].encode()).hexdigest()[:12]
                what, urgent = msg["late_hold"], True
            elif state_name == S.PLANNED:
                continue  # not drafted yet: nothing to approve
            elif due <= now or msg.get("overdue"):
                mark, what, urgent = (f"approval:overdue:{episode}",
                                      "draft past due, not sent without you", True)
            elif due <= horizon:
                mark, what = f"approval:due:{episode}", "draft to approve"
                urgent = due <= next_day_for(eng)
            else:
                continue
            # naming a draft costs a send-time computation: only for what is said now
            line = "" if _told(msg, mark) else (
                f"needs you: {key}: {what} ({describe(msg)}): mailflow drafts approve {key}")
            out.append(Need("messages", key, mark, line, urgent=urgent))
        elif state_name == S.IN_DOUBT:
            out.append(Need("messages", key, f"in_doubt:{episode}", (
                f"needs you: {key}: in doubt: {msg.get('note') or 'it may or may not have gone'}"
                f"; check your Sent folder, then `mailflow drafts resolve {key} "
                "--sent|--resend`"), urgent=True))
        elif state_name == S.FAILED:
            out.append(Need("messages", key, f"failed:{episode}", (
                f"needs you: {key}: failed: {msg.get('server_reply') or msg.get('note') or ''}"
                ), urgent=True))
    for reply in state.replies.values():
        if reply.get("needs_action") and not reply.get("handled"):
            out.append(Need("replies", reply["id"], "reply", (
                f"needs you: reply {reply['id']} from {reply.get('from')} to "
                f"{reply.get('message') or '?'} needs action: mailflow replies show "
                f"{reply['id']}"), urgent=True))
    return out


def _told(record: dict, mark: str) -> bool:
    return mark in (record.get("told") or ())


def untold(items: list[Need], state) -> list[Need]:  # noqa: ANN001 - store.State
    """The items whose mark has not been recorded as told yet."""
    fresh = []
    for need in items:
        record = getattr(state, need.table).get(need.key) or {}
        if need.mark not in (record.get("told") or ()):
            fresh.append(need)
    return fresh
