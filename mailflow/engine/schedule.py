"""A message's real next send time, as every view and confirmation gives it. Pure.

One answer for `plan`, `status`, `drafts`, `drafts show`, the digest, the cron lines and the
approval confirmations (issue 13): a sent message shows when it went; a pending one the first
send opening at or after both now and its due time (engine.sendtime's rule), taken from the
plan projected at `now` (engine.planner): while an earlier stage is overdue, a later one goes
out only after it, by the spacing the planner keeps, so its stored due time is not the answer;
a message that will never go out, its stored due time.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from mailflow import timing
from mailflow.engine import stored_plan
from mailflow.engine.planner import PlanItem, plan_stored
from mailflow.engine.records import PlanStatus
from mailflow.engine.sendtime import real_send_time
from mailflow.errors import MailflowError


def next_time(msg: dict | None, item: PlanItem | None, now: dt.datetime, zone: ZoneInfo,
              window: timing.Window, calendar: timing.Calendar) -> dt.datetime | None:
    """When this message went or goes out, as far as is known at `now` (UTC), else None.

    `item` is the message's item in the plan projected at `now` (`plan_at`).
    """
    return real_send_time(msg, item.due if item is not None else None, now, zone, window,
                          calendar)


def overdue(items: list[PlanItem], now: dt.datetime) -> bool:
    """Whether a stage of this plan is due before `now` and not sent: only then can the
    projection at `now` differ from the plan a tick stored (a due time is an opening)."""
    return any(i.status == PlanStatus.SCHEDULED and i.due is not None and i.due < now
               for i in items)


def plan_at(loaded, state, eng: dict, now: dt.datetime,  # noqa: ANN001 - Loaded, State
            replies: list[dict] | None = None) -> list[PlanItem]:
    """An engagement's plan as views show it at `now`: the one its last tick kept while its
    inputs are unchanged (engine/stored_plan.py), else planned in memory; planned again,
    projected at `now`, only while a stage is overdue (rare: downtime, a late approval)."""
    return projected_plan(loaded, state, eng, now, replies)[0]


def projected_plan(loaded, state, eng: dict, now: dt.datetime,  # noqa: ANN001 - Loaded, State
                   replies: list[dict] | None = None) -> tuple[list[PlanItem], bool]:
    """`plan_at`'s items, and whether they were projected at `now` (then they depend on it;
    else on nothing but the engagement, its rules and config while no due time passes)."""
    items = stored_plan.kept(loaded, eng)
    if items is not None and not overdue(items, now):
        return items, False
    msgs = {m["key"]: m for m in state.messages_of(eng["id"])}
    if replies is None:
        replies = state.replies_by_engagement().get(eng["id"], [])
    if items is None:
        items = plan_stored(loaded, eng, msgs, replies)
        if not overdue(items, now):
            return items, False
    return plan_stored(loaded, eng, msgs, replies, now), True


def message_time(loaded, eng: dict, msg: dict | None, item: PlanItem | None,  # noqa: ANN001
                 now: dt.datetime) -> dt.datetime | None:
    """`next_time` in the engagement's zone and calendar, with its stage's send window."""
    ctx = loaded.context_for(eng)
    stage = (msg or {}).get("stage") or (item.stage if item else None)
    try:
        window = loaded.sequence_for(eng).stage(stage).window
    except (LookupError, MailflowError):  # KeyError is a LookupError
        window = loaded.window
    return next_time(msg, item, now, ctx.zone, window, ctx.calendar)


def send_time_for(loaded, state, msg: dict, now: dt.datetime  # noqa: ANN001 - Loaded, State
                  ) -> dt.datetime | None:
    """One stored message's real next send time: the date every view shows for it at `now`."""
    eng = state.engagements.get(msg["engagement"])
    if eng is None:
        return None
    item = None
    if eng.get("status") == "active" and not eng.get("archived"):
        try:
            item = next((i for i in plan_at(loaded, state, eng, now) if i.key == msg["key"]),
                        None)
        except MailflowError:  # a broken rule is its views' error to report; here, the stored time
            item = None
    return message_time(loaded, eng, msg, item, now)
