"""Never late without asking (issue 13), end to end: a recap approved five days late.

The contract ends Fri 29 January 2027 (New York). The recap is due Wed 20 January but approved
only on Mon 25 January; the access revocation notice ("3 business days before contract_end",
here needing no approval) would now fall on Mon 1 February: it is held for the consultant,
said once, rendered again without a "before 29 January" that has already passed, and goes out
at the time the approval names.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from mailflow.store import Store
from tests.helpers import add, dates, told_only, walk

NY = ZoneInfo("America/New_York")
RECAP = "northwind-2026/deliverables_recap/0"
ACCESS = "northwind-2026/access_revocation/0"


def no_approval_for_access(proj) -> None:
    rules = proj.root / "rules" / "offboarding.toml"
    rules.write_text(rules.read_text().replace('template = "access_revocation"',
                                               'template = "access_revocation"\napproval = false'))


def messages(proj) -> dict[str, dict]:
    return Store(proj.project.state_dir).load().messages


def test_a_late_recap_holds_the_access_notice_past_the_contract_end(proj, smtp_server):
    no_approval_for_access(proj)
    add(proj)
    walk(proj, dates("2026-12-26", "2027-01-14"))  # the timeline notice goes out
    walk(proj, dates("2027-01-15", "2027-01-24"), approve=False)  # the recap waits for Dana
    assert messages(proj)[RECAP]["state"] == "awaiting_approval"
    r = proj.cli("drafts", "approve", RECAP, "northwind-2026/support_offer/0",
                 now="2027-01-25T08:00")
    assert r.exit_code == 0, r.output
    told = []
    for day in dates("2027-01-25", "2027-01-31"):
        for t in ("08:30", "10:30", "15:00"):
            r = proj.cli("run", now=f"{day}T{t}")
            assert told_only(r), r.output
            told += [line for line in r.stderr.splitlines() if ACCESS in line]
    msgs = messages(proj)
    recap_sent = dt.datetime.fromisoformat(msgs[RECAP]["sent_at"]).astimezone(NY)
    assert recap_sent.date() == dt.date(2027, 1, 25)
    access = msgs[ACCESS]
    # no approval setting, yet held: it would go out after the contract end
    assert access["state"] == "awaiting_approval" and not access.get("sent_at")
    assert "after contract_end (2027-01-29)" in access["late_hold"]
    drafts = {d["id"]: d for d in json.loads(proj.cli("drafts", "--json",
                                                      now="2027-01-31T12:00").output)}
    assert drafts[ACCESS]["why"].startswith("late: it would go out Mon 2027-02-01 09:00 EST")
    held = [line for line in told if "after contract_end" in line]
    assert len(held) == 1, told  # said once, not on every run
    # rendered again: no "let me know before 29 January" once that date has passed
    _, text = Store(proj.project.state_dir).body(access["body"])
    text = " ".join(text.split())  # the text part is wrapped
    assert "before 29 January" not in text
    assert "let me know as soon as you can" in text
    # approving it names the real time it goes out, and then it does, once
    r = proj.cli("drafts", "approve", ACCESS, now="2027-01-31T12:00")
    assert r.exit_code == 0, r.output
    assert "goes out Mon 2027-02-01 09:00 EST" in r.output
    walk(proj, ["2027-02-01"], approve=False, times=("08:59", "09:00"))
    access = messages(proj)[ACCESS]
    sent = dt.datetime.fromisoformat(access["sent_at"]).astimezone(NY)
    assert sent.date() == dt.date(2027, 2, 1) and sent.hour == 9
    subjects = [str(m.msg["Subject"]) for m in smtp_server.received]
    assert len(subjects) == len(set(subjects))
