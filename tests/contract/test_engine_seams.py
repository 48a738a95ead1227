"""The engine over the in-memory transport and mailbox: sending behaviour without sockets.

Retry, in doubt, partial delivery, throttling, Sent-folder reconciliation, replies stopping
reminders and on_reply actions, each a few ticks of a real project in milliseconds; the
same behaviours are tested end to end against aiosmtpd and Dovecot in tests/servers.
"""

from __future__ import annotations

import email
from email.policy import default
from pathlib import Path

import pytest

from mailflow.engine.outcomes import Outcome
from tests.helpers import SeamProject, reply

TO, CC = "mj.alvarez@northwind.example", "tom.becker@northwind.example"
KEY = "northwind-2026/timeline_notice/0"
DRAFT, SEND = "2026-12-28T10:00", "2026-12-30T09:30"


@pytest.fixture
def seams(tmp_path: Path) -> SeamProject:
    """The example engagement, its timeline notice drafted and approved, due at SEND."""
    p = SeamProject(tmp_path)
    p.add()
    p.tick(DRAFT)
    assert p.approve_all(DRAFT) == [KEY]
    return p


def later(minutes: int) -> str:
    """SEND plus some minutes, as a local time string."""
    h, m = divmod(30 + minutes, 60)
    return f"2026-12-30T{9 + h:02d}:{m:02d}"


def test_every_recipient_is_recorded_delivered(seams):
    report = seams.tick(SEND)
    assert report.sent == [KEY] and report.ok
    m = seams.messages[KEY]
    assert m["state"] == "sent"
    assert {r: o["outcome"] for r, o in m["recipients"].items()} == {TO: "delivered",
                                                                     CC: "delivered"}
    assert seams.transport.received_by(TO) == seams.transport.received_by(CC) == 1


def test_a_temporary_refusal_of_one_recipient_retries_only_that_recipient(seams):
    seams.transport.answer(CC, Outcome.TEMPORARY, "452 mailbox full")
    report = seams.tick(SEND)
    assert report.ok and report.retrying == [KEY]
    m = seams.messages[KEY]
    assert m["state"] == "retry" and m["remaining"] == [CC] and m["delivered_to"] == [TO]
    assert m["recipients"][CC]["outcome"] == "temporary"
    assert m["recipients"][CC]["retry_at"] == m["next_attempt"]
    seams.tick(later(1))  # not yet: backoff
    assert len(seams.client_accepted) == 1
    seams.tick(later(30))
    assert seams.messages[KEY]["state"] == "sent"
    assert [a.recipients for a in seams.client_accepted] == [[TO], [CC]]
    first, again = (email.message_from_bytes(a.raw, policy=default)
                    for a in seams.client_accepted)
    for header in ("Message-ID", "Date", "Subject", "To", "Cc"):
        assert first[header] == again[header]  # the very same message, Date included
    assert first.get_body(("plain",)).get_content() == again.get_body(("plain",)).get_content()


def test_a_permanent_refusal_of_one_recipient_is_flagged_and_never_retried(seams):
    seams.transport.answer(CC, Outcome.PERMANENT, "550 user unknown", address_refused=True)
    report = seams.tick(SEND)
    assert any(f"refused for {CC}" in p for p in report.problems)
    m = seams.messages[KEY]
    assert m["state"] == "sent" and m["recipients"][CC]["outcome"] == "permanent"
    eng = seams.state().engagements["northwind-2026"]
    assert CC in eng["bounced"] and eng["flagged"]
    for minutes in (30, 120, 600):
        seams.tick(later(minutes))
    assert seams.transport.received_by(CC) == 0 and seams.transport.received_by(TO) == 1


def test_temporary_refusals_back_off_then_fail_after_the_lifetime(seams):
    seams.proj.set_config(r"^retry_lifetime_hours = .*$", "retry_lifetime_hours = 2")
    for rcpt in (TO, CC):
        seams.transport.answer(rcpt, Outcome.TEMPORARY, "451 greylisted", times=100)
    failed_at = None
    for minutes in range(0, 4 * 60, 5):
        report = seams.tick(later(minutes))
        if seams.messages[KEY]["state"] == "failed":
            failed_at = minutes
            assert any("temporary refusals for 2 hours" in p for p in report.problems)
            break
    assert failed_at is not None
    attempts = seams.messages[KEY]["attempts_at"]
    assert 3 <= len(attempts) < 10  # spaced out, not every five minutes
    assert seams.client_accepted == []


def test_in_doubt_is_never_resent_blindly_and_a_resend_goes_only_where_in_doubt(seams):
    seams.transport.answer(TO, Outcome.DELIVERED)
    seams.transport.answer(CC, Outcome.IN_DOUBT, "connection lost after the message was sent")
    report = seams.tick(SEND)
    assert any(f"{KEY}: in doubt" in p for p in report.problems)
    m = seams.messages[KEY]
    assert m["state"] == "in_doubt" and m["delivered_to"] == [TO]
    for minutes in (10, 60, 600):
        seams.tick(later(minutes))
    assert len(seams.client_accepted) == 1  # nothing resent on its own
    seams.resolve(KEY, sent=False, when="2026-12-31T09:00")
    seams.tick("2026-12-31T10:00")
    assert [a.recipients for a in seams.client_accepted] == [[TO, CC], [CC]]
    assert seams.messages[KEY]["state"] == "sent"


def test_an_in_doubt_message_found_in_sent_is_settled(seams):
    seams.transport.answer_message(Outcome.IN_DOUBT, "connection lost")
    seams.tick(SEND)
    assert seams.messages[KEY]["state"] == "in_doubt"
    # the provider filed its own copy (as Gmail and Microsoft 365 do for SMTP submissions)
    seams.mailbox.deliver("Sent", seams.client_accepted[0].raw)
    seams.tick(later(10))
    m = seams.messages[KEY]
    assert m["state"] == "sent" and "found in Sent" in m["note"]
    assert {o["outcome"] for o in m["recipients"].values()} == {"delivered"}


def test_a_sent_copy_mailflow_made_itself_proves_nothing_about_a_later_attempt(seams):
    # To delivered, Cc refused for now: mailflow files the copy in Sent itself
    seams.transport.answer(CC, Outcome.TEMPORARY, "452 mailbox full")
    seams.tick(SEND)
    m = seams.messages[KEY]
    assert m["state"] == "retry" and m["copied_at"] and m["sent_copy"] == "Sent"
    assert len(seams.mailbox.appended) == 1
    # the retry to the Cc ends in doubt (a kill, a lost connection)
    seams.transport.answer(CC, Outcome.IN_DOUBT, "connection lost")
    report = seams.tick(later(30))
    assert seams.messages[KEY]["state"] == "in_doubt"
    report = seams.tick(later(40))
    m = seams.messages[KEY]
    assert m["state"] == "in_doubt"  # never settled by our own copy
    assert m["recipients"][CC]["outcome"] == "in_doubt" and m["delivered_to"] == [TO]
    assert any("proves nothing" in n for n in report.notes)


def test_the_rate_limit_spreads_a_batch_over_ticks(tmp_path):
    p = SeamProject(tmp_path)
    p.proj.set_config(r"^per_minute = .*$", "per_minute = 2")
    p.add_clients(5)
    p.tick(DRAFT)
    assert len(p.approve_all(DRAFT)) == 5
    sent = [len(p.tick(SEND).sent), len(p.tick(SEND).sent), len(p.tick(later(1)).sent),
            len(p.tick(later(2)).sent), len(p.tick(later(3)).sent)]
    assert sent == [2, 0, 2, 1, 0]
    assert all(p.transport.received_by(f"to{i}@client{i}.example") == 1 for i in range(5))


def test_a_server_that_cannot_be_reached_changes_nothing(seams):
    seams.transport.down = "connection refused"
    report = seams.tick(SEND)
    assert report.problems and report.deferred == 1
    m = seams.messages[KEY]
    assert m["state"] == "approved" and not m.get("attempts_at")
    seams.transport.down = None
    assert seams.tick(later(5)).sent == [KEY]


def test_one_message_that_cannot_be_sent_never_stops_the_batch(tmp_path):
    p = SeamProject(tmp_path)
    names = {"a": "jürgen@bücher.example", "b": "contact@bücher.example", "c": "x@c.example"}
    for eid, to in names.items():
        path = p.proj.write_engagement(eid, p.proj.example(**{
            r'^id = "northwind-2026"': f'id = "{eid}"',
            r"mj\.alvarez@northwind\.example": to,
            r"tom\.becker@northwind\.example": f"cc@{eid}.example"}))
        p.add(path)
    p.tick(DRAFT)
    assert len(p.approve_all(DRAFT)) == 3
    report = p.tick(SEND)
    states = {k.split("/")[0]: m["state"] for k, m in p.messages.items()
              if "timeline_notice" in k}
    # no SMTPUTF8 on this server: the non-ASCII mailbox fails at once, never in doubt
    assert states == {"a": "failed", "b": "sent", "c": "sent"}
    said = ("a/timeline_notice/0: failed: not sent: a non-ASCII address "
            "(jürgen@xn--bcher-kva.example) needs SMTPUTF8")
    assert any(said in line for line in report.problems), report.problems
    assert p.transport.received_by("contact@xn--bcher-kva.example") == 1
    assert p.transport.received_by("jürgen@xn--bcher-kva.example") == 0


def test_a_missing_body_blocks_only_its_own_message(tmp_path):
    p = SeamProject(tmp_path)
    for eid in ("a", "b"):
        path = p.proj.write_engagement(eid, p.proj.example(**{
            r'^id = "northwind-2026"': f'id = "{eid}"', r"^client = .*$": f'client = "{eid}"',
            r"mj\.alvarez@northwind\.example": f"to@{eid}.example"}))
        p.add(path)
    p.tick(DRAFT)
    p.approve_all(DRAFT)
    lost = p.messages["a/timeline_notice/0"]["body"]
    p.store.body_path(lost).unlink()
    report = p.tick(SEND)
    assert report.sent == ["b/timeline_notice/0"]
    assert any("a/timeline_notice/0: not sent:" in line and "missing" in line
               for line in report.problems)
    assert p.messages["a/timeline_notice/0"]["state"] == "blocked"


def test_a_reply_stops_the_stage_and_on_reply_flags_it(seams):
    seams.tick(SEND)
    sent = seams.messages[KEY]
    seams.mailbox.deliver("INBOX", reply(sent, "Could we move the handover a week?"))
    report = seams.tick(later(60))
    assert report.replies == 1
    got = next(iter(seams.state().replies.values()))
    assert got["message"] == KEY and got["needs_action"]  # on_reply = needs_action


def test_a_reply_to_the_feedback_request_is_recorded_and_stops_its_reminder(seams):
    for day in ("2026-12-30", "2027-01-12", "2027-01-14", "2027-01-18", "2027-01-20",
                "2027-01-22", "2027-01-26", "2027-01-28", "2027-02-01", "2027-02-02",
                "2027-02-03"):
        seams.tick(f"{day}T09:00")
        seams.approve_all(f"{day}T09:00")
        seams.tick(f"{day}T10:00")
    feedback = "northwind-2026/feedback_request/0"
    assert seams.messages[feedback]["state"] == "sent"
    seams.mailbox.deliver("INBOX", reply(seams.messages[feedback], "It went very well, thanks.",
                                         mid="<fb@northwind.example>"))
    seams.tick("2027-02-04T10:00")
    eng = seams.state().engagements["northwind-2026"]
    assert "It went very well" in eng["feedback"]  # on_reply = feedback
    for day in ("2027-02-10", "2027-02-12", "2027-02-16"):
        seams.tick(f"{day}T10:00")
    reminder = seams.messages.get("northwind-2026/feedback_request/1")
    assert reminder is None or reminder["state"] in ("cancelled",)
    assert seams.transport.received_by(TO) == sum(
        1 for m in seams.messages.values() if m.get("sent_at"))


def test_a_transport_that_breaks_on_one_message_leaves_it_in_doubt_and_the_batch_goes_on(
        tmp_path):
    from mailflow.transport.memory import MemoryTransport

    class Flaky(MemoryTransport):
        def send(self, raw, sender, recipients):  # noqa: ANN001, ANN201
            if "to@a.example" in recipients:
                raise RuntimeError("a bug")
            return super().send(raw, sender, recipients)

    p = SeamProject(tmp_path)
    p.transport = Flaky()
    for eid in ("a", "b"):
        path = p.proj.write_engagement(eid, p.proj.example(**{
            r'^id = "northwind-2026"': f'id = "{eid}"', r"^client = .*$": f'client = "{eid}"',
            r"mj\.alvarez@northwind\.example": f"to@{eid}.example"}))
        p.add(path)
    p.tick(DRAFT)
    p.approve_all(DRAFT)
    report = p.tick(SEND)
    assert report.sent == ["b/timeline_notice/0"]
    a = p.messages["a/timeline_notice/0"]
    assert a["state"] == "in_doubt" and a["recipients"]["to@a.example"]["outcome"] == "in_doubt"
    assert any("a/timeline_notice/0: in doubt: the transport failed (RuntimeError: a bug)"
               in line for line in report.problems)
