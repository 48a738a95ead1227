"""Digests are forgotten a week after they stop counting (issue 13), through the journal.

The consultant answers the first digest with a line it does not understand, and never
approves: a digest goes every morning. Fourteen days on (`valid_for` 7 days + 7), the first
digests and the reply to them leave the state in one journal event; a reply to one of them
is refused, saying the digest is no longer kept; the old reply seen again (a UIDVALIDITY
change) is left alone; new digests never reuse a forgotten one's id.
"""

from __future__ import annotations

import email
from email.policy import default

from mailflow.store import Store
from tests.helpers import SENDER, SeamProject, dates, is_to_consultant

DRAFTED = "2026-12-28T10:00"


def to_consultant(p: SeamProject) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(a.raw, policy=default) for a in p.transport.accepted
            if is_to_consultant(a.raw)]


def answer(digest, body: str, mid: str, date: str) -> bytes:  # noqa: ANN001
    return (f"From: Dana <{SENDER[1]}>\r\nTo: mailflow <{SENDER[1]}>\r\n"
            f"Subject: Re: {digest['Subject']}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n"
            f"In-Reply-To: {digest['Message-ID']}\r\nReferences: {digest['Message-ID']}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n").encode()


def test_old_digests_are_forgotten_and_a_late_reply_is_told_why(tmp_path):
    p = SeamProject(tmp_path)
    p.add()
    p.tick(DRAFTED)
    (first,) = to_consultant(p)
    old = answer(first, "approve 9", "<a1@phone.example>", "Mon, 28 Dec 2026 11:00:00 -0500")
    p.mailbox.deliver("INBOX", old)
    p.tick("2026-12-28T11:05")
    assert "9" in to_consultant(p)[-1].get_body(("plain",)).get_content()  # "no such number"
    state = p.state()
    ids_before = set(state.digests)
    assert "reply:<a1@phone.example>" in state.digests
    for day in dates("2026-12-29", "2027-01-10"):
        p.tick(f"{day}T09:00")
    assert set(p.state().digests) >= ids_before  # 13 days on: all still kept
    p.tick("2027-01-11T12:00")  # 14 days and two hours after the first digest
    state = p.state()
    assert not ids_before & set(state.digests)  # the first digest and the reply: gone
    assert all(d.get("sent_at", d.get("received_at", "")) >= "2026-12-28T17:00"
               for d in state.digests.values())
    assert state.meta["digests_before"].startswith("2026-12-28T17:00")
    events = [e for e in Store(p.proj.project.state_dir).events()
              if e["kind"] == "digest.forgotten"]
    assert events and "d00001" in events[0]["drop"]["digests"]
    # the journal replayed from nothing gives the same tables
    rebuilt, _ = Store(p.proj.project.state_dir).load_at(trust_checkpoint=False)
    assert rebuilt.digests == state.digests and rebuilt.meta.get("digest_floor") \
        == state.meta["digest_floor"]
    # answering the forgotten first digest today: refused, and told why
    sent_before = len(to_consultant(p))
    p.mailbox.deliver("INBOX", answer(first, "approve 1", "<a2@phone.example>",
                                      "Mon, 11 Jan 2027 12:30:00 -0500"))
    p.tick("2027-01-11T12:35")
    msg = p.messages["northwind-2026/timeline_notice/0"]
    assert msg["state"] == "awaiting_approval" and not msg.get("approved_via")
    said = to_consultant(p)[-1].get_body(("plain",)).get_content()
    assert "answers no digest mailflow still keeps" in said and "Nothing was approved" in said
    # the old reply seen again: nothing to do, nothing said
    sent_now = len(to_consultant(p))
    assert sent_now == sent_before + 1
    p.mailbox.deliver("INBOX", old)
    p.tick("2027-01-11T12:40")
    assert len(to_consultant(p)) == sent_now
    # the next digests are numbered after every one ever sent
    kept = {k for k in p.state().digests if k.startswith("d")}
    p.tick("2027-01-12T09:00")
    (new,) = {k for k in p.state().digests if k.startswith("d")} - kept
    assert int(new[1:]) > max(int(k[1:]) for k in kept | ids_before if k.startswith("d"))


def test_a_run_that_mails_nothing_forgets_old_digests_too(tmp_path):
    """The consultant turns the digest off after the first one: no run mails them again,
    and the first digest is still forgotten on time (each run forgets, not only a mailing one)."""
    p = SeamProject(tmp_path)
    p.add()
    p.tick(DRAFTED)
    assert "d00001" in p.state().digests
    with p.proj.project.config_path.open("a") as f:
        f.write("\n[digest]\nenabled = false\n")
    mailed = len(to_consultant(p))
    for day in dates("2026-12-29", "2027-01-10"):
        p.tick(f"{day}T09:00")
    assert "d00001" in p.state().digests  # 13 days on: still kept
    p.tick("2027-01-11T12:00")
    assert "d00001" not in p.state().digests
    assert len(to_consultant(p)) == mailed  # nothing mailed to the consultant meanwhile
