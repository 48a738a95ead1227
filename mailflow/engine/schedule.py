"""A message's next time: the one answer every view gives (status, drafts, plan, show). Pure.

A sent message shows when it went; one waiting to retry, its next attempt; anything still
pending, the time the planner gives it now (which the next run stores), else its stored due.
"""

from __future__ import annotations

import datetime as dt

from mailflow.engine.planner import PENDING, PlanItem


def _parse(ts: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(ts) if ts else None


def next_time(msg: dict | None, item: PlanItem | None = None) -> dt.datetime | None:
    """When this message went or goes out, as far as is known now (UTC), else None."""
    msg = msg or {}
    if msg.get("sent_at"):
        return _parse(msg["sent_at"])
    if msg.get("state") == "retry" and msg.get("next_attempt"):
        return _parse(msg["next_attempt"])
    if item is not None and item.due is not None and (not msg or msg.get("state") in PENDING):
        return item.due.astimezone(dt.UTC)
    return _parse(msg.get("due"))
