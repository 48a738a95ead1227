"""The real next send time (issue 13, point 4): one answer, kept, after a pause is lifted.

Paused over the deliverables recap's date and resumed on a Monday (after the DST change, in
New York and in Berlin), the overdue recap waits for approval and the support offer behind it
too. The support offer goes out only after the recap, by the recap's delay (the spacing the
planner keeps): approving it first, the confirmation, the cron line, `plan`, `status`,
`drafts` and `drafts show` all give that time, not the recap's, and it does go out then.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from mailflow import timing
from mailflow.store import Store
from tests.helpers import SENDER, add_in_zone, dates, imap_toml, told_only, walk
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

EID = "northwind-2026"
RECAP = f"{EID}/deliverables_recap/0"
SUPPORT = f"{EID}/support_offer/0"
TIMES = ("08:00", "09:00")

# (zone, contract end, pause on, resume on (a Monday), when the recap goes out once approved
#  on resuming, when the support offer really goes out: its original Friday + the recap's
#  five days late, at the same 09:00 across the clock change)
CASES = [
    ("America/New_York", "2027-03-19", "2027-03-05", "2027-03-15",
     "Mon 2027-03-15 09:00 EDT", "Wed 2027-03-17 09:00 EDT"),
    ("Europe/Berlin", "2027-04-02", "2027-03-19", "2027-03-29",
     "Mon 2027-03-29 09:00 CEST", "Wed 2027-03-31 09:00 CEST"),
]


def resumed(proj, zone: str, end: str, pause: str, resume: str) -> None:
    """The timeline notice out, paused over the recap's date, resumed at 07:00."""
    add_in_zone(proj, zone, end)
    start = dt.date.fromisoformat(end) - dt.timedelta(days=34)
    walk(proj, dates(start.isoformat(), (start + dt.timedelta(days=4)).isoformat()),
         times=TIMES)
    assert proj.cli("engagement", "pause", EID, now=f"{pause}T07:00").exit_code == 0
    before = dt.date.fromisoformat(resume) - dt.timedelta(days=1)
    walk(proj, dates(pause, before.isoformat()), approve=False, times=TIMES)
    assert proj.cli("engagement", "resume", EID, now=f"{resume}T07:00").exit_code == 0


def shown(proj, key: str, now: str, zone: str) -> dict[str, str]:
    """The time each view gives for message `key` at `now`, as local text."""
    tz = timing.load_zone(zone)

    def fmt(iso: str | None) -> str:
        return timing.format_local(dt.datetime.fromisoformat(iso), tz) if iso else "-"

    (plan,) = json.loads(proj.cli("plan", EID, "--json", now=now).output)
    status = json.loads(proj.cli("status", "--json", now=now).output)
    drafts = json.loads(proj.cli("drafts", "--all-states", "--json", now=now).output)
    page = proj.cli("drafts", "show", key, now=now).output
    stage = key.split("/")[1]
    return {
        "plan": fmt(next(r["when"] for r in plan["messages"] if r["id"] == key)),
        "status": fmt(status["engagements"][0]["stages"][stage]["goes_out"]),
        "drafts": fmt(next(r["goes_out"] for r in drafts if r["id"] == key)),
        "drafts show": re.search(r"^Goes out: (.*?)(?: once approved)?$", page, re.M)[1],
    }


def sent_at(proj, key: str) -> str | None:
    return Store(proj.project.state_dir).load().messages[key].get("sent_at")


@pytest.mark.parametrize("zone,end,pause,resume,recap_out,support_out", CASES)
def test_approving_a_stage_behind_an_overdue_one_promises_its_real_time_and_keeps_it(
        proj, smtp_server, zone, end, pause, resume, recap_out, support_out):
    resumed(proj, zone, end, pause, resume)
    r = proj.cli("run", now=f"{resume}T08:00")  # both drafted, both past due
    assert told_only(r), r.output
    said = [line for line in r.stderr.splitlines() if SUPPORT + ":" in line]
    assert len(said) == 1 and f"goes out {support_out}" in said[0], r.stderr
    r = proj.cli("drafts", "approve", SUPPORT, now=f"{resume}T08:05")
    assert r.exit_code == 0, r.output
    assert f"goes out {support_out}, after deliverables_recap goes out" in r.output
    # every view, the same time for the same message at the same now
    at = f"{resume}T08:05"
    assert set(shown(proj, SUPPORT, at, zone).values()) == {support_out}
    assert set(shown(proj, RECAP, at, zone).values()) == {recap_out}
    r = proj.cli("drafts", "approve", RECAP, now=f"{resume}T08:10")
    assert f"goes out {recap_out})" in r.output
    # cron every half hour until then: still promised the same, sent exactly then, once
    tz = timing.load_zone(zone)
    out_day = dt.datetime.strptime(support_out[4:14], "%Y-%m-%d").date()
    for day in dates(resume, out_day.isoformat()):
        for hour in range(8, 17):
            for minute in (0, 30):
                now = f"{day}T{hour:02d}:{minute:02d}"
                if sent_at(proj, SUPPORT) is None:
                    assert set(shown(proj, SUPPORT, now, zone).values()) == {support_out}, now
                assert told_only(proj.cli("run", now=now))
    assert timing.format_local(dt.datetime.fromisoformat(sent_at(proj, RECAP)), tz) == recap_out
    assert timing.format_local(dt.datetime.fromisoformat(sent_at(proj, SUPPORT)), tz) \
        == support_out
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert len(subjects) == len(set(subjects))


def test_approving_it_by_replying_to_the_digest_confirms_the_same_real_time(
        proj, smtp_server, imap_account):
    zone, end, pause, resume, _, support_out = CASES[0]
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + imap_toml(imap_account))
    resumed(proj, zone, end, pause, resume)
    assert told_only(proj.cli("run", now=f"{resume}T08:00"))  # urgent: the digest goes at once
    digest = [m for m in smtp_server.received if str(m.msg["Subject"]).startswith(
        "[mailflow digest]")][-1]
    text = digest.msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    n = re.search(r"^\[(\d+)\] Northwind Traders: Support offer$", text, re.M)[1]
    listed = text[text.index(f"[{n}] Northwind Traders: Support offer"):].split("\n\n")[0]
    assert f"\n    Goes out once approved: {support_out}\n" in listed
    raw = (f"From: Dana <{SENDER[1]}>\r\nTo: mailflow <{SENDER[1]}>\r\n"
           f"Subject: Re: {digest.msg['Subject']}\r\nDate: Mon, 15 Mar 2027 08:10:00 -0400\r\n"
           f"Message-ID: <answer-1@phone.example>\r\nIn-Reply-To: {digest.msg['Message-ID']}"
           f"\r\nReferences: {digest.msg['Message-ID']}\r\nMIME-Version: 1.0\r\n"
           f"Content-Type: text/plain; charset=utf-8\r\n\r\napprove {n}\r\n").encode()
    imap_account.append("INBOX", raw)
    assert told_only(proj.cli("run", now=f"{resume}T08:20"))
    assert Store(proj.project.state_dir).load().messages[SUPPORT]["state"] == "approved"
    (confirmation,) = [m for m in smtp_server.received
                       if str(m.msg["Subject"]).startswith("Re: [mailflow digest]")]
    said = confirmation.msg.get_body(("plain",)).get_content()
    assert f"Approved {n} (Northwind Traders, Support offer): goes out {support_out}" in said
    assert set(shown(proj, SUPPORT, f"{resume}T08:20", zone).values()) == {support_out}
