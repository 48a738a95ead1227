"""Reports and unreadable mail end to end: APPENDed to a real Dovecot, polled (issues 12, 14)."""

from __future__ import annotations

import json

import pytest

from mailflow.store import Store
from tests.helpers import dates, polling_project, walk
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

HEAD = ("To: dana@whitfield-consulting.example\r\nDate: Wed, 30 Dec 2026 15:00:00 -0500\r\n"
        "MIME-Version: 1.0\r\n")


@pytest.fixture
def mailproj(proj, imap_account):
    """A project that sends to the test SMTP server and polls the test Dovecot account."""
    polling_project(proj, imap_account)
    walk(proj, dates("2026-12-26", "2026-12-30"))
    return proj


def _timeline(proj) -> dict:
    state = Store(proj.project.state_dir).load()
    return next(m for m in state.messages.values()
                if m["stage"] == "timeline_notice" and m["step"] == 0)


def _report(msg: dict, report_type: str, block: str, mid: str, subject: str) -> bytes:
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.northwind.example>\r\n{HEAD}"
        f"Subject: {subject}\r\nMessage-ID: {mid}\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nA report.\r\n"
        f"--B\r\nContent-Type: message/{report_type}\r\n\r\n{block}\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {msg['message_id']}\r\nSubject: {msg['subject']}\r\n--B--\r\n").encode()


def _rows(proj) -> list[dict]:
    return json.loads(proj.cli("replies", "--json", "--all-kinds").output)


def test_an_unreadable_reply_is_kept_recorded_matched_and_flagged(mailproj, smtp_server):
    t = _timeline(mailproj)
    deep = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
                   for i in range(1000))
    raw = (f"From: Maria Jose Alvarez <mj.alvarez@northwind.example>\r\n{HEAD}"
           f"Subject: Re: {t['subject']}\r\nMessage-ID: <deep@northwind.example>\r\n"
           f"In-Reply-To: {t['message_id']}\r\n{deep}Content-Type: text/plain\r\n\r\nYes.\r\n"
           ).encode()
    mailproj.account.append("INBOX", raw)
    r = mailproj.cli("poll", now="2026-12-31T11:00")
    assert r.exit_code != 0 and "cannot read" in r.output
    rows = _rows(mailproj)
    assert len(rows) == 1
    row = rows[0]
    assert row["kind"] == "unreadable" and row["needs_action"] is True
    assert row["stage"] == "timeline_notice" and row["how"] == "in-reply-to"
    from pathlib import Path
    assert Path(row["raw"]).read_bytes() == raw.replace(b"\r\n", b"\n") or \
        Path(row["raw"]).read_bytes() == raw
    # nothing was acted on: the engagement runs on, the message is still sent
    assert _timeline(mailproj)["state"] == "sent"
    assert mailproj.cli("poll", now="2026-12-31T11:05").exit_code == 0
    assert len(_rows(mailproj)) == 1


def test_a_delay_notice_never_suppresses_the_address(mailproj, smtp_server):
    t = _timeline(mailproj)
    mailproj.account.append("INBOX", _report(
        t, "delivery-status", "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; "
        "tom.becker@northwind.example\r\nAction: delayed\r\nStatus: 4.4.7\r\n",
        "<delay1@mx.northwind.example>", "Delivery Status Notification (Delay)"))
    assert mailproj.cli("poll", now="2026-12-31T11:00").exit_code == 0
    (row,) = _rows(mailproj)
    assert row["kind"] == "delay" and row["needs_action"] is False
    assert row["bounce"]["recipients"][0]["action"] == "delayed"
    assert _timeline(mailproj)["state"] == "sent"
    eng = json.loads(mailproj.cli("engagement", "show", "northwind-2026", "--json").output)
    assert not eng.get("bounced")


def test_a_bounce_suppresses_only_recipients_the_message_was_sent_to(mailproj, smtp_server):
    t = _timeline(mailproj)
    mailproj.account.append("INBOX", _report(
        t, "delivery-status", "Reporting-MTA: dns; mx\r\n\r\n"
        "Final-Recipient: rfc822; team@lists.northwind.example\r\nAction: failed\r\n"
        "Status: 5.1.1\r\n\r\nFinal-Recipient: rfc822; tom.becker@northwind.example\r\n"
        "Action: failed\r\nStatus: 5.2.2\r\n",
        "<dsn2@mx.northwind.example>", "Undelivered Mail Returned to Sender"))
    r = mailproj.cli("poll", now="2026-12-31T11:00")
    assert "bounced for tom.becker@northwind.example" in r.output
    eng = json.loads(mailproj.cli("engagement", "show", "northwind-2026", "--json").output)
    assert eng["bounced"] == ["tom.becker@northwind.example"]


def test_an_abuse_report_is_flagged_and_never_counts_as_a_reply(mailproj, smtp_server):
    t = _timeline(mailproj)
    mailproj.account.append("INBOX", _report(
        t, "feedback-report", "Feedback-Type: abuse\r\nUser-Agent: x/1\r\nVersion: 1\r\n",
        "<arf1@provider.example>", "Abuse report"))
    assert mailproj.cli("poll", now="2026-12-31T11:00").exit_code == 0
    (row,) = _rows(mailproj)
    assert row["kind"] == "report" and row["needs_action"] is True
    status = json.loads(mailproj.cli("status", "--json", now="2026-12-31T11:10").output)
    stage = status["engagements"][0]["stages"]["timeline_notice"]
    assert stage["replies"] == ["report"] and "replied" not in json.dumps(stage)
    assert status["engagements"][0]["flagged"]


def test_an_unreadable_message_that_matches_nothing_is_still_kept_and_flagged(mailproj,
                                                                               smtp_server):
    deep = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
                   for i in range(1000))
    raw = (f"From: someone@elsewhere.example\r\n{HEAD}Subject: hello\r\n"
           f"Message-ID: <stray@elsewhere.example>\r\n{deep}Content-Type: text/plain\r\n\r\nx\r\n"
           ).encode()
    mailproj.account.append("INBOX", raw)
    r = mailproj.cli("poll", now="2026-12-31T11:00")
    assert r.exit_code != 0 and "cannot read" in r.output
    (row,) = _rows(mailproj)
    assert row["kind"] == "unreadable" and row["engagement"] is None and row["needs_action"]
    assert mailproj.cli("replies", "show", row["id"]).exit_code == 0
    assert mailproj.cli("status", now="2026-12-31T11:05").exit_code in (0, 1)
