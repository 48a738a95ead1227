"""Hostile replies APPENDed to a real Dovecot and polled (the audit of issue 12's trust rules):
text the reader never saw, a second author in From. None is acted on; each is kept and shown."""

from __future__ import annotations

import json

import pytest

from tests.helpers import dates, messages_by_step, polling_project, reply, told_only, walk
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

AUTHSERV = "mx.whitfield-consulting.example"
CLIENT = "mj.alvarez@northwind.example"


@pytest.fixture
def sentproj(proj, imap_account):
    """The timeline notice sent to the client; its replies are polled from Dovecot."""
    polling_project(proj, imap_account, f'authserv_id = "{AUTHSERV}"\n')
    walk(proj, dates("2026-12-28", "2026-12-30"))
    assert messages_by_step(proj)["timeline_notice/0"]["state"] == "sent"
    return proj


def status(proj) -> str:
    return json.loads(proj.cli("engagement", "show", "northwind-2026", "--json").output)["status"]


def replies(proj) -> list[dict]:
    return json.loads(proj.cli("replies", "--json", "--all-kinds").output)


def html_reply(to_msg: dict, html: str) -> bytes:
    """An HTML-only reply from the client, as webmail and Outlook send them."""
    return (f"From: Maria Jose Alvarez <{CLIENT}>\r\n"
            "To: Dana Whitfield <dana@whitfield-consulting.example>\r\n"
            f"Subject: Re: {to_msg['subject']}\r\nDate: Thu, 31 Dec 2026 10:02:00 -0500\r\n"
            f"Message-ID: <html1@northwind.example>\r\nIn-Reply-To: {to_msg['message_id']}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            f"<html><body>{html}</body></html>\r\n").encode()


def test_hidden_html_text_is_not_read_as_the_clients_words(sentproj):
    timeline = messages_by_step(sentproj)["timeline_notice/0"]
    sentproj.account.append("INBOX", html_reply(timeline, (
        "<p>Thanks Dana, the dates work for us.</p>"
        '<div style="display:none">Please unsubscribe me from all further emails.</div>'
        '<span style="font-size:0px">unsubscribe</span><p hidden>stop emailing me</p>')))
    r = sentproj.cli("run", now="2026-12-31T11:00")
    assert r.exit_code == 1  # the timeline notice's reply needs the consultant
    assert status(sentproj) == "active"  # no opt-out the client never saw pauses anything
    (row,) = replies(sentproj)
    assert row["kind"] == "human" and row["needs_action"]
    shown = sentproj.cli("replies", "show", str(row["id"])).output
    assert "the dates work for us" in shown
    assert "unsubscribe" not in shown.lower() and "stop emailing" not in shown


@pytest.mark.parametrize("from_lines", [
    f"From: Maria Jose Alvarez <{CLIENT}>\r\nFrom: Eve <eve@evil.example>",
    f"From: Maria Jose Alvarez <{CLIENT}>, Eve <eve@evil.example>",
])
def test_a_second_author_in_from_makes_a_contacts_opt_out_a_flag(sentproj, from_lines):
    timeline = messages_by_step(sentproj)["timeline_notice/0"]
    raw = reply(timeline, "Please unsubscribe me.", mid="<two-from@evil.example>")
    raw = raw.replace(f"From: Maria Jose Alvarez <{CLIENT}>".encode(), from_lines.encode(), 1)
    sentproj.account.append("INBOX", raw)
    r = sentproj.cli("run", now="2026-12-31T11:00")
    assert r.exit_code == 1
    told = [ln for ln in r.output.splitlines() if "not acted on" in ln]
    assert len(told) == 1 and "its From names 2 senders" in told[0], r.output
    assert f"{CLIENT}, eve@evil.example" in told[0]
    assert status(sentproj) == "active"
    (row,) = replies(sentproj)
    assert row["trusted"] is False and row["needs_action"]
    # the consultant can still decide it was genuine
    assert sentproj.cli("replies", "accept", str(row["id"]), now="2026-12-31T11:10"
                        ).exit_code == 0
    assert status(sentproj) == "paused"



def test_a_clients_reply_dressed_as_a_digest_reply_is_kept_as_their_reply(sentproj):
    timeline = messages_by_step(sentproj)["timeline_notice/0"]
    sentproj.account.append("INBOX", reply(
        timeline, "approve all\r\nWe need to talk about the invoice first.",
        subject="Re: [mailflow digest] 1 draft to approve", mid="<inj@northwind.example>"))
    r = sentproj.cli("run", now="2026-12-31T11:00")
    assert r.exit_code == 1 and "digest reply" not in r.output, r.output
    (row,) = replies(sentproj)
    assert row["needs_action"] and "invoice first" in row["text"]
    assert messages_by_step(sentproj)["timeline_notice/0"]["state"] == "sent"


def test_replies_without_message_id_or_threading_to_themselves_are_each_recorded_once(sentproj):
    timeline = messages_by_step(sentproj)["timeline_notice/0"]
    no_id = reply(timeline, "No Message-ID here; the dates are fine.").replace(
        b"Message-ID: <r1@northwind.example>\r\n", b"")
    loop = reply(timeline, "The 29th works.", mid="<loop@northwind.example>").replace(
        b"In-Reply-To: ", b"In-Reply-To: <loop@northwind.example> ")
    sentproj.account.append("INBOX", no_id)
    sentproj.account.append("INBOX", loop)
    assert sentproj.cli("run", now="2026-12-31T11:00").exit_code == 1
    assert sentproj.cli("run", now="2026-12-31T11:05").exit_code == 0  # told once
    texts = sorted(row["text"] for row in replies(sentproj))
    assert len(texts) == 2 and "No Message-ID" in texts[0] and "The 29th works." in texts[1]



def test_a_reply_of_thousands_of_parts_is_read_and_the_poll_goes_on(sentproj):
    # one FETCH item per part made a command line Dovecot refuses (64 KiB): every poll failed
    timeline = messages_by_step(sentproj)["timeline_notice/0"]
    head = reply(timeline, "", mid="<parts@northwind.example>").partition(b"\r\n\r\n")[0]
    head = head.replace(b"text/plain; charset=utf-8", b"multipart/mixed; boundary=X")
    body = (b"--X\r\nContent-Type: text/plain\r\n\r\nThe dates work for us.\r\n"
            + b"--X\r\nContent-Type: application/octet-stream\r\n\r\nzz\r\n" * 5000
            + b"--X--\r\n")
    sentproj.account.append("INBOX", head + b"\r\n\r\n" + body)
    sentproj.account.append("INBOX", reply(timeline, "And the invoice is paid.",
                                           mid="<after@northwind.example>"))
    r = sentproj.cli("-v", "run", now="2026-12-31T11:00")
    assert told_only(r), r.output
    assert "only the first 1000 of its 5001 MIME parts were read" in r.output
    rows = {row["message_id"]: row for row in replies(sentproj)}
    assert rows["<parts@northwind.example>"]["text"] == "The dates work for us."
    assert rows["<after@northwind.example>"]["text"] == "And the invoice is paid."



def test_terminal_escapes_in_a_reply_never_reach_the_consultants_terminal(sentproj):
    # an OSC 52 sequence writes the clipboard in many terminals; OSC 0 sets the title
    timeline = messages_by_step(sentproj)["timeline_notice/0"]
    raw = reply(timeline, "Hello \x1b[41mBG\x1b[0m and \x1b]52;c;ZWNobyBoaQ==\x07 done\x07.",
                mid="<esc@northwind.example>", subject="Re: plan \x1b[31mRED\x1b[0m")
    raw = raw.replace(b"From: Maria Jose Alvarez", b"From: \"Maria \x1b]0;PWNED\x07\"")
    sentproj.account.append("INBOX", raw)
    outputs = [sentproj.cli("run", now="2026-12-31T11:00").output]
    (row,) = replies(sentproj)
    for args in (("replies",), ("replies", "show", str(row["id"])), ("status",),
                 ("replies", "--json")):
        outputs.append(sentproj.cli(*args, now="2026-12-31T11:05").output)
    for out in outputs:
        assert "\x1b" not in out and "\x07" not in out and "\\u001b" not in out, out
    shown = outputs[2]
    assert "Hello BG and  done." in shown and "From:     Maria <" in shown
    assert "Subject:  Re: plan RED" in shown
    assert b"\x1b]52" in (sentproj.root / row["raw"]).read_bytes()  # kept as it came
