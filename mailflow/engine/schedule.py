"""A message's next time as every view shows it (status, drafts, plan, engagement show). Pure.

Built on `engine.sendtime` (the loop's next-send-time function, one rule for when a message
really goes out): a sent message shows when it went; a pending one the first send opening at
or after both now and its due time, taken from the planner's fresh item when there is one
(what the next run stores); a message that will never go out, its stored due time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mailflow import timing
from mailflow.engine.planner import PlanItem
from mailflow.engine.sendtime import UNSENT, message_send_time, next_send_time


def _parse(ts: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(ts) if ts else None


def next_time(msg: dict | None, item: PlanItem | None, now: dt.datetime, zone: ZoneInfo,
              window: timing.Window, calendar: timing.Calendar) -> dt.datetime | None:
    """When this message went or goes out, as far as is known at `now` (UTC), else None."""
    msg = msg or {}
    if msg.get("sent_at") or msg.get("state") == "retry":
        return message_send_time(msg, now, zone, window, calendar)
    if item is not None and item.due is not None and (not msg or msg.get("state") in UNSENT):
        return next_send_time(item.due, now, zone, window, calendar)
    if msg.get("state") in UNSENT:
        return message_send_time(msg, now, zone, window, calendar)
    return _parse(msg.get("due"))  # never goes out: when it was due
