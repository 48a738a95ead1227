"""mailflow.transport.imap against a real Dovecot on 127.0.0.1 (no mocks of imaplib/imapclient)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email import message_from_bytes

import pytest

from mailflow.config.settings import Credentials, ImapConfig
from mailflow.errors import TransportError
from mailflow.transport.imap import Cursor, Mailbox, clean_message_id
from tests.imap_server import (  # noqa: F401
    Account,
    Dovecot,
    SilentServer,
    dovecot_fixture,
    free_port,
    imap_account_fixture,
    make_message,
)


def poll_all(cfg: ImapConfig, folder: str, cursor: Cursor | None, **kw) -> tuple[list, Cursor]:
    """Poll once on a fresh connection; return (messages, resulting cursor)."""
    with Mailbox(cfg) as mb:
        poll = mb.poll(folder, cursor, **kw)
        got = list(poll)
    assert poll.cursor is not None
    return got, poll.cursor


def open_and_close(cfg: ImapConfig) -> None:
    """Connect and log in (and out) once."""
    with Mailbox(cfg):
        pass


# --- connecting and logging in -------------------------------------------------------------

def test_login_ok(imap_account: Account) -> None:
    with Mailbox(imap_account.config()) as mb:
        assert "IMAP4REV1" in [c.upper() for c in mb.capabilities()]
        uidvalidity, uidnext = mb.folder_state("INBOX")
        assert uidvalidity > 0 and uidnext == 1
        assert mb.stats.commands >= 3 and mb.stats.bytes_in > 0 and mb.stats.bytes_out > 0


def test_wrong_password_is_a_clear_error_without_the_password(
        imap_account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "not-the-password-Zq9"
    monkeypatch.setenv("MAILFLOW_TEST_WRONG_PW", wrong)
    cfg = imap_account.config(credentials=Credentials(username=imap_account.user,
                                                      password_env="MAILFLOW_TEST_WRONG_PW"))
    with pytest.raises(TransportError) as caught, Mailbox(cfg):
        pass
    msg = str(caught.value)
    assert msg.startswith(f"imap {cfg.address}: login rejected for {imap_account.user}")
    assert "\n" not in msg
    assert wrong not in msg and imap_account.password not in msg
    assert caught.value.__cause__ is None and caught.value.__context__ is None or \
        wrong not in repr(caught.value.__context__)


def test_xoauth2_rejection_does_not_leak_the_token(imap_account: Account) -> None:
    token = "ya29.secret-token-8841"
    cfg = imap_account.config(credentials=Credentials(
        username=imap_account.user, oauth2_token_command=f"printf %s {token}"))
    with pytest.raises(TransportError, match="login rejected for") as caught, Mailbox(cfg):
        pass
    assert token not in str(caught.value)


def test_connection_refused() -> None:
    cfg = ImapConfig(host="127.0.0.1", port=free_port(), security="none", timeout=5)
    with pytest.raises(TransportError, match=r"^imap 127\.0\.0\.1:\d+: connection refused$"):
        open_and_close(cfg)


def test_server_that_never_answers_times_out_within_the_timeout() -> None:
    with SilentServer() as silent:
        cfg = ImapConfig(host=silent.host, port=silent.port, security="none", timeout=0.5)
        started = time.monotonic()
        with pytest.raises(TransportError, match=r": timed out after 0\.5s"), Mailbox(cfg):
            pass
        assert time.monotonic() - started < 2.0


def test_plaintext_login_to_a_remote_host_is_refused_before_connecting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILFLOW_TEST_PW", "hunter2")
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): nothing answers there, so a quick error proves
    # that no connection was attempted.
    cfg = ImapConfig(host="192.0.2.1", port=143, security="none", timeout=5,
                     credentials=Credentials(username="u", password_env="MAILFLOW_TEST_PW"))
    started = time.monotonic()
    with pytest.raises(TransportError, match="refusing to send a password without TLS"):
        open_and_close(cfg)
    assert time.monotonic() - started < 1.0


def test_missing_folder_is_named(imap_account: Account) -> None:
    with Mailbox(imap_account.config()) as mb:
        with pytest.raises(TransportError, match=r": folder 'Nope' does not exist$"):
            list(mb.poll("Nope", None))
        # the connection is still usable after a refused command
        assert mb.folder_state("INBOX")[1] == 1


# --- polling ---------------------------------------------------------------------------------

def test_incremental_poll(imap_account: Account) -> None:
    cfg = imap_account.config()
    for n in range(1, 4):
        imap_account.append("INBOX", make_message(n))
    got, cursor = poll_all(cfg, "INBOX", None)
    assert [f.uid for f in got] == [1, 2, 3]
    assert [message_from_bytes(f.raw)["Message-ID"] for f in got] == [
        "<msg-1@example.test>", "<msg-2@example.test>", "<msg-3@example.test>"]
    assert cursor == Cursor("INBOX", got[0].uidvalidity, 3)

    for n in range(4, 6):
        imap_account.append("INBOX", make_message(n))
    got, cursor = poll_all(cfg, "INBOX", cursor)
    assert [f.uid for f in got] == [4, 5]
    assert cursor.last_uid == 5

    got, cursor2 = poll_all(cfg, "INBOX", cursor)
    assert got == [] and cursor2 == cursor


def test_poll_fetches_in_batches_in_uid_order(imap_account: Account) -> None:
    for n in range(1, 6):
        imap_account.append("INBOX", make_message(n))
    with Mailbox(imap_account.config()) as mb:
        before = mb.stats
        poll = mb.poll("INBOX", None, batch=2)
        uids = []
        for f in poll:
            uids.append(f.uid)
            assert poll.cursor == f.cursor  # the cursor only covers what was handed out
        cost = mb.stats - before
    assert uids == [1, 2, 3, 4, 5]
    # STATUS, EXAMINE, UID SEARCH, 3 x UID FETCH (2+2+1), CLOSE
    assert cost.commands == 7, cost


def test_internal_date_is_utc(imap_account: Account) -> None:
    when = datetime(2025, 6, 2, 12, 30, 5, tzinfo=UTC)
    imap_account.append("INBOX", make_message(1), when=when)
    got, _ = poll_all(imap_account.config(), "INBOX", None)
    assert got[0].internal_date == when and got[0].internal_date.utcoffset().total_seconds() == 0


def test_poll_leaves_messages_unseen(imap_account: Account) -> None:
    for n in range(1, 4):
        imap_account.append("INBOX", make_message(n))
    got, _ = poll_all(imap_account.config(), "INBOX", None)
    assert len(got) == 3
    flags = imap_account.flags("INBOX")
    assert set(flags) == {1, 2, 3}
    assert all(b"\\Seen" not in f for f in flags.values()), flags


def test_empty_folder_gives_a_cursor(imap_account: Account) -> None:
    got, cursor = poll_all(imap_account.config(), "INBOX", None)
    assert got == [] and cursor.last_uid == 0 and cursor.uidvalidity > 0


def test_uidvalidity_change_restarts_from_uid_1(imap_account: Account) -> None:
    cfg = imap_account.config()
    for n in range(1, 3):
        imap_account.append("Replies", make_message(n))
    got, cursor = poll_all(cfg, "Replies", None)
    assert [f.uid for f in got] == [1, 2]

    imap_account.delete_folder("Replies")
    imap_account.create_folder("Replies")
    imap_account.append("Replies", make_message(3))
    got, new_cursor = poll_all(cfg, "Replies", cursor)
    assert new_cursor.uidvalidity != cursor.uidvalidity
    assert [(f.uid, f.uidvalidity) for f in got] == [(1, new_cursor.uidvalidity)]
    assert message_from_bytes(got[0].raw)["Message-ID"] == "<msg-3@example.test>"
    assert new_cursor.last_uid == 1


def test_cursor_skips_expunged_tail(imap_account: Account) -> None:
    """After a poll the cursor reaches UIDNEXT-1, so the next poll is quiet again."""
    cfg = imap_account.config()
    for n in range(1, 4):
        imap_account.append("INBOX", make_message(n))
    with imap_account.client() as c:  # expunge the newest before we ever see it
        c.select_folder("INBOX")
        c.delete_messages([3])
        c.expunge()
    got, cursor = poll_all(cfg, "INBOX", None)
    assert [f.uid for f in got] == [1, 2] and cursor.last_uid == 3
    with Mailbox(cfg) as mb:
        before = mb.stats
        assert list(mb.poll("INBOX", cursor)) == []
        assert (mb.stats - before).commands == 1


def _quiet_poll_cost(account: Account, n: int):
    account.fill("INBOX", n)
    with Mailbox(account.config()) as mb:
        uidvalidity, uidnext = mb.folder_state("INBOX")
        assert uidnext == n + 1
        cursor = Cursor("INBOX", uidvalidity, uidnext - 1)
        before = mb.stats
        assert list(mb.poll("INBOX", cursor)) == []
        return mb.stats - before


def test_quiet_poll_cost_does_not_depend_on_folder_size(dovecot: Dovecot) -> None:
    small = _quiet_poll_cost(dovecot.add_user(), 500)
    large = _quiet_poll_cost(dovecot.add_user(), 5_000)
    assert small.commands == large.commands == 1  # one STATUS, no SELECT, no SEARCH
    assert small.bytes_out == large.bytes_out
    # Only the digits of UIDNEXT (501 vs 5001) and Dovecot's timing note in the tagged OK
    # ("(0.001 + 0.000 secs)" vs "(0.002 + 0.000 + 0.001 secs)") may differ.
    assert abs(small.bytes_in - large.bytes_in) <= 16
    assert large.bytes_in < 200


def test_server_stopped_mid_poll(dovecot: Dovecot, imap_account: Account) -> None:
    for n in range(1, 6):
        imap_account.append("INBOX", make_message(n))
    recorded = []
    try:
        with (pytest.raises(TransportError, match=r"connection dropped during FETCH"),
              Mailbox(imap_account.config()) as mb):
            poll = mb.poll("INBOX", None, batch=2)
            recorded.append(next(poll))
            dovecot.stop()
            for f in poll:  # the rest of the first batch is in memory; the next FETCH fails
                recorded.append(f)
    finally:
        dovecot.start()
    assert [f.uid for f in recorded] == [1, 2]
    assert poll.cursor == recorded[-1].cursor


# --- sent mail -------------------------------------------------------------------------------

def test_append_to_sent_creates_the_folder(imap_account: Account) -> None:
    raw = make_message(1, message_id="<sent-1@consultant.example>")
    with Mailbox(imap_account.config()) as mb:
        mb.append("Sent", raw)
        mb.append("Sent", make_message(2))  # the folder exists now
    flags = imap_account.flags("Sent")
    assert set(flags) == {1, 2}
    assert b"\\Seen" in flags[1]
    got, _ = poll_all(imap_account.config(), "Sent", None)
    assert got[0].raw == raw


def test_find_message_id(imap_account: Account) -> None:
    imap_account.append("Sent", make_message(1, message_id="<abc.123@consultant.example>"))
    imap_account.append("Sent", make_message(2, message_id="<xabc.1234@consultant.example>"))
    with Mailbox(imap_account.config()) as mb:
        assert mb.find_message_id("Sent", "<abc.123@consultant.example>")
        assert mb.find_message_id("Sent", "abc.123@consultant.example")  # brackets optional
        assert not mb.find_message_id("Sent", "<abc.12@consultant.example>")  # no substrings
        assert not mb.find_message_id("Sent", "<bc.123@consultant.example>")
        assert not mb.find_message_id("Sent", "<nothing@consultant.example>")
        # still usable for polling afterwards
        assert len(list(mb.poll("Sent", None))) == 2


@pytest.mark.parametrize("hostile", [
    'x"\r\nA1 DELETE INBOX\r\n',
    '<a@b>" OR ALL "',
    "<a@b>\r\n",
    "\\\"{5}\r\nhello",
    "",
])
def test_find_message_id_with_hostile_ids(imap_account: Account, hostile: str) -> None:
    imap_account.append("Sent", make_message(1, message_id="<a@b>"))
    with Mailbox(imap_account.config()) as mb:
        found = mb.find_message_id("Sent", hostile)
        assert found is (hostile in ("<a@b>\r\n",))
        # nothing was injected: the folders and the message are intact, the session works
        assert mb.folder_state("INBOX")[0] > 0
        assert mb.folder_state("Sent")[1] == 2


def test_clean_message_id() -> None:
    assert clean_message_id(' <a"b\r\n@c> ') == "<ab@c>"
    assert clean_message_id('\r\n"') is None
