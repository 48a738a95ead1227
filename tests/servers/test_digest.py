"""The digest round trip (issue 13): sent through aiosmtpd, answered in a real Dovecot, polled.

A reply approves only when it threads to a digest mailflow sent (its Message-ID carries the
secret token), comes from the consultant's address, passed DKIM/DMARC per the trusted server,
the digest is still valid and the draft unchanged since; otherwise nothing is approved and the
confirmation says why.
"""

from __future__ import annotations

import pytest

from mailflow.store import Store
from tests.helpers import SENDER, polling_project, told_only
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

DRAFTED = "2026-12-28T10:00"  # the timeline notice is drafted; the 08:30 digest slot is past
KEY = "northwind-2026/timeline_notice/0"
TRUSTED = "mx.whitfield-consulting.example"


@pytest.fixture
def digestproj(proj, imap_account):
    """A project with [digest] and [imap] (with authserv_id), its first digest sent."""
    return polling_project(proj, imap_account,
                           f'authserv_id = "{TRUSTED}"\n\n[digest]\nvalid_for = "7 days"\n')


def digests(smtp_server) -> list:
    return [m for m in smtp_server.received if "[mailflow digest]" in str(m.msg["Subject"])
            and not str(m.msg["Subject"]).startswith("Re:")]


def confirmations(smtp_server) -> list:
    return [m for m in smtp_server.received if str(m.msg["Subject"]).startswith("Re: [mailflow")]


def answer(digest, body: str, *, sender: str = SENDER[1], thread: bool = True,
           auth: str = "dkim=pass header.d=whitfield-consulting.example; dmarc=pass",
           mid: str = "<answer-1@phone.example>", subject: str | None = None,
           from_line: str | None = None, above: tuple[str, ...] = ()) -> bytes:
    """The consultant's reply from a phone: their command on top, the digest quoted below."""
    headers = [*above, f"Authentication-Results: {TRUSTED}; {auth}",
               from_line or f"From: Dana <{sender}>", f"To: mailflow <{SENDER[1]}>",
               f"Subject: {subject or 'Re: ' + str(digest.msg['Subject'])}",
               "Date: Mon, 28 Dec 2026 11:00:00 -0500", f"Message-ID: {mid}"]
    if thread:
        headers += [f"In-Reply-To: {digest.msg['Message-ID']}",
                    f"References: {digest.msg['Message-ID']}"]
    quoted = "\r\n".join("> " + line for line in
                         digest.msg.get_body(("plain",)).get_content().splitlines()[:12])
    return ("\r\n".join(headers) + "\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{body}\r\n\r\nOn Mon, Dec 28, 2026 at 10:00 AM mailflow wrote:\r\n{quoted}\r\n"
            ).encode()


def state_of(proj, key: str = KEY) -> dict:
    return Store(proj.project.state_dir).load().messages[key]


def test_the_digest_lists_the_draft_and_a_reply_approves_exactly_it(digestproj, smtp_server):
    r = digestproj.cli("run", now=DRAFTED)
    assert told_only(r), r.output
    (digest,) = digests(smtp_server)
    assert digest.rcpt_tos == [SENDER[1]]  # to the consultant, never to a client
    text = digest.msg.get_body(("plain",)).get_content()
    assert "[1] Northwind Traders: Timeline notice" in text
    assert "mj.alvarez@northwind.example" in text
    assert "Goes out once approved: Wed 2026-12-30 09:00 EST" in text
    assert "nothing goes out unapproved" in text
    assert any(p.get_filename() == "1-timeline_notice.html" for p in digest.msg.iter_attachments())
    # the digest itself lands in the polled inbox too: it is never taken for a command
    digestproj.account.append("INBOX", digest.raw)
    digestproj.account.append("INBOX", answer(digest, "approve 1\r\nplease hurry"))
    r = digestproj.cli("run", now="2026-12-28T11:05")
    assert told_only(r), r.output
    msg = state_of(digestproj)
    assert msg["state"] == "approved"
    assert msg["approved_via"]["channel"] == "email"
    assert msg["approved_via"]["from"] == SENDER[1]
    assert msg["approved_via"]["digest"]
    (confirmation,) = confirmations(smtp_server)
    assert confirmation.rcpt_tos == [SENDER[1]]
    said = confirmation.msg.get_body(("plain",)).get_content()
    assert "Approved 1 (Northwind Traders, Timeline notice): goes out Wed 2026-12-30 09:00 EST" \
        in said
    assert "please hurry" in said  # an unknown line is reported back, not guessed
    # polled again: acted on once, confirmed once
    assert told_only(digestproj.cli("run", now="2026-12-28T11:10"))
    assert digestproj.cli("poll", now="2026-12-28T11:15").exit_code == 0
    assert len(confirmations(smtp_server)) == 1
    # the client gets the approved notice on its day, once
    assert told_only(digestproj.cli("run", now="2026-12-30T09:30"))
    client = [m for m in smtp_server.received if "mj.alvarez@northwind.example" in m.rcpt_tos]
    assert len(client) == 1


@pytest.mark.parametrize("case,why", [
    ("no token", "does not answer a digest mailflow sent"),
    ("fresh email", "does not answer a digest mailflow sent"),
    ("other sender", "came from mallory@evil.example"),
    ("dmarc fail", f"{TRUSTED} says dmarc=fail"),
    ("stale digest", "older than 7 days"),
    ("edited draft", "changed since the digest"),
    # forgeries of the consultant's From that only a careless reading would take for theirs
    ("two From headers", "its From names 2 senders"),
    ("two addresses in From", "its From names 2 senders"),
    ("display-name trick", "came from mallory@evil.example"),
    ("encoded-word From", "came from mallory@evil.example"),
    # a pass written by the sender under the server's name, beside the server's own verdict
    ("forged pass", f"{TRUSTED}'s headers disagree (dmarc=none/pass)"),
])
def test_a_reply_that_is_not_safe_approves_nothing_and_says_why(digestproj, smtp_server, case,
                                                                why):
    assert told_only(digestproj.cli("run", now=DRAFTED))
    (digest,) = digests(smtp_server)
    now = "2026-12-28T11:05"
    kwargs: dict = {}
    if case == "no token":
        kwargs["thread"] = False
    elif case == "fresh email":  # a new message, not a reply: no thread, no digest subject
        kwargs.update(thread=False, subject="approvals")
    elif case == "other sender":
        kwargs["sender"] = "mallory@evil.example"
    elif case == "dmarc fail":
        kwargs["auth"] = "dkim=pass header.d=whitfield-consulting.example; dmarc=fail"
    elif case == "two From headers":
        kwargs["from_line"] = f"From: Dana <{SENDER[1]}>\r\nFrom: mallory@evil.example"
    elif case == "two addresses in From":
        kwargs["from_line"] = f"From: Dana <{SENDER[1]}>, Mallory <mallory@evil.example>"
    elif case == "display-name trick":
        kwargs["from_line"] = f'From: "{SENDER[1]}" <mallory@evil.example>'
    elif case == "encoded-word From":
        kwargs["from_line"] = "From: =?utf-8?q?Dana_=3C" + SENDER[1].replace("@", "=40") + \
            "=3E?= <mallory@evil.example>"
    elif case == "forged pass":  # the server found no DMARC record; the sender wrote a pass
        kwargs["above"] = (f"Authentication-Results: {TRUSTED}; dkim=none; dmarc=none "
                           "header.from=whitfield-consulting.example",)
        kwargs["auth"] = ("dkim=pass header.d=whitfield-consulting.example; dmarc=pass "
                          "header.from=whitfield-consulting.example")
    elif case == "stale digest":
        now = "2027-01-05T08:00"
    else:  # the contract end moved: the draft is rendered again with other dates
        r = digestproj.cli("engagement", "set", "northwind-2026", "contract_end=2027-01-27",
                           now="2026-12-28T10:30")
        assert r.exit_code == 0, r.output
    digestproj.account.append("INBOX", answer(digest, "approve 1", **kwargs))
    r = digestproj.cli("run", now=now)
    assert r.exit_code == 1  # said on stderr too: an attempt that did not count
    assert state_of(digestproj)["state"] == "awaiting_approval"
    assert "approved_by" not in state_of(digestproj)
    said = " ".join(c.msg.get_body(("plain",)).get_content() for c in
                    confirmations(smtp_server))
    assert why in " ".join(said.split()), said
    # the confirmation goes to the consultant, never to whoever wrote the reply
    assert all(c.rcpt_tos == [SENDER[1]] for c in confirmations(smtp_server))
    assert not [m for m in smtp_server.received if "mj.alvarez@northwind.example" in m.rcpt_tos]


def test_mailflow_poll_acts_on_a_digest_reply_and_confirms_at_once(digestproj, smtp_server):
    assert told_only(digestproj.cli("run", now=DRAFTED))
    (digest,) = digests(smtp_server)
    digestproj.account.append("INBOX", answer(digest, "approve 1"))
    r = digestproj.cli("poll", now="2026-12-28T11:05")
    assert r.exit_code == 0, r.output
    assert state_of(digestproj)["state"] == "approved"
    (confirmation,) = confirmations(smtp_server)
    assert "Approved 1 (Northwind Traders, Timeline notice)" in \
        confirmation.msg.get_body(("plain",)).get_content()
    assert len(digests(smtp_server)) == 1  # a poll sends no digest of its own


def test_the_digest_is_on_by_default_and_a_reply_to_it_approves(proj, smtp_server,
                                                                imap_account):
    """No [digest] table at all (as `mailflow init` writes it): the digest still goes out to
    the sender's address, daily and at once when urgent, and a reply to it approves."""
    assert "\n[digest]" not in proj.project.config_path.read_text()
    polling_project(proj, imap_account)
    assert told_only(proj.cli("run", now=DRAFTED))
    (digest,) = digests(smtp_server)
    assert digest.rcpt_tos == [SENDER[1]]
    text = digest.msg.get_body(("plain",)).get_content()
    assert "[1] Northwind Traders: Timeline notice" in text
    assert "Reply to this email, one command per line" in text
    assert smtp_server.client_mail == []  # nothing went to the client unapproved
    imap_account.append("INBOX", answer(digest, "approve 1").replace(
        f"Authentication-Results: {TRUSTED}; ".encode(), b"X-Note: "))
    r = proj.cli("run", now="2026-12-28T11:05")
    assert told_only(r), r.output
    assert state_of(proj)["state"] == "approved"
    assert state_of(proj)["approved_via"]["channel"] == "email"
    (confirmation,) = confirmations(smtp_server)
    assert "Approved 1 (Northwind Traders, Timeline notice)" in \
        confirmation.msg.get_body(("plain",)).get_content()


def test_enabled_false_turns_the_digest_off(proj, smtp_server):
    proj.project.config_path.write_text(proj.project.config_path.read_text()
                                        + "\n[digest]\nenabled = false\n")
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    r = proj.cli("run", now=DRAFTED)
    assert r.exit_code == 1 and "needs you" in r.stderr  # cron is still told, once
    assert smtp_server.received == []  # no digest, and nothing to the client unapproved


def test_without_imap_the_digest_says_replies_are_not_read(proj, smtp_server):
    """On by default means also where no mailbox is read: the digest must not invite a reply
    that nobody will ever act on; it names the CLI command instead."""
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    assert told_only(proj.cli("run", now=DRAFTED))
    (digest,) = digests(smtp_server)
    text = " ".join(digest.msg.get_body(("plain",)).get_content().split())
    assert "a reply to this email does nothing" in text
    assert "mailflow drafts approve ID" in text and f"Id: {KEY}" in text
    assert "Reply to this email, one command per line" not in text
