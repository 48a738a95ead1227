"""The digest stays readable and bounded however much waits (issue 13), over the seams.

Eight clients' timeline notices wait: the soonest five are in full (text, HTML, documents),
the other three one line each with their Id, and "approve 8" by reply still approves the
eighth. Seven replies need action: five with their text, a long one cut where it says how to
read on, the other two one line each.
"""

from __future__ import annotations

import email
from email.policy import default

from mailflow.desk.digest import FULL_DRAFTS, FULL_REPLIES, REPLY_LINES
from tests.helpers import SENDER, SeamProject, is_to_consultant, reply

CLIENTS = 8
DRAFTED = "2026-12-28T10:00"  # the timeline notices (due Wed 2026-12-30 09:00) are drafted


def seams(tmp_path) -> SeamProject:  # noqa: ANN001
    p = SeamProject(tmp_path)
    p.add_clients(CLIENTS)
    return p


def to_consultant(p: SeamProject) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(a.raw, policy=default) for a in p.transport.accepted
            if is_to_consultant(a.raw)]


def text_of(msg: email.message.EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_the_soonest_drafts_are_in_full_the_rest_one_line_each_and_every_number_approves(
        tmp_path):
    p = seams(tmp_path)
    p.tick(DRAFTED)
    (digest,) = to_consultant(p)
    text = text_of(digest)
    assert f"{CLIENTS} drafts to approve" in str(digest["Subject"])
    assert text.count("Goes out once approved:") == FULL_DRAFTS
    assert text.count("Hi ") == FULL_DRAFTS  # each full draft's own text, greeting and all
    short = [line for line in text.splitlines() if "; Id: c" in line]
    assert len(short) == CLIENTS - FULL_DRAFTS
    for line in short:
        assert line.startswith(("[6] ", "[7] ", "[8] "))
        assert ": Timeline notice, goes out Wed 2026-12-30 09:00 EST; Id: c" in line
    assert "see each with `mailflow drafts show ID`" in text
    # only the drafts in full carry their HTML (and documents): the size stays bounded
    names = [a.get_filename() for a in digest.iter_attachments()]
    assert any(n.endswith(".html") for n in names)
    assert {n.split("-", 1)[0] for n in names} == {str(i) for i in range(1, FULL_DRAFTS + 1)}
    # the eighth, listed in one line, is approved by its number like any other
    keys = {int(line[1:line.index("]")]): line.rsplit("Id: ", 1)[1] for line in short}
    answer = (f"From: Dana <{SENDER[1]}>\r\nTo: mailflow <{SENDER[1]}>\r\n"
              f"Subject: Re: {digest['Subject']}\r\nDate: Mon, 28 Dec 2026 11:00:00 -0500\r\n"
              f"Message-ID: <answer-8@phone.example>\r\nIn-Reply-To: {digest['Message-ID']}\r\n"
              f"References: {digest['Message-ID']}\r\nMIME-Version: 1.0\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n\r\napprove 8\r\n").encode()
    p.mailbox.deliver("INBOX", answer)
    p.tick("2026-12-28T11:05")
    states = {k: m["state"] for k, m in p.messages.items() if k.endswith("timeline_notice/0")}
    assert states.pop(keys[8]) == "approved"
    assert set(states.values()) == {"awaiting_approval"}
    confirmation = text_of(to_consultant(p)[-1])
    assert "Approved 8 (" in confirmation and "goes out Wed 2026-12-30 09:00 EST" in confirmation


def test_replies_are_listed_with_their_text_up_to_a_bound_then_one_line_each(tmp_path):
    p = seams(tmp_path)
    p.tick(DRAFTED)
    p.approve_all(DRAFTED)
    p.tick("2026-12-30T09:30")  # every timeline notice goes out
    sent = sorted((m for m in p.messages.values() if m["stage"] == "timeline_notice"),
                  key=lambda m: m["key"])
    long = "\n".join(f"Line {i} of a long answer about the handover." for i in range(60))
    for i, msg in enumerate(sent[:7]):
        body = long if i == 0 else f"A question about the plan from client {i}."
        p.mailbox.deliver("INBOX", reply(msg, body, sender=f"to{i}@client{i}.example",
                                         mid=f"<r{i}@client{i}.example>"))
    p.tick("2026-12-30T11:00")
    digest = to_consultant(p)[-1]
    text = text_of(digest)
    assert "7 replies need you" in str(digest["Subject"])
    section = text[text.index("REPLIES THAT NEED YOU"):]
    full = [line for line in section.splitlines()
            if line.startswith("    Subject: Re: ") and "read it with" not in line]
    assert len(full) == FULL_REPLIES
    assert section.count("Line ") == REPLY_LINES  # the long one, cut
    assert f"[... {60 - REPLY_LINES} more line(s): `mailflow replies show " in section
    oneliners = [line for line in section.splitlines() if "read it with `mailflow replies show"
                 in line]
    assert len(oneliners) == 7 - FULL_REPLIES
