"""When a message really goes out: the one function `plan`, `status`, `drafts` and approvals use.

A pending message's stored due time can be in the past (it waited for approval, or cron was
down); what the consultant needs to see is the first send opening at or after both its due
time and now. Pure: the clock, zone, window and calendar are parameters.
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
    if msg.get("sent_at"):
        return dt.datetime.fromisoformat(msg["sent_at"])
    if msg.get("state") == S.RETRY and msg.get("next_attempt"):
        return next_send_time(dt.datetime.fromisoformat(msg["next_attempt"]), now, zone, window,
                              calendar)
    if msg.get("state") not in UNSENT or not msg.get("due"):
        return None
    return next_send_time(dt.datetime.fromisoformat(msg["due"]), now, zone, window, calendar)


def send_time_for(loaded, state, msg: dict, now: dt.datetime  # noqa: ANN001 - Loaded, State
                  ) -> dt.datetime | None:
    """`message_send_time` with the engagement's own zone, calendar and the stage's window."""
    eng = state.engagements.get(msg["engagement"])
    if eng is None:
        return None
    ctx = loaded.context_for(eng)
    try:
        window = loaded.sequence_for(eng).stage(msg["stage"]).window
    except (KeyError, LookupError):
        window = loaded.window
    return message_send_time(msg, now, ctx.zone, window, ctx.calendar)
