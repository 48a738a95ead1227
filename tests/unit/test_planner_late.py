"""Never late without asking (issue 13): late approvals in two zones across DST, as pure plans.

The default playbook: timeline notice 30 days before contract_end, deliverables recap 7
business days before, support offer 2 business days after the recap, access revocation 3
business days before contract_end, feedback request 2 business days after contract_end.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from mailflow import timing
from mailflow.config.engagements import hydrate, validate_engagement
from mailflow.config.rules import load_sequence
from mailflow.engine.planner import Context, message_key, plan_engagement
from mailflow.engine.sendtime import next_send_time
from mailflow.project import playbook_dir

SEQ = load_sequence(playbook_dir() / "rules" / "offboarding.toml", timing.DEFAULT_WINDOW)


def engagement(zone: str, end: str) -> dict:
    data = tomllib.loads((playbook_dir() / "engagements" / "example.toml").read_text())
    data["time_zone"] = zone
    data["dates"]["contract_end"] = dt.date.fromisoformat(end)
    return hydrate(validate_engagement(data, Path("example.toml"), "UTC"))


def sent(eng: dict, stage: str, local: str, zone: str, due: str | None = None) -> dict:
    at = dt.datetime.fromisoformat(local).replace(tzinfo=timing.load_zone(zone))
    key = message_key(eng["id"], stage, 0)
    return {key: {"key": key, "state": "sent", "sent_at": at.astimezone(dt.UTC).isoformat(),
                  "due": due or at.astimezone(dt.UTC).isoformat()}}


def plan(eng: dict, zone: str, messages: dict) -> dict:
    ctx = Context(timing.load_zone(zone), timing.make_calendar(None))
    return {i.stage: i for i in plan_engagement(eng, SEQ, messages, [], ctx) if i.step == 0}


def local(item, zone: str) -> dt.datetime:
    return item.due.astimezone(timing.load_zone(zone))


# (zone, contract end, timeline notice sent, recap sent 5 days late across the DST change,
#  access revocation's original day, feedback's original day)
CASES = [
    ("America/New_York", "2027-03-19", "2027-02-17T09:00", "2027-03-15T10:31",
     dt.date(2027, 3, 16), dt.date(2027, 3, 23)),
    ("Europe/Berlin", "2027-04-02", "2027-03-03T09:00", "2027-03-29T10:31",
     dt.date(2027, 3, 30), dt.date(2027, 4, 6)),
]


@pytest.mark.parametrize("zone,end,notice,recap,access_day,feedback_day", CASES)
def test_a_late_recap_moves_later_stages_once_at_their_local_time_and_holds_past_the_end(
        zone, end, notice, recap, access_day, feedback_day):
    eng = engagement(zone, end)
    before = plan(eng, zone, sent(eng, "timeline_notice", notice, zone))
    assert local(before["access_revocation"], zone).date() == access_day
    assert before["access_revocation"].hold is None
    msgs = {**sent(eng, "timeline_notice", notice, zone),
            **sent(eng, "deliverables_recap", recap, zone)}
    items = plan(eng, zone, msgs)
    access, feedback = items["access_revocation"], items["feedback_request"]
    # five days later, at the same local 09:00 although the clocks changed in between
    assert local(access, zone).time() == dt.time(9, 0)
    assert local(feedback, zone).time() == dt.time(9, 0)
    assert local(access, zone).date() >= access_day + dt.timedelta(days=5)
    assert local(access, zone).date() - access_day <= dt.timedelta(days=7)  # a weekend at most
    # past the contract end: held for the consultant whatever its approval setting
    assert local(access, zone).date() > dt.date.fromisoformat(end)
    assert access.hold and "after contract_end" in access.hold
    assert access.hold in access.reasons
    # the feedback request is timed after the end: it moves, and is not held
    assert feedback.hold is None
    assert feedback_day + dt.timedelta(days=5) <= local(feedback, zone).date() \
        <= feedback_day + dt.timedelta(days=7)


@pytest.mark.parametrize("zone,end,notice,recap,access_day,feedback_day", CASES)
def test_delays_never_compound_from_stage_to_stage(zone, end, notice, recap, access_day,
                                                   feedback_day):
    eng = engagement(zone, end)
    msgs = {**sent(eng, "timeline_notice", notice, zone),
            **sent(eng, "deliverables_recap", recap, zone)}
    access_planned = plan(eng, zone, msgs)["access_revocation"]
    # the access notice then also went out on its pushed-back day (it was approved late)
    access_sent = local(access_planned, zone).replace(hour=11, minute=2)
    msgs.update(sent(eng, "support_offer", local(plan(eng, zone, msgs)["support_offer"], zone)
                     .replace(tzinfo=None).isoformat(), zone))
    msgs.update(sent(eng, "access_revocation", access_sent.replace(tzinfo=None).isoformat(),
                     zone, due=access_planned.due.isoformat()))
    feedback = plan(eng, zone, msgs)["feedback_request"]
    access_delay = (access_sent.date() - access_day).days
    # moved by the largest single delay, never the sum of the recap's and the access notice's
    shift = (local(feedback, zone).date() - feedback_day).days
    assert shift <= access_delay + 2, (shift, access_delay)
    assert local(feedback, zone).time() == dt.time(9, 0)


def test_moving_the_contract_end_moves_stages_back_and_lifts_the_hold():
    zone, end, notice, recap = CASES[0][:4]
    eng = engagement(zone, end)
    msgs = {**sent(eng, "timeline_notice", notice, zone),
            **sent(eng, "deliverables_recap", recap, zone)}
    assert plan(eng, zone, msgs)["access_revocation"].hold
    later = engagement(zone, "2027-04-09")  # the cause goes away: the recap is now early
    items = plan(later, zone, msgs)
    assert items["access_revocation"].hold is None
    # 3 business days before Fri 9 April: Tue 6 April, 09:00 local, no push-back left
    assert local(items["access_revocation"], zone) == dt.datetime(
        2027, 4, 6, 9, 0, tzinfo=timing.load_zone(zone))


def test_late_send_opts_out_of_the_hold(tmp_path):
    text = (playbook_dir() / "rules" / "offboarding.toml").read_text().replace(
        'template = "access_revocation"', 'template = "access_revocation"\nlate = "send"')
    path = tmp_path / "offboarding.toml"
    path.write_text(text)
    seq = load_sequence(path, timing.DEFAULT_WINDOW)
    zone, end, notice, recap = CASES[0][:4]
    eng = engagement(zone, end)
    msgs = {**sent(eng, "timeline_notice", notice, zone),
            **sent(eng, "deliverables_recap", recap, zone)}
    ctx = Context(timing.load_zone(zone), timing.make_calendar(None))
    items = {i.stage: i for i in plan_engagement(eng, seq, msgs, [], ctx) if i.step == 0}
    assert items["access_revocation"].hold is None
    assert items["access_revocation"].status == "scheduled"


def test_next_send_time_is_the_due_time_or_the_next_opening_from_now():
    ny = timing.load_zone("America/New_York")
    cal = timing.make_calendar(None)
    due = dt.datetime(2027, 1, 20, 9, 0, tzinfo=ny)
    early = dt.datetime(2027, 1, 18, 12, 0, tzinfo=ny)
    assert next_send_time(due, early, ny, timing.DEFAULT_WINDOW, cal) == due.astimezone(dt.UTC)
    # approved late on a Friday evening: Monday's opening, not the past due date
    late = dt.datetime(2027, 1, 22, 18, 0, tzinfo=ny)
    assert next_send_time(due, late, ny, timing.DEFAULT_WINDOW, cal) == dt.datetime(
        2027, 1, 25, 9, 0, tzinfo=ny).astimezone(dt.UTC)


def test_projected_at_now_a_stage_behind_an_overdue_one_moves_as_it_will_once_that_is_sent():
    zone, end, notice = "America/New_York", "2027-03-19", "2027-02-17T09:00"
    tz = timing.load_zone(zone)
    eng = engagement(zone, end)
    recap_key = message_key(eng["id"], "deliverables_recap", 0)
    waiting = {recap_key: {"key": recap_key, "state": "awaiting_approval",
                           "due": dt.datetime(2027, 3, 10, 9, 0, tzinfo=tz).isoformat()}}
    msgs = {**sent(eng, "timeline_notice", notice, zone), **waiting}
    ctx = Context(tz, timing.make_calendar(None))
    now = dt.datetime(2027, 3, 15, 8, 5, tzinfo=tz)  # resumed: the recap five days late

    def days(items) -> dict[str, dt.datetime]:  # noqa: ANN001
        return {i.stage: i.due.astimezone(tz) for i in items if i.step == 0 and i.due}

    stored = days(plan_engagement(eng, SEQ, msgs, [], ctx))
    assert stored["support_offer"] == dt.datetime(2027, 3, 12, 9, 0, tzinfo=tz)  # (as planned)
    projected = days(plan_engagement(eng, SEQ, msgs, [], ctx, now))
    # the recap goes at 09:00 once approved now; the offer behind it by its five days, the
    # access notice by them and the weekend (and past the end: held), feedback by the largest
    assert projected["support_offer"] == dt.datetime(2027, 3, 17, 9, 0, tzinfo=tz)
    assert projected["access_revocation"] == dt.datetime(2027, 3, 22, 9, 0, tzinfo=tz)
    assert projected["feedback_request"] == dt.datetime(2027, 3, 29, 9, 0, tzinfo=tz)
    # and once the recap is sent then, the plan a tick stores is that projection
    msgs.update(sent(eng, "deliverables_recap", "2027-03-15T09:00", zone))
    after = days(plan_engagement(eng, SEQ, msgs, [], ctx))
    for stage in ("support_offer", "access_revocation", "feedback_request"):
        assert after[stage] == projected[stage], stage
