"""Client replies end to end: sent through aiosmtpd, replies APPENDed to a real Dovecot, polled."""

from __future__ import annotations

import json
from email.utils import format_datetime

import pytest

from mailflow.store import Store
from tests.helpers import dates, messages_by_step, polling_project, reply, walk
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401


@pytest.fixture
def mailproj(proj, imap_account):
    """A project that sends to the test SMTP server and polls the test Dovecot account."""
    return polling_project(proj, imap_account)


def test_a_reply_is_found_recorded_once_and_needs_action(mailproj, smtp_server):
    walk(mailproj, dates("2026-12-26", "2026-12-30"))
    timeline = messages_by_step(mailproj)["timeline_notice/0"]
    assert timeline["state"] == "sent"
    mailproj.account.append("INBOX", reply(timeline, "Could we move the handover to 22 Jan?"))
    r = mailproj.cli("-v", "poll", now="2026-12-31T11:00")
    assert r.exit_code == 0, r.output
    assert "1 new reply" in r.output
    # polled again: nothing new, nothing twice
    assert mailproj.cli("poll", now="2026-12-31T11:05").exit_code == 0
    rows = json.loads(mailproj.cli("replies", "--json").output)
    assert len(rows) == 1
    row = rows[0]
    assert row["kind"] == "human" and row["how"] == "in-reply-to"
    assert row["stage"] == "timeline_notice" and row["needs_action"] is True
    assert row["text"] == "Could we move the handover to 22 Jan?"
    # a suggestion for the consultant, with the words behind it; nothing acts on it
    assert row["intent"]["kind"] == "date_change" and row["intent"]["detail"] == "2027-01-22"
    assert row["intent"]["triggers"] == ["move the handover to"]
    shown = mailproj.cli("replies", "show", row["id"]).output
    assert "Could we move the handover" in shown and "timeline_notice" in shown
    assert 'Intent:   date change: 2027-01-22 (triggered by "move the handover to")' in shown
    assert "date change 2027-01-22" in mailproj.cli("replies").output
    assert (mailproj.root / ".mailflow").joinpath(row["raw"]).exists() or \
        __import__("pathlib").Path(row["raw"]).exists()
    # the client's mail is never marked read
    assert all(b"\\Seen" not in f for f in mailproj.account.flags("INBOX").values())
    # a copy of each sent message is in Sent, so the consultant sees the thread
    assert len(mailproj.account.flags("Sent")) == 1
    status = json.loads(mailproj.cli("status", "--json", now="2026-12-31T11:10").output)
    assert status["engagements"][0]["stages"]["timeline_notice"]["replies"] == ["human"]
    assert any("reply 1" in line for line in status["needs_attention"])


def test_feedback_reply_is_recorded_and_stops_the_reminder(mailproj, smtp_server):
    walk(mailproj, dates("2026-12-26", "2027-02-03"))
    fb = messages_by_step(mailproj)["feedback_request/0"]
    assert fb["state"] == "sent"
    mailproj.account.append("INBOX", reply(fb, "Great work overall; the runbook was the best "
                                               "part.", date="Wed, 3 Feb 2027 16:00:00 -0500"))
    walk(mailproj, dates("2027-02-04", "2027-02-20"))
    msgs = messages_by_step(mailproj)
    assert msgs["feedback_request/1"]["state"] == "cancelled"
    subjects = [str(m.msg["Subject"]) for m in smtp_server.client_mail]
    assert not any(s.startswith("Re: ") for s in subjects)
    eng = json.loads(mailproj.cli("engagement", "show", "northwind-2026", "--json").output)
    assert eng["feedback"].startswith("Great work overall")


def test_auto_reply_with_return_date_does_not_stop_but_delays_the_reminder(mailproj,
                                                                           smtp_server):
    walk(mailproj, dates("2026-12-26", "2027-02-03"))
    fb = messages_by_step(mailproj)["feedback_request/0"]
    ooo = reply(fb, "I am out of the office until 22 February 2027 with limited access to "
                    "email.", subject="Automatic reply: " + fb["subject"],
                extra="Auto-Submitted: auto-replied\r\n", mid="<ooo@northwind.example>")
    mailproj.account.append("INBOX", ooo)
    walk(mailproj, dates("2027-02-04", "2027-03-05"))
    msgs = messages_by_step(mailproj)
    reminder = msgs["feedback_request/1"]
    assert reminder["state"] == "sent"
    assert reminder["sent_at"] >= "2027-02-22"
    rows = json.loads(mailproj.cli("replies", "--json", "--all-kinds").output)
    assert [r["kind"] for r in rows] == ["auto_reply"]
    assert rows[0]["return_date"] == "2027-02-22"


def test_dsn_bounce_marks_message_bounced_and_flags_engagement(mailproj, smtp_server):
    walk(mailproj, dates("2026-12-26", "2026-12-30"))
    t = messages_by_step(mailproj)["timeline_notice/0"]
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.northwind.example>\r\n"
        "To: dana@whitfield-consulting.example\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(__import__('datetime').datetime(2026, 12, 30, 15, 0, tzinfo=__import__('datetime').UTC))}\r\n"  # noqa: E501
        "Message-ID: <dsn1@mx.northwind.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; tom.becker@northwind.example\r\nAction: failed\r\n"
        "Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {t['message_id']}\r\nSubject: {t['subject']}\r\n--B--\r\n").encode()
    walk(mailproj, dates("2027-01-15", "2027-01-16"))  # the recap is drafted and approved
    mailproj.account.append("INBOX", dsn)
    r = mailproj.cli("poll", now="2027-01-16T09:00")
    assert r.exit_code == 1 and "bounced for tom.becker@northwind.example" in r.output
    msgs = messages_by_step(mailproj)
    assert msgs["timeline_notice/0"]["state"] == "bounced"
    eng = json.loads(mailproj.cli("engagement", "show", "northwind-2026", "--json").output)
    assert "tom.becker@northwind.example" in eng["bounced"] and eng["flagged"]
    # later messages leave out the bounced address, even the one approved before the bounce
    walk(mailproj, dates("2027-01-17", "2027-01-21"))
    assert smtp_server.client_mail[-1].rcpt_tos == ["mj.alvarez@northwind.example"]


def test_uidvalidity_change_records_no_reply_twice(mailproj, smtp_server):
    walk(mailproj, dates("2026-12-26", "2026-12-30"))
    t = messages_by_step(mailproj)["timeline_notice/0"]
    raw = reply(t, "Thanks, all clear.")
    mailproj.account.create_folder("Clients")
    mailproj.set_config(r'^folders = \["INBOX"\]', 'folders = ["INBOX", "Clients"]')
    mailproj.account.append("Clients", raw)
    assert mailproj.cli("poll", now="2026-12-31T09:00").exit_code == 0
    mailproj.account.delete_folder("Clients")
    mailproj.account.append("Clients", raw)  # re-created: new UIDVALIDITY, same message
    assert mailproj.cli("poll", now="2026-12-31T09:30").exit_code == 0
    assert len(json.loads(mailproj.cli("replies", "--json").output)) == 1


def test_wrong_imap_password_is_one_line_and_sending_still_goes_on(mailproj, smtp_server,
                                                                     monkeypatch):
    monkeypatch.setenv(mailproj.account.password_env, "wrong-password")
    mailproj.cli("run", now="2026-12-28T10:00")
    mailproj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    r = mailproj.cli("run", now="2026-12-30T10:00")
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    lines = [ln for ln in r.output.splitlines() if "imap" in ln]
    assert lines and f"127.0.0.1:{mailproj.account.server.port}" in lines[0]
    assert "wrong-password" not in r.output
    assert len(smtp_server.client_mail) == 1  # sending went on
    assert Store(mailproj.project.state_dir).load().cursors == {}


def test_first_poll_skips_mail_that_predates_our_first_email(mailproj, smtp_server):
    mailproj.account.fill("INBOX", 300)  # the consultant's existing mail
    r = mailproj.cli("-v", "poll", now="2026-12-20T10:00")
    assert r.exit_code == 0 and "0 new replies" in r.output
    state = Store(mailproj.project.state_dir).load()
    assert state.cursors["INBOX"]["last_uid"] == 300
    walk(mailproj, dates("2026-12-26", "2026-12-30"))
    timeline = messages_by_step(mailproj)["timeline_notice/0"]
    mailproj.account.append("INBOX", reply(timeline, "Noted, thanks."))
    mailproj.account.append("INBOX", b"From: a@b.example\r\nSubject: lunch?\r\n\r\nhi\r\n")
    r = mailproj.cli("-v", "run", now="2026-12-31T11:00")
    assert "replies 1" in r.output
    assert "1 new message(s) answer nothing" in r.output


def test_sent_copy_missed_while_imap_was_down_is_made_later(mailproj, smtp_server, monkeypatch):
    mailproj.cli("run", now="2026-12-28T10:00")
    mailproj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00")
    monkeypatch.setenv(mailproj.account.password_env, "wrong-password")
    r = mailproj.cli("run", now="2026-12-30T10:00")
    # issue 17: README's code for a server not reached (was 1)
    assert r.exit_code == 6 and len(smtp_server.client_mail) == 1
    assert len([ln for ln in r.output.splitlines() if ln.strip()]) == 1  # one line, not two
    assert messages_by_step(mailproj)["timeline_notice/0"].get("sent_copy") is None
    monkeypatch.undo()
    assert mailproj.cli("run", now="2026-12-30T10:05").exit_code == 0
    assert messages_by_step(mailproj)["timeline_notice/0"]["sent_copy"] == "Sent"
    assert len(mailproj.account.flags("Sent")) == 1
    assert mailproj.cli("run", now="2026-12-30T10:10").exit_code == 0
    assert len(mailproj.account.flags("Sent")) == 1  # once
