"""Walking a parsed message's MIME tree defensively: body text, attachments, report parts."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from email.message import Message

MAX_BODY_BYTES = 2_000_000  # a reply's text is small; beyond this it is not a reply to read
_FALLBACKS = ("utf-8", "cp1252")


@dataclass
class Parts:
    """The parts of a message mailflow reads, collected in one walk."""

    plain: list[Message] = field(default_factory=list)
    html: list[Message] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    delivery_status: Message | None = None
    feedback: Message | None = None  # message/feedback-report of an ARF report (RFC 5965)
    returned: Message | None = None  # message/rfc822 or text/rfc822-headers of a report


def safe_content_type(part: Message) -> str:
    """The part's content type, text/plain when the header is unreadable."""
    try:
        return part.get_content_type()
    except Exception:  # noqa: BLE001 - a malformed Content-Type must not stop parsing
        return "text/plain"


def safe_param(part: Message, name: str, header: str = "content-type") -> str | None:
    """One parameter of a structured header, None when absent or unreadable."""
    try:
        value = part.get_param(name, header=header)
    except Exception:  # noqa: BLE001
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        try:
            return value[2].encode("latin-1", "surrogateescape").decode(value[0] or "utf-8")
        except Exception:  # noqa: BLE001
            return str(value[2])
    return None if value is None else str(value)


def filename(part: Message) -> str | None:
    """The part's filename, from Content-Disposition or the Content-Type name parameter."""
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = safe_param(part, "name")
    if not name:
        return None
    return " ".join(str(name).split())


def _is_attachment(part: Message) -> bool:
    try:
        disposition = (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        disposition = ""
    return disposition == "attachment" or filename(part) is not None


def collect_parts(message: Message) -> Parts:
    """Body parts, attachment names and report parts, without decoding any attachment."""
    found = Parts()
    # In a delivery report the returned message is evidence, not an attachment the sender chose.
    is_report = safe_content_type(message) == "multipart/report"
    stack: list[Message] = [message]
    while stack:
        part = stack.pop(0)
        ctype = safe_content_type(part)
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            found.delivery_status = part
            continue
        if ctype == "message/feedback-report":
            found.feedback = part
            continue
        if ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers",
                     "message/global", "message/global-headers"):
            if part is not message and found.returned is None:
                found.returned = part
            if ctype == "message/rfc822" and part is not message and not is_report:
                found.attachments.append(filename(part) or "message.eml")
            continue  # a forwarded or returned message's text is not this sender's text
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[0:0] = [p for p in payload if isinstance(p, Message)]
            continue
        if part is not message and _is_attachment(part):
            found.attachments.append(filename(part) or "attachment")
        elif ctype == "text/html":
            found.html.append(part)
        elif ctype.startswith("text/"):
            found.plain.append(part)
    return found


def decode_bytes(data: bytes, charset: str | None, problems: list[str]) -> str:
    """Text of data: declared charset, else utf-8, else cp1252/latin-1 with replacement."""
    declared = (charset or "").strip().strip('"').lower() or None
    if declared:
        try:
            codecs.lookup(declared)
        except (LookupError, ValueError):  # ValueError: NUL bytes in a mangled charset name
            problems.append(f"unknown charset {declared!r}")
            declared = None
    for name in ((declared,) if declared else ()) + _FALLBACKS:
        try:
            text = data.decode(name)
        except (UnicodeDecodeError, LookupError, ValueError):
            continue
        if declared and name != declared:
            problems.append(f"body is not valid {declared}, decoded as {name}")
        return text
    problems.append(f"undecodable body ({declared or 'no charset'}), decoded as latin-1")
    return data.decode("latin-1")


def part_bytes(part: Message, problems: list[str]) -> bytes:
    """Decoded transfer-encoding payload of a leaf part; never raises."""
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:  # noqa: BLE001
        problems.append(f"undecodable transfer encoding: {type(exc).__name__}")
        raw = part.get_payload()
        payload = raw.encode("ascii", "surrogateescape") if isinstance(raw, str) else b""
    if payload is None:
        raw = part.get_payload()
        payload = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    if len(payload) > MAX_BODY_BYTES:
        problems.append(f"body of {len(payload)} bytes truncated to {MAX_BODY_BYTES}")
        payload = payload[:MAX_BODY_BYTES]
    return payload


def part_text(part: Message, problems: list[str]) -> str:
    """Text of a leaf part, decoded with the charset fallbacks."""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    return decode_bytes(part_bytes(part, problems), charset, problems)


def report_text(part: Message, problems: list[str]) -> str:
    """Text of a report sub-part (delivery-status, rfc822 headers), whatever its shape."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # The parser makes message/* parts into sub-messages; their headers are the content.
        return "\n\n".join(
            "\n".join(f"{k}: {v}" for k, v in sub.raw_items())
            for sub in payload
            if isinstance(sub, Message)
        )
    return part_text(part, problems)
