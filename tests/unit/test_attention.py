"""Told once (issue 13): what needs the consultant, and the marks that keep it from repeating."""

from __future__ import annotations

import datetime as dt

from mailflow.engine.attention import needs, untold
from mailflow.store import State, apply_event

NOW = dt.datetime(2027, 1, 18, 15, 0, tzinfo=dt.UTC)


def state() -> State:
    s = State()
    s.engagements["e"] = {"id": "e", "status": "active"}
    s.engagements["old"] = {"id": "old", "status": "completed"}

    def msg(key, state, due, **extra):
        s.messages[key] = {"key": key, "engagement": key.split("/")[0], "stage": "x", "step": 0,
                           "state": state, "due": due, "history": [{}], **extra}
    msg("e/soon/0", "awaiting_approval", "2027-01-19T14:00:00+00:00")
    msg("e/later/0", "awaiting_approval", "2027-01-22T14:00:00+00:00")
    msg("e/past/0", "awaiting_approval", "2027-01-15T14:00:00+00:00")
    msg("e/late/0", "awaiting_approval", "2027-02-01T14:00:00+00:00",
        late_hold="held for you: it would go out after contract_end")
    msg("e/doubt/0", "in_doubt", "2027-01-15T14:00:00+00:00", note="stopped while sending")
    msg("e/failed/0", "failed", "2027-01-15T14:00:00+00:00", server_reply="550 no such user")
    msg("e/sent/0", "sent", "2027-01-15T14:00:00+00:00")
    msg("old/x/0", "awaiting_approval", "2027-01-15T14:00:00+00:00")
    msg("e/planned/0", "planned", "2027-02-20T14:00:00+00:00")
    s.replies["1"] = {"id": "1", "needs_action": True, "from": "c@client.example"}
    s.replies["2"] = {"id": "2", "needs_action": True, "handled": "2027-01-17"}
    return s


def test_each_kind_that_needs_the_consultant_is_listed_once_with_its_mark():
    s = state()
    items = needs(s, NOW, review_days=5)
    got = {(n.key, n.mark.split(":")[0] + (":overdue" if "overdue" in n.mark else ""))
           for n in items}
    assert got == {("e/soon/0", "approval"), ("e/later/0", "approval"),
                   ("e/past/0", "approval:overdue"), ("e/late/0", "late"),
                   ("e/doubt/0", "in_doubt"), ("e/failed/0", "failed"), ("1", "reply")}
    urgent = {n.key for n in items if n.urgent}
    assert "e/soon/0" in urgent and "e/later/0" not in urgent and "1" in urgent
    lines = {n.key: n.line for n in items}
    assert "draft past due" in lines["e/past/0"] and "after contract_end" in lines["e/late/0"]
    assert "550 no such user" in lines["e/failed/0"]
    assert "mailflow drafts resolve e/doubt/0" in lines["e/doubt/0"]


def test_a_told_mark_is_never_said_again_until_the_draft_comes_back_or_falls_overdue():
    s = state()
    for n in untold(needs(s, NOW, 5), s):
        apply_event(s, {n.table: {"key": n.key, "append": {"told": n.mark}}})
    assert untold(needs(s, NOW, 5), s) == []
    # two days on: the draft due tomorrow is now past due, said once more
    later = untold(needs(s, NOW + dt.timedelta(days=2), 5), s)
    assert [n.key for n in later] == ["e/soon/0"] and "past due" in later[0].line
    # a held stage is said once, from planning through its draft
    s.messages["e/late/0"].update(state="planned", history=[{}, {}, {}])
    assert "e/late/0" not in [n.key for n in untold(needs(s, NOW, 5), s)]
    # a draft approved, then edited back into review, is new again
    s.messages["e/later/0"]["history"].append({})
    assert [n.key for n in untold(needs(s, NOW, 5), s)] == ["e/later/0"]


def _holiday_state(due: str) -> State:
    s = State()
    s.engagements["e"] = {"id": "e", "status": "active"}
    s.messages["e/recap/0"] = {"key": "e/recap/0", "engagement": "e", "stage": "x", "step": 0,
                               "state": "awaiting_approval", "due": due, "history": [{}]}
    return s


def test_the_next_working_day_skips_the_engagements_holidays_for_urgency():
    """Wed 23 Dec 2026, 10:00 in New York: with the 24th a closure and Christmas on Friday,
    the next working day is Monday 28th, so a draft due Monday 09:00 is urgent; without
    those holidays the next working day is Thursday and Monday's draft can wait."""
    from mailflow import timing
    from mailflow.engine.attention import next_working_day
    from mailflow.engine.planner import Context

    ny = timing.load_zone("America/New_York")
    now = dt.datetime(2026, 12, 23, 10, 0, tzinfo=ny)
    holidays = Context(ny, timing.make_calendar({"country": "US", "extra": ["2026-12-24"]}))
    plain = Context(ny, timing.make_calendar(None))
    monday = dt.datetime(2026, 12, 28, 9, 0, tzinfo=ny).astimezone(dt.UTC).isoformat()
    s = _holiday_state(monday)
    assert [n.urgent for n in needs(s, now, 5, context=lambda eng: holidays)] == [True]
    assert [n.urgent for n in needs(s, now, 5, context=lambda eng: plain)] == [False]
    # the same local time on that day, across no DST change here
    assert next_working_day(now, ny, holidays.calendar) == dt.datetime(
        2026, 12, 28, 10, 0, tzinfo=ny).astimezone(dt.UTC)
    assert next_working_day(now, ny, plain.calendar) == dt.datetime(
        2026, 12, 24, 10, 0, tzinfo=ny).astimezone(dt.UTC)


def test_a_draft_due_after_the_next_working_day_is_not_urgent_even_around_holidays():
    """Tuesday 29 Dec is two working days after Wed 23 Dec when 24-25 Dec are off: not urgent."""
    from mailflow import timing
    from mailflow.engine.planner import Context

    ny = timing.load_zone("America/New_York")
    now = dt.datetime(2026, 12, 23, 10, 0, tzinfo=ny)
    holidays = Context(ny, timing.make_calendar({"country": "US", "extra": ["2026-12-24"]}))
    tuesday = dt.datetime(2026, 12, 29, 9, 0, tzinfo=ny).astimezone(dt.UTC).isoformat()
    s = _holiday_state(tuesday)
    assert [n.urgent for n in needs(s, now, 10, context=lambda eng: holidays)] == [False]
