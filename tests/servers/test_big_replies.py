"""Large replies against a real Dovecot: read by their structure, kept whole on disk.

A reply is read from its header, text and report parts; its attachments are never fetched to
read it, and the raw .eml is copied to disk in chunks. What the poll reads is measured in
bytes (ImapStats), not in time.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

from mailflow.inbound.message import parse_inbound
from mailflow.store import Store
from mailflow.transport import imap_parts
from mailflow.transport.imap import Mailbox
from tests.helpers import imap_toml, reply, told_only
from tests.imap_server import Account, dovecot_fixture, imap_account_fixture  # noqa: F401

ATTACHMENT = 3 * 1024 * 1024


def with_attachment(text: str, size: int = ATTACHMENT, *, mid: str = "<big-1@client.example>",
                    extra_headers: str = "") -> bytes:
    """A reply: multipart/mixed > (multipart/alternative > plain, html), a zip attachment."""
    blob = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    head = ("From: Maria Jose Alvarez <mj.alvarez@northwind.example>\r\n"
            "To: Dana Whitfield <dana@whitfield-consulting.example>\r\n"
            f"Subject: Re: the export\r\nDate: Thu, 31 Dec 2026 10:02:00 -0500\r\n"
            f"Message-ID: {mid}\r\n{extra_headers}MIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="outer"\r\n\r\n'
            "--outer\r\n"
            'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
            "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"{text}\r\n"
            "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            f"<p>{text}</p>\r\n"
            "--inner--\r\n"
            "--outer\r\nContent-Type: application/zip; name=export.zip\r\n"
            "Content-Disposition: attachment; filename=export.zip\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n")
    return head.encode() + blob + b"\r\n--outer--\r\n"


def test_a_large_reply_is_read_without_its_attachment_and_copied_whole(imap_account: Account):
    raw = with_attachment("Hi Dana, the pipelines folder is empty on our side.")
    imap_account.append("INBOX", raw)
    with Mailbox(imap_account.config()) as mb:
        for fetched in mb.poll("INBOX", None):
            read = mb.stats.bytes_in
            assert not fetched.complete and fetched.size == len(raw)
            copy = io.BytesIO()
            assert fetched.copy_raw(copy) == len(raw)
            copied = mb.stats.bytes_in - read
    assert copy.getvalue() == raw  # byte for byte, fetched in chunks
    assert read < 200_000 < len(raw) <= copied  # reading it cost the text, not the attachment
    inbound = parse_inbound(fetched.raw)
    assert inbound.kind == "human" and inbound.attachments == ("export.zip",)
    assert inbound.text == "Hi Dana, the pipelines folder is empty on our side."
    assert inbound.message_id == "<big-1@client.example>"


def test_a_large_bounce_is_read_from_its_report_parts(imap_account: Account):
    returned = with_attachment("the original", 2 * 1024 * 1024, mid="<sent-1@whitfield.example>")
    dsn = (b"From: Mail Delivery System <MAILER-DAEMON@mx.northwind.example>\r\n"
           b"To: dana@whitfield-consulting.example\r\nSubject: Undelivered Mail Returned to "
           b"Sender\r\nDate: Thu, 31 Dec 2026 10:02:00 -0500\r\nMessage-ID: <dsn-1@mx>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
           b' boundary="rep"\r\n\r\n--rep\r\nContent-Type: text/plain\r\n\r\n'
           b"Your message could not be delivered.\r\n--rep\r\n"
           b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
           b"Final-Recipient: rfc822; gone@northwind.example\r\nAction: failed\r\n"
           b"Status: 5.1.1\r\n\r\n--rep\r\nContent-Type: message/rfc822\r\n\r\n"
           ) + returned + b"\r\n--rep--\r\n"
    imap_account.append("INBOX", dsn)
    with Mailbox(imap_account.config()) as mb:
        [fetched] = list(mb.poll("INBOX", None))
        assert mb.stats.bytes_in < 200_000
    inbound = parse_inbound(fetched.raw)
    assert inbound.kind == "bounce" and inbound.bounce is not None
    assert inbound.bounce.recipient == "gone@northwind.example"
    assert inbound.bounce.status == "5.1.1"
    assert inbound.bounce.original_message_id == "<sent-1@whitfield.example>"


def test_small_messages_still_arrive_whole_in_the_batch(imap_account: Account):
    imap_account.fill("INBOX", 3, size=imap_parts.WHOLE_MAX // 2)
    with Mailbox(imap_account.config()) as mb:
        got = list(mb.poll("INBOX", None))
    assert [f.complete for f in got] == [True] * 3 and all(f.size == len(f.raw) for f in got)


def test_a_large_reply_is_recorded_with_its_raw_file_whole(proj, imap_account, smtp_server):
    cfg = proj.project.config_path
    cfg.write_text(cfg.read_text() + imap_toml(imap_account))
    assert proj.cli("engagement", "add", str(proj.root / "engagements/example.toml")
                    ).exit_code == 0
    assert told_only(proj.cli("run", now="2026-12-28T10:00"))  # a draft needs you: exit 1
    assert proj.cli("drafts", "approve", "--all", "-y", now="2026-12-28T10:00").exit_code == 0
    assert proj.cli("run", now="2026-12-30T09:30").exit_code == 0
    sent = next(m for m in Store(proj.project.state_dir).load().messages.values()
                if m.get("sent_at"))
    small = reply(sent, "Hi Dana, the pipelines folder is empty on our side.")
    head, _, _ = small.partition(b"\r\n\r\n")
    threading = b"".join(line + b"\r\n" for line in head.split(b"\r\n")
                         if line.startswith((b"In-Reply-To", b"References")))
    raw = with_attachment("Hi Dana, the pipelines folder is empty on our side.",
                          extra_headers=threading.decode())
    imap_account.append("INBOX", raw)
    r = proj.cli("poll", now="2026-12-31T11:00")
    assert r.exit_code == 0, r.output
    [row] = json.loads(proj.cli("replies", "--json").output)
    assert row["attachments"] == ["export.zip"]
    assert row["text"] == "Hi Dana, the pipelines folder is empty on our side."
    assert row["intent"]["kind"] == "deliverable"
    assert Path(row["raw"]).read_bytes() == raw


def test_a_huge_plain_text_reply_is_read_up_to_the_limit_and_kept_whole(imap_account: Account):
    line = b"All good on our side, thanks. " * 3 + b"\r\n"
    raw = (b"From: Maria Jose Alvarez <mj.alvarez@northwind.example>\r\nSubject: Re: logs\r\n"
           b"Date: Thu, 31 Dec 2026 10:02:00 -0500\r\nMessage-ID: <long-1@client.example>\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + line * 40_000)
    imap_account.append("INBOX", raw)
    with Mailbox(imap_account.config()) as mb:
        for fetched in mb.poll("INBOX", None):
            copy = io.BytesIO()
            fetched.copy_raw(copy)
    assert copy.getvalue() == raw and len(raw) > 3 * imap_parts.TEXT_MAX
    assert len(fetched.raw) < imap_parts.TEXT_MAX + 1000
    assert fetched.notes == ("its text/plain body was read up to 1024 KiB",)
    assert parse_inbound(fetched.raw).text.startswith("All good on our side")
