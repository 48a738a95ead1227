"""IMAP faults against a real Dovecot: refused, login rejected, silent server, server stopped
mid-poll, UIDVALIDITY changed. The run reports it, sending goes on, the cursor moves only past
recorded replies, the next poll picks up where it stopped, and no reply is recorded twice."""

from __future__ import annotations

import collections
import json

import pytest

import mailflow.desk.polling
import mailflow.transport.imap
from mailflow.transport.sink import free_port
from tests.helpers import SEND_AT, fill_batch, firsts, load, reply, told_only
from tests.imap_server import SilentServer, dovecot, imap_account  # noqa: F401


def imap_section(account, folders=("INBOX",), **over) -> str:
    cfg = {"host": '"127.0.0.1"', "port": account.server.port, "security": '"none"',
           "username": f'"{account.user}"', "password_env": f'"{account.password_env}"',
           "folders": json.dumps(list(folders)), "sent_folder": '"Sent"', "timeout": 10}
    cfg.update(over)
    return "\n[imap]\n" + "".join(f"{k} = {v}\n" for k, v in cfg.items())


@pytest.fixture
def iproj(proj, imap_account):  # noqa: F811
    fill_batch(proj, 2)
    proj.account = imap_account
    return proj


def configure(proj, **over) -> None:
    cfg = proj.project.config_path
    text = cfg.read_text().split("\n[imap]\n")[0]
    cfg.write_text(text + imap_section(proj.account, **over))


def first_message(proj) -> dict:
    return {m["key"]: m for m in firsts(proj)}["client-00/timeline_notice/0"]


def replies(proj) -> list[dict]:
    return list(load(proj).replies.values())


def send_first(proj, smtp_server) -> dict:
    configure(proj)
    r = proj.cli("run", now=SEND_AT)
    assert told_only(r), r.output
    assert len(smtp_server.client_mail) == 2
    return first_message(proj)


def answers(msg: dict, n: int, start: int = 1) -> list[bytes]:
    return [reply(msg, f"Answer number {i}.", sender="contact00@client00.example",
                  mid=f"<answer-{i}@client00.example>") for i in range(start, start + n)]


# -- cannot poll: reported, sending goes on ----------------------------------------------------

def test_connection_refused_is_reported_and_sending_goes_on(iproj, smtp_server):
    port = free_port()
    configure(iproj, port=port)
    r = iproj.cli("run", now=SEND_AT)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    # one line: the Sent copies are not tried against a server that just failed the poll;
    # they are made by a later run
    assert r.output.strip().splitlines() == [
        f"mailflow: poll: imap 127.0.0.1:{port}: connection refused"]
    assert len(smtp_server.client_mail) == 2  # the emails still went out
    assert {m["state"] for m in firsts(iproj)} == {"sent"}
    assert all(not m.get("sent_copy") for m in firsts(iproj))


def test_login_rejected_is_one_line_without_the_password(iproj, smtp_server, monkeypatch):
    configure(iproj)
    monkeypatch.setenv(iproj.account.password_env, "definitely-wrong-pw")
    r = iproj.cli("poll", now=SEND_AT)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "login rejected for " + iproj.account.user in lines[0]
    assert f"127.0.0.1:{iproj.account.server.port}" in lines[0]
    assert "definitely-wrong-pw" not in r.output


def test_a_silent_server_times_out_with_one_line(iproj, smtp_server):
    with SilentServer() as silent:
        configure(iproj, port=silent.port, timeout=1)
        r = iproj.cli("run", now=SEND_AT)
    assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
    lines = r.output.strip().splitlines()
    assert lines == [f"mailflow: poll: imap 127.0.0.1:{silent.port}: timed out after 1s "
                     "connecting"]
    assert len(smtp_server.client_mail) == 2


# -- stopped mid-poll ----------------------------------------------------------------------------

def test_server_stopped_mid_poll_resumes_exactly_where_it_stopped(iproj, smtp_server, dovecot,  # noqa: F811
                                                                  monkeypatch):
    msg = send_first(iproj, smtp_server)
    for raw in answers(msg, 30):
        iproj.account.append("INBOX", raw)
    # small FETCH batches and cursor saves, so the stop lands between two FETCHes
    monkeypatch.setattr(mailflow.desk.polling, "CURSOR_EVERY", 5)
    real_poll = mailflow.transport.imap.Mailbox.poll
    monkeypatch.setattr(mailflow.transport.imap.Mailbox, "poll",
                        lambda self, folder, cursor, batch=5: real_poll(self, folder, cursor, 5))
    real_record = mailflow.desk.polling._record
    recorded = []

    def record_then_stop(*args, **kwargs):  # noqa: ANN002, ANN003
        real_record(*args, **kwargs)
        recorded.append(1)
        if len(recorded) == 12:
            dovecot.stop()  # the real server goes away mid-poll

    monkeypatch.setattr(mailflow.desk.polling, "_record", record_then_stop)
    try:
        r = iproj.cli("poll", now="2026-12-31T10:00")
        assert r.exit_code == 6  # issue 17: README's code for a server not reached (was 1)
        assert "poll: imap 127.0.0.1" in r.output and "during FETCH" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
        got = replies(iproj)
        cursor = load(iproj).cursors["INBOX"]
        # the cursor never passes a reply that was not recorded
        recorded_uids = sorted(int(x["source"].rsplit(":", 1)[1]) for x in got)
        assert cursor["last_uid"] <= max(recorded_uids)
        assert recorded_uids == list(range(1, len(recorded_uids) + 1))
        assert 12 <= len(got) < 30
    finally:
        dovecot.start()
    monkeypatch.setattr(mailflow.desk.polling, "_record", real_record)
    r = iproj.cli("poll", now="2026-12-31T10:05")
    assert r.exit_code == 0, r.output
    r = iproj.cli("poll", now="2026-12-31T10:10")
    assert r.exit_code == 0, r.output
    got = replies(iproj)
    ids = collections.Counter(x["message_id"] for x in got)
    assert len(got) == 30 and set(ids.values()) == {1}
    assert sorted(ids) == sorted(f"<answer-{i}@client00.example>" for i in range(1, 31))


def test_server_stopped_between_polls_changes_nothing(iproj, smtp_server, dovecot):  # noqa: F811
    msg = send_first(iproj, smtp_server)
    for raw in answers(msg, 3):
        iproj.account.append("INBOX", raw)
    assert iproj.cli("poll", now="2026-12-31T10:00").exit_code == 0
    before = load(iproj).cursors["INBOX"]
    dovecot.stop()
    try:
        r = iproj.cli("poll", now="2026-12-31T10:05")
        # issue 17: README's code for a server not reached (was 1)
        assert r.exit_code == 6 and "connection refused" in r.output
        assert load(iproj).cursors["INBOX"] == before
    finally:
        dovecot.start()
    for raw in answers(msg, 2, start=4):
        iproj.account.append("INBOX", raw)
    assert iproj.cli("poll", now="2026-12-31T10:10").exit_code == 0
    assert len(replies(iproj)) == 5


# -- UIDVALIDITY ---------------------------------------------------------------------------------

def test_uidvalidity_change_rescans_without_duplicates_and_says_so(iproj, smtp_server):
    configure(iproj, folders=["Clients"])
    # issue 17: a server not reached is 6 (was 1)
    assert iproj.cli("run", now=SEND_AT).exit_code in (0, 6)
    iproj.account.create_folder("Clients")
    assert iproj.cli("poll", now=SEND_AT).exit_code == 0
    msg = first_message(iproj)
    three = answers(msg, 3)
    for raw in three:
        iproj.account.append("Clients", raw)
    assert iproj.cli("poll", now="2026-12-31T10:00").exit_code == 0
    assert len(replies(iproj)) == 3
    old = load(iproj).cursors["Clients"]["uidvalidity"]
    # the folder is recreated (a server migration, a restore): same mail, new UIDVALIDITY
    iproj.account.delete_folder("Clients")
    iproj.account.create_folder("Clients")
    for raw in [*three, *answers(msg, 2, start=4)]:
        iproj.account.append("Clients", raw)
    assert iproj.account.folder_state("Clients")[0] != old
    r = iproj.cli("-v", "run", now="2026-12-31T10:05")
    assert told_only(r), r.output
    assert "note: Clients: UIDVALIDITY changed" in r.output
    got = replies(iproj)
    ids = collections.Counter(x["message_id"] for x in got)
    assert len(got) == 5 and set(ids.values()) == {1}
    assert load(iproj).cursors["Clients"]["uidvalidity"] != old
    assert iproj.cli("poll", now="2026-12-31T10:10").exit_code == 0
    assert len(replies(iproj)) == 5


# -- in doubt, settled by the Sent folder ----------------------------------------------------------

def test_in_doubt_is_settled_by_its_message_id_in_sent_and_never_resent(iproj, smtp_server):
    configure(iproj)
    iproj.account.create_folder("Sent")
    smtp_server.behave(drop_after_data=True)
    r = iproj.cli("run", now=SEND_AT)
    assert r.exit_code == 1
    assert {m["state"] for m in firsts(iproj)} == {"in_doubt"}
    smtp_server.behave()
    # the provider kept a copy of the first in Sent; the second is nowhere
    got = {str(x.msg["Message-ID"]): x.raw for x in smtp_server.client_mail}
    first = first_message(iproj)
    iproj.account.append("Sent", got[first["message_id"]])
    r = iproj.cli("run", now="2026-12-30T10:00")
    states = {m["key"]: m["state"] for m in firsts(iproj)}
    assert states == {"client-00/timeline_notice/0": "sent",
                      "client-01/timeline_notice/0": "in_doubt"}, r.output
    for t in ("10:30", "11:00"):
        iproj.cli("run", now=f"2026-12-30T{t}")
    assert len(smtp_server.client_mail) == 2  # nothing resent blindly
