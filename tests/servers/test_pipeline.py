"""The whole offboarding, end to end: CLI -> plan -> render -> approve -> SMTP (real aiosmtpd)."""

from __future__ import annotations

import json

import pytest

from mailflow.store import Store
from tests.helpers import dates, told_only, walk

CONTRACT_END = "2027-01-29"  # the example engagement's (a Friday), America/New_York


def test_five_stages_go_out_once_each_on_their_day_to_the_right_people(proj, smtp_server):
    assert proj.cli("engagement", "add", "engagements/example.toml").exit_code == 2  # relative
    r = proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    assert r.exit_code == 0, r.output
    walk(proj, dates("2026-12-14", "2027-02-20"))
    got = smtp_server.client_mail
    subjects = [str(m.msg["Subject"]) for m in got]
    assert len(got) == 6, subjects  # five stages + one feedback reminder
    assert len(set(m.msg["Message-ID"] for m in got)) == 6
    state = Store(proj.project.state_dir).load()
    sent = {m["stage"] + f"/{m['step']}": m for m in state.messages.values()}
    # on their day, in New York time, inside Mon-Fri 09:00-17:00
    expect_day = {"timeline_notice/0": "2026-12-30", "deliverables_recap/0": "2027-01-20",
                  "support_offer/0": "2027-01-22", "access_revocation/0": "2027-01-26",
                  "feedback_request/0": "2027-02-02", "feedback_request/1": "2027-02-09"}
    import datetime as dt
    from zoneinfo import ZoneInfo
    ny = ZoneInfo("America/New_York")
    for key, day in expect_day.items():
        local = dt.datetime.fromisoformat(sent[key]["sent_at"]).astimezone(ny)
        assert local.date().isoformat() == day, key
        assert 9 <= local.hour < 17 and local.weekday() < 5
        assert sent[key]["state"] == "sent"
    for m in got:
        # the feedback nudge goes to the To recipients only (its rule says cc = false)
        reminder = str(m.msg["Subject"]).startswith("Re: ")
        assert m.rcpt_tos == (["mj.alvarez@northwind.example"] if reminder else
                              ["mj.alvarez@northwind.example", "tom.becker@northwind.example"])
        assert m.mail_from == "dana@whitfield-consulting.example"
    # order kept
    order = [str(m.msg["Subject"]) for m in got]
    assert order[0].startswith("Wrapping up by January 29: the plan")  # no client name first
    # nothing more goes out however long cron keeps running
    walk(proj, dates("2027-02-21", "2027-03-10"))
    assert len(smtp_server.client_mail) == 6


def test_message_as_received_is_multipart_alternative_with_inlined_css(proj, smtp_server):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    proj.cli("run", now="2026-12-28T10:00")
    assert proj.cli("drafts", "approve", "northwind-2026/timeline_notice", now="2026-12-28T10:05"
                    ).exit_code == 0
    assert told_only(proj.cli("run", now="2026-12-30T09:30"))
    assert len(smtp_server.client_mail) == 1
    msg = smtp_server.client_mail[0].msg
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "María José" in text and "Dana Whitfield" in text
    assert "<style" not in html.split("<body", 1)[1] and 'style="' in html
    assert "https://docs.example/northwind/offboarding-plan" in text
    assert msg["Message-ID"].endswith("@whitfield-consulting.example>")
    assert str(msg["To"]) == "=?utf-8?q?Mar=C3=ADa_Jos=C3=A9_=C3=81lvarez?= " \
        "<mj.alvarez@northwind.example>" or "mj.alvarez@northwind.example" in str(msg["To"])
    assert "tom.becker@northwind.example" in str(msg["Cc"])
    assert msg["Date"] and msg["From"].addresses[0].addr_spec == "dana@whitfield-consulting.example"


def test_reminder_threads_under_the_first_message(proj, smtp_server):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    walk(proj, dates("2026-12-20", "2027-02-12"))
    by_subject = {str(m.msg["Subject"]): m.msg for m in smtp_server.client_mail}
    first = next(m for s, m in by_subject.items() if s.startswith("Thank you"))
    reminder = by_subject["Re: " + str(first["Subject"])]
    assert reminder["In-Reply-To"] == first["Message-ID"]
    assert first["Message-ID"] in reminder["References"]


def test_conditional_stages_are_skipped_where_false(proj, smtp_server):
    text = proj.example(**{r"^support_offer = true.*$": "support_offer = false"})
    # drop every [[shared_access]] block
    import re
    text = re.sub(r"\[\[shared_access\]\]\n(?:[^\[\n].*\n)*", "", text)
    path = proj.write_engagement("nosupport", text)
    assert proj.cli("engagement", "add", str(path)).exit_code == 0
    walk(proj, dates("2026-12-20", "2027-02-12"))
    stages = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    # timeline, recap, the open invoice (still told without shared access), feedback + reminder
    assert len(stages) == 5, stages
    assert stages[2] == "The open invoice before we close on January 29"
    r = proj.cli("plan", "northwind-2026", "--json", now="2027-02-12T12:00")
    rows = {row["stage"]: row for row in json.loads(r.output)[0]["messages"] if row["step"] == 0}
    assert rows["support_offer"]["status"] == "skipped"
    assert rows["access_revocation"]["status"] == "done"


def test_running_twice_at_the_same_now_sends_nothing_twice(proj, smtp_server):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    proj.cli("run", now="2026-12-28T10:00")
    proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    for _ in range(3):
        assert told_only(proj.cli("run", now="2026-12-30T09:30"))
    assert len(smtp_server.client_mail) == 1


def test_dry_run_renders_and_reports_without_sending_or_recording(proj, smtp_server):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    before = (proj.root / ".mailflow" / "state.json").read_bytes()
    r = proj.cli("run", "--dry-run", now="2026-12-28T10:00")
    assert told_only(r)
    assert "would draft northwind-2026/timeline_notice/0" in r.output
    assert (proj.root / ".mailflow" / "state.json").read_bytes() == before
    assert smtp_server.client_mail == []


def test_approval_is_needed_and_an_unapproved_draft_waits(proj, smtp_server):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    walk(proj, dates("2026-12-20", "2027-01-05"), approve=False)
    assert smtp_server.client_mail == []
    r = proj.cli("drafts", "--json", now="2027-01-05T12:00")
    rows = json.loads(r.output)
    assert [row["id"] for row in rows] == ["northwind-2026/timeline_notice/0"]
    assert rows[0]["why"] in ("approval", "overdue")


def test_rejected_draft_is_never_sent_and_the_sequence_goes_on(proj, smtp_server):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    proj.cli("run", now="2026-12-28T10:00")
    r = proj.cli("drafts", "reject", "northwind-2026/timeline_notice", "--reason", "told them",
                 now="2026-12-28T10:00")
    assert r.exit_code == 0, r.output
    walk(proj, dates("2026-12-29", "2027-01-21"))
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert subjects and not any("wrap-up plan" in s for s in subjects)


@pytest.mark.parametrize("status,expected", [("pause", 0), ("cancel", 0)])
def test_paused_or_cancelled_engagement_sends_nothing(proj, smtp_server, status, expected):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    proj.cli("run", now="2026-12-28T10:00")
    proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    # issue 17: cancel asks first; the answer is given here
    assert proj.cli("engagement", status, "northwind-2026", now="2026-12-29T10:00",
                    input="y\n").exit_code == 0
    walk(proj, dates("2026-12-30", "2027-01-10"))
    assert len(smtp_server.client_mail) == expected


def test_resume_replans_and_sends(proj, smtp_server):
    proj.cli("engagement", "add", str(proj.root / "engagements/example.toml"))
    proj.cli("engagement", "pause", "northwind-2026", now="2026-12-20T10:00")
    walk(proj, dates("2026-12-21", "2026-12-31"))
    assert smtp_server.client_mail == []
    proj.cli("engagement", "resume", "northwind-2026", now="2027-01-04T08:00")
    walk(proj, dates("2027-01-04", "2027-01-06"))
    assert len(smtp_server.client_mail) == 1  # the overdue timeline notice, once approved
