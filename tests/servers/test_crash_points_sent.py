"""Crash points of a Sent-folder reconciliation (issue 11 item 5), against aiosmtpd and Dovecot.

A message in doubt (the server took it, the connection dropped before its reply) is settled by
a later run that finds its Message-ID in the identity's Sent folder, when that copy is one
mailflow did not make itself (the provider filed what it took). When the copy is mailflow's
own (made after an earlier partial delivery), finding it proves nothing and the message stays
in doubt for the consultant. Each run is crashed at every durability point, as a kill and as
a power cut, then a plain `mailflow run` recovers and the invariants of `crash_everywhere`
hold, plus: nobody gets the message twice (counted over the template's sends too), and the
Sent folder holds one copy of each message.
"""

from __future__ import annotations

import collections

from mailflow.engine.records import MessageState as S
from tests.helpers import (
    DRAFT_AT,
    SEND_AT,
    crash_everywhere,
    imap_toml,
    invoke,
    state_of,
    two_engagements,
)
from tests.imap_server import dovecot_fixture, imap_account_fixture  # noqa: F401

DOUBT = "client-00/timeline_notice/0"
TO, CC = "contact00@client00.example", "it00@client00.example"


def sent_folder(account) -> collections.Counter:  # noqa: ANN001 - tests.imap_server.Account
    """Message-ID -> how many copies the account's Sent folder holds."""
    from email.parser import BytesHeaderParser
    with account.client() as c:
        c.select_folder("Sent", readonly=True)
        uids = c.search("ALL")
        got = c.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
    parse = BytesHeaderParser().parsebytes
    return collections.Counter("".join(str(parse(d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])
                                           ["Message-ID"]).split()) for d in got.values())


def restorer(account):  # noqa: ANN001, ANN201
    """A function that puts the Sent folder back as it is now (drops what came after)."""
    _, uidnext = account.folder_state("Sent")

    def restore() -> None:
        with account.client() as c:
            c.select_folder("Sent")
            # "n:*" also matches the last message when its UID is below n (RFC 3501 6.4.8)
            later = [u for u in c.search(["UID", f"{uidnext}:*"]) if u >= uidnext]
            if later:
                c.delete_messages(later)
                c.expunge()
    return restore


def with_imap(tmp_path, smtp_server, account):  # noqa: ANN001, ANN201
    """Two engagements whose first email goes out without approval, polling `account`."""
    template, files = two_engagements(tmp_path, smtp_server.port, approval=False)
    cfg = template / "mailflow.toml"
    cfg.write_text(cfg.read_text() + imap_toml(account))
    account.create_folder("Sent")
    assert invoke(template, "engagement", "add", *files, now=DRAFT_AT)[0] == 0
    return template


def one_copy_each(account):  # noqa: ANN001, ANN201
    def check(state) -> list[str]:  # noqa: ANN001
        twice = {m: n for m, n in sent_folder(account).items() if n > 1}
        return [f"Sent holds several copies: {twice}"] if twice else []
    return check


def test_crash_points_of_a_run_that_finds_an_in_doubt_message_in_sent(
        tmp_path, smtp_server, imap_account):  # noqa: F811
    """The provider filed the message in Sent; the run that polls settles it as sent, and the
    other engagement's email (refused for now the first time) goes out in the same run."""
    template = with_imap(tmp_path, smtp_server, imap_account)
    later = {r: "451 4.3.0 later" for r in ("contact01@client01.example",
                                            "it01@client01.example")}
    smtp_server.behave(rcpt_replies=later)

    async def lose_the_reply(phase, envelope, server) -> bool:  # noqa: ANN001
        if phase == "STORED" and TO in envelope.rcpt_tos:
            server.transport.close()  # kept, and the connection drops before the reply
        return False

    smtp_server.handler.hook = lose_the_reply
    try:
        invoke(template, "run", now=SEND_AT)
    finally:
        smtp_server.handler.hook = None
    smtp_server.behave()
    state = state_of(template)
    assert state.messages[DOUBT]["state"] == S.IN_DOUBT, state.messages[DOUBT]
    took, = [r for r in smtp_server.received if TO in r.rcpt_tos]
    imap_account.append("Sent", took.raw, flags=(b"\\Seen",))  # the provider's own copy

    def settled(state) -> list[str]:  # noqa: ANN001
        msg = state.messages[DOUBT]
        problems = one_copy_each(imap_account)(state)
        if msg["state"] != S.SENT or sorted(msg.get("delivered_to") or []) != sorted([CC, TO]):
            problems.append(f"{DOUBT} not settled by its copy in Sent: {msg['state']}, "
                            f"{msg.get('delivered_to')}, {msg.get('note')}")
        return problems

    crash_everywhere(tmp_path, smtp_server, template,
                     lambda root: invoke(root, "run", now="2026-12-30T10:30"),
                     "Sent reconciliation (found)",
                     recover_at="2026-12-30T10:40", check=settled,
                     reset=restorer(imap_account))


def test_crash_points_of_runs_that_find_only_their_own_copy_in_sent(
        tmp_path, smtp_server, imap_account):  # noqa: F811
    """The To got it and the Cc was refused for now, so mailflow filed its own copy in Sent;
    the retry to the Cc is then lost after DATA (in doubt) and the next run polls Sent. Killed
    anywhere in those two runs: the copy proves nothing, the message stays in doubt and shown,
    the To never gets it again and the Cc at most once."""
    template = with_imap(tmp_path, smtp_server, imap_account)
    smtp_server.behave(rcpt_replies={CC: "452 4.2.2 mailbox full"})
    assert invoke(template, "run", now=SEND_AT)[0] == 0
    smtp_server.behave()
    msg = state_of(template).messages[DOUBT]
    assert msg["state"] == S.RETRY and msg["copied_at"], msg
    dropped: list[str] = []

    async def lose_the_first_retry(phase, envelope, server) -> bool:  # noqa: ANN001
        # the Cc's retry reaches the server, which keeps it and drops the connection before
        # its reply: once per crash run (reset below), as one flaky moment would
        if phase == "STORED" and CC in envelope.rcpt_tos and not dropped:
            dropped.append(CC)
            server.transport.close()
        return False

    smtp_server.handler.hook = lose_the_first_retry
    restore_sent = restorer(imap_account)

    def reset() -> None:
        dropped.clear()
        restore_sent()

    def still_in_doubt(state) -> list[str]:  # noqa: ANN001
        msg = state.messages[DOUBT]
        problems = one_copy_each(imap_account)(state)
        if msg["state"] not in (S.IN_DOUBT, S.RETRY) or msg.get("sent_at") is None:
            problems.append(f"{DOUBT}: {msg['state']} ({msg.get('note')})")
        if msg["state"] == S.RETRY and dropped:
            problems.append(f"{DOUBT}: the server has the retry but mailflow waits to retry")
        if (msg.get("recipients") or {}).get(CC, {}).get("outcome") == "delivered":
            problems.append(f"{DOUBT}: the Cc counted delivered on its own copy in Sent")
        return problems

    def retry_then_poll(root) -> object:  # noqa: ANN001
        return [invoke(root, "run", now="2026-12-30T10:00"),
                invoke(root, "run", now="2026-12-30T10:20")]

    try:
        crash_everywhere(tmp_path, smtp_server, template, retry_then_poll,
                         "Sent reconciliation (own copy)", recover_at="2026-12-30T10:40",
                         check=still_in_doubt, reset=reset)
    finally:
        smtp_server.handler.hook = None


def test_a_run_killed_right_after_filing_its_sent_copy_does_not_file_it_twice(
        tmp_path, smtp_server, imap_account):  # noqa: F811
    """The kill lands after the APPEND and before the copy is marked made: the next run finds
    the copy it announced in Sent instead of appending a second one (found by the scenario
    above, at its points 46-50)."""
    from mailflow import faults
    from tests.helpers import copy_project, in_child
    template = with_imap(tmp_path, smtp_server, imap_account)
    restore = restorer(imap_account)
    invoke(copy_project(template, tmp_path / "warm"), "run", now=SEND_AT)  # imports first
    restore()
    count = copy_project(template, tmp_path / "count")
    status, data = in_child(lambda: invoke(count, "run", now=SEND_AT), arm=(0, "count"))
    assert status == 0, data
    appended = data["names"].index("imap APPEND done") + 1  # its point's number
    smtp_server.received.clear()
    restore()
    assert sent_folder(imap_account) == collections.Counter()
    status, _ = in_child(lambda: invoke(template, "run", now=SEND_AT), arm=(appended + 1, "kill"))
    assert status == faults.CRASH_EXIT
    assert sum(sent_folder(imap_account).values()) == 1  # the first copy is in
    assert invoke(template, "run", now="2026-12-30T09:40")[0] in (0, 1)
    assert list(sent_folder(imap_account).values()) == [1, 1]  # both messages, once each
    assert all(m["sent_copy"] == "Sent" for m in state_of(template).messages.values()
               if m.get("sent_at"))
