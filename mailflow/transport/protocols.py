"""The transport seams in one place: how mail goes out (Transport) and how it is read (Mailbox).

Each has a real implementation (transport/smtp.py, transport/imap.py) and an in-memory one
(transport/memory.py); tests/contract runs one suite against every implementation. The
Transport protocol and its neutral outcomes live in the engine (engine/outcomes.py), which
must not import this package; they are re-exported here so a reader finds both seams together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mailflow.engine.outcomes import Delivery, Outcome, RecipientOutcome, Transport

if TYPE_CHECKING:
    from mailflow.transport.imap import Cursor, Fetched

__all__ = ["Cursor", "Delivery", "Fetched", "Mailbox", "Outcome", "Poll", "RecipientOutcome",
           "Transport"]


class Poll(Protocol):
    """New messages of one folder, lazily; `.cursor` is where to resume after those consumed."""

    cursor: Cursor | None

    def __iter__(self) -> Iterator[Fetched]:
        """The messages, in UID order."""

    def __next__(self) -> Fetched:
        """The next message."""


@runtime_checkable
class Mailbox(Protocol):
    """One session with a mailbox: poll folders by UID cursor, file and find Sent copies.

    Every failure is a MailflowError (TransportError) naming the server and the operation.
    """

    def __enter__(self) -> Mailbox:
        """Connect and log in."""

    def __exit__(self, *exc: object) -> None:
        """Log out and close."""

    def folder_state(self, folder: str) -> tuple[int, int]:
        """(UIDVALIDITY, UIDNEXT) of a folder."""

    def poll(self, folder: str, cursor: Cursor | None, batch: int = 200) -> Poll:
        """Messages after the cursor (all of them when UIDVALIDITY changed), never marked read."""

    def append(self, folder: str, raw: bytes, flags: Iterable[bytes | str] = (b"\\Seen",),
               when: dt.datetime | None = None) -> None:
        """File a message (a copy of sent mail) in a folder, creating the folder if needed."""

    def find_message_id(self, folder: str, message_id: str) -> bool:
        """Whether a message with exactly this Message-ID is in the folder."""

    def capabilities(self) -> list[str]:
        """What the server offers (IMAP capabilities), for `check --connect`."""


def __getattr__(name: str) -> Any:
    """`Cursor` and `Fetched` on first use: importing imapclient costs every `mailflow run`
    that has no [imap] to poll (and every view) a tenth of its start-up."""
    if name in ("Cursor", "Fetched"):
        from mailflow.transport import imap
        return getattr(imap, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
