"""When one message really goes out, given its due time: the rule under engine/schedule.py.

A pending message's stored due time can be in the past (it waited for approval, or cron was
down); what the consultant needs to see is the first send opening at or after both its due
time and now. The planner uses the same rule to project the stages after an overdue one
(engine/schedule.py puts the two together for every view). Pure: the clock, zone, window and
calendar are parameters.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from mailflow import timing
from mailflow.engine.records import PENDING
from mailflow.engine.records import MessageState as S

# states in which a message has not gone out yet but will (once approved, for drafts)
UNSENT = PENDING


def next_send_time(due: dt.datetime, now: dt.datetime, zone: ZoneInfo, window: timing.Window,
                   calendar: timing.Calendar) -> dt.datetime:
    """The first opening of the send window at or after both `due` and `now` (UTC)."""
    earliest = max(timing.as_utc(due, "due"), timing.as_utc(now, "now"))
    return _opening(earliest, zone, window, calendar)


# the planner puts most dues on the same few window openings (09:00 local on a business day):
# a view of 1,000 engagements asks for the same opening hundreds of times (issue 18)
@functools.lru_cache(maxsize=4096)
def _opening(earliest: dt.datetime, zone: ZoneInfo, window: timing.Window,
             calendar: timing.Calendar) -> dt.datetime:
    try:
        return timing.next_opening(earliest, zone, window, calendar)[0]
    except ValueError:
        return earliest  # a window that never opens is reported by the planner, not here


def message_send_time(msg: dict, now: dt.datetime, zone: ZoneInfo, window: timing.Window,
                      calendar: timing.Calendar) -> dt.datetime | None:
    """When a stored message goes out (or went out); None when it never will."""
    if msg.get("state") == S.RETRY and msg.get("next_attempt"):
        # (before `sent_at`: a message delivered to some recipients goes again to the rest)
        return next_send_time(dt.datetime.fromisoformat(msg["next_attempt"]), now, zone, window,
                              calendar)
    if msg.get("sent_at"):
        return dt.datetime.fromisoformat(msg["sent_at"])
    if msg.get("state") not in UNSENT or not msg.get("due"):
        return None
    return next_send_time(dt.datetime.fromisoformat(msg["due"]), now, zone, window, calendar)


def real_send_time(msg: dict | None, due: dt.datetime | None, now: dt.datetime,
                   zone: ZoneInfo, window: timing.Window, calendar: timing.Calendar
                   ) -> dt.datetime | None:
    """When a message went or goes out, as far as is known at `now` (UTC), else None.

    Sent: when it went. Retrying: the next attempt's opening. Not sent yet: the first opening
    at or after both now and `due` (the fresh plan's due, else the stored one). Never going
    out (rejected, cancelled...): when it was due.
    """
    msg = msg or {}
    if msg.get("sent_at") or msg.get("state") == S.RETRY:
        return message_send_time(msg, now, zone, window, calendar)
    if due is not None and (not msg or msg.get("state") in UNSENT):
        return next_send_time(due, now, zone, window, calendar)
    if msg.get("state") in UNSENT:
        return message_send_time(msg, now, zone, window, calendar)
    return _parse(msg.get("due"))


def holds_until(msg: dict | None, due: dt.datetime | None) -> dt.datetime | None:
    """Until when `real_send_time(msg, due, now, ...)` gives one answer for every `now` from
    a given one on (None: its answer never depends on `now`): the instant its `max(due, now)`
    starts to follow `now`. It mirrors `real_send_time` branch by branch (a view keeps a send
    time it worked out while `now` stays before this: desk/status.py)."""
    msg = msg or {}
    if msg.get("sent_at") or msg.get("state") == S.RETRY:
        return _message_holds_until(msg)
    if due is not None and (not msg or msg.get("state") in UNSENT):
        return due
    if msg.get("state") in UNSENT:
        return _message_holds_until(msg)
    return None


def _message_holds_until(msg: dict) -> dt.datetime | None:
    """`holds_until` for `message_send_time`, branch by branch."""
    if msg.get("state") == S.RETRY and msg.get("next_attempt"):
        return _instant(msg["next_attempt"])
    if msg.get("sent_at") or msg.get("state") not in UNSENT or not msg.get("due"):
        return None
    return _instant(msg["due"])


# the same few due times recur over thousands of messages (an immutable value: shared)
_instant = functools.lru_cache(maxsize=4096)(dt.datetime.fromisoformat)


def _parse(ts: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(ts) if ts else None
