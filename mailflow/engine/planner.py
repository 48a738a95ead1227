"""The planner: engagement + sequence + what already happened -> when each email is due. Pure."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mailflow import timing
from mailflow.config.rules import Reminder, Sequence, Stage
from mailflow.engine.records import FINAL, PENDING, PlanStatus
from mailflow.engine.records import PlanStatus as P
from mailflow.engine.sendtime import real_send_time

__all__ = ["FINAL", "PENDING", "Context", "PlanItem", "message_key", "plan_engagement"]

# a stage that went out this much later than its original slot pushes later stages back by as
# much (once: delays never add up), so catching up after downtime keeps the spacing; less is
# ordinary tick granularity
LATE_SHIFT = dt.timedelta(days=1)


@dataclass(frozen=True)
class PlanItem:
    """What the planner decided for one (stage, step) of an engagement."""

    key: str
    engagement: str
    stage: str
    step: int
    template: str
    approval: bool
    status: PlanStatus
    due: dt.datetime | None  # UTC, for scheduled items
    reasons: tuple[str, ...]
    thread_root: str | None = None  # key of the stage's first message, for reminders
    after: str | None = None  # key of an earlier message that must be final before this one
    hold: str | None = None  # why it waits for the consultant whatever its approval setting


def message_key(engagement_id: str, stage_id: str, step: int) -> str:
    """The deterministic key of a message: planning twice can never make two."""
    return f"{engagement_id}/{stage_id}/{step}"


@dataclass(frozen=True)
class Context:
    """Everything the planner needs besides the engagement: calendar, zone, base window."""

    zone: ZoneInfo
    calendar: timing.Calendar


def _parse(ts: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(ts) if ts else None


# Long on purpose: one pass over the stages in order, carrying the previous stage, the pending
# one, the skipped set and the original slots; split apart, those would travel as a state object
# through every piece and the order of the checks (final, condition, anchor, slot, late) would blur.
def plan_engagement(eng: dict, seq: Sequence, messages: dict[str, dict],
                    replies: list[dict], ctx: Context, now: dt.datetime | None = None
                    ) -> list[PlanItem]:
    """Every stage and reminder of one engagement, in order, with its due time or why not.

    `eng` is hydrated (dates are dates); `messages` maps key -> stored message;
    `replies` are this engagement's replies (dicts with message, stage, kind, received_at).
    Given `now`, the plan is projected: a stage not sent yet is taken to go out at its real
    next send time (approved now, when it waits for approval), so that the stages after an
    overdue one show when they really go out (issue 13); a tick stores the plan without it.
    """
    eid = eng["id"]
    items: list[PlanItem] = []
    times: dict[str, dt.datetime] = {}      # stage id -> actual send, or projected for pending
    late_days = 0                           # how many days late sent stages went out, at most
    previous: Stage | None = None
    pending: str | None = None              # key of the latest stage not yet final
    human = _human_replies_by_stage(replies)
    stage_ids = {s.id for s in seq.stages}
    skipped: set[str] = set()
    for stage in seq.stages:
        key = message_key(eid, stage.id, 0)
        msg = messages.get(key)

        def item(status: PlanStatus, due: dt.datetime | None, reasons: tuple[str, ...],
                 after: str | None = None, stage: Stage = stage, key: str = key,
                 hold: str | None = None) -> PlanItem:
            return PlanItem(key, eid, stage.id, 0, stage.template, stage.approval, status, due,
                            reasons, after=after, hold=hold)

        if msg and msg.get("state") in FINAL:
            items.append(item(P.DONE, _parse(msg.get("due")), tuple(msg.get("reasons", ()))))
            if msg.get("sent_at"):
                times[stage.id] = _parse(msg["sent_at"])
                # measured against the stage's own original slot, never a pushed-back one,
                # so that delays do not compound from stage to stage (issue 13)
                base = _base_slot(stage, eng, previous, times, human, ctx, stage_ids)
                if base is not None:
                    sent_day = times[stage.id].astimezone(ctx.zone).date()
                    late_days = max(late_days, (sent_day - base.local.date()).days)
            items.extend(_reminders(eid, stage, messages, human, ctx, times.get(stage.id)))
            previous = stage
            continue
        try:
            applies = stage.applies(eng)
        except Exception as err:  # a condition that fails on this data is the rule's problem
            items.append(item(P.ERROR, None, (f"condition {stage.when!r} failed: {err}",)))
            continue
        if not applies:
            why = f"condition {stage.when!r} is false"
            items.append(item(P.SKIPPED, None, (f"{stage.skip_reason} ({why})" if stage.skip_reason
                                                else why,)))
            skipped.add(stage.id)
            continue
        ref = (stage.due.anchor or "").removeprefix("reply:")
        if ref in skipped:
            items.append(item(P.SKIPPED, None, (f"it is timed from {ref}, which is skipped",)))
            skipped.add(stage.id)
            continue
        anchor, why = _anchor(stage, eng, previous, times, human, ctx.zone, stage_ids)
        if anchor is None:
            status = (PlanStatus.ERROR if why.startswith("engagement has no")
                      else PlanStatus.WAITING)
            items.append(item(status, None, (why,), after=pending))
            previous, pending = stage, key
            continue
        not_before = times.get(previous.id) if previous is not None else None
        try:
            slot = base = timing.due_slot(anchor, stage.due, ctx.zone, stage.window,
                                          ctx.calendar, at=stage.at)
            if late_days >= LATE_SHIFT.days and stage.due.anchor in eng["dates"]:
                # (a stage timed from another's actual send moves with it already)
                # keep the spacing of the original plan when an earlier stage went out late,
                # so a catch-up after downtime never fires the rest in a burst: the same
                # local time of day, that many calendar days later (DST cannot shift it)
                slot = _shifted(slot, late_days, stage, ctx)
            if not_before is not None and not_before > slot.utc:
                # the ordering floor replaces the target, it never adds to it
                moved, why_moved = timing.next_opening(not_before, ctx.zone, stage.window,
                                                       ctx.calendar)
                slot = timing.Slot(moved, moved.astimezone(ctx.zone), slot.reasons + (
                    f"not before {timing.format_local(not_before, ctx.zone)}", *why_moved))
        except ValueError as err:
            items.append(item(P.ERROR, None, (str(err),), after=pending))
            previous, pending = stage, key
            continue
        if pending is not None:
            slot = timing.Slot(slot.utc, slot.local, slot.reasons + (
                f"goes out only after {pending.split('/')[1]}",))
        hold = _past_its_date(stage, eng, slot, ctx)
        reasons = slot.reasons + ((hold,) if hold else ())
        items.append(item(P.SCHEDULED, slot.utc, reasons, after=pending, hold=hold))
        items.extend(_reminders(eid, stage, messages, human, ctx, None))  # listed, waiting
        goes = slot.utc if now is None else (real_send_time(
            msg, slot.utc, now, ctx.zone, stage.window, ctx.calendar) or slot.utc)
        times[stage.id] = goes
        # a stage that will go out late (pushed back, or overdue at `now`) moves the later
        # ones as it will once sent: the same measure as for a sent stage, so the plan does
        # not change when it goes out on time
        late_days = max(late_days, (goes.astimezone(ctx.zone).date() - base.local.date()).days)
        previous, pending = stage, key
    return items


def _base_slot(stage: Stage, eng: dict, previous: Stage | None, times: dict[str, dt.datetime],
               human: dict[str, list[dict]], ctx: Context, stage_ids: set[str]
               ) -> timing.Slot | None:
    """The slot a stage had in the original plan: from its anchor alone, nothing pushed back."""
    anchor, _ = _anchor(stage, eng, previous, times, human, ctx.zone, stage_ids)
    if anchor is None:
        return None
    try:
        return timing.due_slot(anchor, stage.due, ctx.zone, stage.window, ctx.calendar,
                               at=stage.at)
    except ValueError:
        return None


def _shifted(slot: timing.Slot, days: int, stage: Stage, ctx: Context) -> timing.Slot:
    """The slot `days` calendar days later at the same local wall time, then the next opening."""
    day = slot.local.date() + dt.timedelta(days=days)
    target = timing.local_instant(day, slot.local.time().replace(tzinfo=None), ctx.zone)
    moved, why = timing.next_opening(target, ctx.zone, stage.window, ctx.calendar)
    return timing.Slot(moved, moved.astimezone(ctx.zone), slot.reasons + (
        f"{days} day{'s' if days != 1 else ''} later to keep its spacing: an earlier email "
        "is late", *why))


def _past_its_date(stage: Stage, eng: dict, slot: timing.Slot, ctx: Context) -> str | None:
    """Why a stage must wait for the consultant: it would go out after the date it is timed
    before (e.g. "3 business days before contract_end" landing after contract_end)."""
    if stage.late == "send" or stage.due.days > 0 or stage.due.anchor not in eng["dates"]:
        return None
    limit = eng["dates"][stage.due.anchor]
    if not isinstance(limit, dt.date) or slot.local.date() <= limit:
        return None
    return (f"held for you: it would go out {timing.format_local(slot.utc, ctx.zone)}, after "
            f"{stage.due.anchor} ({limit.isoformat()}), the date it is timed before")


def _human_replies_by_stage(replies: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in replies:
        # a reply mailflow did not trust stops nothing and times nothing until accepted
        if r.get("kind") in ("human", "unsubscribe") and r.get("stage") \
                and r.get("trusted", True):
            out.setdefault(r["stage"], []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r.get("received_at") or "")
    return out


def _anchor(stage: Stage, eng: dict, previous: Stage | None, times: dict[str, dt.datetime],
            human: dict[str, list[dict]], zone: ZoneInfo, stage_ids: set[str]
            ) -> tuple[dt.date | None, str]:
    anchor = stage.due.anchor or "previous"
    if anchor.startswith("reply"):
        ref = anchor.partition(":")[2] or (previous.id if previous else "")
        got = human.get(ref)
        if not got:
            return None, f"waits for a reply to {ref}"
        return _parse(got[0]["received_at"]).astimezone(zone).date(), ""
    if anchor.startswith("done:"):
        group = anchor.partition(":")[2]
        at = (eng.get("checklist_done_at") or {}).get(group)
        if not at:
            return None, f"waits until the checklist's {group} items are done"
        return _parse(at).astimezone(zone).date(), ""
    if anchor == "previous":
        if previous is None or previous.id not in times:
            return None, "waits for the previous email to go out"
        return times[previous.id].astimezone(zone).date(), ""
    if anchor in eng["dates"]:
        return eng["dates"][anchor], ""
    if anchor in times:
        return times[anchor].astimezone(zone).date(), ""
    if anchor in stage_ids:  # an earlier stage (rules.load_sequence checks the order)
        return None, f"waits for {anchor} to go out"
    return None, f"engagement has no date '{anchor}' (add it under [dates])"


def _reminders(eid: str, stage: Stage, messages: dict[str, dict], human: dict[str, list[dict]],
               ctx: Context, first_sent: dt.datetime | None) -> list[PlanItem]:
    items: list[PlanItem] = []
    root = message_key(eid, stage.id, 0)
    last_sent = first_sent
    step = 0
    for reminder in stage.reminders:
        for _ in range(reminder.max):
            step += 1
            key = message_key(eid, stage.id, step)
            msg = messages.get(key)

            def item(status: PlanStatus, due: dt.datetime | None, reasons: tuple[str, ...],
                     key: str = key, step: int = step, reminder: Reminder = reminder) -> PlanItem:
                return PlanItem(key, eid, stage.id, step, reminder.template, reminder.approval,
                                status, due, reasons, thread_root=root)

            if msg and msg.get("state") in FINAL:
                items.append(item(P.DONE, _parse(msg.get("due")), tuple(msg.get("reasons", ()))))
                last_sent = _parse(msg.get("sent_at")) or last_sent
                continue
            if human.get(stage.id):
                items.append(item(P.STOPPED, None, ("the client replied",)))
                continue
            if last_sent is None or (step > 1 and not _was_sent(messages, eid, stage, step - 1)):
                items.append(item(P.WAITING, None, ("waits for the previous email in the thread",)))
                continue
            days, business = reminder.after
            offset = timing.Offset(days, business, None)
            not_before = last_sent
            reasons: list[str] = []
            back = _return_date(messages, eid, stage.id)
            if back:
                opening = dt.datetime.combine(back, stage.window.start, ctx.zone)
                if opening > not_before:
                    not_before = opening
                    reasons.append(f"the client is out of office until {back.isoformat()}")
            slot = timing.due_slot(last_sent.astimezone(ctx.zone).date(), offset, ctx.zone,
                                   stage.window, ctx.calendar, at=stage.at,
                                   not_before_utc=not_before)
            items.append(item(P.SCHEDULED, slot.utc, slot.reasons + tuple(reasons)))
            last_sent = None  # the next reminder waits for this one
    return items


def _was_sent(messages: dict[str, dict], eid: str, stage: Stage, step: int) -> bool:
    msg = messages.get(message_key(eid, stage.id, step))
    return bool(msg and msg.get("sent_at"))


def _return_date(messages: dict[str, dict], eid: str, stage_id: str) -> dt.date | None:
    root = messages.get(message_key(eid, stage_id, 0)) or {}
    value = root.get("out_of_office_until")
    return dt.date.fromisoformat(value) if value else None


def plan_stored(loaded, eng: dict, msgs: dict[str, dict], replies: list[dict],  # noqa: ANN001
                now: dt.datetime | None = None) -> list[PlanItem]:
    """The planner's items for one stored engagement (pure): what a tick and every view plan.

    `loaded` is a config.loading.Loaded; `now` projects the plan (see plan_engagement). Kept
    out of engine/tick.py so that views plan without importing the send path (rendering,
    MIME) they never use.
    """
    from mailflow.config.engagements import hydrate
    from mailflow.engine import checklist
    seq = loaded.sequence_for(eng)
    data = hydrate(eng)
    # rule conditions and "when access done" timing see the wrap-up checklist
    data.update(checklist.planning_facts(data))
    return plan_engagement(data, seq, msgs, replies, loaded.context_for(eng), now)
