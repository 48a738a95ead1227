"""What the engine needs from a transport, and what it hears back, in neutral terms.

The engine never reads SMTP codes: a transport (SMTP, or the in-memory one in tests) says for
each recipient whether the message was delivered, refused for now (retry), refused for good,
or may or may not have arrived (in doubt). Only the transport knows where that boundary lies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Outcome(StrEnum):
    """One recipient's fate in one attempt."""

    DELIVERED = "delivered"
    TEMPORARY = "temporary"  # refused for now: try again later
    PERMANENT = "permanent"  # refused for good: never try this recipient again
    IN_DOUBT = "in_doubt"    # the message may have arrived: never resend blindly


@dataclass(frozen=True)
class RecipientOutcome:
    """The outcome for one envelope recipient, with the server's words."""

    outcome: Outcome
    reply: str = ""
    # the server refused this address itself (not the message): the address is suppressed
    address_refused: bool = False
    retry_after: dt.timedelta | None = None  # the server's hint; None: the engine's backoff


@dataclass(frozen=True)
class Delivery:
    """The outcome of offering one message: per recipient, plus one line for people."""

    recipients: dict[str, RecipientOutcome] = field(default_factory=dict)
    reply: str = ""  # the server's final words on the message, or why it was not offered
    offered: bool = True  # False: refused before any command was sent (nothing can be in doubt)

    def having(self, outcome: Outcome) -> list[str]:
        """The recipients with this outcome, in envelope order."""
        return [r for r, o in self.recipients.items() if o.outcome is outcome]

    @property
    def summary(self) -> str:
        """One line for logs and the consultant: the message's reply, then each refusal."""
        parts = [self.reply] if self.reply else []
        parts += [f"{r}: {o.reply}" for r, o in self.recipients.items()
                  if o.outcome in (Outcome.TEMPORARY, Outcome.PERMANENT) and o.reply
                  and o.reply != self.reply]
        return "; ".join(parts) or ", ".join(sorted({o.outcome.value
                                                      for o in self.recipients.values()}))

    @classmethod
    def every(cls, recipients: list[str], outcome: Outcome, reply: str, *,
              offered: bool = True) -> Delivery:
        """The same outcome for every recipient (a refusal of the message as a whole)."""
        return cls({r: RecipientOutcome(outcome, reply) for r in recipients}, reply, offered)


@runtime_checkable
class Transport(Protocol):
    """A way to send: connect, offer each message, close. SMTP and in-memory implement it."""

    def connect(self) -> None:
        """Open the connection; raises a MailflowError when the server cannot be used at all."""

    def send(self, raw: bytes, sender: str, recipients: list[str]) -> Delivery:
        """Offer one message to these envelope recipients; raises only when nothing went out.

        A MailflowError means the connection failed before any of the message was sent: the
        message is untouched and the batch stops (the server is unusable for now). A closed
        transport connects again on the next send.
        """

    def probe(self) -> dict[str, str]:
        """What the server offers (extension name -> parameters), for `check --connect`."""

    def close(self) -> None:
        """Release the connection (idempotent)."""
