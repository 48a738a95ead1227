"""Never late without asking (issue 13), end to end: a recap approved five days late.

In New York (contract end Fri 29 January 2027) and in Berlin across the DST change (contract
end Fri 2 April 2027): the recap is approved five days late; the access revocation notice
("3 business days before contract_end", here needing no approval) would now fall after the
contract end, so it is held for the consultant, said once, rendered again without a
"before <end>" that has already passed, and goes out at the local time the approval names.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from mailflow.store import Store
from tests.helpers import add_in_zone, dates, told_only, walk

NY = ZoneInfo("America/New_York")
RECAP = "northwind-2026/deliverables_recap/0"
ACCESS = "northwind-2026/access_revocation/0"


def no_approval_for_access(proj) -> None:
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('template = "access_revocation"',
                                               'template = "access_revocation"\napproval = false'))


def messages(proj) -> dict[str, dict]:
    return Store(proj.project.state_dir).load().messages


# (zone, contract end, approving until, the recap approved late on, the access notice's
#  new day and how it is shown, the ask that must not appear); Berlin crosses DST on 28 March
CASES = [
    ("America/New_York", "2027-01-29", "2027-01-14", "2027-01-25", dt.date(2027, 2, 1),
     "Mon 2027-02-01 09:00 EST", "before 29 January"),
    ("Europe/Berlin", "2027-04-02", "2027-03-18", "2027-03-29", dt.date(2027, 4, 5),
     "Mon 2027-04-05 09:00 CEST", "before 2 April"),
]


@pytest.mark.parametrize("zone,end,approving,late,access_day,shown,ask", CASES)
def test_a_late_recap_holds_the_access_notice_past_the_contract_end(
        proj, smtp_server, zone, end, approving, late, access_day, shown, ask):
    tz = ZoneInfo(zone)
    no_approval_for_access(proj)
    add_in_zone(proj, zone, end)
    start = dt.date.fromisoformat(end) - dt.timedelta(days=34)
    walk(proj, dates(start.isoformat(), approving))  # the timeline notice goes out
    first_late = (dt.date.fromisoformat(approving) + dt.timedelta(days=1)).isoformat()
    day_before = (dt.date.fromisoformat(late) - dt.timedelta(days=1)).isoformat()
    walk(proj, dates(first_late, day_before), approve=False)  # the recap waits for Dana
    assert messages(proj)[RECAP]["state"] == "awaiting_approval"
    r = proj.cli("drafts", "approve", RECAP, "northwind-2026/support_offer/0",
                 now=f"{late}T08:00")
    assert r.exit_code == 0, r.output
    told = []
    last = (access_day - dt.timedelta(days=1)).isoformat()
    for day in dates(late, last):
        for t in ("08:30", "10:30", "15:00"):
            r = proj.cli("run", now=f"{day}T{t}")
            assert told_only(r), r.output
            told += [line for line in r.stderr.splitlines() if ACCESS in line]
    msgs = messages(proj)
    recap_sent = dt.datetime.fromisoformat(msgs[RECAP]["sent_at"]).astimezone(tz)
    assert recap_sent.date() == dt.date.fromisoformat(late)
    access = msgs[ACCESS]
    # no approval setting, yet held: it would go out after the contract end
    assert access["state"] == "awaiting_approval" and not access.get("sent_at")
    assert f"after contract_end ({end})" in access["late_hold"]
    drafts = {d["id"]: d for d in json.loads(proj.cli("drafts", "--json",
                                                      now=f"{last}T12:00").output)}
    assert drafts[ACCESS]["why"].startswith(f"late: it would go out {shown}")
    held = [line for line in told if "after contract_end" in line]
    assert len(held) == 1, told  # said once, not on every run
    # rendered again: no "let me know before <the end>" once that date has passed
    _, text = Store(proj.project.state_dir).body(access["body"])
    text = " ".join(text.split())  # the text part is wrapped
    assert ask not in text
    assert "let me know as soon as you can" in text
    # approving it names the real time it goes out (the same local 09:00 after the clock
    # change), and then it does, once
    r = proj.cli("drafts", "approve", ACCESS, now=f"{last}T12:00")
    assert r.exit_code == 0, r.output
    assert f"goes out {shown}" in r.output
    walk(proj, [access_day.isoformat()], approve=False, times=("08:59", "09:00"))
    access = messages(proj)[ACCESS]
    sent = dt.datetime.fromisoformat(access["sent_at"]).astimezone(tz)
    assert sent.date() == access_day and sent.hour == 9 and sent.minute == 0
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert len(subjects) == len(set(subjects))
