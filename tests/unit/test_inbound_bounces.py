"""Delivery reports (issue 14): every failed recipient with its status, delays, successes, ARF;
and a message whose MIME cannot be read (issue 12) is kept with the headers that could be read."""

from __future__ import annotations

import pytest

from mailflow.inbound import classify
from mailflow.inbound.bounces import status_in
from mailflow.inbound.message import parse_inbound

ORIGINAL = "<20270105.timeline.abc@whitfield-consulting.example>"
RETURNED = (
    f"Message-ID: {ORIGINAL}\nFrom: Dana <dana@whitfield-consulting.example>\n"
    "To: team@lists.client.example\nSubject: Offboarding timeline\n\nHi team,\n"
)


def _mail(headers: str, body: str) -> bytes:
    return (headers + "Date: Tue, 05 Jan 2027 10:00:00 +0000\nMIME-Version: 1.0\n\n" + body
            ).replace("\n", "\r\n").encode()


def _dsn(blocks: str, extra: str = "", subject: str = "Delivery Status Notification") -> bytes:
    return _mail(
        f"From: Mail Delivery Subsystem <mailer-daemon@mx.client.example>\n"
        f"To: dana@whitfield-consulting.example\nSubject: {subject}\n{extra}"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n',
        "--B\nContent-Type: text/plain\n\nA report.\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.client.example\n\n"
        f"{blocks}\n--B\nContent-Type: text/rfc822-headers\n\n{RETURNED}--B--\n")


EXIM = _mail(
    "From: Mail Delivery System <Mailer-Daemon@mx.client.example>\n"
    "To: dana@whitfield-consulting.example\nSubject: Mail delivery failed: returning message "
    "to sender\nAuto-Submitted: auto-replied\nContent-Type: text/plain\n",
    "This message was created automatically by mail delivery software.\n\n"
    "A message that you sent could not be delivered to one or more of its\n"
    "recipients. This is a permanent error. The following address(es) failed:\n\n"
    "  tom@client.example\n    host mx.client.example [192.0.2.1]\n"
    "    SMTP error from remote mail server after RCPT TO:<tom@client.example>:\n"
    "    550 5.1.1 <tom@client.example>: Recipient address rejected: User unknown\n"
    "  ana@client.example\n    host mx.client.example [192.0.2.1]\n"
    "    SMTP error from remote mail server after RCPT TO:<ana@client.example>:\n"
    "    552 5.2.2 <ana@client.example>: Mailbox full\n\n"
    "------ This is a copy of the message, including all the headers. ------\n\n"
    + RETURNED + "Reply to help@lists.client.example\n",
)


def test_a_plain_text_exim_bounce_names_every_failed_recipient_with_its_status():
    got = parse_inbound(EXIM)
    assert got.kind == classify.BOUNCE
    assert [(r.address, r.status, r.action) for r in got.delivery] == [
        ("tom@client.example", "5.1.1", "failed"), ("ana@client.example", "5.2.2", "failed")]
    assert got.bounce.recipient == "tom@client.example"
    assert got.bounce.original_message_id == ORIGINAL


def test_the_mailing_list_address_of_the_returned_message_is_not_a_failed_recipient():
    addresses = {r.address for r in parse_inbound(EXIM).delivery}
    assert "team@lists.client.example" not in addresses
    assert "help@lists.client.example" not in addresses


def test_a_multi_recipient_dsn_names_each_recipient_and_only_failures_fail():
    got = parse_inbound(_dsn(
        "Final-Recipient: rfc822; ok@client.example\nAction: delivered\nStatus: 2.0.0\n\n"
        "Final-Recipient: rfc822; gone@client.example\nAction: failed\nStatus: 5.0.0\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\n\n"
        "Final-Recipient: rfc822; full@client.example\nAction: failed\nStatus: 5.2.2\n"))
    assert got.kind == classify.BOUNCE
    assert [(r.address, r.status, r.action) for r in got.delivery] == [
        ("ok@client.example", "2.0.0", "delivered"), ("gone@client.example", "5.1.1", "failed"),
        ("full@client.example", "5.2.2", "failed")]


@pytest.mark.parametrize("extra", ["Precedence: bulk\n", "Auto-Submitted: auto-replied\n",
                                   "Precedence: junk\nX-Autoreply: yes\n"])
def test_a_dsn_marked_bulk_or_auto_submitted_is_still_a_bounce(extra):
    got = parse_inbound(_dsn("Final-Recipient: rfc822; gone@client.example\nAction: failed\n"
                             "Status: 5.1.1\n", extra))
    assert got.kind == classify.BOUNCE


def test_delay_and_success_notices_get_their_own_kinds():
    delay = parse_inbound(_dsn("Final-Recipient: rfc822; slow@client.example\n"
                               "Action: delayed\nStatus: 4.4.7\n",
                               subject="Delivery Status Notification (Delay)"))
    assert delay.kind == classify.DELAY and delay.bounce is None
    assert [r.action for r in delay.delivery] == ["delayed"]
    success = parse_inbound(_dsn("Final-Recipient: rfc822; ok@client.example\n"
                                 "Action: delivered\nStatus: 2.0.0\n",
                                 subject="Delivery Status Notification (Success)"))
    assert success.kind == classify.DELIVERED and success.bounce is None


def test_a_plain_text_delay_warning_is_a_delay():
    got = parse_inbound(_mail(
        "From: Mail Delivery System <mailer-daemon@mx.client.example>\nTo: dana@x.example\n"
        "Subject: Warning: message 1abc delayed 24 hours\nContent-Type: text/plain\n",
        "This message was created automatically by mail delivery software.\n"
        "A message that you sent has not yet been delivered to one or more of its recipients\n"
        "after more than 24 hours on the queue. It will continue to try.\n\n"
        "  slow@client.example\n    Delay reason: 451 4.4.1 timeout\n"))
    assert got.kind == classify.DELAY
    assert [(r.address, r.action) for r in got.delivery] == [("slow@client.example", "delayed")]


def test_an_arf_report_is_a_report_never_a_reply():
    got = parse_inbound(_mail(
        "From: abuse@provider.example\nTo: dana@x.example\nSubject: Abuse report\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\n',
        "--B\nContent-Type: text/plain\n\nThis is an abuse report.\n"
        "--B\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\n"
        "User-Agent: x/1\nVersion: 1\n--B\nContent-Type: text/rfc822-headers\n\n"
        f"{RETURNED}--B--\n"))
    assert got.kind == classify.REPORT


@pytest.mark.parametrize("sender", ["MAILER-DAEMON <>", "mailer-daemon", "<>",
                                    "Mail Delivery System <bounce-handler@mx.client.example>"])
@pytest.mark.parametrize("subject", ["Mail Delivery Problem", "Undelivered mail",
                                     "Delivery status notification", "failure notice"])
def test_mail_system_senders_and_failure_subjects(sender, subject):
    got = parse_inbound(_mail(
        f"From: {sender}\nTo: dana@x.example\nSubject: {subject}\nContent-Type: text/plain\n",
        "<gone@client.example>: host mx said: 550 5.1.1 User unknown\n"))
    assert got.kind == classify.BOUNCE
    assert [(r.address, r.status) for r in got.delivery] == [("gone@client.example", "5.1.1")]


def test_a_person_writing_about_a_failed_delivery_is_not_a_bounce():
    got = parse_inbound(_mail(
        "From: Tom <tom@client.example>\nTo: dana@x.example\nSubject: Undelivered mail\n"
        "Content-Type: text/plain\n",
        "Your last mail could not be delivered to ana@client.example, she left.\n"))
    assert got.kind == classify.HUMAN


def test_version_numbers_are_not_status_codes():
    assert status_in("Postfix version 2.1.5 at mx.client.example") is None
    assert status_in("host said: 550 5.1.1 user unknown (running v2.1.5)") == "5.1.1"
    assert status_in("Sorry, no mailbox here by that name. (#5.1.1)") == "5.1.1"
    assert status_in("server 10.1.2.3 said 550 No such user") == "5.0.0"


def _nested(depth: int) -> bytes:
    head = ("From: Maria <mj@client.example>\r\nTo: dana@x.example\r\nSubject: Re: Handover\r\n"
            f"Message-ID: <deep@client.example>\r\nIn-Reply-To: {ORIGINAL}\r\n"
            "Date: Tue, 05 Jan 2027 10:00:00 +0000\r\nMIME-Version: 1.0\r\n").encode()
    opening = b"".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
                       for i in range(depth))
    closing = b"".join(f"\r\n--b{i}--\r\n".encode() for i in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\r\n\r\nYes.\r\n" + closing


def test_mime_nested_a_thousand_levels_is_kept_as_unreadable_with_its_headers():
    got = parse_inbound(_nested(1000))
    assert got.kind == classify.UNREADABLE and got.unreadable
    assert got.in_reply_to == (ORIGINAL,) and got.message_id == "<deep@client.example>"
    assert got.from_addr == "mj@client.example" and got.subject == "Re: Handover"
    assert any("unreadable MIME" in p for p in got.problems)
    assert got.full_text  # the raw text is there for a person to read


def test_moderately_nested_mime_is_still_read():
    got = parse_inbound(_nested(20))
    assert got.kind == classify.HUMAN and got.text == "Yes."

