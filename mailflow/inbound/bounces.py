"""Delivery failure reports: RFC 3464 DSN fields and the common non-DSN bounce texts."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Bounce:
    """What a delivery failure report says about the message that could not be delivered."""

    recipient: str | None
    status: str | None
    diagnostic: str | None
    original_message_id: str | None
    action: str | None


_BOUNCE_SENDER = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon)@", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"""^\s*(?:
        undelivered\s+mail\s+returned\s+to\s+sender
      | delivery\s+status\s+notification\s*\(failure\)
      | undeliverable\s*:
      | unzustellbar\s*:
      | non\s+remis\s*:
      | no\s+se\s+puede\s+entregar\s*:
      | mail\s+delivery\s+(?:failed|failure|subsystem)
      | returned\s+mail\s*:
      | failure\s+notice
      | delivery\s+failure
      | undeliverable\s+mail
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_ADDRESS = re.compile(r"<?([A-Za-z0-9._%+'=-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")


def looks_like_bounce(from_addr: str | None, subject: str, null_sender: bool) -> bool:
    """True for a non-DSN failure notice: a failure subject from a mailer daemon or null sender."""
    if not _BOUNCE_SUBJECT.match(subject):
        return False
    daemon = bool(from_addr and (_BOUNCE_SENDER.match(from_addr) or from_addr.startswith(
        "microsoftexchange")))
    # A person can forward a bounce with its subject; only machines send from <> or a daemon.
    return daemon or null_sender


def _fields(block: str) -> dict[str, str]:
    """Header-style 'Name: value' fields of one DSN block, continuation lines unfolded."""
    fields: dict[str, str] = {}
    last = ""
    for line in block.split("\n"):
        if line[:1] in (" ", "\t") and last:
            fields[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            last = name.strip().lower()
            fields.setdefault(last, value.strip())
    return fields


def _typed_value(value: str | None) -> str | None:
    """The value part of a typed DSN field ('rfc822; x@y' -> 'x@y')."""
    if not value:
        return None
    _, sep, rest = value.partition(";")
    return (rest if sep else value).strip() or None


def _recipient(value: str | None) -> str | None:
    found = _ADDRESS.search(_typed_value(value) or "")
    return found.group(1).lower() if found else None


def parse_delivery_status(text: str) -> dict[str, str | None]:
    """Recipient, status, diagnostic and action of the first failed recipient in a DSN body."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    per_recipient = [_fields(block) for block in blocks[1:]] or [{}]
    failed = [f for f in per_recipient if f.get("action", "").lower() == "failed"]
    fields = (failed or per_recipient)[0]
    status = fields.get("status")
    found = _STATUS.search(status or "")
    return {
        "recipient": _recipient(fields.get("final-recipient"))
        or _recipient(fields.get("original-recipient")),
        "status": found.group(1) if found else (status or None),
        "diagnostic": _typed_value(fields.get("diagnostic-code")),
        "action": (fields.get("action") or "").lower() or None,
    }


def original_message_id(headers_text: str) -> str | None:
    """Message-ID of the returned original, from its headers as text."""
    match = re.search(r"^Message-ID:\s*(.*(?:\n[ \t].*)*)", headers_text, re.IGNORECASE | re.M)
    if not match:
        return None
    found = _MESSAGE_ID.search(match.group(1))
    return found.group(0) if found else None


def parse_plain_bounce(text: str) -> dict[str, str | None]:
    """Best-effort fields from a human-readable bounce (Postfix, qmail, Exchange text)."""
    text = text.replace("\r\n", "\n")
    recipient = None
    # Postfix: "<user@host>: host ... said: 550 5.1.1 ...", qmail: "<user@host>:" on its own line.
    line_match = re.search(r"^\s*<([^<>\s]+@[^<>\s]+)>\s*:", text, re.MULTILINE)
    if line_match:
        recipient = line_match.group(1).lower()
    else:
        for pattern in (
            r"(?:delivery\s+to|message\s+to|recipient)[^\n@]{0,60}?<?([\w.%+'=-]+@[\w.-]+\.\w+)",
            r"(?:wasn't\s+delivered\s+to|couldn't\s+be\s+delivered\s+to)\s+<?([\w.%+'=-]+@[\w.-]+\.\w+)",
        ):
            found = re.search(pattern, text, re.IGNORECASE)
            if found:
                recipient = found.group(1).lower()
                break
    status = _STATUS.search(text)
    diagnostic = re.search(r"\b([45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b[^\n]*)", text)
    return {
        "recipient": recipient,
        "status": status.group(1) if status else None,
        "diagnostic": diagnostic.group(1).strip() if diagnostic else None,
        "action": "failed" if recipient or status else None,
        "original_message_id": original_message_id(text),
    }
