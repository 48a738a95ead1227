"""A pause lifted (issue 13): the plan comes back to its original spacing, never compounding.

In New York (DST from Sun 14 March 2027) and Berlin (from Sun 28 March 2027), the default
playbook with the contract ending on a Friday after the change: the deliverables recap is due
on the Wednesday of the week before, the support offer on Friday, the access revocation notice
on the Tuesday of the last week, the feedback request on the Tuesday after.

- Paused and resumed before anything fell due: every date is the original one.
- Paused over the recap's date and resumed on the Monday after the clocks changed: the recap
  goes out five days late, and each later stage moves by that delay once (the largest single
  delay, never the sum), at the same local 09:00; the access notice, now after the contract
  end, is held for the consultant first.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from mailflow.store import Store
from tests.helpers import add_in_zone, dates, told_only, walk

EID = "northwind-2026"
STAGES = ("deliverables_recap", "support_offer", "access_revocation", "feedback_request")
TIMES = ("08:00", "09:00")  # a run at 09:00 sends what is due at 09:00 on the dot

# (zone, contract end, pause on, resume on (a Monday, after the DST change), the original
#  local days of recap, support offer, access notice, feedback request)
CASES = [
    ("America/New_York", "2027-03-19", "2027-03-05", "2027-03-15",
     ("2027-03-10", "2027-03-12", "2027-03-16", "2027-03-23")),
    ("Europe/Berlin", "2027-04-02", "2027-03-19", "2027-03-29",
     ("2027-03-24", "2027-03-26", "2027-03-30", "2027-04-06")),
]


def messages(proj) -> dict[str, dict]:
    return Store(proj.project.state_dir).load().messages


def local(ts: str, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromisoformat(ts).astimezone(tz)


def setup(proj, zone: str, end: str) -> None:
    add_in_zone(proj, zone, end)
    start = dt.date.fromisoformat(end) - dt.timedelta(days=34)
    # the timeline notice goes out; the rest is planned
    walk(proj, dates(start.isoformat(), (start + dt.timedelta(days=4)).isoformat()),
         times=TIMES)


def status(proj, verb: str, day: str) -> None:
    r = proj.cli("engagement", verb, EID, now=f"{day}T07:00")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("zone,end,pause,resume,original", CASES)
def test_a_pause_lifted_before_anything_is_due_keeps_every_original_date(
        proj, smtp_server, zone, end, pause, resume, original):
    tz = ZoneInfo(zone)
    setup(proj, zone, end)
    before = {k: m["due"] for k, m in messages(proj).items() if m["state"] == "planned"}
    assert {k.split("/")[1] for k in before} >= set(STAGES)
    early = (dt.date.fromisoformat(original[0]) - dt.timedelta(days=9)).isoformat()
    status(proj, "pause", early)
    walk(proj, dates(early, (dt.date.fromisoformat(early) + dt.timedelta(days=3)).isoformat()),
         approve=False, times=TIMES)
    status(proj, "resume", (dt.date.fromisoformat(early) + dt.timedelta(days=4)).isoformat())
    last = (dt.date.fromisoformat(original[3]) + dt.timedelta(days=1)).isoformat()
    walk(proj, dates((dt.date.fromisoformat(early) + dt.timedelta(days=4)).isoformat(), last),
         times=TIMES)
    msgs = messages(proj)
    for stage, day in zip(STAGES, original, strict=True):
        msg = msgs[f"{EID}/{stage}/0"]
        assert msg["due"] == before[msg["key"]], stage  # the stored plan came back unchanged
        sent = local(msg["sent_at"], tz)
        assert (sent.date().isoformat(), sent.time()) == (day, dt.time(9, 0)), stage
    assert not any(m.get("late_hold") for m in msgs.values())
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert len(subjects) == len(set(subjects))  # nothing twice


@pytest.mark.parametrize("zone,end,pause,resume,original", CASES)
def test_a_pause_over_a_due_date_moves_later_stages_once_and_holds_past_the_end(
        proj, smtp_server, zone, end, pause, resume, original):
    tz = ZoneInfo(zone)
    setup(proj, zone, end)
    status(proj, "pause", pause)
    resume_day = dt.date.fromisoformat(resume)
    walk(proj, dates(pause, (resume_day - dt.timedelta(days=1)).isoformat()), approve=False,
         times=TIMES)
    paused = messages(proj)
    # nothing drafted or sent while paused
    assert all(paused[f"{EID}/{s}/0"]["state"] == "planned" for s in STAGES)
    status(proj, "resume", resume)
    # from the resume day on, Dana approves whatever waits at 08:00 (as `walk` does), and
    # each run's stderr is kept: the held access notice must be said once
    told = []
    last = (dt.date.fromisoformat(original[3]) + dt.timedelta(days=10)).isoformat()
    for day in dates(resume, last):
        for t in TIMES:
            r = proj.cli("run", now=f"{day}T{t}")
            assert told_only(r), r.output
            told += [line for line in r.stderr.splitlines() if "after contract_end" in line]
            if t == "08:00":
                assert proj.cli("drafts", "approve", "--all", "-y",
                                now=f"{day}T{t}").exit_code == 0
        if day == resume:
            msgs = messages(proj)
            recap = local(msgs[f"{EID}/deliverables_recap/0"]["sent_at"], tz)
            # the overdue recap was drafted on resuming, approved at 08:00, out at 09:00
            assert (recap.date(), recap.time()) == (resume_day, dt.time(9, 0))
            assert not msgs[f"{EID}/support_offer/0"].get("sent_at")  # no burst behind it
    assert len(told) == 1, told
    # held for Dana, whatever its approval setting, and approved knowing it is late
    access = messages(proj)[f"{EID}/access_revocation/0"]
    assert f"after contract_end ({end})" in (access.get("late_ok_for") or "")
    delay = (resume_day - dt.date.fromisoformat(original[0])).days
    assert delay == 5
    msgs = messages(proj)
    shifts = {}
    for stage, day in zip(STAGES, original, strict=True):
        msg = msgs[f"{EID}/{stage}/0"]
        sent = local(msg["sent_at"], tz)
        assert sent.time() == dt.time(9, 0), (stage, sent)  # across the DST change
        shifts[stage] = (sent.date() - dt.date.fromisoformat(day)).days
    # the offer: exactly the recap's delay (a Friday + 5 days is a Wednesday)
    assert shifts["support_offer"] == delay
    # the access notice: the recap's delay, then the next working day (a weekend at most)
    assert delay <= shifts["access_revocation"] <= delay + 2
    assert local(msgs[f"{EID}/access_revocation/0"]["sent_at"], tz).date() \
        > dt.date.fromisoformat(end)
    # the feedback request: the largest single delay, never the recap's and the notice's sum
    assert max(delay, shifts["access_revocation"]) <= shifts["feedback_request"] \
        <= max(delay, shifts["access_revocation"]) + 2
    assert shifts["feedback_request"] < delay + shifts["access_revocation"]
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert len(subjects) == len(set(subjects))  # nothing twice
