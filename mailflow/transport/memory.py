"""In-memory implementations of the transport seams, for tests of the engine without sockets.

`MemoryTransport` answers each recipient as scripted (delivered unless told otherwise) and
keeps what it delivered; `MemoryMailbox` holds folders of raw messages with UIDs and
UIDVALIDITY as an IMAP server would. Both pass the contract suites in tests/contract that
the SMTP and IMAP implementations pass against aiosmtpd and Dovecot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailflow.addresses import envelope_address
from mailflow.engine.outcomes import Delivery, Outcome, RecipientOutcome
from mailflow.errors import TransportError
from mailflow.transport.imap import Cursor, Fetched, clean_message_id


@dataclass
class Accepted:
    """One message as the in-memory server took it: envelope and bytes."""

    sender: str
    recipients: list[str]  # every recipient that may have it (delivered or in doubt)
    raw: bytes
    in_doubt: bool = False  # the sender was told nothing for some: it may think it was lost
    confirmed: list[str] = field(default_factory=list)  # those told "delivered"


@dataclass
class MemoryTransport:
    """A scriptable transport: per-recipient outcomes queued by address, everything recorded."""

    extensions: dict[str, str] = field(default_factory=lambda: {"8bitmime": ""})
    down: str | None = None  # connect() fails with this reason
    accepted: list[Accepted] = field(default_factory=list)
    connects: int = 0
    _script: dict[str, list[RecipientOutcome]] = field(default_factory=dict)
    _message_script: list[RecipientOutcome | str] = field(default_factory=list)
    _open: bool = False

    # -- scripting -----------------------------------------------------------------------------

    def answer(self, recipient: str, outcome: Outcome, reply: str = "", *, times: int = 1,
               address_refused: bool = False) -> None:
        """The next `times` attempts to this recipient get this outcome (then delivered)."""
        got = RecipientOutcome(outcome, reply, address_refused=address_refused)
        self._script.setdefault(recipient.lower(), []).extend([got] * times)

    def answer_message(self, outcome: Outcome | str, reply: str = "") -> None:
        """The next message as a whole gets this outcome; "drop" loses the connection first."""
        self._message_script.append(outcome if isinstance(outcome, str) and outcome == "drop"
                                    else RecipientOutcome(Outcome(outcome), reply))

    def received_by(self, recipient: str) -> int:
        """How many messages this recipient may have got (in doubt counts: it may have)."""
        return sum(recipient.lower() in (r.lower() for r in a.recipients) for a in self.accepted)

    # -- the Transport protocol --------------------------------------------------------------

    def connect(self) -> None:
        """Open the in-memory connection, or fail as scripted."""
        if self.down:
            raise TransportError(f"smtp memory: {self.down}")
        self.connects += 1
        self._open = True

    def probe(self) -> dict[str, str]:
        """The extensions this server is set up to offer."""
        self.connect()
        return dict(self.extensions)

    def close(self) -> None:
        """Close (idempotent)."""
        self._open = False

    def send(self, raw: bytes, sender: str, recipients: list[str]) -> Delivery:
        """Deliver as scripted; nothing is kept for recipients refused or a message refused."""
        try:
            env_sender, utf8 = envelope_address(sender)
            env = {r: envelope_address(r) for r in recipients}
        except ValueError as err:
            return Delivery.every(recipients, Outcome.PERMANENT, f"not sent: {err}",
                                  offered=False)
        if not self._open:
            self.connect()
        if (utf8 or any(u for _, u in env.values())) and "smtputf8" not in self.extensions:
            odd = ", ".join(a for a in [sender, *recipients] if not a.isascii())
            return Delivery.every(recipients, Outcome.PERMANENT,
                                  f"not sent: a non-ASCII address ({odd}) needs SMTPUTF8, "
                                  "which smtp memory does not offer", offered=False)
        whole = self._message_script.pop(0) if self._message_script else None
        if whole == "drop":
            self._open = False
            raise TransportError("smtp memory: connection dropped before DATA")
        outcomes: dict[str, RecipientOutcome] = {}
        for rcpt in recipients:
            queue = self._script.get(rcpt.lower())
            got = queue.pop(0) if queue else RecipientOutcome(Outcome.DELIVERED, "250 OK")
            if got.outcome is Outcome.DELIVERED and isinstance(whole, RecipientOutcome):
                got = whole  # refused at DATA, or lost after it: the same for everyone
            outcomes[rcpt] = got
        took = [env[r][0] for r, o in outcomes.items()
                if o.outcome in (Outcome.DELIVERED, Outcome.IN_DOUBT)]
        if took:
            doubt = any(o.outcome is Outcome.IN_DOUBT for o in outcomes.values())
            sure = [env[r][0] for r, o in outcomes.items() if o.outcome is Outcome.DELIVERED]
            self.accepted.append(Accepted(env_sender, took, raw, in_doubt=doubt, confirmed=sure))
        reply = whole.reply if isinstance(whole, RecipientOutcome) else (
            "250 OK" if took else "")
        return Delivery(outcomes, reply)


@dataclass
class _Folder:
    uidvalidity: int
    messages: dict[int, tuple[bytes, dt.datetime | None]] = field(default_factory=dict)
    uidnext: int = 1


class MemoryPoll:
    """The messages of one in-memory poll; `.cursor` says where to resume."""

    def __init__(self, folder: str, box: _Folder, cursor: Cursor | None) -> None:
        same = cursor is not None and cursor.uidvalidity == box.uidvalidity
        start = cursor.last_uid + 1 if cursor is not None and same else 1
        self.cursor: Cursor | None = cursor if same else Cursor(folder, box.uidvalidity, 0)
        self._it = self._walk(folder, box, start)

    def _walk(self, folder: str, box: _Folder, start: int) -> Iterator[Fetched]:
        for uid in sorted(u for u in box.messages if u >= start):
            raw, when = box.messages[uid]
            found = Fetched(uid, raw, when, folder, box.uidvalidity)
            self.cursor = found.cursor
            yield found
        self.cursor = Cursor(folder, box.uidvalidity, max(start - 1, box.uidnext - 1))

    def __iter__(self) -> Iterator[Fetched]:
        return self

    def __next__(self) -> Fetched:
        return next(self._it)


class MemoryMailbox:
    """Folders of messages in memory, polled by UID; `down` makes every session fail."""

    def __init__(self, folders: Iterable[str] = ("INBOX",)) -> None:
        self.folders: dict[str, _Folder] = {f: _Folder(1) for f in folders}
        self.down: str | None = None
        self.appended: list[tuple[str, bytes]] = []  # what the client filed (Sent copies)
        self.sessions = 0

    # -- what a test does to the server -----------------------------------------------------

    def deliver(self, folder: str, raw: bytes, when: dt.datetime | None = None) -> int:
        """A message arrives in a folder (as mail from outside would); returns its UID."""
        box = self.folders.setdefault(folder, _Folder(1))
        uid = box.uidnext
        box.messages[uid] = (raw, when)
        box.uidnext += 1
        return uid

    def reset_uidvalidity(self, folder: str) -> None:
        """The server renumbers the folder (RFC 3501 2.3.1.1): old UIDs mean nothing now."""
        box = self.folders[folder]
        box.uidvalidity += 1

    # -- the Mailbox protocol ----------------------------------------------------------------

    def __enter__(self) -> MemoryMailbox:
        if self.down:
            raise TransportError(f"imap memory: connect failed: {self.down}")
        self.sessions += 1
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _folder(self, folder: str, op: str) -> _Folder:
        if self.down:
            raise TransportError(f"imap memory: {op} {folder} failed: {self.down}")
        if folder not in self.folders:
            raise TransportError(f"imap memory: {op} {folder} failed: no such folder")
        return self.folders[folder]

    def folder_state(self, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, UIDNEXT)."""
        box = self._folder(folder, "STATUS")
        return box.uidvalidity, box.uidnext

    def poll(self, folder: str, cursor: Cursor | None, batch: int = 200) -> MemoryPoll:
        """Messages after the cursor (all of them when UIDVALIDITY changed)."""
        if cursor is not None and cursor.folder != folder:
            raise ValueError(f"cursor is for folder {cursor.folder!r}, not {folder!r}")
        return MemoryPoll(folder, self._folder(folder, "SELECT"), cursor)

    def append(self, folder: str, raw: bytes, flags: Iterable[bytes | str] = (b"\\Seen",),
               when: dt.datetime | None = None) -> None:
        """File a copy, creating the folder if missing."""
        if self.down:
            raise TransportError(f"imap memory: APPEND {folder} failed: {self.down}")
        self.folders.setdefault(folder, _Folder(1))
        self.deliver(folder, raw, when)
        self.appended.append((folder, raw))

    def find_message_id(self, folder: str, message_id: str) -> bool:
        """Whether a message with exactly this Message-ID is in the folder."""
        wanted = clean_message_id(message_id)
        box = self._folder(folder, "SEARCH")
        parser = BytesHeaderParser(policy=compat32)
        return wanted is not None and any(
            "".join(str(parser.parsebytes(raw).get("Message-ID", "")).split()) == wanted
            for raw, _ in box.messages.values())

    def capabilities(self) -> list[str]:
        """What an in-memory server offers."""
        return ["IMAP4rev1", "UIDPLUS", "MOVE"]
