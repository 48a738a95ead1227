"""Delivery reports: RFC 3464 DSNs and the plain-text notices of other mail systems.

A report names every recipient it is about, each with its status and action (failed, delayed,
delivered). Plain-text notices are read in two ways: our own reading (the address in recipient
context, the status next to it) and Mailman's `flufl.bounce`, which knows dozens of mail
systems' formats; ours is tried first because it also gives the status, flufl.bounce fills in
recipients ours does not see (figures in the README's dependency section).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass

FAILED, DELAYED, DELIVERED = "failed", "delayed", "delivered"
REPORTED = "reported"  # named in an abuse/complaint report: no delivery outcome


@dataclass(frozen=True)
class Recipient:
    """One recipient a delivery report is about."""

    address: str
    status: str | None
    action: str  # failed | delayed | delivered (relayed, expanded) | reported
    diagnostic: str | None = None


@dataclass(frozen=True)
class Bounce:
    """What a failure report says, in brief: its first failed recipient and the original.

    Every recipient the report names is in `Inbound.delivery`.
    """

    recipient: str | None
    status: str | None
    diagnostic: str | None
    original_message_id: str | None
    action: str | None


_DAEMON_LOCAL = re.compile(
    r"^(?:mailer-daemon|mailer_daemon|mail-daemon|maildaemon|postmaster|post_master|poostmaster"
    r"|mail\.delivery\.system|mdaemon|double-bounce|mail-delivery|mailerdaemon|microsoftexchange"
    r"[\w.-]*|bounce|bounces|nobody)(?:@|$)",
    re.IGNORECASE,
)
_DAEMON_NAME = re.compile(
    r"mail\s*delivery\s*(?:system|subsystem|service)|mailer[\s-]*daemon|postmaster"
    r"|system\s+administrator|ndr\s+administrator|mail\s+administrator|interscan",
    re.IGNORECASE,
)
_FAILURE_SUBJECT = re.compile(
    r"""undeliver|undelivered|not\s+delivered|delivery\s+(?:status\s+notification|failure|failed
      |problem|report|has\s+failed|notification)|mail\s+delivery|failure\s+notice|failed\s+delivery
      |failure\s+delivery|delivery\s+status|returned\s+mail|returning\s+message|mail\s+system\s+error
      |could\s+not\s+be\s+delivered|non\s+remis|unzustellbar|no\s+se\s+puede\s+entregar
      |non\s+recapitabile|onbestelbaar|permanent\s+delivery\s+failure|error\s+sending\s+your\s+mail
      |mail\s+failure|nondeliverable|delayed\s+mail|warning:\s+message|возвращено|не\s+доставлено
      |mail\s+failed|returning\s+to\s+sender|could\s+not\s+send\s+(?:mail|message)""",
    re.IGNORECASE | re.VERBOSE,
)
_DELAY = re.compile(
    r"\(delay\)|delayed\s+mail|still\s+being\s+retried|notification:\s+(?:warning|delayed)"
    r"|warning:\s+message\s+\S+\s+delayed|will\s+(?:continue\s+to\s+)?(?:retry|try)"
    r"|has\s+not\s+(?:yet\s+)?been\s+delivered|delivery\s+(?:has\s+been\s+)?delayed"
    r"|temporarily\s+deferred|not\s+yet\s+been\s+delivered"
    # sendmail's warning: "Could not send mail for past 8.5 hours" (it gives up after days)
    r"|(?:could\s+not|cannot)\s+send\s+(?:mail|message)\s+for\s+(?:the\s+)?past",
    re.IGNORECASE,
)
_PERMANENT = re.compile(
    r"permanent(?:ly)?\s+(?:error|failure|fatal)|given\s+up|could\s+not\s+be\s+delivered"
    r"|delivery\s+(?:to\s+the\s+following\s+\w+\s+)?(?:has\s+)?failed|undeliverable"
    r"|user\s+unknown|no\s+such\s+user|does\s+not\s+exist|was\s+not\s+delivered|rejected",
    re.IGNORECASE,
)
_FAILURE_TEXT = re.compile(
    r"could\s+not\s+be\s+delivered|couldn't\s+be\s+delivered|undeliverable|delivery\s+(?:has\s+)?"
    r"failed|failed\s+permanently|permanent\s+(?:error|failure|fatal)|was\s+not\s+delivered"
    r"|wasn't\s+able\s+to\s+deliver|unable\s+to\s+deliver|error\s+delivering|returned\s+to\s+sender"
    r"|delivery\s+to\s+the\s+following|message\s+(?:could\s+not|cannot)\s+be\s+delivered"
    r"|failed\s+addresses"
    r"|following\s+addresses\s+had|delivery\s+problem|mail\s+delivery\s+failed|not\s+delivered"
    r"|still\s+being\s+retried|has\s+been\s+delayed|delivery\s+status\s+notification"
    r"|did\s+not\s+reach\s+the\s+following|recipient\s+name\s+is\s+not\s+recognized"
    # an SMTP reply with an enhanced status, as a transcript quotes it: "550 5.1.1 <x@y>..."
    r"|(?<![\w.])[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}(?![\w.])",
    re.IGNORECASE,
)
# Where a plain-text notice starts quoting the returned message: nothing below it is the report.
_RETURNED = re.compile(
    r"""^[\s>|-]*(?:below\s+(?:this\s+line\s+)?is\s+a\s+copy|this\s+is\s+a\s+copy\s+of\s+the\s+message
      |message\s+headers\s+follow|original\s+message\s+follows|returned\s+message|the\s+original
      \s+message\s+(?:was|headers|follows)|original\s+message\s+headers|unsent\s+message\s+below
      |[-\s]*original\s+message[-\s]*$|text\s+of\s+the\s+original\s+message|headers\s+of\s+(?:the|your)
      \s+(?:original\s+)?message|a\s+copy\s+of\s+the\s+original\s+message|message\s+text\s+follows
      |content-type:\s*message/rfc822)""",
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
_HEADER_RUN = re.compile(r"^(?:Received|Return-Path|Message-I[dD]|DKIM-Signature):", re.M)
# Bounded parts (RFC 5321 lengths): an unbounded local part is quadratic on a long word run.
_ADDRESS = re.compile(r"[A-Za-z0-9._%+'=/-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}")
# An address in recipient context: first on its line, or after a word that names a recipient.
_RECIPIENT_LINE = re.compile(
    r"""^[\s*>-]*(?:(?:final-|original-)?recipient(?:\s+address)?(?:\(s\))?\s*:\s*(?:rfc822;)?
      |to\s*:|rcpt\s+to\s*:|address(?:es)?\s*:|user\s*:|mailbox\s*:)?\s*["'(<]*
      (?P<addr>[A-Za-z0-9._%+'=/-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8})""",
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)
_RECIPIENT_CONTEXT = re.compile(
    r"""(?:deliver(?:ed|ing|y)?\s+(?:your\s+)?(?:mail|message|e-?mail)?\s*to|message\s+to|mail\s+to
      |recipient(?:s|\(s\))?|address(?:ee)?|mailbox|user|failed\s+to|following\s+address(?:es)?
      |for|to)\s*:?\s*["'(<]*$""",
    re.IGNORECASE | re.VERBOSE,
)
# An enhanced status code (RFC 3463) only where a mail system writes one, never "version 2.1.5".
_STATUS = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w.]|\.\d)")
_NOT_STATUS_BEFORE = re.compile(r"(?:version|ver\.?|v|release|rev\.?|build|php|python)\s*$", re.I)
_REPLY_CODE = re.compile(r"(?<![\w.])([245])\d\d(?=[\s-])(?![\s-]*\d{3,})")
_MESSAGE_ID = re.compile(r"<[^<>\s]+@[^<>\s]+>")
REPORT_CHARS = 50_000
FLUFL_BYTES = 300_000


def is_mail_system(from_field: str, from_addr: str | None, return_path: str) -> bool:
    """True when the sender is a mail system: a null sender, a daemon address or a daemon name."""
    rp = return_path.strip().lower()
    if rp in ("<>", "") and not from_field.strip():
        return False
    if rp == "<>" or _DAEMON_LOCAL.match(rp.strip("<>")):
        return True
    raw = from_field.strip()
    if re.search(r"<\s*>", raw) or (from_addr is None and _DAEMON_LOCAL.match(raw)):
        return True  # "MAILER-DAEMON <>", "mailer-daemon" without a domain
    return bool((from_addr and _DAEMON_LOCAL.match(from_addr)) or _DAEMON_NAME.search(raw))


def looks_like_bounce(from_addr: str | None, subject: str, null_sender: bool) -> bool:
    """True for a failure subject from a mailer daemon or null sender (a person forwarding a
    bounce keeps its subject, but only machines send from <> or a daemon address)."""
    daemon = bool(from_addr and _DAEMON_LOCAL.match(from_addr))
    return bool(_FAILURE_SUBJECT.search(subject[:500])) and (daemon or null_sender)


def is_failure_notice(subject: str, text: str) -> bool:
    """True when a notice from a mail system reports a delivery problem (subject or text)."""
    return bool(_FAILURE_SUBJECT.search(subject[:500]) or _FAILURE_TEXT.search(report_part(text)))


def is_delay(subject: str, text: str) -> bool:
    """True for a warning that delivery is still being tried (never a failure for good)."""
    report = report_part(text)
    subject = subject[:500]
    delayed = bool(_DELAY.search(subject) or _DELAY.search(report))
    return delayed and not _PERMANENT.search(report) and not re.search(
        r"fail", subject, re.IGNORECASE)


def report_part(text: str) -> str:
    """The notice's own text, without the returned message it quotes (and never beyond
    REPORT_CHARS: a mail system's notice is short, and the phrase searches are per character)."""
    text = text[:REPORT_CHARS]
    cut = _RETURNED.search(text)
    end = cut.start() if cut else len(text)
    headers = _HEADER_RUN.search(text, 0, end)
    if headers and headers.start() > 0:
        end = headers.start()
    return text[:end]


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


def _address(value: str | None) -> str | None:
    found = _ADDRESS.search(_typed_value(value) or "")
    return found.group(0).strip(".").lower() if found else None


def status_in(text: str) -> str | None:
    """The first enhanced status code written in status context, else one from a reply code."""
    for found in _STATUS.finditer(text):
        if not _NOT_STATUS_BEFORE.search(text[max(0, found.start() - 12):found.start()]):
            return found.group(0)
    code = _REPLY_CODE.search(text)
    return f"{code.group(1)}.0.0" if code else None


def better_status(status: str | None, other: str | None) -> str | None:
    """The more telling of two codes for one recipient: the remote server's specific reason
    ("550 5.7.1 ...") over the reporting MTA's summary ("5.0.0", "4.4.7 expired") of its class."""
    if not other or other.endswith(".0.0") or other == status:
        return status or other
    if status is None or (other[0] == status[0] and status[2:] in ("0.0", "4.7", "1.0", "5.0")):
        return other
    return status


def _action(value: str) -> str:
    value = value.lower()
    if value.startswith("delay"):
        return DELAYED
    if value.startswith(("deliver", "relay", "expand")):
        return DELIVERED
    return FAILED


def parse_delivery_status(text: str) -> dict[str, str | None]:
    """Recipient, status, diagnostic and action of the first failed recipient in a DSN body."""
    found = delivery_status_recipients(text)
    first = next((r for r in found if r.action == FAILED), found[0] if found else None)
    return {
        "recipient": first.address if first else None,
        "status": first.status if first else None,
        "diagnostic": first.diagnostic if first else None,
        "action": first.action if first else None,
    }


def delivery_status_recipients(text: str) -> list[Recipient]:
    """Every recipient of an RFC 3464 delivery-status body, with status and action."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip())
    found: list[Recipient] = []
    for block in blocks:
        fields = _fields(block)
        address = _address(fields.get("final-recipient")) or _address(
            fields.get("original-recipient"))
        if not address:
            continue
        diagnostic = _typed_value(fields.get("diagnostic-code"))
        declared = _STATUS.search(fields.get("status", ""))
        status = declared.group(0) if declared else None
        detailed = status_in(diagnostic or "")
        status = better_status(status, detailed)
        action = _action(fields.get("action", "")) if fields.get("action") else (
            DELAYED if status and status.startswith("4") else FAILED)
        found.append(Recipient(address, status, action, diagnostic))
    return _unique(found)


def _unique(found: list[Recipient]) -> list[Recipient]:
    seen: dict[str, Recipient] = {}
    for r in found:
        if r.address not in seen or (seen[r.address].status is None and r.status):
            seen[r.address] = r
    return list(seen.values())


def _context_addresses(report: str) -> list[tuple[str, int]]:
    """Addresses the notice names as recipients, with where they are written."""
    found: list[tuple[str, int]] = []
    for match in _RECIPIENT_LINE.finditer(report):
        found.append((match.group("addr"), match.start("addr")))
    for match in _ADDRESS.finditer(report):
        before = report[max(0, match.start() - 40):match.start()].split("\n")[-1]
        if _RECIPIENT_CONTEXT.search(before):
            found.append((match.group(0), match.start()))
    return sorted(found, key=lambda item: item[1])


def parse_plain_bounce(text: str, exclude: set[str], known: set[str] = frozenset(),
                       delayed: bool = False) -> list[Recipient]:
    """Recipients of a plain-text notice, each with the status written after it.

    exclude: addresses that are not recipients (the notice's own sender and addressee).
    known: addresses another detector (flufl.bounce) found in this notice.
    """
    report = report_part(text.replace("\r\n", "\n"))
    named = [(a.strip(".").lower(), pos) for a, pos in _context_addresses(report)]
    named = [(a, pos) for a, pos in named
             if a not in exclude and not _DAEMON_LOCAL.match(a)]
    order = list(dict.fromkeys(a for a, _ in named))
    lowered = report.lower()
    for address in sorted(known - set(order) - exclude):
        order.append(address)
        named.append((address, lowered.find(address)))
    found = []
    for address in order:
        start = min(pos for a, pos in named if a == address)
        later = [pos for a, pos in named if a != address and pos > start]
        segment = report[max(0, start):min(later) if later else len(report)]
        status = status_in(segment) or status_in(report)
        action = DELAYED if delayed or (status or "").startswith("4") else FAILED
        found.append(Recipient(address, status, action, _diagnostic(segment, address)))
    return found


def _diagnostic(segment: str, address: str) -> str | None:
    """The words a notice writes about one recipient: the rest of its line, else the next."""
    lines = [ln.strip() for ln in segment.split("\n")]
    rest = re.sub(r"^[\s<>:\"'()\[\]]+", "", lines[0][len(address):] if lines else "")
    if re.search(r"\w{3}", rest):
        return rest[:300]
    return next((ln[:300] for ln in lines[1:] if re.search(r"\w{3}", ln)), None)


_ID_HEADER = re.compile(rb"^(?:message-id|references|in-reply-to)\s*:((?:.*)(?:\r?\n[ \t].*)*)",
                        re.IGNORECASE | re.MULTILINE)


def message_id_addresses(raw: bytes) -> set[str]:
    """Addresses that are only Message-IDs (<id@host> in Message-ID or References headers)."""
    found = set()
    for header in _ID_HEADER.finditer(raw):
        for token in re.findall(rb"<([^<>\s]+@[^<>\s]+)>", header.group(1)):
            found.add(token.decode("latin-1").lower())
    return found


def flufl_recipients(raw: bytes) -> set[str]:
    """Recipients flufl.bounce finds in a notice (temporary and permanent), lower-cased."""
    from flufl.bounce import all_failures  # imported only for notices: it costs import time

    try:
        # the failed recipients are near the top; flufl.bounce's heuristics read every line
        message = email.message_from_bytes(raw[:FLUFL_BYTES], policy=email.policy.compat32)
        temporary, permanent = all_failures(message)
    except Exception:  # noqa: BLE001 - a third-party heuristic must never stop parsing
        return set()
    found = set()
    for value in (*temporary, *permanent):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        address = _ADDRESS.search(text)
        if address:
            found.add(address.group(0).lower())
    return found


def original_message_id(headers_text: str) -> str | None:
    """Message-ID of the returned original, from its headers as text."""
    match = re.search(r"^Message-ID:\s*(.*(?:\n[ \t].*)*)", headers_text, re.IGNORECASE | re.M)
    if not match:
        return None
    found = _MESSAGE_ID.search(match.group(1))
    return found.group(0) if found else None


def summary(recipients: list[Recipient], original: str | None) -> Bounce:
    """The Bounce of a report: its first failed (else first) recipient and the original."""
    first = next((r for r in recipients if r.action == FAILED), None) or (
        recipients[0] if recipients else None)
    return Bounce(
        recipient=first.address if first else None,
        status=first.status if first else None,
        diagnostic=first.diagnostic if first else None,
        original_message_id=original,
        action=first.action if first else None,
    )
