"""What mailflow trusts, end to end: forged replies and fake bounces APPENDed to a real Dovecot,
a broken IMAP login between a reply and a reminder, and what mailflow did on its own."""

from __future__ import annotations

import json

import pytest

from tests.helpers import (
    DRAFTED,
    KEY,
    SEND_AT,
    add,
    dates,
    messages_by_step,
    polling_project,
    reply,
    walk,
)
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

AUTHSERV = "mx.whitfield-consulting.example"


@pytest.fixture
def mailproj(proj, imap_account):
    """A project sending to the test SMTP server, polling Dovecot, trusting AUTHSERV's verdicts."""
    return polling_project(proj, imap_account, f'authserv_id = "{AUTHSERV}"\n')


def engagement(proj) -> dict:
    return json.loads(proj.cli("engagement", "show", "northwind-2026", "--json").output)


def replies(proj) -> list[dict]:
    return json.loads(proj.cli("replies", "--json", "--all-kinds").output)


def test_a_strangers_unsubscribe_with_a_real_references_header_pauses_nothing(mailproj):
    walk(mailproj, dates("2026-12-26", "2026-12-30"))
    timeline = messages_by_step(mailproj)["timeline_notice/0"]
    mailproj.account.append("INBOX", reply(timeline, "unsubscribe", sender="eve@evil.example",
                                           mid="<eve1@evil.example>"))
    r = mailproj.cli("run", now="2026-12-31T11:00")
    assert r.exit_code == 1
    told = [ln for ln in r.output.splitlines() if "not acted on" in ln]
    assert len(told) == 1 and "eve@evil.example is not a contact" in told[0]
    assert "mailflow replies accept 1" in told[0]
    assert engagement(mailproj)["status"] == "active"
    (row,) = replies(mailproj)
    assert row["kind"] == "unsubscribe" and row["trusted"] is False and row["needs_action"]
    # told once: the next run has nothing new to say
    assert mailproj.cli("run", now="2026-12-31T11:05").exit_code == 0
    shown = mailproj.cli("replies", "show", "1").output
    assert "not acted on" in shown and "replies accept 1" in shown
    # the consultant decides it was genuine after all
    r = mailproj.cli("replies", "accept", "1", now="2026-12-31T11:10")
    assert r.exit_code == 0, r.output
    assert engagement(mailproj)["status"] == "paused"
    again = mailproj.cli("replies", "accept", "1", now="2026-12-31T11:11")
    assert again.exit_code == 4 and "already accepted" in again.output
    assert mailproj.cli("replies", "accept", "99").exit_code == 3


def test_a_contacts_unsubscribe_pauses_and_a_domain_colleague_needs_the_setting(mailproj):
    walk(mailproj, dates("2026-12-26", "2026-12-30"))
    timeline = messages_by_step(mailproj)["timeline_notice/0"]
    mailproj.account.append("INBOX", reply(timeline, "Please unsubscribe me.",
                                           sender="cfo@northwind.example", mid="<c1@nw>"))
    assert mailproj.cli("poll", now="2026-12-31T09:00").exit_code == 1
    assert engagement(mailproj)["status"] == "active"
    mailproj.set_config(r'^authserv_id = .*$', f'authserv_id = "{AUTHSERV}"\n'
                        'trust_contact_domains = true')
    mailproj.account.append("INBOX", reply(timeline, "Please unsubscribe me.",
                                           sender="cfo@northwind.example", mid="<c2@nw>"))
    assert mailproj.cli("poll", now="2026-12-31T09:10").exit_code == 0
    assert engagement(mailproj)["status"] == "paused"


@pytest.mark.parametrize("verdict", ["dmarc=fail header.from=northwind.example",
                                     "spf=fail smtp.mailfrom=northwind.example",
                                     "dkim=fail header.d=northwind.example"])
def test_the_clients_address_failing_authentication_is_never_acted_on(mailproj, smtp_server,
                                                                      verdict):
    walk(mailproj, dates("2026-12-26", "2027-02-03"))
    fb = messages_by_step(mailproj)["feedback_request/0"]
    assert fb["state"] == "sent"
    forged = reply(fb, "Loved it, no need to follow up.", date="Wed, 3 Feb 2027 16:00:00 -0500",
                   extra=f"Authentication-Results: {AUTHSERV}; {verdict}\r\n")
    mailproj.account.append("INBOX", forged)
    r = mailproj.cli("run", now="2027-02-03T17:00")
    assert r.exit_code == 1 and "not acted on" in r.output
    walk(mailproj, dates("2027-02-04", "2027-02-20"))
    assert "feedback" not in engagement(mailproj)
    # not trusted, so it stopped nothing: the automatic reminder still went out
    assert messages_by_step(mailproj)["feedback_request/1"]["state"] == "sent"
    (row,) = replies(mailproj)
    assert row["trusted"] is False and verdict.split()[0] in row["distrust"]
    # nor does it tick the checklist's "feedback received"
    (entry,) = json.loads(mailproj.cli("checklist", "northwind-2026", "--json").output)
    (feedback,) = [i for i in entry["items"] if i["id"] == "feedback"]
    assert not feedback["done"]


def test_a_pass_from_the_trusted_server_and_a_fail_from_another_server_are_acted_on(
        mailproj, smtp_server):
    walk(mailproj, dates("2026-12-26", "2027-02-03"))
    fb = messages_by_step(mailproj)["feedback_request/0"]
    extra = (f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=northwind.example;"
             " dmarc=pass header.from=northwind.example\r\n"
             "Authentication-Results: relay.evil.example; dmarc=fail\r\n")
    mailproj.account.append("INBOX", reply(fb, "Great work overall.", extra=extra,
                                           date="Wed, 3 Feb 2027 16:00:00 -0500"))
    walk(mailproj, dates("2027-02-04", "2027-02-20"))
    assert engagement(mailproj)["feedback"].startswith("Great work overall")
    assert messages_by_step(mailproj)["feedback_request/1"]["state"] == "cancelled"


def _dsn(sender: str, message_id: str | None, recipient: str, return_path: str = "<>",
         references: str = "<x@y>") -> bytes:
    returned = (f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\n"
                "Subject: Our engagement\r\n" if message_id else "")
    return (f"Return-Path: {return_path}\r\nFrom: {sender}\r\n"
            "To: dana@whitfield-consulting.example\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\n"
            "Date: Wed, 30 Dec 2026 15:00:00 +0000\r\n"
            f"Message-ID: <dsn-{abs(hash((sender, message_id)))}@mx.example>\r\n"
            f"References: {references}\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            f"{returned}--B--\r\n").encode()


def test_a_fake_bounce_suppresses_nothing_and_a_real_one_does(mailproj, smtp_server):
    walk(mailproj, dates("2026-12-26", "2026-12-30"))
    t = messages_by_step(mailproj)["timeline_notice/0"]
    client = "mj.alvarez@northwind.example"
    # a stranger's report naming our message: not from a mail system
    mailproj.account.append("INBOX", _dsn("Eve <eve@evil.example>", t["message_id"], client,
                                          return_path="<eve@evil.example>"))
    # a daemon's report that does not carry our message (only a References header)
    mailproj.account.append("INBOX", _dsn("MAILER-DAEMON@mx.evil.example", None, client,
                                          references=t["message_id"]))
    r = mailproj.cli("poll", now="2026-12-31T09:00")
    assert r.exit_code == 1 and r.output.count("not acted on") == 2
    assert mailproj.cli("replies").output.count("bounce ! (flagged)") == 2  # shown by default
    assert "bounced" not in engagement(mailproj) or not engagement(mailproj)["bounced"]
    assert messages_by_step(mailproj)["timeline_notice/0"]["state"] == "sent"
    # the real one: from the null sender, carrying the Message-ID we sent
    mailproj.account.append("INBOX", _dsn("MAILER-DAEMON@mx.northwind.example",
                                          t["message_id"], client))
    r = mailproj.cli("poll", now="2026-12-31T09:10")
    assert r.exit_code == 1 and f"bounced for {client}" in r.output
    assert engagement(mailproj)["bounced"] == [client]
    assert messages_by_step(mailproj)["timeline_notice/0"]["state"] == "bounced"


def _reminder_due(mailproj) -> dict:
    """The feedback request sent and its automatic reminder approved; nothing replied yet."""
    walk(mailproj, dates("2026-12-26", "2027-02-08"))
    msgs = messages_by_step(mailproj)
    assert msgs["feedback_request/0"]["state"] == "sent"
    reminder = msgs["feedback_request/1"]
    assert reminder["state"] == "approved" and reminder["due"] < "2027-02-10"
    return msgs["feedback_request/0"]


def test_a_reminder_is_held_while_imap_is_down_and_a_reply_read_later_stops_it(
        mailproj, smtp_server, monkeypatch):
    fb = _reminder_due(mailproj)
    mailproj.account.append("INBOX", reply(fb, "No need to follow up, thanks!",
                                           date="Mon, 8 Feb 2027 16:00:00 -0500"))
    monkeypatch.setenv(mailproj.account.password_env, "wrong-password")
    sent_before = len(smtp_server.client_mail)
    first = mailproj.cli("run", now="2027-02-10T10:00")
    assert first.exit_code in (1, 6)  # 6: IMAP could not be reached (issue 13)
    held = [ln for ln in first.output.splitlines() if "held while replies cannot be read" in ln]
    assert len(held) == 1 and "feedback_request/1" in held[0]
    later = mailproj.cli("run", now="2027-02-10T10:05")
    assert "held while replies" not in later.output  # said once, not every five minutes
    assert len(smtp_server.client_mail) == sent_before  # nothing went out blind
    monkeypatch.undo()
    assert mailproj.cli("run", now="2027-02-10T10:10").exit_code == 0
    assert messages_by_step(mailproj)["feedback_request/1"]["state"] == "cancelled"
    assert len(smtp_server.client_mail) == sent_before


def test_a_held_reminder_goes_out_on_the_first_run_after_a_successful_poll(
        mailproj, smtp_server, monkeypatch):
    _reminder_due(mailproj)
    monkeypatch.setenv(mailproj.account.password_env, "wrong-password")
    sent_before = len(smtp_server.client_mail)
    assert mailproj.cli("run", now="2027-02-10T10:00").exit_code in (1, 6)
    assert messages_by_step(mailproj)["feedback_request/1"]["state"] == "approved"
    monkeypatch.undo()
    assert mailproj.cli("run", now="2027-02-10T10:05").exit_code == 0
    assert messages_by_step(mailproj)["feedback_request/1"]["state"] == "sent"
    assert len(smtp_server.client_mail) == sent_before + 1
    # a later outage is a new one: said again
    monkeypatch.setenv(mailproj.account.password_env, "wrong-password")
    assert messages_by_step(mailproj)["feedback_request/1"].get("held_for_replies") is None


def test_a_replaced_to_address_is_not_sent_on_the_old_approval(proj, smtp_server):
    add(proj)
    proj.cli("run", now=DRAFTED)  # drafts it (and says it needs you)
    assert proj.cli("drafts", "approve", KEY, now=DRAFTED).exit_code == 0
    path = proj.write_engagement("example", proj.example(
        **{r"mj\.alvarez@northwind\.example": "mj@northwind-new.example"}))
    r = proj.cli("engagement", "add", "--replace", str(path), now=DRAFTED)
    assert "approval withdrawn: the recipients changed" in r.output
    proj.cli("run", now=SEND_AT)  # says the draft needs you
    assert smtp_server.client_mail == []  # the old approval sent nothing
    assert proj.cli("drafts", "approve", KEY, now=SEND_AT).exit_code == 0
    assert proj.cli("run", now=SEND_AT).exit_code == 0
    (sent,) = smtp_server.client_mail
    assert "mj@northwind-new.example" in sent.rcpt_tos
    assert "mj.alvarez@northwind.example" not in sent.rcpt_tos
