"""Tie an inbound message to the sent message it answers, and record how."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from mailflow.inbound.message import Inbound

_PREFIX = re.compile(
    r"""^\s*(?:
        (?:re|fwd?|aw|wg|sv|vs|antw|réf|ref|tr|rv|enc|r|fw)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]
      | \[(?:external|ext|extern|externe|externo|caution[^\]]*)\]
      | \*{0,3}external\*{0,3}\s*:
    )\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_TOKEN = re.compile(r"^[^@+]+\+([a-z0-9]{8,})@", re.IGNORECASE)


@dataclass(frozen=True)
class SentRef:
    """What matching needs to know about one message mailflow sent."""

    key: str
    message_id: str
    reply_token: str | None
    recipients: tuple[str, ...]
    subject: str
    engagement: str
    sent_at: datetime | None = None  # picks the most recent among sender+subject candidates


@dataclass(frozen=True)
class Match:
    """The sent message an inbound one answers, and which rule tied them."""

    key: str
    engagement: str
    how: str


def normalize_subject(subject: str) -> str:
    """Subject without reply/forward prefixes and [EXTERNAL] tags, whitespace-folded, lower-case."""
    previous = None
    while previous != subject:
        previous, subject = subject, _PREFIX.sub("", subject, count=1)
    return " ".join(subject.split()).casefold()


def normalize_id(message_id: str) -> str:
    """Message-ID in the '<x@y>' form, compared case-sensitively as RFC 5322 requires."""
    bare = "".join(message_id.split()).strip("<>")
    return f"<{bare}>"


def reply_tokens(addresses: Iterable[str]) -> list[str]:
    """Sub-address tokens (user+TOKEN@domain) found in these addresses, lower-case."""
    return [m.group(1).lower() for a in addresses if (m := _TOKEN.match(a.strip()))]


_REPORTS = ("bounce", "delay", "delivered", "report")  # a mail system's, not the contact's


class SentIndex:
    """Sent messages indexed once per poll; each match is a few dictionary lookups."""

    def __init__(self, sent: Iterable[SentRef], sub_address: bool = False) -> None:
        self.sub_address = sub_address
        self.by_id: dict[str, SentRef] = {}
        self.by_token: dict[str, SentRef] = {}
        self.by_sender_subject: dict[tuple[str, str], tuple[int, SentRef]] = {}
        for order, ref in enumerate(sent):
            self.by_id[normalize_id(ref.message_id)] = ref
            if sub_address and ref.reply_token:
                self.by_token[ref.reply_token.lower()] = ref
            subject = normalize_subject(ref.subject)
            for recipient in ref.recipients:
                key = (recipient.strip().lower(), subject)
                current = self.by_sender_subject.get(key)
                if current is None or _newer(ref, order, *current):
                    self.by_sender_subject[key] = (order, ref)

    def _found(self, ref: SentRef, how: str) -> Match:
        return Match(key=ref.key, engagement=ref.engagement, how=how)

    def match(self, inbound: Inbound) -> Match | None:
        """The sent message this inbound answers, or None when nothing ties them."""
        # a report (bounce, delay, success, ARF) is tied to the message it returns
        original = inbound.original_message_id or (
            inbound.bounce.original_message_id if inbound.bounce else None)
        if original:
            ref = self.by_id.get(normalize_id(original))
            if ref:
                return self._found(ref, "bounce-original")
        for message_id in inbound.in_reply_to:
            ref = self.by_id.get(normalize_id(message_id))
            if ref:
                return self._found(ref, "in-reply-to")
        for message_id in reversed(inbound.references):
            ref = self.by_id.get(normalize_id(message_id))
            if ref:
                return self._found(ref, "references")
        if self.sub_address:
            for token in reply_tokens(inbound.to):
                ref = self.by_token.get(token)
                if ref:
                    return self._found(ref, "reply-token")
        if inbound.from_addr and inbound.kind not in _REPORTS:
            found = self.by_sender_subject.get(
                (inbound.from_addr.lower(), normalize_subject(inbound.subject))
            )
            if found:
                return self._found(found[1], "sender+subject")
        return None


def _newer(ref: SentRef, order: int, current_order: int, current: SentRef) -> bool:
    """True when ref was sent after current: by sent_at when both have it, else input order."""
    if ref.sent_at is not None and current.sent_at is not None:
        try:
            if ref.sent_at != current.sent_at:
                return ref.sent_at > current.sent_at
        except TypeError:  # naive vs aware: fall back to input order rather than fail a poll
            pass
    return order > current_order
