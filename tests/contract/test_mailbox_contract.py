"""One contract for every Mailbox: IMAP against a real Dovecot, and the in-memory one."""

from __future__ import annotations

import pytest

from mailflow.errors import MailflowError
from mailflow.transport.imap import Mailbox as ImapMailbox
from mailflow.transport.memory import MemoryMailbox
from mailflow.transport.protocols import Cursor, Mailbox
from tests.imap_server import dovecot_fixture, imap_account_fixture, make_message  # noqa: F401


class ImapHarness:
    """A fresh Dovecot account."""

    def __init__(self, account) -> None:  # noqa: ANN001
        self.account = account
        self.cfg = account.config()

    def open(self) -> Mailbox:
        return ImapMailbox(self.cfg)

    def arrive(self, folder: str, raw: bytes) -> None:
        self.account.append(folder, raw)

    def go_down(self) -> None:
        self.cfg = self.account.config(port=1)  # nothing listens there


class MemoryHarness:
    """The in-memory mailbox."""

    def __init__(self) -> None:
        self.memory = MemoryMailbox()

    def open(self) -> Mailbox:
        return self.memory

    def arrive(self, folder: str, raw: bytes) -> None:
        self.memory.deliver(folder, raw)

    def go_down(self) -> None:
        self.memory.down = "connection refused"


@pytest.fixture(params=[pytest.param("imap", marks=pytest.mark.servers), "memory"])
def harness(request):
    """Every Mailbox implementation; the IMAP one against Dovecot."""
    if request.param == "imap":
        return ImapHarness(request.getfixturevalue("imap_account"))
    return MemoryHarness()


def test_it_is_a_mailbox(harness):
    with harness.open() as mb:
        assert isinstance(mb, Mailbox)
        assert mb.capabilities()


def test_a_poll_returns_new_messages_in_order_and_a_cursor_past_them(harness):
    for n in (1, 2, 3):
        harness.arrive("INBOX", make_message(n))
    with harness.open() as mb:
        poll = mb.poll("INBOX", None)
        got = [f.raw for f in poll]
        assert [b"Reply number 1." in r for r in got] == [True, False, False]
        assert len(got) == 3 and b"Reply number 3." in got[-1]
        cursor = poll.cursor
        assert cursor is not None and cursor.last_uid >= 3
        assert list(mb.poll("INBOX", cursor)) == []  # quiet: nothing new
        harness.arrive("INBOX", make_message(4))
        again = mb.poll("INBOX", cursor)
        assert [b"Reply number 4." in f.raw for f in again] == [True]
        assert again.cursor.last_uid > cursor.last_uid


def test_a_cursor_of_another_uidvalidity_reads_the_folder_from_the_start(harness):
    harness.arrive("INBOX", make_message(1))
    with harness.open() as mb:
        uidvalidity, uidnext = mb.folder_state("INBOX")
        assert uidnext >= 2
        stale = Cursor("INBOX", uidvalidity + 1000, 99)
        assert len(list(mb.poll("INBOX", stale))) == 1


def test_sent_copies_are_filed_and_found_by_message_id_exactly(harness):
    raw = make_message(7, message_id="<abc.123@whitfield.example>")
    with harness.open() as mb:
        mb.append("Sent", raw)  # created when missing
        assert mb.find_message_id("Sent", "<abc.123@whitfield.example>")
        assert not mb.find_message_id("Sent", "<abc.12@whitfield.example>")  # not a substring
        assert not mb.find_message_id("Sent", "<other@whitfield.example>")


def test_a_mailbox_that_cannot_be_reached_raises_a_mailflow_error(harness):
    harness.go_down()
    with pytest.raises(MailflowError), harness.open() as mb:
        mb.folder_state("INBOX")
